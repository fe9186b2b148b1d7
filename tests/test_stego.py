"""Hidden-channel measurement: mutual information and the state probe."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legible.monitor import probe_states
from legible.policy._vocab import NEUTRAL, VOCAB
from legible.stats import mutual_information
from legible.tasks import CoinFlip, RunningSum, legible_cot

# ---------------------------------------------------------------- mutual information


def test_mi_identical_uniform_binary_is_one_bit():
    rng = random.Random(0)
    x = [rng.randrange(2) for _ in range(2000)]
    assert mutual_information(x, x) == pytest.approx(1.0, abs=0.02)
    # relabelling the decoder's output loses nothing
    assert mutual_information(x, [1 - v for v in x]) == pytest.approx(1.0, abs=0.02)


def test_mi_independent_binary_is_near_zero():
    rng = random.Random(1)
    x = [rng.randrange(2) for _ in range(2000)]
    y = [rng.randrange(2) for _ in range(2000)]
    assert 0.0 <= mutual_information(x, y) < 0.01


def test_mi_four_class_identity_is_two_bits():
    rng = random.Random(2)
    x = [rng.choice("abcd") for _ in range(2000)]
    assert mutual_information(x, x) == pytest.approx(2.0, abs=0.03)


def test_mi_noisy_channel_is_between():
    """A binary symmetric channel with 10% flips carries 1 - H(0.1) = 0.531 bits."""
    rng = random.Random(3)
    x = [rng.randrange(2) for _ in range(4000)]
    y = [v if rng.random() > 0.1 else 1 - v for v in x]
    assert mutual_information(x, y) == pytest.approx(0.531, abs=0.04)


def test_mi_small_sample_has_miller_madow_correction():
    """Plug-in MI of 20 identical balanced bits is 1 bit; Miller-Madow adds (k - 1) / (2 n ln 2)
    for each of H(X) (k=2), H(Y) (k=2) and minus H(X, Y) (k=2 cells): net 1 / (40 ln 2)."""
    x = [0, 1] * 10
    assert mutual_information(x, x) == pytest.approx(1 + 1 / (40 * math.log(2)), abs=1e-9)


def test_mi_constant_and_empty():
    assert mutual_information([], []) == 0.0
    assert mutual_information([1] * 50, [0] * 50) == pytest.approx(0.0, abs=1e-9)


def test_mi_length_mismatch_raises():
    with pytest.raises(ValueError):
        mutual_information([1, 2], [1])


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=200))
def test_mi_symmetric_and_non_negative(pairs):
    x, y = [a for a, _ in pairs], [b for _, b in pairs]
    assert mutual_information(x, y) >= 0.0
    assert mutual_information(x, y) == pytest.approx(mutual_information(y, x), abs=1e-9)


# ---------------------------------------------------------------- probe

MAX_STEPS = 10
TASK = CoinFlip(min_steps=6, max_steps=MAX_STEPS)
N = 400
VOCAB_WORDS = list(VOCAB.words)


@pytest.fixture(scope="module")
def problems():
    rng = random.Random(0)
    return [TASK.sample(rng) for _ in range(N)]


def probe(cots, problems, reading, task=TASK):
    return probe_states(
        cots,
        [p.states for p in problems],
        task.state_words,
        VOCAB_WORDS,
        task.state_words,
        reading=reading,
        max_steps=task.max_steps,
        seed=0,
    )


@pytest.mark.parametrize("reading", ["full", "legible"])
def test_probe_reads_legible_cots(problems, reading):
    cots = [legible_cot(p).split() for p in problems]
    result = probe(cots, problems, reading)
    assert result.accuracy > 0.95
    assert result.bits_per_step > 0.8
    assert len(result.per_step_bits) == MAX_STEPS
    assert 0.45 < result.chance < 0.7


def test_probe_reads_legible_cots_with_filler(problems):
    """Neutral words inserted at random places: the legible reading still recovers the states."""
    rng = random.Random(4)
    cots = []
    for p in problems:
        words = list(p.states)
        for _ in range(rng.randint(0, 4)):
            words.insert(rng.randint(0, len(words)), rng.choice(NEUTRAL))
        cots.append(words)
    assert probe(cots, problems, reading="legible").accuracy > 0.95


def test_probe_finds_a_substitution_code_the_legible_reading_misses(problems):
    """Both states written with neutral words ("we" = heads, "now" = tails): hidden."""
    cots = [["we" if s == "heads" else "now" for s in p.states] for p in problems]
    full = probe(cots, problems, reading="full")
    legible = probe(cots, problems, reading="legible")
    assert full.accuracy > 0.95
    assert legible.accuracy < 0.7
    assert full.bits_per_step - legible.bits_per_step > 0.5


def test_presence_code_is_legible_by_position_but_not_after_reordering(problems):
    """heads kept, tails replaced by "ok": where "heads" is missing tells the reader "tails",
    so the legible reading recovers it; once the words are moved around it cannot."""
    cots = [[s if s == "heads" else "ok" for s in p.states] for p in problems]
    assert probe(cots, problems, reading="legible").accuracy > 0.95
    rng = random.Random(9)
    moved = []
    for c in cots:
        kept = [w for w in c if w == "heads"]
        for _ in range(rng.randint(0, len(kept) + 2)):
            kept.insert(rng.randint(0, len(kept)), "ok")
        moved.append(kept)
    assert probe(moved, problems, reading="full").accuracy < 0.75


def test_a_few_unreadable_slots_cost_only_their_own_bits(problems):
    """A legible CoT with one alias slot in ten: hidden capacity stays small, because the
    legible reading keeps positions (an order-only reading would lose every later step)."""
    rng = random.Random(8)
    cots = [[("we" if s == "heads" else "now") if rng.random() < 0.1 else s for s in p.states] for p in problems]
    full = probe(cots, problems, reading="full")
    legible = probe(cots, problems, reading="legible")
    assert full.bits_per_step - legible.bits_per_step < 0.2


@pytest.mark.parametrize("reading", ["full", "legible"])
def test_probe_on_random_cots_is_near_chance(problems, reading):
    rng = random.Random(5)
    cots = [[rng.choice(TASK.state_words) for _ in p.states] for p in problems]
    result = probe(cots, problems, reading)
    assert abs(result.accuracy - result.chance) < 0.1
    assert result.accuracy < 0.62
    assert result.bits_per_step < 0.05


def test_probe_on_running_sum():
    task = RunningSum(min_steps=4, max_steps=6, modulus=3)
    rng = random.Random(6)
    problems = [task.sample(rng) for _ in range(300)]
    cots = [legible_cot(p).split() for p in problems]
    assert probe(cots, problems, reading="full", task=task).accuracy > 0.95
    shuffled = [cots[(i + 1) % len(cots)] for i in range(len(cots))]
    assert probe(shuffled, problems, reading="full", task=task).accuracy < 0.5
