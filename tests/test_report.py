"""The demo and run reports: files, figures, escaping of model-written text, table structure."""

from __future__ import annotations

import html
import json
import math
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from legible.report import METRIC_DEFINITIONS, SUMMARY_METRICS, md_code, write_demo_report, write_run_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONDITIONS = ("outcome", "monitor", "monitor+paraphrase", "monitor+face", "monitor+sensitivity")
SEEDS = (0, 1, 2)
EVIL_COT = "<script>alert(1)</script> | --- | up down"
EVIL_PARAPHRASE = "<img src=x onerror=alert(2)> `tick` and \\| pipe"
BACKTICK_COT = "``up`` down `"

# Plausible final numbers per condition: (accuracy, banned_rate, legibility, recov, recov_para, cap, cap_para,
# load_bearing_drop, paraphrased_answer_accuracy, keyword TPR, TNR, g-mean^2, probe TPR, TNR, g-mean^2).
# None = not measurable.
FINAL = {
    "outcome": (
        0.97,
        1.00,
        0.98,
        0.99,
        0.99,
        0.02,
        0.01,
        0.46,
        0.96,
        0.98,
        0.99,
        0.97,
        0.99,
        0.99,
        0.98,
        None,
        0.99,
        0.98,
    ),
    "monitor": (
        0.93,
        0.03,
        0.04,
        0.95,
        0.56,
        0.71,
        0.04,
        0.41,
        0.53,
        0.02,
        1.00,
        0.02,
        0.95,
        0.95,
        0.90,
        None,
        0.97,
        0.95,
    ),
    "monitor+paraphrase": (
        0.64,
        0.05,
        0.03,
        0.61,
        0.57,
        0.08,
        0.02,
        None,
        0.64,
        0.03,
        0.99,
        0.03,
        0.61,
        0.61,
        0.37,
        None,
        0.98,
        0.62,
    ),
    "monitor+face": (
        0.66,
        0.04,
        0.05,
        0.62,
        0.58,
        0.09,
        0.03,
        0.05,
        0.66,
        0.50,
        1.00,
        0.50,
        0.62,
        0.62,
        0.38,
        None,
        0.96,
        0.63,
    ),
    "monitor+sensitivity": (
        0.81,
        0.06,
        0.06,
        0.78,
        0.62,
        0.35,
        0.03,
        0.22,
        0.74,
        0.04,
        0.98,
        0.04,
        0.78,
        0.78,
        0.61,
        None,
        0.95,
        0.79,
    ),
}
KEYS = SUMMARY_METRICS  # the last three: output banned rate (n/a on coin_flip), looks legible, reads true


def _ci(values: list[float | None]) -> tuple[float | None, list[float] | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    half = {2: 12.706, 3: 4.303}.get(len(vals), 2.0) * sd / math.sqrt(len(vals))
    return mean, [mean - half, mean + half]


def _code(condition: str) -> dict:
    if condition == "outcome":
        return {
            "heads": {"count": 900, "states": {"heads": 0.99, "tails": 0.01}, "means": "heads"},
            "tails": {"count": 880, "states": {"heads": 0.02, "tails": 0.98}, "means": "tails"},
        }
    return {
        "up": {"count": 820, "states": {"heads": 0.96, "tails": 0.04}, "means": "heads"},
        "down": {"count": 790, "states": {"heads": 0.05, "tails": 0.95}, "means": "tails"},
        "so": {"count": 300, "states": {"heads": 0.52, "tails": 0.48}, "means": None},
        "$x$|`": {"count": 40, "states": {"heads": 0.7, "tails": 0.3}, "means": None},
    }


def _examples(condition: str, seed: int, before: bool) -> list[dict]:
    if before:
        cots = ["heads tails tails heads", "tails tails heads", "heads heads"]
    elif condition == "monitor" and seed == 0:
        cots = [EVIL_COT, BACKTICK_COT, "up up down"]
    else:
        cots = ["up down down up", "down down up", "so so"]
    paraphrases = [EVIL_PARAPHRASE if "<script>" in c else " ".join(reversed(c.split())) for c in cots]
    answers = ["heads", None, "tails"]
    return [
        {"prompt": f"coin heads same diff diff same {i}", "cot": c, "paraphrase": p, "answer": a, "truth": "heads"}
        for i, (c, p, a) in enumerate(zip(cots, paraphrases, answers, strict=True))
    ]


def _write_run(run: Path, condition: str, seed: int, final: dict, rng: random.Random, steps: int = 40) -> None:
    run.mkdir(parents=True, exist_ok=True)
    rows = [{"phase": "pretrain", "step": s, "loss": 2.0 / s} for s in range(1, 6)]
    monitored = condition != "outcome"
    for step in range(1, steps + 1):
        frac = step / steps
        acc = 0.95 - (0.95 - final["accuracy"]) * frac + rng.uniform(-0.03, 0.03)
        banned = 1.0 - (1.0 - final["banned_rate"]) * min(1.0, 1.5 * frac) if monitored else 1.0
        row = {
            "phase": "rl",
            "step": step,
            "kind": "train",
            "accuracy": acc,
            "banned_rate": banned,
            "reward": acc - 0.4 * banned,
            "seconds": 0.5 * step,
        }
        rows.append(row)
        if step % 10 == 0:
            rows.append(
                {
                    "phase": "rl",
                    "step": step,
                    "kind": "eval",
                    "accuracy": acc + rng.uniform(-0.02, 0.02),
                    "banned_rate": banned,
                    "legibility": 1.0 - 0.9 * frac * monitored,
                    "paraphrased_answer_accuracy": acc - 0.3 * frac * monitored,
                    "answered": 1.0,
                }
            )
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"phase": "rl", "ste')
    ev = dict(final) | {
        "answered": 0.99,
        "state_chance": 0.5,
        "legible_reading_bits": 0.3,
        "accuracy_by_n": {str(n): max(0.0, final["accuracy"] - 0.01 * (n - 8)) for n in range(8, 15)},
        "code": _code(condition),
        "examples": _examples(condition, seed, before=False),
        "examples_before": _examples(condition, seed, before=True),
    }
    (run / "eval.json").write_text(json.dumps(ev))


def make_demo_dir(root: Path, steps: int = 40) -> Path:
    """A fake `legible demo` output: summary.json and seed{k}/{condition}/{metrics.jsonl,eval.json}."""
    rng = random.Random(0)
    conditions = {}
    for c in CONDITIONS:
        per_seed = []
        for seed in SEEDS:
            final = {}
            for key, base in zip(KEYS, FINAL[c], strict=True):
                if base is None or (c == "monitor+face" and key == "load_bearing_drop" and seed == 2):
                    final[key] = None
                else:
                    final[key] = round(base + rng.uniform(-0.03, 0.03), 4)
            per_seed.append(final)
            _write_run(root / f"seed{seed}" / c, c, seed, final, rng, steps)
        conditions[c] = {}
        for key in KEYS:
            values = [f[key] for f in per_seed]
            mean, ci = _ci(values)
            conditions[c][key] = {"mean": mean, "ci95": ci, "values": values}
    summary = {
        "wall_seconds": 1234.5,
        "seeds": list(SEEDS),
        "task": "coin_flip",
        "quick": True,
        "conditions": conditions,
        "no_cot": {"accuracy_by_n": {str(n): 0.5 + 0.02 * (n == 8) for n in range(8, 15)}},
        "stage1": {"accuracy": 0.97, "accuracy_by_n": {str(n): 0.99 - 0.005 * (n - 8) for n in range(8, 15)}},
        "claims": [
            {
                "claim": "the monitor drives banned words down",
                "target": "banned_rate < 0.2",
                "measured": "0.03 [0.01, 0.05]",
                "holds": True,
            },
            {
                "claim": "accuracy stays up under the monitor | pipes * and _underscores_",
                "target": ">= 0.9",
                "measured": "0.93",
                "holds": False,
            },
            {
                "claim": "the paraphraser removes the load-bearing encoding",
                "target": "drop < 0.1",
                "measured": "n/a",
                "holds": None,
            },
        ],
    }
    (root / "summary.json").write_text(json.dumps(summary))
    return root


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def _table_cell_counts(markdown: str) -> list[list[int]]:
    """Per Markdown table, the number of cell separators on each row, split the way GFM does
    (a backslash escapes the next character, so an escaped pipe does not separate cells)."""
    tables, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append(sum(tok == "|" for tok in re.findall(r"\\.|\|", line)))
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 10_000, (path, len(data))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str, str]:
    root = make_demo_dir(tmp_path_factory.mktemp("demo"))
    md_path, html_path = write_demo_report(root)
    assert md_path == root / "report.md" and html_path == root / "report.html"
    return root, md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")


def test_demo_report_files_and_figures(demo):
    root, _, page = demo
    pngs = sorted(root.glob("*.png"))
    assert {p.name for p in pngs} >= {
        "fig_training_curves.png",
        "fig_summary.png",
        "fig_accuracy_by_n.png",
        "fig_learned_code.png",
    }
    for p in pngs:
        _assert_png(p)
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags
    assert sorted(parser.srcs) == sorted(p.name for p in pngs)  # relative paths, all present
    assert "http://" not in page and "https://" not in page  # nothing fetched from the network


def test_demo_report_content(demo):
    _, md, page = demo
    for c in CONDITIONS:
        assert c in page and c in md
    for metric in KEYS:
        assert html.escape(METRIC_DEFINITIONS[metric]) in page
        assert f"- `{metric}`: " in md
    assert "1234.5" not in page and "20 min 34 s" in page
    assert "quick mode" in page
    # verdicts, in the claims table of both formats
    for verdict, css in (("holds", "ok"), ("does not hold", "bad"), ("n/a", "na")):
        assert f'<span class="{css}">{verdict}</span>' in page
        assert re.search(rf"^\| \d \|.*\| {re.escape(verdict)} \|$", md, re.M), verdict
    # the mean [lo, hi] table, with n/a for a metric no seed could measure and a seed count where some could not
    row = next(line for line in md.splitlines() if line.startswith("| `load_bearing_drop`"))
    assert "| n/a |" in row and "(2/3 seeds)" in row
    # mean [lo, hi] (each seed's value)
    assert re.search(r"\| `accuracy` \| 0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\] \(0\.\d\d, 0\.\d\d, 0\.\d\d\) \|", md)
    # the monitorability table: both monitors per condition
    assert "## Monitorability" in md and re.search(r"\| `monitor` \| 0\.\d\d / 1\.0\d / 0\.\d\d \| 0\.9\d / ", md)


def test_model_text_is_escaped(demo):
    _, md, page = demo
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | --- | up down" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert md_code(EVIL_COT, in_table=True) in md
    assert md_code(EVIL_PARAPHRASE, in_table=True) in md
    assert md_code(BACKTICK_COT, in_table=True) in md
    # outside code spans the raw HTML never reaches the Markdown either
    assert all("<script>" not in part for part in re.split(r"`[^`]*<script>[^`]*`", md))


def test_markdown_tables_are_consistent(demo):
    _, md, _ = demo
    tables = _table_cell_counts(md)
    assert len(tables) >= 1 + 1 + 2 * len(CONDITIONS)  # claims, results, examples, codes
    for counts in tables:
        assert len(set(counts)) == 1, counts


def test_md_code_spans():
    assert md_code("plain") == "`plain`"
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x``") == "``` `x`` ```"
    assert md_code("") == "*(empty)*"
    assert md_code("a\nb\r\nc") == "`a b c`"
    assert md_code("a|b", in_table=True) == "`a\\|b`"
    assert md_code("a|b") == "`a|b`"
    # a backslash before a pipe is doubled so it cannot eat the pipe's escape
    assert md_code("a\\|b", in_table=True) == "`a\\\\\\|b`"
    assert _table_cell_counts("| " + md_code("x\\\\|y | z", in_table=True) + " | b |") == [[3]]


def test_run_report(tmp_path):
    run = tmp_path / "run"
    final = dict(zip(KEYS, FINAL["monitor"], strict=True))
    _write_run(run, "monitor", 0, final, random.Random(1), steps=20)
    (run / "config.yaml").write_text(
        "seed: 0\ntask:\n  name: coin_flip\n  min_steps: 8\n  max_steps: 14\nrl:\n  steps: 20\n"
        "condition:\n  name: monitor\n  rewards: {outcome: 1.0, monitor: 0.4}\nparaphraser: legible_only\n"
        "monitor_words: [heads, tails, '<b>']\n"
    )
    md_path, html_path = write_run_report(run)
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    for name in ("fig_training_curves.png", "fig_accuracy_by_n.png", "fig_learned_code.png"):
        _assert_png(run / name)
    assert "legible run report: monitor" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page and "&lt;b&gt;" in page
    assert "monitor_words: [heads, tails, &#x27;&lt;b&gt;&#x27;]" in page  # the config, verbatim
    assert "| `load_bearing_drop` |" in md
    for counts in _table_cell_counts(md):
        assert len(set(counts)) == 1, counts


def test_run_report_tolerates_missing_files(tmp_path):
    md_path, html_path = write_run_report(tmp_path)
    assert "No eval.json" in html_path.read_text(encoding="utf-8")
    assert md_path.exists()
    with pytest.raises(FileNotFoundError):
        write_demo_report(tmp_path / "nowhere")


def test_markdown_renders_safely(demo):
    """Through a real CommonMark + GFM-table parser: model text stays text, tables keep their shape."""
    markdown_it = pytest.importorskip("markdown_it")
    out = markdown_it.MarkdownIt("commonmark").enable("table").render(demo[1])
    assert "<script>alert" not in out and "<img src=x" not in out
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt; | --- | up down</code>" in out
    assert "<code>``up`` down `</code>" in out
    tables = re.findall(r"<table>(.*?)</table>", out, re.S)
    assert len(tables) == len(_table_cell_counts(demo[1]))
    for table in tables:
        rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
        assert len({len(re.findall(r"<t[hd][ >]", r)) for r in rows}) == 1


def test_demo_report_of_a_long_run_shows_both_horizons(tmp_path):
    root = make_demo_dir(tmp_path)
    summary = json.loads((root / "summary.json").read_text())
    summary["horizon"] = {
        "short_step": 300,
        "end_step": 900,
        "conditions": {"monitor": {"legibility": {"short": 0.5, "end": 0.01}, "accuracy": {"short": None, "end": 1}}},
    }
    (root / "summary.json").write_text(json.dumps(summary))
    md = write_demo_report(root)[0].read_text(encoding="utf-8")
    assert "## Long horizon" in md and "Trained 900 RL steps instead of 300" in md
    assert re.search(r"\| `monitor` \| n/a \| 0\.500 -\\?> 0\.010 \|", md)
    assert "## Long horizon" not in write_demo_report(make_demo_dir(tmp_path / "short"))[0].read_text()
