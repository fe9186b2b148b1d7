"""The demo and run reports, written as Markdown and as self-contained HTML (plain CSS, no
JavaScript, no fonts or files fetched from the network; the PNG figures sit next to the page).

Both formats are rendered from one small document model (headings, paragraphs, tables,
figures, lists). Every piece of text that came from a model (CoTs, paraphrases, answers, the
words of a learned code) is wrapped in ``Code``: HTML escapes it with ``html.escape`` and
Markdown puts it in a code span whose backtick fence is longer than any backtick run inside
and whose pipes are escaped inside tables, so a CoT holding ``<script>`` or ``| --- |``
shows verbatim and cannot change the structure of either page.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from legible.report import plots
from legible.report._metrics import METRIC_DEFINITIONS, SUMMARY_METRICS

CONDITION_DEFINITIONS: dict[str, str] = {
    "outcome": "reward for the right answer only",
    "monitor": "reward for the right answer, minus a penalty for each banned word the monitor finds in the CoT",
    "monitor+paraphrase": "as monitor, but the answer is produced from a paraphrase of the CoT",
    "monitor+face": "as monitor+paraphrase, with a separate Face model writing the answer from the paraphrase",
    "monitor+sensitivity": "as monitor, plus a penalty when the answer changes under paraphrase",
}

_BITS = ("capacity_bits", "capacity_bits_paraphrased", "legible_reading_bits")
_EXAMPLES_SHOWN = 3
_CODE_WORDS_SHOWN = 10


# --------------------------------------------------------------------------- document model


@dataclass(frozen=True)
class Code:
    """Data, typically written by a model: shown verbatim in a code span, never interpreted."""

    text: str


@dataclass(frozen=True)
class Styled:
    """Trusted text with an HTML class (a verdict); Markdown shows the text alone."""

    text: str
    css: str


Inline = str | Code | Styled | Sequence  # a sequence is a run of inlines


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    content: Inline


@dataclass
class Table:
    header: list[Inline]
    rows: list[list[Inline]]


@dataclass
class Image:
    src: str
    alt: str
    caption: str


@dataclass
class Items:
    items: list[Inline] = field(default_factory=list)


@dataclass
class Pre:
    text: str


Block = Heading | Para | Table | Image | Items | Pre

# "]" only before "(" or "[": a bracket starts a link only there (no reference definitions are ever written),
# and "_" only at a word edge (intra-word underscores never emphasise), so "0.93 [0.90, 0.96]" stays readable.
_MD_SPECIAL = re.compile(r"[\\`*<>|~&]|\](?=[(\[])|(?<!\w)_|_(?!\w)")


def md_text(text: str) -> str:
    """Trusted prose for Markdown: the characters that would start markup are backslash-escaped
    (pipes included, so it is safe in a table cell; a "]" that would close a link); newlines become spaces."""
    text = re.sub(r"[\r\n]+", " ", str(text))
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def md_code(text: str, in_table: bool = False) -> str:
    """``text`` as a Markdown code span that shows it verbatim.

    The fence is one backtick longer than the longest backtick run inside (backslashes do not
    escape inside code spans); a space pads text that starts or ends with a backtick or with
    spaces on both sides. In a table cell each pipe is escaped as GFM asks, and a backslash run
    just before a pipe is doubled so it cannot swallow that escape. Newlines become spaces."""
    text = re.sub(r"\r\n|\r|\n", " ", str(text))
    if not text:
        return "*(empty)*"
    if in_table:
        text = re.sub(r"(\\*)\|", lambda m: m.group(1) * 2 + "\\|", text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = text[0] == "`" or text[-1] == "`" or (text[0] == " " and text[-1] == " " and text.strip() != "")
    space = " " if pad else ""
    return f"{fence}{space}{text}{space}{fence}"


def _md_inline(item: Inline, in_table: bool) -> str:
    if isinstance(item, Code):
        return md_code(item.text, in_table)
    if isinstance(item, Styled):
        return md_text(item.text)
    if isinstance(item, str):
        return md_text(item)
    return "".join(_md_inline(part, in_table) for part in item)


def _html_inline(item: Inline) -> str:
    if isinstance(item, Code):
        return f"<code>{html.escape(item.text)}</code>" if item.text else "<em>(empty)</em>"
    if isinstance(item, Styled):
        return f'<span class="{html.escape(item.css)}">{html.escape(item.text)}</span>'
    if isinstance(item, str):
        return html.escape(item)
    return "".join(_html_inline(part) for part in item)


def render_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + md_text(b.text))
        elif isinstance(b, Para):
            out.append(_md_inline(b.content, False))
        elif isinstance(b, Table):
            lines = [
                "| " + " | ".join(_md_inline(c, True) for c in b.header) + " |",
                "| " + " | ".join("---" for _ in b.header) + " |",
            ]
            for row in b.rows:
                cells = list(row) + [""] * (len(b.header) - len(row))
                lines.append("| " + " | ".join(_md_inline(c, True) for c in cells[: len(b.header)]) + " |")
            out.append("\n".join(lines))
        elif isinstance(b, Image):
            out.append(f"![{md_text(b.alt)}](<{b.src}>)\n\n*{md_text(b.caption)}*")
        elif isinstance(b, Items):
            out.append("\n".join("- " + _md_inline(i, False) for i in b.items))
        elif isinstance(b, Pre):
            longest = max((len(run) for run in re.findall(r"`{3,}", b.text)), default=0)
            fence = "`" * max(3, longest + 1)
            out.append(f"{fence}\n{b.text.rstrip()}\n{fence}")
    return "\n\n".join(out) + "\n"


_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222;
       margin: 0; background: #fafafa; line-height: 1.5; }
main { max-width: 1150px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fff; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin-top: 1.5rem; }
.scroll { overflow-x: auto; margin: .8rem 0; }
table { border-collapse: collapse; font-size: .85rem; }
th, td { border: 1px solid #ddd; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fcfcfc; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .82rem; }
code { background: #f2f2f2; padding: 0 .2rem; border-radius: 3px; white-space: pre-wrap; word-break: break-word; }
pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; border-radius: 4px; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #c62828; font-weight: 600; }
.na { color: #777; font-style: italic; }
"""


def render_html(title: str, blocks: Sequence[Block]) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_html_inline(b.content)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_html_inline(c)}</th>" for c in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>\n" for row in b.rows)
            body.append(
                f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody></table></div>'
            )
        elif isinstance(b, Image):
            body.append(
                f'<figure><img src="{html.escape(b.src)}" alt="{html.escape(b.alt)}">'
                f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
            )
        elif isinstance(b, Items):
            body.append("<ul>\n" + "".join(f"<li>{_html_inline(i)}</li>\n" for i in b.items) + "</ul>")
        elif isinstance(b, Pre):
            body.append(f"<pre>{html.escape(b.text.rstrip())}</pre>")
    csp = "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def write_pages(directory: Path, title: str, blocks: Sequence[Block]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` in ``directory`` from one document."""
    md_path, html_path = directory / "report.md", directory / "report.html"
    md_path.write_text(render_markdown(blocks), encoding="utf-8")
    html_path.write_text(render_html(title, blocks), encoding="utf-8")
    return md_path, html_path


# --------------------------------------------------------------------------- reading inputs


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _read_metrics(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a run killed mid-write leaves a partial last line
                continue
    return rows


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: object, metric: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    v = _number(value)
    if v is None:
        return "n/a" if value is None or isinstance(value, float) else str(value)
    return f"{v:.3f}"


def _fmt_entry(entry: Mapping | None, metric: str) -> str:
    """A summary.json entry as "mean [lo, hi]", with the number of seeds when some had no value."""
    entry = entry or {}
    mean = _number(entry.get("mean"))
    if mean is None:
        return "n/a"
    ci = entry.get("ci95")
    lo, hi = (_number(ci[0]), _number(ci[1])) if isinstance(ci, Sequence) and len(ci) == 2 else (None, None)
    text = f"{mean:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "")
    values = entry.get("values")
    if isinstance(values, Sequence) and values:
        valid = sum(_number(v) is not None for v in values)
        if valid < len(values):
            text += f" ({valid}/{len(values)} seeds)"
    return text


def _duration(seconds: object) -> str:
    s = _number(seconds)
    if s is None:
        return "unknown"
    if s < 60:
        return f"{s:.0f} s"
    minutes, sec = divmod(round(s), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _metric_order(keys) -> list[str]:
    keys = list(dict.fromkeys(keys))
    known = [m for m in METRIC_DEFINITIONS if m in keys]
    return known + sorted(k for k in keys if k not in METRIC_DEFINITIONS)


def _verdict(holds: object) -> Styled:
    if holds is True:
        return Styled("holds", "ok")
    if holds is False:
        return Styled("does not hold", "bad")
    return Styled("n/a", "na")


def _examples_table(examples: Sequence[Mapping]) -> Table:
    rows = []
    for ex in list(examples)[:_EXAMPLES_SHOWN]:
        answer, truth = ex.get("answer"), ex.get("truth")
        verdict = (
            Styled("no answer", "na")
            if answer is None
            else (Styled("right", "ok") if str(answer) == str(truth) else Styled("wrong", "bad"))
        )
        rows.append(
            [
                Code(str(ex.get("prompt", ""))),
                Code(str(ex.get("cot", ""))),
                Code(str(ex.get("paraphrase", ""))) if ex.get("paraphrase") is not None else "n/a",
                Code(str(answer)) if answer is not None else Styled("none", "na"),
                Code(str(truth)),
                verdict,
            ]
        )
    return Table(["prompt", "CoT", "paraphrase of the CoT", "answer", "truth", "verdict"], rows)


def _code_table(code: Mapping[str, Mapping], top: int = _CODE_WORDS_SHOWN) -> Table:
    words = sorted(code, key=lambda w: -(_number((code[w] or {}).get("count")) or 0))[:top]
    states: list[str] = []
    for w in words:
        for s in (code[w] or {}).get("states") or {}:
            if s not in states:
                states.append(s)
    rows = []
    for w in words:
        entry = code[w] or {}
        shares = entry.get("states") or {}
        means = entry.get("means")
        rows.append(
            [
                Code(w),
                _fmt(entry.get("count")),
                *[_share(shares.get(s)) for s in states],
                Code(str(means)) if means is not None else Styled("no single state", "na"),
            ]
        )
    return Table(["word", "uses", *[["share in ", Code(s)] for s in states], "stands for"], rows)


def _share(value: object) -> str:
    v = _number(value)
    return "n/a" if v is None else f"{v:.0%}"


def _figure_block(path: Path, alt: str, caption: str) -> Image:
    return Image(path.name, alt, caption)


# --------------------------------------------------------------------------- the demo report


def _seed_list(demo_dir: Path, summary: Mapping) -> list:
    seeds = summary.get("seeds")
    if seeds:
        return list(seeds)
    found = [p.name[4:] for p in demo_dir.glob("seed*") if p.is_dir() and p.name[4:].isdigit()]
    return sorted(int(s) for s in found)


def write_demo_report(demo_dir: Path) -> tuple[Path, Path]:
    """Write ``demo_dir/report.md`` and ``demo_dir/report.html`` (and the fig_*.png figures next
    to them) from ``summary.json`` and the ``seed{k}/{condition}/`` run directories.

    Only summary.json is required; a missing metrics.jsonl or eval.json leaves a gap (a figure
    without that line, a section saying the data is missing), not an error."""
    demo_dir = Path(demo_dir)
    summary = _read_json(demo_dir / "summary.json")
    if summary is None:
        raise FileNotFoundError(f"{demo_dir / 'summary.json'}: no such file; run `legible demo` first")
    conditions: dict = summary.get("conditions") or {}
    seeds = _seed_list(demo_dir, summary)
    names = list(conditions) or sorted({p.name for s in seeds for p in (demo_dir / f"seed{s}").glob("*") if p.is_dir()})
    first = seeds[0] if seeds else 0
    runs = {c: [_read_metrics(demo_dir / f"seed{s}" / c / "metrics.jsonl") for s in seeds] for c in names}
    evals = {c: _read_json(demo_dir / f"seed{first}" / c / "eval.json") or {} for c in names}
    task = str(summary.get("task", "?"))
    stage1 = summary.get("stage1") or {}
    no_cot = summary.get("no_cot") or {}

    # figures
    figures: list[Block] = []
    curves = plots.plot_training_curves(runs, demo_dir / "fig_training_curves.png")
    figures.append(
        _figure_block(
            curves,
            "training curves",
            "Held-out accuracy and banned words per reasoning step during RL, one line per condition: mean over "
            f"{len(seeds)} seeds, shading from the lowest to the highest seed.",
        )
    )
    shown = [m for m in SUMMARY_METRICS if any(m in (conditions[c] or {}) for c in names)]
    if shown:
        bars = plots.plot_summary_bars(conditions, demo_dir / "fig_summary.png", metrics=shown)
        figures.append(
            _figure_block(
                bars,
                "final metrics by condition",
                "Final evaluation, one panel per metric and one bar per condition: mean over seeds, error bars = 95% "
                "CI over seeds; n/a = not measurable for that condition.",
            )
        )
    by_n = {
        "stage-1 CoT model": stage1.get("accuracy_by_n") or {},
        "no-CoT baseline": no_cot.get("accuracy_by_n") or {},
    }
    if any(by_n.values()):
        by_n_path = plots.plot_accuracy_by_n(
            by_n,
            demo_dir / "fig_accuracy_by_n.png",
            chance=0.5 if task == "coin_flip" else None,
            title="Stage-1 model: accuracy by number of steps N",
        )
        figures.append(
            _figure_block(
                by_n_path,
                "accuracy by number of steps",
                "Held-out accuracy of the stage-1 model that reasons in a legible CoT, and of the same architecture "
                "trained to answer with no CoT, against the number of steps N: the task needs the CoT.",
            )
        )
    code_condition = (
        "monitor" if evals.get("monitor", {}).get("code") else next((c for c in names if evals[c].get("code")), None)
    )
    if code_condition is not None:
        heat = plots.plot_code_heatmap(
            evals[code_condition]["code"],
            demo_dir / "fig_learned_code.png",
            title=f"Learned code: {code_condition} (seed {first})",
        )
        figures.append(
            _figure_block(
                heat,
                "learned code heatmap",
                f"The words the {code_condition} policy writes most (seed {first}): for each, the share of its uses "
                "that stand in a reasoning step whose true state is each column, with counts. A word that is not a "
                "state word yet sits almost always in one state is a learned encoding.",
            )
        )

    blocks: list[Block] = [Heading(1, "legible demo report")]
    stage1_acc = _number(stage1.get("accuracy"))
    no_cot_values = [v for v in map(_number, (no_cot.get("accuracy_by_n") or {}).values()) if v is not None]
    mode = (
        "quick mode (fewer training steps and evaluation problems than a full run, so the numbers are noisier)"
        if summary.get("quick")
        else "full mode"
    )
    text = (
        f" trained the tiny model organism on the {task} task: first supervised on legible CoTs "
        f"(stage 1), then with RL under {len(names)} conditions ({', '.join(names)}), each with {len(seeds)} seeds "
        f"({', '.join(map(str, seeds))}), in {mode}. Total wall time: {_duration(summary.get('wall_seconds'))}."
    )
    if stage1_acc is not None:
        text += f" Before RL the stage-1 model answers {stage1_acc:.1%} of held-out problems right"
        text += (
            f"; without a CoT the same architecture gets {sum(no_cot_values) / len(no_cot_values):.1%} "
            "(averaged over N)."
            if no_cot_values
            else "."
        )
    text += (
        " Every number below is the mean over seeds with its 95% confidence interval over seeds in "
        "brackets; the question is whether a CoT monitor teaches the model to hide its reasoning (banned "
        "words go down, accuracy stays up, the state stays recoverable from the CoT) and whether a "
        "paraphraser in the loop removes that hidden channel."
    )
    blocks.append(Para([Code("legible demo"), text]))
    blocks.append(Items([[Code(c), ": " + CONDITION_DEFINITIONS.get(c, "a custom condition")] for c in names]))
    aliases = stage1.get("aliases") or {}
    if aliases:
        seed_key, entry = next(iter(aliases.items()))
        named = ", ".join(f"{', '.join(words)} for {state}" for state, words in entry["aliases"].items())
        blocks.append(
            Para(
                f"Prior associations: the stage-1 corpus writes {entry['rate']:.0%} of state slots with a "
                f"seed-specific alias (seed {seed_key}: {named}), standing in for the rare other names an LLM's "
                "corpus holds for things. The monitor does not know them. Without any, the tiny model had no "
                "substitute to find and RL under the monitor only sharpened the legible CoT or collapsed to guessing."
            )
        )

    blocks.append(Heading(2, "Claims"))
    claims = summary.get("claims") or []
    if claims:
        blocks.append(
            Table(
                ["#", "claim", "target", "measured", "verdict"],
                [
                    [
                        str(i + 1),
                        str(c.get("claim", "")),
                        str(c.get("target", "")),
                        str(c.get("measured", "")),
                        _verdict(c.get("holds")),
                    ]
                    for i, c in enumerate(claims)
                ],
            )
        )
    else:
        blocks.append(Para("No claims were recorded."))

    blocks.append(Heading(2, "Results by condition"))
    blocks.append(
        Para(
            f"Final evaluation on held-out problems: mean over seeds [95% CI over {len(seeds)} seeds]. "
            "n/a: the metric could not be measured (e.g. no word encodes a state, so there is no "
            "load-bearing test)."
        )
    )
    metric_keys = _metric_order(k for c in names for k in (conditions[c] or {}))
    blocks.append(
        Table(
            ["metric", *[Code(c) for c in names]],
            [[Code(m), *[_fmt_entry((conditions[c] or {}).get(m), m) for c in names]] for m in metric_keys],
        )
    )

    blocks.append(Heading(2, "Figures"))
    blocks.extend(figures)

    blocks.append(Heading(2, "Metric definitions"))
    blocks.append(
        Items(
            [
                [Code(m), ": " + METRIC_DEFINITIONS[m]]
                for m in _metric_order([*metric_keys, *SUMMARY_METRICS])
                if m in METRIC_DEFINITIONS
            ]
        )
    )

    blocks.append(Heading(2, f"Examples (seed {first})"))
    blocks.append(
        Para(
            "Held-out problems; the prompt, the CoT the policy wrote, its paraphrase, and the answer "
            "(produced the way the condition produces it) against the truth. Everything in code font "
            "was written by a model or the task and is shown verbatim."
        )
    )
    befores = {c: evals[c].get("examples_before") or [] for c in names}
    distinct = {json.dumps(b, sort_keys=True) for b in befores.values() if b}
    shared_before = len(distinct) == 1 and all(befores.values())
    if shared_before:
        blocks.append(Heading(3, "Before RL: the stage-1 model (the same for every condition)"))
        blocks.append(_examples_table(next(iter(befores.values()))))
    for c in names:
        blocks.append(Heading(3, f"{c}"))
        if not evals[c]:
            blocks.append(Para(f"No eval.json for this condition in seed{first}."))
            continue
        if not shared_before:
            if befores[c]:
                blocks.append(Para("Before RL (stage-1 model):"))
                blocks.append(_examples_table(befores[c]))
            else:
                blocks.append(Para("No examples from before RL were recorded."))
        blocks.append(Para("After RL:"))
        blocks.append(_examples_table(evals[c].get("examples") or []))

    blocks.append(Heading(2, f"Learned code (seed {first})"))
    blocks.append(
        Para(
            "For the words each policy writes most: how many times it wrote them and the share of those "
            'uses that stand in a reasoning step with each true state. "Stands for" names the state when '
            "at least 90% of the uses agree."
        )
    )
    for c in names:
        blocks.append(Heading(3, c))
        code = evals[c].get("code")
        blocks.append(_code_table(code) if code else Para("No word was used often enough to be tabulated."))

    return write_pages(demo_dir, "legible demo report", blocks)


# --------------------------------------------------------------------------- a single run


def _read_config(run_dir: Path) -> tuple[dict, str | None]:
    path = run_dir / "config.yaml"
    if not path.exists():
        return {}, None
    text = path.read_text(encoding="utf-8")
    try:
        import yaml

        data = yaml.safe_load(text)
    except Exception:  # a broken config must not stop the report; it is shown verbatim below
        data = None
    return (data if isinstance(data, dict) else {}), text


def write_run_report(run_dir: Path) -> tuple[Path, Path]:
    """Write ``run_dir/report.md`` and ``run_dir/report.html`` (and fig_*.png) for one run
    directory holding metrics.jsonl, eval.json and config.yaml; any of them may be missing."""
    run_dir = Path(run_dir)
    rows = _read_metrics(run_dir / "metrics.jsonl")
    ev = _read_json(run_dir / "eval.json") or {}
    cfg, cfg_text = _read_config(run_dir)
    condition = cfg.get("condition")
    cname = str(condition.get("name")) if isinstance(condition, dict) else str(condition or run_dir.name)
    title = f"legible run report: {cname}"

    blocks: list[Block] = [Heading(1, title)]
    task = cfg.get("task") if isinstance(cfg.get("task"), dict) else {}
    rl = cfg.get("rl") if isinstance(cfg.get("rl"), dict) else {}
    rl_rows = [r for r in rows if r.get("phase", "rl") == "rl"]
    seconds = max((_number(r.get("seconds")) or 0.0 for r in rl_rows), default=None)
    facts = [f"Run directory {run_dir.name}: condition {cname}"]
    if task.get("name"):
        facts.append(f"task {task['name']} (N from {task.get('min_steps', '?')} to {task.get('max_steps', '?')})")
    if "seed" in cfg:
        facts.append(f"seed {cfg['seed']}")
    if rl_rows:
        facts.append(
            f"{max(int(r.get('step', 0)) for r in rl_rows)} RL steps logged"
            + (f" of {rl['steps']}" if rl.get("steps") is not None else "")
        )
    if cfg.get("paraphraser"):
        facts.append(f"paraphraser {cfg['paraphraser']}")
    if seconds:
        facts.append(f"RL wall time {_duration(seconds)}")
    para: list[Inline] = ["; ".join(facts) + "."]
    words = cfg.get("monitor_words")
    if isinstance(words, list) and words:
        para += [" Banned words: ", *[[Code(str(w)), " "] for w in words]]
    if isinstance(condition, dict) and condition.get("name") in CONDITION_DEFINITIONS:
        para.append(f" Condition: {CONDITION_DEFINITIONS[condition['name']]}.")
    blocks.append(Para(para))

    blocks.append(Heading(2, "Final evaluation"))
    scalars = {k: v for k, v in ev.items() if not isinstance(v, (dict, list))}
    if scalars:
        blocks.append(
            Table(
                ["metric", "value", "definition"],
                [[Code(k), _fmt(scalars[k], k), METRIC_DEFINITIONS.get(k, "")] for k in _metric_order(scalars)],
            )
        )
    else:
        blocks.append(Para("No eval.json was found: the run has not finished its final evaluation."))

    blocks.append(Heading(2, "Figures"))
    if rl_rows:
        curves = plots.plot_training_curves(
            {cname: [rows]}, run_dir / "fig_training_curves.png", title=f"Training curves: {cname}"
        )
        blocks.append(_figure_block(curves, "training curves", "Accuracy and banned words per step during RL."))
    drift_rows = [r for r in rl_rows if r.get("kind") == "train" and r.get("drift_level") is not None]
    if drift_rows:
        drift = plots.plot_training_curves(
            {cname: [drift_rows]},
            run_dir / "fig_drift.png",
            metrics=("drift_legible_score", "drift_odd_token_rate", "drift_monitor_flag_rate"),
            title=f"Drift of the CoT during RL: {cname}",
        )
        blocks.append(
            _figure_block(
                drift,
                "drift curves",
                "Legibility (share of CoT words a reader knows; the English score for text), odd-token rate and "
                "monitor flag rate of the training batch, every few steps.",
            )
        )
        from legible.monitor.drift import hierarchy_level

        last = drift_rows[-1]
        level, text = hierarchy_level({k.removeprefix("drift_"): v for k, v in last.items() if k.startswith("drift_")})
        blocks.append(Para(f"Where the CoT stands at step {last['step']} on the hierarchy of legibility: {text}"))
    if ev.get("accuracy_by_n"):
        by_n = plots.plot_accuracy_by_n(
            {"after RL": ev["accuracy_by_n"]},
            run_dir / "fig_accuracy_by_n.png",
            chance=0.5 if task.get("name", "coin_flip") == "coin_flip" else None,
        )
        blocks.append(
            _figure_block(by_n, "accuracy by number of steps", "Final held-out accuracy against the number of steps N.")
        )
    if ev.get("code"):
        heat = plots.plot_code_heatmap(ev["code"], run_dir / "fig_learned_code.png", title=f"Learned code: {cname}")
        blocks.append(
            _figure_block(
                heat,
                "learned code heatmap",
                "For the commonest words of the CoT, the share of their uses in each true state.",
            )
        )
    if not rl_rows and not ev:
        blocks.append(Para("No data to plot yet."))

    blocks.append(Heading(2, "Learned code"))
    blocks.append(_code_table(ev["code"]) if ev.get("code") else Para("No word was used often enough to be tabulated."))

    blocks.append(Heading(2, "Examples"))
    if ev.get("examples_before"):
        blocks.append(Para("Before RL (stage-1 model):"))
        blocks.append(_examples_table(ev["examples_before"]))
    if ev.get("examples"):
        blocks.append(Para("After RL:"))
        blocks.append(_examples_table(ev["examples"]))
    if not ev.get("examples") and not ev.get("examples_before"):
        blocks.append(Para("No examples were recorded."))

    if cfg_text is not None:
        blocks.append(Heading(2, "Config"))
        blocks.append(Pre(cfg_text))
    return write_pages(run_dir, title, blocks)
