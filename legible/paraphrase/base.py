"""The Paraphraser interface: text in, text out, deterministic under a seeded ``rng``."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legible.tasks.base import Task


class Paraphraser(ABC):
    name: str = "paraphraser"

    @abstractmethod
    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        """Rewrite ``cot`` keeping its meaning; ``context`` is the question, for paraphrasers
        that use it. A stochastic paraphraser draws only from ``rng``."""


class Composed(Paraphraser):
    """``a+b``: apply ``a`` then ``b``."""

    def __init__(self, parts: list[Paraphraser]) -> None:
        self.parts = parts
        self.name = "+".join(p.name for p in parts)

    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        for p in self.parts:
            cot = p.paraphrase(cot, context, rng)
        return cot


_REGISTRY: dict[str, Callable[[Task | None], Paraphraser]] = {}


def register_paraphraser(name: str):
    """Register a factory ``(task) -> Paraphraser`` under ``name`` (usable in ``a+b`` specs)."""

    def wrap(factory):
        _REGISTRY[name] = factory
        return factory

    return wrap


def check_paraphraser_spec(spec: str) -> None:
    """Raise ValueError naming the first unknown part of an ``a+b`` spec, without building anything."""
    for name in spec.split("+"):
        if name not in _REGISTRY:
            raise ValueError(f"unknown paraphraser {name!r}; choose from {sorted(_REGISTRY)}")


def make_paraphraser(spec: str, task: Task | None = None) -> Paraphraser:
    check_paraphraser_spec(spec)
    parts = [_REGISTRY[name](task) for name in spec.split("+")]
    return parts[0] if len(parts) == 1 else Composed(parts)


def paraphraser_names() -> list[str]:
    return sorted(_REGISTRY)
