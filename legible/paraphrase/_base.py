"""The Paraphraser interface: text in, text out, deterministic under a seeded ``rng``; one CoT, a batch,
or awaited from an event loop."""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from legible.registry import Registry

if TYPE_CHECKING:
    from legible.tasks import Task


class Paraphraser(ABC):
    name: str = "paraphraser"

    @abstractmethod
    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        """Rewrite ``cot`` keeping its meaning; ``context`` is the question, for paraphrasers
        that use it. A stochastic paraphraser draws only from ``rng``."""

    def paraphrase_batch(
        self, cots: Sequence[str], contexts: Sequence[str] | None = None, rng: random.Random | None = None
    ) -> list[str]:
        """Paraphrase many CoTs. Here one after another, drawing from ``rng`` in order (so a batch gives what
        a loop would); a model paraphraser overrides it with concurrent calls."""
        contexts = _contexts(cots, contexts)
        return [self.paraphrase(c, x, rng) for c, x in zip(cots, contexts)]

    async def paraphrase_async(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        """``paraphrase`` awaited from an event loop. Here it runs in a worker thread, so a paraphraser that
        blocks (a composed one may wait on a model) never stalls the loop other episodes share."""
        return await asyncio.get_running_loop().run_in_executor(None, self.paraphrase, cot, context, rng)

    def overrides_batch(self) -> bool:
        """Whether this paraphraser batches in a way of its own (concurrent model calls)."""
        return type(self).paraphrase_batch is not Paraphraser.paraphrase_batch


def _contexts(cots: Sequence[str], contexts: Sequence[str] | None) -> list[str]:
    contexts = list(contexts) if contexts is not None else [""] * len(cots)
    if len(contexts) != len(cots):
        raise ValueError(f"{len(cots)} cots but {len(contexts)} contexts")
    return contexts


class Composed(Paraphraser):
    """``a+b``: apply ``a`` then ``b``."""

    def __init__(self, parts: list[Paraphraser]) -> None:
        self.parts = parts
        self.name = "+".join(p.name for p in parts)

    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        for p in self.parts:
            cot = p.paraphrase(cot, context, rng)
        return cot

    def paraphrase_batch(
        self, cots: Sequence[str], contexts: Sequence[str] | None = None, rng: random.Random | None = None
    ) -> list[str]:
        """Part by part over the whole batch when a part batches its own way (its model calls then run
        concurrently); otherwise CoT by CoT, so ``rng`` is drawn exactly as a loop over ``paraphrase`` would."""
        contexts = _contexts(cots, contexts)
        if not any(p.overrides_batch() for p in self.parts):
            return super().paraphrase_batch(cots, contexts, rng)
        out = list(cots)
        for p in self.parts:
            out = p.paraphrase_batch(out, contexts, rng)
        return out

    async def paraphrase_async(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        for p in self.parts:
            cot = await p.paraphrase_async(cot, context, rng)
        return cot


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., Paraphraser]
    takes_model: bool


_REGISTRY: Registry[_Entry] = Registry("paraphraser")


def register_paraphraser(name: str, *, takes_model: bool = False):
    """Register a factory under ``name`` (usable in ``a+b`` specs): ``(task) -> Paraphraser``, or with
    ``takes_model=True`` ``(task, model) -> Paraphraser``, where ``model`` is what ``make_paraphraser`` was
    given (an Inspect model name or ``Model``, or None)."""

    def wrap(factory):
        _REGISTRY.add(name, _Entry(factory, takes_model))
        return factory

    return wrap


def check_paraphraser_spec(spec: str) -> None:
    """Raise ValueError naming the first unknown part of an ``a+b`` spec, without building anything."""
    for name in spec.split("+"):
        _REGISTRY[name]


def build_part(name: str, task: Task | None = None, model: Any = None) -> Paraphraser:
    """One registered paraphraser (not a spec)."""
    entry = _REGISTRY[name]
    return entry.factory(task, model) if entry.takes_model else entry.factory(task)


def make_paraphraser(spec: str, task: Task | None = None, *, model: Any = None) -> Paraphraser:
    """The paraphraser an ``a+b`` spec names, e.g. ``"canonical+lexical"`` or ``"canonical+model"``.
    ``model``: the model of the parts that call one (an Inspect model name such as ``hf/DIR`` or
    ``openai/gpt-4o-mini``, or an ``inspect_ai.model.Model``); without it they read
    ``$LEGIBLE_PARAPHRASE_MODEL``."""
    check_paraphraser_spec(spec)
    parts = [build_part(name, task, model) for name in spec.split("+")]
    return parts[0] if len(parts) == 1 else Composed(parts)


def paraphraser_names() -> list[str]:
    return _REGISTRY.names()
