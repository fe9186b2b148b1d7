"""Task, Problem and the one CoT parser."""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TypeVar

from legible.registry import Registry


@dataclass(frozen=True)
class Problem:
    """One problem with a verifiable answer.

    ``states`` holds the true hidden intermediate states, one per reasoning step, so that
    analyses can ask how much of them a CoT carries; ``steps`` is their number.
    """

    prompt: str
    answer: str
    steps: int = 1
    states: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)


class Task(ABC):
    """Makes problems and scores answers.

    ``state_words`` are the legible words that name a hidden state (what a CoT monitor looks
    for); ``answer_words`` are the valid answers when the answer space is closed.
    """

    name: str = "task"
    state_words: tuple[str, ...] = ()
    answer_words: tuple[str, ...] = ()
    # whether the output restates the reasoning after the answer (``explanation``): what an output monitor reads
    explains: bool = False

    @abstractmethod
    def sample(self, rng: random.Random) -> Problem: ...

    def explanation(self, problem: Problem) -> str:
        """What the legible output says after the answer ("heads, because ..."); empty when the output is the
        answer alone."""
        return ""

    def score(self, problem: Problem, answer: str | None) -> float:
        """1.0 for the right answer; a missing answer is simply wrong."""
        return float(answer is not None and answer.strip() == problem.answer)

    def answer_key(self, problem: Problem, answer: str | None) -> str | None:
        """``answer`` in the task's normal form, so that two spellings of one answer ("$1,000." and
        "1000", "(b)" and "B") compare equal; None for a missing or empty answer."""
        if answer is None:
            return None
        key = answer.strip().strip("`").rstrip(".,").strip().lower()
        return key or None


TASKS: Registry[type[Task]] = Registry("task")
T = TypeVar("T", bound=type[Task])


def register_task(cls: T) -> T:
    """Register a Task class under its ``name`` (usable in configs and ``make_task``)."""
    TASKS.add(cls.name, cls)
    return cls


def make_task(name: str, **kwargs) -> Task:
    """A task by name; keyword arguments go to its constructor (``path=`` for the JSONL tasks)."""
    return TASKS[name](**kwargs)


def task_names() -> list[str]:
    return TASKS.names()


def split_completion(completion: str, marker: str = "answer") -> tuple[str, str | None]:
    """Split a completion into (CoT, answer).

    The marker is matched as a whole word, case-insensitively, optionally followed by ``:`` or
    ``is``. A marker with a colon wins over bare ones (so in "Answer: 42, the final answer."
    the answer is "42"); otherwise the last marker counts. The answer is the first
    whitespace-delimited token after it, as written ("$1,000.", "(B)"): tasks normalise it in
    ``score``. With no marker or nothing after it, the answer is None (scored wrong)."""
    pattern = re.compile(rf"(?<!\w){re.escape(marker.rstrip(':'))}(?!\w)[ \t]*(:|is\b)?", re.IGNORECASE)
    found = list(pattern.finditer(completion))
    if not found:
        return completion.strip(), None
    with_colon = [m for m in found if m.group(1) == ":"]
    m = (with_colon or found)[-1]
    words = completion[m.end() :].split()
    return completion[: m.start()].strip(), (words[0] if words else None)
