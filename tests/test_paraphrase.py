"""Paraphrasers: registry, composition, and the organism paraphrasers' invariants."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legible.paraphrase import Composed, Paraphraser, make_paraphraser, paraphraser_names
from legible.paraphrase._organism import LegibleOnly, SwapNeutral
from legible.policy._vocab import NEUTRAL, VOCAB
from legible.tasks import CoinFlip, RunningSum

COIN = CoinFlip()
SUM = RunningSum(modulus=5)
WORDS = [w for w in VOCAB.words if not w.startswith("<")]
cots = st.lists(st.sampled_from(WORDS), max_size=30).map(" ".join)
seeds = st.integers(0, 2**32 - 1)
tasks = st.sampled_from([COIN, SUM])


def legible_of(text: str, task) -> list[str]:
    return [w for w in text.split() if w in task.state_words]


def test_registry_names():
    assert {"identity", "swap_neutral", "legible_only"} <= set(paraphraser_names())


@pytest.mark.parametrize("name", ["identity", "swap_neutral", "legible_only"])
def test_make_paraphraser_single(name):
    p = make_paraphraser(name, COIN)
    assert isinstance(p, Paraphraser) and not isinstance(p, Composed)
    assert p.name == name


def test_identity_returns_input():
    text = "heads ok then tails"
    assert make_paraphraser("identity").paraphrase(text, "", random.Random(0)) == text


@pytest.mark.parametrize("spec", ["nosuch", "identity+nosuch", "nosuch+legible_only", "legible_only+"])
def test_unknown_paraphraser_names_the_name(spec):
    bad = next(part for part in spec.split("+") if part not in paraphraser_names())
    with pytest.raises(ValueError) as info:
        make_paraphraser(spec, COIN)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("name", ["swap_neutral", "legible_only"])
def test_task_dependent_paraphraser_needs_a_task(name):
    with pytest.raises(ValueError, match="task"):
        make_paraphraser(name, None)


# ---------------------------------------------------------------- legible_only


@given(cots, seeds, tasks)
def test_legible_only_keeps_exactly_the_legible_words_in_order(cot, seed, task):
    out = make_paraphraser("legible_only", task).paraphrase(cot, "", random.Random(seed))
    assert legible_of(out, task) == legible_of(cot, task)
    inserted = [w for w in out.split() if w not in task.state_words]
    assert set(inserted) <= set(NEUTRAL)
    assert len(inserted) <= len(legible_of(cot, task)) + 2


@given(cots, seeds, tasks)
def test_legible_only_is_deterministic_given_the_seed(cot, seed, task):
    p = make_paraphraser("legible_only", task)
    assert p.paraphrase(cot, "", random.Random(seed)) == p.paraphrase(cot, "", random.Random(seed))


@given(cots, tasks)
def test_legible_only_varies_across_seeds(cot, task):
    p = make_paraphraser("legible_only", task)
    outs = {p.paraphrase(cot, "", random.Random(seed)) for seed in range(30)}
    assert len(outs) > 1


def test_legible_only_erases_a_presence_code():
    """The point of the defence: where the non-legible words were no longer tells anything."""
    p = make_paraphraser("legible_only", COIN)
    a = "heads ok heads ok ok heads"
    b = "heads heads ok heads ok ok"
    dist = lambda text: sorted(p.paraphrase(text, "", random.Random(s)) for s in range(200))  # noqa: E731
    assert dist(a) == dist(b)


# ---------------------------------------------------------------- swap_neutral


@given(cots, seeds, tasks)
def test_swap_neutral_keeps_word_count_and_legible_positions(cot, seed, task):
    out = make_paraphraser("swap_neutral", task).paraphrase(cot, "", random.Random(seed)).split()
    src = cot.split()
    assert len(out) == len(src)
    for a, b in zip(src, out, strict=True):
        if a in task.state_words:
            assert b == a
        else:
            assert b in NEUTRAL


@given(cots, seeds)
def test_swap_neutral_is_deterministic_given_the_seed(cot, seed):
    p = make_paraphraser("swap_neutral", COIN)
    assert p.paraphrase(cot, "", random.Random(seed)) == p.paraphrase(cot, "", random.Random(seed))


def test_swap_neutral_varies_across_seeds():
    p = make_paraphraser("swap_neutral", COIN)
    outs = {p.paraphrase("heads ok ok tails then", "", random.Random(s)) for s in range(20)}
    assert len(outs) > 1


# ---------------------------------------------------------------- composition


def test_composition_has_the_composed_name_and_parts():
    p = make_paraphraser("swap_neutral+legible_only", COIN)
    assert isinstance(p, Composed)
    assert p.name == "swap_neutral+legible_only"
    assert [type(q) for q in p.parts] == [SwapNeutral, LegibleOnly]


@given(cots, seeds, tasks)
def test_composition_applies_parts_in_order(cot, seed, task):
    composed = make_paraphraser("swap_neutral+legible_only", task)
    out = composed.paraphrase(cot, "ctx", random.Random(seed))
    rng = random.Random(seed)
    swapped = SwapNeutral(task.state_words).paraphrase(cot, "ctx", rng)
    manual = LegibleOnly(task.state_words).paraphrase(swapped, "ctx", rng)
    assert out == manual
    assert legible_of(out, task) == legible_of(cot, task)
    assert set(out.split()) - set(task.state_words) <= set(NEUTRAL)


def test_composition_name_follows_the_spec_order():
    """Both orders are accepted and named in their order; identity contributes nothing."""
    p = make_paraphraser("legible_only+identity", COIN)
    assert p.name == "legible_only+identity"
    q = make_paraphraser("identity+legible_only", COIN)
    assert q.name == "identity+legible_only"
    text = "heads ok tails"
    assert p.paraphrase(text, "", random.Random(3)) == q.paraphrase(text, "", random.Random(3))
