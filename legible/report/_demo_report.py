"""The report of ``legible demo``: one page comparing the RL conditions over seeds.

It is read from ``summary.json`` (required) and the ``seed{k}/{condition}/`` run directories
(metrics.jsonl for the curves of every seed; eval.json of the first seed for the examples and the
learned code). Each section of the page is written by one function below, in page order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from legible.report._document import Block, Code, Heading, Image, Items, Para, Styled, Table, write_pages
from legible.report._metrics import METRIC_DEFINITIONS, SUMMARY_METRICS
from legible.report._plots import plot_accuracy_by_n, plot_code_heatmap, plot_summary_bars, plot_training_curves
from legible.report._sections import (
    CONDITION_DEFINITIONS,
    code_table,
    duration,
    examples_table,
    figure_block,
    metric_order,
    number,
    read_json,
    read_metrics,
)

TITLE = "legible demo report"


def write_demo_report(demo_dir: Path) -> tuple[Path, Path]:
    """Write ``demo_dir/report.md`` and ``demo_dir/report.html`` (and the fig_*.png figures next
    to them) from ``summary.json`` and the ``seed{k}/{condition}/`` run directories.

    Only summary.json is required; a missing metrics.jsonl or eval.json leaves a gap (a figure
    without that line, a section saying the data is missing), not an error."""
    demo = _read_demo(Path(demo_dir))
    blocks: list[Block] = [
        Heading(1, TITLE),
        _introduction(demo),
        _condition_list(demo),
        *_prior_associations(demo),
        *_claims(demo),
        *_monitorability(demo),
        *_horizon(demo),
        *_results_by_condition(demo),
        *_figures(demo),
        *_metric_definitions(demo),
        *_examples(demo),
        *_learned_code(demo),
    ]
    return write_pages(demo.directory, TITLE, blocks)


# --------------------------------------------------------------------------- inputs


@dataclass
class _Demo:
    """What the page is made from."""

    directory: Path
    summary: dict
    conditions: dict  # condition -> metric -> summary entry (mean, ci95, values)
    seeds: list
    names: list[str]  # the conditions, in the order of summary.json
    runs: dict[str, list[list[dict]]]  # condition -> one metrics.jsonl per seed
    evals: dict[str, dict]  # condition -> eval.json of the first seed ({} when missing)

    @property
    def first(self):
        """The seed whose examples and learned code are shown."""
        return self.seeds[0] if self.seeds else 0

    @property
    def task(self) -> str:
        return str(self.summary.get("task", "?"))

    @property
    def stage1(self) -> dict:
        return self.summary.get("stage1") or {}

    @property
    def no_cot(self) -> dict:
        return self.summary.get("no_cot") or {}

    @property
    def metric_keys(self) -> list[str]:
        """Every metric some condition's summary holds, in definition order."""
        return metric_order(k for c in self.names for k in (self.conditions[c] or {}) if k != "code_kind")


def _read_demo(demo_dir: Path) -> _Demo:
    summary = read_json(demo_dir / "summary.json")
    if summary is None:
        raise FileNotFoundError(f"{demo_dir / 'summary.json'}: no such file; run `legible demo` first")
    conditions: dict = summary.get("conditions") or {}
    seeds = _seed_list(demo_dir, summary)
    names = list(conditions) or sorted({p.name for s in seeds for p in (demo_dir / f"seed{s}").glob("*") if p.is_dir()})
    first = seeds[0] if seeds else 0
    runs = {c: [read_metrics(demo_dir / f"seed{s}" / c / "metrics.jsonl") for s in seeds] for c in names}
    evals = {c: read_json(demo_dir / f"seed{first}" / c / "eval.json") or {} for c in names}
    return _Demo(demo_dir, summary, conditions, seeds, names, runs, evals)


def _seed_list(demo_dir: Path, summary: Mapping) -> list:
    seeds = summary.get("seeds")
    if seeds:
        return list(seeds)
    found = [p.name[4:] for p in demo_dir.glob("seed*") if p.is_dir() and p.name[4:].isdigit()]
    return sorted(int(s) for s in found)


# --------------------------------------------------------------------------- the page, section by section


def _introduction(demo: _Demo) -> Para:
    stage1_acc = number(demo.stage1.get("accuracy"))
    no_cot_values = [v for v in map(number, (demo.no_cot.get("accuracy_by_n") or {}).values()) if v is not None]
    mode = (
        "quick mode (fewer training steps and evaluation problems than a full run, so the numbers are noisier)"
        if demo.summary.get("quick")
        else "full mode"
    )
    names, seeds = demo.names, demo.seeds
    text = (
        f" trained the tiny model organism on the {demo.task} task: first supervised on legible CoTs "
        f"(stage 1), then with RL under {len(names)} conditions ({', '.join(names)}), each with {len(seeds)} seeds "
        f"({', '.join(map(str, seeds))}), in {mode}. Total wall time: {duration(demo.summary.get('wall_seconds'))}."
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
    return Para([Code("legible demo"), text])


def _condition_list(demo: _Demo) -> Items:
    return Items([[Code(c), ": " + CONDITION_DEFINITIONS.get(c, "a custom condition")] for c in demo.names])


def _prior_associations(demo: _Demo) -> list[Block]:
    aliases = demo.stage1.get("aliases") or {}
    if not aliases:
        return []
    seed_key, entry = next(iter(aliases.items()))
    named = ", ".join(f"{', '.join(words)} for {state}" for state, words in entry["aliases"].items())
    return [
        Para(
            f"Prior associations: the stage-1 corpus writes {entry['rate']:.0%} of state slots with a "
            f"seed-specific alias (seed {seed_key}: {named}), standing in for the rare other names an LLM's "
            "corpus holds for things. The monitor does not know them. Without any, the tiny model had no "
            "substitute to find and RL under the monitor only sharpened the legible CoT or collapsed to guessing."
        )
    ]


def _claims(demo: _Demo) -> list[Block]:
    claims = demo.summary.get("claims") or []
    if not claims:
        return [Heading(2, "Claims"), Para("No claims were recorded.")]
    rows = [
        [
            str(i + 1),
            str(c.get("claim", "")),
            str(c.get("target", "")),
            str(c.get("measured", "")),
            _verdict(c.get("holds")),
        ]
        for i, c in enumerate(claims)
    ]
    return [Heading(2, "Claims"), Table(["#", "claim", "target", "measured", "verdict"], rows)]


def _monitorability(demo: _Demo) -> list[Block]:
    """Per condition: the keyword and probe monitors' TPR, TNR and g-mean^2 at reading the states, and what each
    seed's policy learned to write."""
    names = [c for c in demo.names if "keyword_gmean2" in (demo.conditions[c] or {})]
    if not names:
        return []

    def cell(c: str, m: str) -> str:
        mean = number(((demo.conditions[c] or {}).get(m) or {}).get("mean"))
        return "n/a" if mean is None else f"{mean:.2f}"

    rows = []
    for c in names:
        kinds = (demo.conditions[c] or {}).get("code_kind") or {}
        rows.append(
            [
                Code(c),
                *(" / ".join(cell(c, f"{who}_{m}") for m in ("tpr", "tnr", "gmean2")) for who in ("keyword", "probe")),
                ", ".join(f"{seed}: {kind}" for seed, kind in kinds.items()) or "n/a",
            ]
        )
    intro = Para(
        "How well a monitor reading the CoT sees the state each step tracks (one-vs-rest per state, averaged; "
        "g-mean^2 = TPR x TNR, as OpenAI's monitorability evaluations score a monitor): the keyword monitor the "
        "policy was trained against, and a linear probe trained on half the CoTs. The last column names what each "
        "seed's policy learned to write: legible, a presence code (one state written, the other left out: the "
        "keyword monitor sees half the states), a full code, or no state in the CoT."
    )
    header = ["condition", "keyword TPR / TNR / g-mean^2", "probe TPR / TNR / g-mean^2", "learned code by seed"]
    return [Heading(2, "Monitorability"), intro, Table(header, rows)]


def _horizon(demo: _Demo) -> list[Block]:
    """A long run (``legible demo --long``): each condition's evaluation metrics at the usual horizon and at the
    end (mean over seeds)."""
    horizon = demo.summary.get("horizon")
    if not isinstance(horizon, Mapping):
        return []
    conds = horizon.get("conditions") or {}
    metrics = sorted({m for c in conds.values() for m in (c or {})}, key=list(METRIC_DEFINITIONS).index)

    def cell(entry: Mapping | None) -> str:
        short, end = (number((entry or {}).get(k)) for k in ("short", "end"))
        return "n/a" if short is None or end is None else f"{short:.3f} -> {end:.3f}"

    rows = [[Code(c), *[cell((conds.get(c) or {}).get(m)) for m in metrics]] for c in demo.names if c in conds]
    intro = Para(
        f"Trained {horizon.get('end_step')} RL steps instead of {horizon.get('short_step')}: each metric at the last "
        f"evaluation by step {horizon.get('short_step')} and at the end (mean over {len(demo.seeds)} seeds; the "
        "claims above are read at the end). The training curves run to the end."
    )
    return [Heading(2, "Long horizon"), intro, Table(["condition", *[Code(m) for m in metrics]], rows)]


def _verdict(holds: object) -> Styled:
    if holds is True:
        return Styled("holds", "ok")
    if holds is False:
        return Styled("does not hold", "bad")
    return Styled("n/a", "na")


def _results_by_condition(demo: _Demo) -> list[Block]:
    names = demo.names
    intro = Para(
        f"Final evaluation on held-out problems: mean over seeds [95% CI over {len(demo.seeds)} seeds, clipped "
        "to the metric's range] (each seed's value). "
        "n/a: the metric could not be measured (e.g. no word encodes a state, so there is no "
        "load-bearing test)."
    )
    table = Table(
        ["metric", *[Code(c) for c in names]],
        [[Code(m), *[_fmt_entry((demo.conditions[c] or {}).get(m), m) for c in names]] for m in demo.metric_keys],
    )
    return [Heading(2, "Results by condition"), intro, table]


def _fmt_entry(entry: Mapping | None, metric: str) -> str:
    """A summary.json entry as "mean [lo, hi]", with the number of seeds when some had no value."""
    entry = entry or {}
    mean = number(entry.get("mean"))
    if mean is None:
        return "n/a"
    ci = entry.get("ci95")
    lo, hi = (number(ci[0]), number(ci[1])) if isinstance(ci, Sequence) and len(ci) == 2 else (None, None)
    text = f"{mean:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "")
    values = entry.get("values")
    if isinstance(values, Sequence) and values:
        valid = sum(number(v) is not None for v in values)
        if valid < len(values):
            text += f" ({valid}/{len(values)} seeds)"
        if len(values) > 1:  # each seed's value beside the mean
            text += " (" + ", ".join("n/a" if number(v) is None else f"{number(v):.2f}" for v in values) + ")"
    return text


def _figures(demo: _Demo) -> list[Block]:
    """Draw the figures (fig_*.png next to the page); a figure without data is left out."""
    drawn = (_training_curves(demo), _summary_bars(demo), _accuracy_by_n(demo), _learned_code_heatmap(demo))
    return [Heading(2, "Figures"), *(figure for figure in drawn if figure is not None)]


def _training_curves(demo: _Demo) -> Image:
    curves = plot_training_curves(demo.runs, demo.directory / "fig_training_curves.png")
    return figure_block(
        curves,
        "training curves",
        "Held-out accuracy and banned words per reasoning step during RL, one line per condition: mean over "
        f"{len(demo.seeds)} seeds, shading from the lowest to the highest seed.",
    )


def _summary_bars(demo: _Demo) -> Image | None:
    shown = [m for m in SUMMARY_METRICS if any(m in (demo.conditions[c] or {}) for c in demo.names)]
    if not shown:
        return None
    bars = plot_summary_bars(demo.conditions, demo.directory / "fig_summary.png", metrics=shown)
    return figure_block(
        bars,
        "final metrics by condition",
        "Final evaluation, one panel per metric and one bar per condition: mean over seeds, error bars = 95% "
        "CI over seeds; n/a = not measurable for that condition.",
    )


def _accuracy_by_n(demo: _Demo) -> Image | None:
    by_n = {
        "stage-1 CoT model": demo.stage1.get("accuracy_by_n") or {},
        "no-CoT baseline": demo.no_cot.get("accuracy_by_n") or {},
    }
    if not any(by_n.values()):
        return None
    path = plot_accuracy_by_n(
        by_n,
        demo.directory / "fig_accuracy_by_n.png",
        chance=0.5 if demo.task == "coin_flip" else None,
        title="Stage-1 model: accuracy by number of steps N",
    )
    return figure_block(
        path,
        "accuracy by number of steps",
        "Held-out accuracy of the stage-1 model that reasons in a legible CoT, and of the same architecture "
        "trained to answer with no CoT, against the number of steps N: the task needs the CoT.",
    )


def _learned_code_heatmap(demo: _Demo) -> Image | None:
    """The learned code of the monitor condition, or else of the first condition that has one."""
    evals, first = demo.evals, demo.first
    condition = (
        "monitor"
        if evals.get("monitor", {}).get("code")
        else next((c for c in demo.names if evals[c].get("code")), None)
    )
    if condition is None:
        return None
    heat = plot_code_heatmap(
        evals[condition]["code"],
        demo.directory / "fig_learned_code.png",
        title=f"Learned code: {condition} (seed {first})",
    )
    return figure_block(
        heat,
        "learned code heatmap",
        f"The words the {condition} policy writes most (seed {first}): for each, the share of its uses "
        "that stand in a reasoning step whose true state is each column, with counts. A word that is not a "
        "state word yet sits almost always in one state is a learned encoding.",
    )


def _metric_definitions(demo: _Demo) -> list[Block]:
    shown = metric_order([*demo.metric_keys, *SUMMARY_METRICS])
    return [
        Heading(2, "Metric definitions"),
        Items([[Code(m), ": " + METRIC_DEFINITIONS[m]] for m in shown if m in METRIC_DEFINITIONS]),
    ]


def _examples(demo: _Demo) -> list[Block]:
    """Examples before and after RL; the stage-1 examples once when every condition shares them."""
    blocks: list[Block] = [
        Heading(2, f"Examples (seed {demo.first})"),
        Para(
            "Held-out problems; the prompt, the CoT the policy wrote, its paraphrase, and the answer "
            "(produced the way the condition produces it) against the truth. Everything in code font "
            "was written by a model or the task and is shown verbatim."
        ),
    ]
    befores = {c: demo.evals[c].get("examples_before") or [] for c in demo.names}
    distinct = {json.dumps(b, sort_keys=True) for b in befores.values() if b}
    shared_before = len(distinct) == 1 and all(befores.values())
    if shared_before:
        blocks.append(Heading(3, "Before RL: the stage-1 model (the same for every condition)"))
        blocks.append(examples_table(next(iter(befores.values()))))
    for c in demo.names:
        blocks += _condition_examples(demo, c, None if shared_before else befores[c])
    return blocks


def _condition_examples(demo: _Demo, condition: str, before: list | None) -> list[Block]:
    """One condition's examples; ``before`` is None when the stage-1 examples were shown once for all."""
    blocks: list[Block] = [Heading(3, condition)]
    ev = demo.evals[condition]
    if not ev:
        return [*blocks, Para(f"No eval.json for this condition in seed{demo.first}.")]
    if before is not None:
        if before:
            blocks += [Para("Before RL (stage-1 model):"), examples_table(before)]
        else:
            blocks.append(Para("No examples from before RL were recorded."))
    return [*blocks, Para("After RL:"), examples_table(ev.get("examples") or [])]


def _learned_code(demo: _Demo) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, f"Learned code (seed {demo.first})"),
        Para(
            "For the words each policy writes most: how many times it wrote them and the share of those "
            'uses that stand in a reasoning step with each true state. "Stands for" names the state when '
            "at least 90% of the uses agree."
        ),
    ]
    for c in demo.names:
        code = demo.evals[c].get("code")
        blocks += [Heading(3, c), code_table(code) if code else Para("No word was used often enough to be tabulated.")]
    return blocks
