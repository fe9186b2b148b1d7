"""What both training stages share: metrics files, checkpoint discovery, progress."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class MetricsLog:
    """Append-only JSONL. On resume, ``resume_step`` drops the rows of ``phase`` past that step
    and every row of a later phase, so a resumed run ends with the file an uninterrupted one
    would have written."""

    PHASES = ("pretrain", "rl", "final")

    def __init__(self, path: Path, resume_step: int | None = None, phase: str = "rl") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            rank = self.PHASES.index(phase)

            def keep(row: dict) -> bool:
                row_rank = self.PHASES.index(row.get("phase", "rl")) if row.get("phase") in self.PHASES else rank
                return row_rank < rank or (row_rank == rank and row["step"] <= resume_step)

            rows = [r for r in read_metrics(self.path) if keep(r)]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def write(self, row: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def read_metrics(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _checkpoints(directory: Path, stage: str) -> list[Path]:
    """Complete checkpoints of ``stage``, oldest first; half-written ``.tmp``/``.old`` are skipped."""
    pattern = re.compile(rf"{re.escape(stage)}_step(\d+)")
    found = [(int(m.group(1)), p) for p in Path(directory).glob(f"{stage}_step*") if (m := pattern.fullmatch(p.name))]
    return [p for _, p in sorted(found) if (p / "state.json").exists()]


def latest_checkpoint(directory: Path, stage: str) -> Path | None:
    found = _checkpoints(directory, stage)
    return found[-1] if found else None


def prune_checkpoints(directory: Path, stage: str, keep: int = 1) -> None:
    for old in _checkpoints(directory, stage)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def progress_bar(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start
