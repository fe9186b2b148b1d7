"""Pieces both reports are made of: reading a run directory's files, formatting numbers, the
condition definitions, and the tables of examples and of a learned code."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from legible.report._document import Code, Image, Styled, Table
from legible.report._metrics import METRIC_DEFINITIONS

CONDITION_DEFINITIONS: dict[str, str] = {
    "outcome": "reward for the right answer only",
    "monitor": "reward for the right answer, minus a penalty for each banned word the monitor finds in the CoT",
    "monitor+paraphrase": "as monitor, but the answer is produced from a paraphrase of the CoT",
    "monitor+face": "as monitor+paraphrase, with a separate Face model writing the answer from the paraphrase",
    "monitor+sensitivity": "as monitor, plus a penalty when the answer changes under paraphrase",
    "monitor+stepwise": "as monitor+paraphrase, and the policy reads back a paraphrase of its own CoT as it writes "
    "it (step-wise paraphrasing), never its own words",
    "monitor+stepwise+face": "as monitor+stepwise, with a separate Face model writing the answer from the paraphrase",
    "monitor+process": "as monitor, plus a step judge's reward for each step written as one word of the legible "
    "grammar (a state word or a name the corpus used for a state), true or not",
    "output-monitor": "on the task whose output restates the state after the answer: reward for the right answer, "
    "minus a penalty for each banned word in that output; the CoT is never monitored",
    "output-monitor+face": "as output-monitor, with a separate Face writing the answer and the output from the CoT "
    "(the Mind & Face split)",
    "output-monitor+targeted": "as output-monitor, with the output penalty's advantage applied to the output tokens "
    "only (reward targeting)",
}

_EXAMPLES_SHOWN = 3
_CODE_WORDS_SHOWN = 10


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def read_metrics(path: Path) -> list[dict]:
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


def number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value: object, metric: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    v = number(value)
    if v is None:
        return "n/a" if value is None or isinstance(value, float) else str(value)
    return f"{v:.3f}"


def duration(seconds: object) -> str:
    s = number(seconds)
    if s is None:
        return "unknown"
    if s < 60:
        return f"{s:.0f} s"
    minutes, sec = divmod(round(s), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def metric_order(keys) -> list[str]:
    keys = list(dict.fromkeys(keys))
    known = [m for m in METRIC_DEFINITIONS if m in keys]
    return known + sorted(k for k in keys if k not in METRIC_DEFINITIONS)


def examples_table(examples: Sequence[Mapping]) -> Table:
    shown = list(examples)[:_EXAMPLES_SHOWN]
    with_output = any("output" in ex for ex in shown)  # an explaining task: what was written after the answer
    rows = []
    for ex in shown:
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
                *([Code(str(ex.get("output", "")))] if with_output else []),
                Code(str(truth)),
                verdict,
            ]
        )
    header = ["prompt", "CoT", "paraphrase of the CoT", "answer", *(["output"] * with_output), "truth", "verdict"]
    return Table(header, rows)


def code_table(code: Mapping[str, Mapping], top: int = _CODE_WORDS_SHOWN) -> Table:
    words = sorted(code, key=lambda w: -(number((code[w] or {}).get("count")) or 0))[:top]
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
                fmt(entry.get("count")),
                *[_share(shares.get(s)) for s in states],
                Code(str(means)) if means is not None else Styled("no single state", "na"),
            ]
        )
    return Table(["word", "uses", *[["share in ", Code(s)] for s in states], "stands for"], rows)


def _share(value: object) -> str:
    v = number(value)
    return "n/a" if v is None else f"{v:.0%}"


def figure_block(path: Path, alt: str, caption: str) -> Image:
    return Image(path.name, alt, caption)
