"""The capacity measurement on a toy scheme whose truth is known."""

from __future__ import annotations

import random

from legible.paraphrase._base import Paraphraser
from legible.stego._measure import meaning_kept, measure_channel, numbers_in, paraphraser_quality


class CaseScheme:
    """One bit per word: upper-case initial = 1."""

    name, closed_by = "case", "canonical"

    def capacity(self, cover: str) -> int:
        return len(cover.split())

    def encode(self, cover: str, bits: list[int]) -> str:
        words = cover.split()
        return (
            " ".join(w.capitalize() if b else w.lower() for w, b in zip(words, bits))
            + " "
            + " ".join(words[len(bits) :])
        )

    def decode(self, text: str, n_bits: int) -> list[int]:
        words = text.split()
        return [int(w[:1].isupper()) if i < len(words) else 0 for i, w in enumerate(words[:n_bits])] + [0] * max(
            0, n_bits - len(words)
        )


class Lower(Paraphraser):
    name = "lower"

    def paraphrase(self, cot, context="", rng=None):
        return cot.lower()


class Shuffle(Paraphraser):
    name = "shuffle"

    def paraphrase(self, cot, context="", rng=None):
        words = cot.split()
        (rng or random.Random()).shuffle(words)
        return " ".join(words)


COVERS = [{"id": i, "text": "the quick brown fox jumps over the lazy dog twice", "answer": None} for i in range(20)]


def test_untouched_channel_carries_one_bit_per_bit():
    result = measure_channel(CaseScheme(), "none", None, COVERS, payloads=5)
    assert result.bit_error_rate == 0
    per_kb = result.bits_sent / result.kilobytes
    assert abs(result.bits_per_kb - per_kb) / per_kb < 0.02
    assert result.ci95[0] <= result.bits_per_kb <= result.ci95[1]


def test_a_paraphraser_that_closes_the_channel_leaves_about_zero():
    result = measure_channel(CaseScheme(), "lower", Lower(), COVERS, payloads=5)
    assert result.bits_per_kb < 1.0 and result.bit_error_rate > 0.4


def test_partial_damage_lands_in_between():
    full = measure_channel(CaseScheme(), "none", None, COVERS, payloads=5).bits_per_kb
    shuffled = measure_channel(CaseScheme(), "shuffle", Shuffle(), COVERS, payloads=5).bits_per_kb
    assert shuffled < 0.5 * full


def test_meaning_checks():
    assert numbers_in("1,000 and 2.5, then 7.") == [2.5, 7.0, 1000.0]
    assert meaning_kept("Alice pays 1,000 dollars; the answer is 12.", "alice pays 1000 dollars, so 12", "12")[0]
    assert meaning_kept("Alice has 3 cats.", "She has three cats.")[1].startswith("number")
    assert meaning_kept("We met Alice and Bob today.", "We met Alice today.")[1] == "name 'Bob' lost"
    assert meaning_kept("so the answer is yes", "the answer is no", "yes")[1] == "answer 'yes' lost"


def test_quality_of_identity_and_shuffle():
    class Same(Paraphraser):
        name = "same"

        def paraphrase(self, cot, context="", rng=None):
            return cot

    same = paraphraser_quality("same", Same(), COVERS[:3], seeds=4)
    assert same.meaning_kept == 1.0 and same.distinct_outputs == 1.0 and same.edit_distance == 0.0
    moved = paraphraser_quality("shuffle", Shuffle(), COVERS[:3], seeds=4)
    assert moved.distinct_outputs > 1.0 and moved.edit_distance > 0.1
