"""Paraphrasers for the organism's word-level CoTs.

``legible_only`` is the defence: it keeps the legible state words in their order and
re-draws everything else (how many other words, which ones, where), so nothing but the
legible reading survives. ``swap_neutral`` is the weak paraphraser a feasibility study
showed to fail: it keeps the positions of non-legible words, so a code carried by whether
a state word is present at a step survives it. It is kept as a baseline to measure against.

``WordWise`` is the step-wise paraphrase: what the policy reads back of its own CoT while it
writes it (condition ``stepwise``).
"""

from __future__ import annotations

import random

import torch

from legible.paraphrase._base import Paraphraser, register_paraphraser
from legible.policy import NEUTRAL, VOCAB
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


class WordWise:
    """Step-wise paraphrase of the organism's CoT, one token at a time: a legible state word (and the answer
    marker) is read back as written, any other word as a neutral word drawn afresh, so a word the monitor does
    not know carries nothing to the policy's later steps.

    It rewrites each token in place rather than re-drawing the whole prefix as ``legible_only`` does: the
    organism's step k reads input k a fixed distance back, and a prefix whose length changed at every step
    would break that. The price: where a state word stands survives it, so a presence code still reaches
    the policy's later steps; the answer is read from the condition's paraphraser, which re-draws positions."""

    def __init__(self, legible: tuple[str, ...], filler: tuple[str, ...] = NEUTRAL) -> None:
        self.kept = torch.zeros(len(VOCAB), dtype=torch.bool)
        self.kept[VOCAB.ids([*legible, VOCAB.words[VOCAB.answer_id], VOCAB.words[VOCAB.pad_id]])] = True
        self.filler = torch.tensor(VOCAB.ids(filler))

    def fillers(self, rows: int, length: int, generator: torch.Generator | None) -> torch.Tensor:
        return self.filler[torch.randint(len(self.filler), (rows, length), generator=generator)]

    def __call__(self, tokens: torch.Tensor, fillers: torch.Tensor) -> torch.Tensor:
        return torch.where(self.kept[tokens], tokens, fillers)


def _legible_words(task: Task | None) -> tuple[str, ...]:
    if task is None or not task.state_words:
        raise ValueError("this paraphraser needs a task that names its legible state words")
    return task.state_words


register_paraphraser("identity")(lambda task: Identity())
register_paraphraser("swap_neutral")(lambda task: SwapNeutral(_legible_words(task)))
register_paraphraser("legible_only")(lambda task: LegibleOnly(_legible_words(task)))
