"""What both training stages share: metrics files, checkpoint discovery, a stopwatch."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from legible.config import ConfigError


class MetricsLog:
    """Append-only JSONL. On resume, ``resume_step`` drops the rows of ``phase`` past that step
    and every row of a later phase, so a resumed run ends with the file an uninterrupted one
    would have written."""

    PHASES = ("pretrain", "rl", "final")

    def __init__(self, path: Path, resume_step: int | None = None, phase: str = "rl") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return
        if resume_step is None:
            _repair_tail(self.path)
            return
        rank = self.PHASES.index(phase)

        def keep(lineno: int, row: dict) -> bool:
            row_rank = self.PHASES.index(row["phase"]) if row.get("phase") in self.PHASES else rank
            if row_rank != rank:
                return row_rank < rank
            if not isinstance(row.get("step"), int):
                raise ConfigError(f"{self.path}:{lineno}: a metrics row without an integer step")
            return row["step"] <= resume_step

        # Every line is checked before anything is written: a damaged file is reported, not cut short.
        rows, tail = _metric_lines(self.path)
        kept = [raw for lineno, raw, row in rows if keep(lineno, row)]
        if len(kept) < len(rows) or tail:
            _replace(self.path, b"".join(kept))

    def write(self, row: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics file, without a last line a kill cut off; ConfigError naming the file and line
    for any other line that is not a JSON object."""
    path = Path(path)
    if not path.exists():
        return []
    return [row for _, _, row in _metric_lines(path)[0]]


def _metric_lines(path: Path) -> tuple[list[tuple[int, bytes, dict]], bytes]:
    """(line number, the line's bytes with its newline, row) of each row, and what follows the last
    newline (``b""`` unless the last write was cut off)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()
    rows = []
    for lineno, raw in enumerate(lines, start=1):
        if raw.strip():
            rows.append((lineno, raw + b"\n", _parse_row(path, lineno, raw)))
    if tail.strip():
        try:
            # a kill just before the newline leaves a whole row: it stays
            rows.append((len(lines) + 1, tail + b"\n", _parse_row(path, len(lines) + 1, tail)))
        except ConfigError:
            pass
    return rows, tail


def _parse_row(path: Path, lineno: int, raw: bytes) -> dict:
    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        why = "not UTF-8"
    except json.JSONDecodeError as e:
        why = f"not valid JSON: {e.msg} at column {e.colno}"
    except (ValueError, RecursionError) as e:
        why = f"not valid JSON ({type(e).__name__})"
    else:
        if isinstance(row, dict):
            return row
        why = f"a JSON {type(row).__name__}, not an object"
    raise ConfigError(
        f"{path}:{lineno}: not a metrics row ({why}); only a cut-off last line is dropped on resume: "
        "fix or delete this line"
    )


def _repair_tail(path: Path) -> None:
    """End the file on a whole row, so the next row starts a line of its own: a cut-off last line goes,
    a whole row missing only its newline gets one."""
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        start = max(0, size - (1 << 20))
        f.seek(start)
        chunk = f.read()
        cut = chunk.rfind(b"\n")
        tail = chunk[cut + 1 :]
        try:
            whole = isinstance(json.loads(tail.decode("utf-8")), dict)
        except (ValueError, RecursionError):
            whole = False
        if whole:
            f.write(b"\n")
        elif cut >= 0 or start == 0:
            f.truncate(start + cut + 1)


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: a kill during the rewrite leaves the old file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start
