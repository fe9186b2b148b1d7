"""Hidden-channel measurement: mutual information and the state probe."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legible.policy.vocab import NEUTRAL, VOCAB
from legible.stego.capacity import mutual_information
from legible.stego.probe import probe_states
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


def probe(cots, problems, use_positions, task=TASK):
    return probe_states(
        cots,
        [p.states for p in problems],
        task.state_words,
        VOCAB_WORDS,
        task.state_words,
        use_positions=use_positions,
        max_steps=task.max_steps,
        seed=0,
    )


@pytest.mark.parametrize("use_positions", [True, False])
def test_probe_reads_legible_cots(problems, use_positions):
    cots = [legible_cot(p).split() for p in problems]
    result = probe(cots, problems, use_positions)
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
    assert probe(cots, problems, use_positions=False).accuracy > 0.95


def test_probe_finds_a_presence_code_the_legible_reading_misses(problems):
    """heads kept, tails replaced by "ok": the full probe reads it, the legible probe cannot."""
    cots = [[s if s == "heads" else "ok" for s in p.states] for p in problems]
    full = probe(cots, problems, use_positions=True)
    legible = probe(cots, problems, use_positions=False)
    assert full.accuracy > 0.95
    assert legible.accuracy < 0.75
    assert full.bits_per_step - legible.bits_per_step > 0.5


@pytest.mark.parametrize("use_positions", [True, False])
def test_probe_on_random_cots_is_near_chance(problems, use_positions):
    rng = random.Random(5)
    cots = [[rng.choice(TASK.state_words) for _ in p.states] for p in problems]
    result = probe(cots, problems, use_positions)
    assert abs(result.accuracy - result.chance) < 0.1
    assert result.accuracy < 0.62
    assert result.bits_per_step < 0.05


def test_probe_on_running_sum():
    task = RunningSum(min_steps=4, max_steps=6, modulus=3)
    rng = random.Random(6)
    problems = [task.sample(rng) for _ in range(300)]
    cots = [legible_cot(p).split() for p in problems]
    assert probe(cots, problems, use_positions=True, task=task).accuracy > 0.95
    shuffled = [cots[(i + 1) % len(cots)] for i in range(len(cots))]
    assert probe(shuffled, problems, use_positions=True, task=task).accuracy < 0.5
