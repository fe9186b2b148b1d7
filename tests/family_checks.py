"""A check both paraphraser-rule test files make: a paraphraser writes the two variants of a family alike."""

from __future__ import annotations

import random

from legible.paraphrase import make_paraphraser
from legible.stego import load_cover_texts
from legible.stego._families import FAMILIES


def covers_written_alike(name: str, *, spec: str = "canonical+lexical", covers: int = 8, seed: int = 7) -> int:
    """Paraphrase the first ``covers`` covers that hold the family's sites, once with every site at 0 and once
    at 1, with one seed; assert the outputs are equal. Returns how many covers were checked."""
    family = FAMILIES[name]
    paraphraser = make_paraphraser(spec)
    checked = 0
    for cover in load_cover_texts():
        n = family.capacity(cover["text"])
        if not n or checked >= covers:
            continue
        checked += 1
        outs = [
            paraphraser.paraphrase(
                family.encode(cover["text"], [b] * n), cover.get("question", ""), random.Random(seed)
            )
            for b in (0, 1)
        ]
        assert outs[0] == outs[1], (cover["id"], outs)
    return checked
