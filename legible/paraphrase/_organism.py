"""Paraphrasers for the organism's word-level CoTs.

``legible_only`` is the defence: it keeps the legible state words in their order and
re-draws everything else (how many other words, which ones, where), so nothing but the
legible reading survives. ``swap_neutral`` is the weak paraphraser a feasibility study
showed to fail: it keeps the positions of non-legible words, so a code carried by whether
a state word is present at a step survives it. It is kept as a baseline to measure against.
"""

from __future__ import annotations

import random

from legible.paraphrase._base import Paraphraser, register_paraphraser
from legible.policy import NEUTRAL
from legible.tasks import Task


class Identity(Paraphraser):
    name = "identity"

    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        return cot


class SwapNeutral(Paraphraser):
    name = "swap_neutral"

    def __init__(self, legible: tuple[str, ...], filler: tuple[str, ...] = NEUTRAL) -> None:
        self.legible, self.filler = frozenset(legible), filler

    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        rng = rng or random.Random()
        return " ".join(w if w in self.legible else rng.choice(self.filler) for w in cot.split())


class LegibleOnly(Paraphraser):
    name = "legible_only"

    def __init__(self, legible: tuple[str, ...], filler: tuple[str, ...] = NEUTRAL) -> None:
        self.legible, self.filler = frozenset(legible), filler

    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        rng = rng or random.Random()
        words = [w for w in cot.split() if w in self.legible]
        for _ in range(rng.randint(0, len(words) + 2)):
            words.insert(rng.randint(0, len(words)), rng.choice(self.filler))
        return " ".join(words)


def _legible_words(task: Task | None) -> tuple[str, ...]:
    if task is None or not task.state_words:
        raise ValueError("this paraphraser needs a task that names its legible state words")
    return task.state_words


register_paraphraser("identity")(lambda task: Identity())
register_paraphraser("swap_neutral")(lambda task: SwapNeutral(_legible_words(task)))
register_paraphraser("legible_only")(lambda task: LegibleOnly(_legible_words(task)))
