"""Progress for every command: a rich bar on a terminal; anywhere else (a pipe, a log file, a batch
job) plain lines on stderr, at most one round every few seconds plus each task's last line, so a log
shows how far a run got and how fast it goes.

``$LEGIBLE_PROGRESS`` (rich, plain or none) overrides the choice; ``$LEGIBLE_PROGRESS_SECONDS`` sets
the seconds between plain rounds (default 5). The mode names are also Inspect AI's display types.

The bottom layer: it imports nothing from legible.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Literal, TextIO

Mode = Literal["rich", "plain", "none"]
MODES: tuple[Mode, ...] = ("rich", "plain", "none")
ENV_MODE = "LEGIBLE_PROGRESS"
ENV_SECONDS = "LEGIBLE_PROGRESS_SECONDS"
DEFAULT_SECONDS = 5.0


def progress_mode(enabled: bool = True, stream: TextIO | None = None) -> Mode:
    """'rich' where ``stream`` (default stderr) is a terminal, 'plain' elsewhere, 'none' when disabled.

    A disabled display stays off whatever the environment says: its caller reports progress another way
    (a demo worker sends it to the parent's bars)."""
    if not enabled:
        return "none"
    forced = os.environ.get(ENV_MODE, "").strip().lower()
    if forced in MODES:
        return forced  # type: ignore[return-value]
    stream = sys.stderr if stream is None else stream
    try:
        return "rich" if stream.isatty() else "plain"
    except (AttributeError, ValueError):  # a closed stream, or a stand-in without isatty
        return "plain"


def _seconds_between() -> float:
    try:
        return max(0.0, float(os.environ.get(ENV_SECONDS, DEFAULT_SECONDS)))
    except ValueError:
        return DEFAULT_SECONDS


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0.0
    info: str = ""
    first: tuple[float, float] | None = None  # (time, completed) at the first update: the rate's origin
    dirty: bool = False
    shown: tuple | None = None  # what the last line said: a line is printed only when that changes


class Progress:
    """The part of ``rich.progress.Progress`` the commands use (``add_task``, ``update``, a context
    manager), drawn as a bar on a terminal and as plain lines elsewhere."""

    def __init__(self, enabled: bool = True, *, stream: TextIO | None = None, seconds: float | None = None) -> None:
        self._stream = stream
        self.mode: Mode = progress_mode(enabled, stream)
        self.seconds = _seconds_between() if seconds is None else seconds
        self._tasks: dict[int, _Task] = {}
        self._start = time.monotonic()
        self._last_round = -math.inf
        self._rich = None
        if self.mode == "rich":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=Console(file=stream) if stream is not None else Console(stderr=True),
                transient=False,
            )

    def __enter__(self) -> Progress:
        if self._rich is not None:
            self._rich.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.__exit__(*exc)
        elif self.mode == "plain":
            self._round(only_dirty=True)  # where each task stopped, also when it stopped on an error

    def add_task(self, description: str, total: float | None = None, info: str = "") -> int:
        task_id = len(self._tasks)
        if self._rich is not None:
            task_id = self._rich.add_task(description, total=total, info=info)
        self._tasks[task_id] = _Task(description, total, info=info)
        return task_id

    def update(
        self,
        task_id: int,
        *,
        completed: float | None = None,
        advance: float | None = None,
        total: float | None = None,
        info: str | None = None,
        description: str | None = None,
    ) -> None:
        task = self._tasks[task_id]
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        if total is not None:
            task.total = total
        if info is not None:
            task.info = info
        if description is not None:
            task.description = description
        if self._rich is not None:
            fields = {"info": info} if info is not None else {}
            self._rich.update(
                task_id, completed=task.completed, total=task.total, description=task.description, **fields
            )
            return
        if self.mode != "plain":
            return
        now = time.monotonic()
        if task.first is None:
            task.first = (now, task.completed)
        task.dirty = True
        finished = task.total is not None and task.completed >= task.total
        if now - self._last_round >= self.seconds:
            self._round(only_dirty=True)
        elif finished:
            self._print(task)

    def _format(self, task: _Task, now: float) -> str:
        """One plain line: when, what, how far, how fast, and the task's info text."""
        done = f"{task.completed:g}"
        parts = [f"[{_clock(now - self._start)}] {task.description}:"]
        if task.total:
            parts.append(f"{done}/{task.total:g} ({100 * task.completed / task.total:.0f}%)")
        else:
            parts.append(done)
        if task.first is not None and now > task.first[0] and task.completed > task.first[1]:
            rate = (task.completed - task.first[1]) / (now - task.first[0])
            parts.append(f"{rate:.3g}/s")
            if task.total and task.completed < task.total:
                parts.append(f"eta {_clock((task.total - task.completed) / rate)}")
        if task.info:
            parts.append(task.info)
        return " ".join(parts)

    def _round(self, only_dirty: bool) -> None:
        self._last_round = time.monotonic()
        for task in self._tasks.values():
            if task.dirty or not only_dirty:
                self._print(task)

    def _print(self, task: _Task) -> None:
        task.dirty = False
        shown = (task.description, task.completed, task.total, task.info)
        if shown == task.shown:
            return
        task.shown = shown
        text = self._format(task, time.monotonic())
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            print(text, file=stream, flush=True)
        except (OSError, ValueError):  # a closed or full log must not stop the run it reports on
            self.mode = "none"


def progress(enabled: bool = True) -> Progress:
    """The progress display every command uses; ``enabled=False`` shows nothing."""
    return Progress(enabled)
