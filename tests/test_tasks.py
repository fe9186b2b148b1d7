"""Organism tasks and the one CoT parser."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legible.policy._vocab import VOCAB
from legible.tasks import CoinFlip, Problem, RunningSum, legible_cot, make_task, split_completion

# ---------------------------------------------------------------- coin flip


@pytest.mark.parametrize("seed", range(20))
def test_coin_flip_states_follow_the_flips(seed):
    task = CoinFlip(min_steps=3, max_steps=12)
    p = task.sample(random.Random(seed))
    words = p.prompt.split()
    assert words[0] == "coin"
    start, flips = words[1], [w for w in words[2:] if w != "_"]
    assert start in ("heads", "tails") and start == p.metadata["start"]
    assert flips == p.metadata["flips"] and len(flips) == p.steps == len(p.states)
    side = start
    for flip, state in zip(flips, p.states, strict=True):
        assert flip in ("same", "diff")
        expected = side if flip == "same" else ("tails" if side == "heads" else "heads")
        assert state == expected
        side = state
    assert p.answer == p.states[-1]


def test_coin_flip_by_hand():
    """A hand-checked case, independent of the loop in the test above."""
    task = CoinFlip(min_steps=4, max_steps=6)
    for seed in range(200):
        p = task.sample(random.Random(seed), steps=4)
        if p.metadata["start"] == "heads" and p.metadata["flips"] == ["same", "diff", "diff", "diff"]:
            assert p.states == ("heads", "tails", "heads", "tails")
            assert p.answer == "tails"
            assert p.prompt == "coin heads same diff diff diff _ _"
            return
    pytest.skip("pattern not drawn")  # pragma: no cover


@pytest.mark.parametrize("min_steps,max_steps", [(1, 1), (2, 5), (8, 14)])
def test_coin_flip_prompt_has_fixed_width_and_steps_in_range(min_steps, max_steps):
    task = CoinFlip(min_steps=min_steps, max_steps=max_steps)
    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        p = task.sample(rng)
        words = p.prompt.split()
        assert len(words) == max_steps + 2
        assert min_steps <= p.steps <= max_steps
        assert words[2 + p.steps :] == ["_"] * (max_steps - p.steps)
        assert "_" not in words[: 2 + p.steps]
        VOCAB.encode(p.prompt)  # every word is in the vocabulary
        seen.add(p.steps)
    assert seen == set(range(min_steps, max_steps + 1))


def test_coin_flip_explicit_steps_and_determinism():
    task = CoinFlip(min_steps=2, max_steps=9)
    assert task.sample(random.Random(5), steps=7).steps == 7
    assert task.sample(random.Random(5)) == task.sample(random.Random(5))
    assert len({task.sample(random.Random(s)).prompt for s in range(20)}) > 10


# ---------------------------------------------------------------- running sum


@pytest.mark.parametrize("modulus", [2, 5, 10])
def test_running_sum_states_are_running_sums_mod_m(modulus):
    task = RunningSum(min_steps=3, max_steps=10, modulus=modulus)
    rng = random.Random(modulus)
    for _ in range(50):
        p = task.sample(rng)
        words = p.prompt.split()
        assert words[0] == "sum" and len(words) == 1 + task.max_steps
        digits = [int(w) for w in words[1 : 1 + p.steps]]
        assert digits == p.metadata["digits"]
        assert all(0 <= d < modulus for d in digits)
        assert words[1 + p.steps :] == ["_"] * (task.max_steps - p.steps)
        assert 3 <= p.steps <= 10
        assert p.states == tuple(str(sum(digits[: k + 1]) % modulus) for k in range(p.steps))
        assert p.answer == str(sum(digits) % modulus)
        assert set(p.states) <= set(task.state_words)
    assert task.state_words == tuple(str(d) for d in range(modulus)) == task.answer_words


@pytest.mark.parametrize("modulus", [1, 11])
def test_running_sum_rejects_bad_modulus(modulus):
    with pytest.raises(ValueError, match="modulus"):
        RunningSum(modulus=modulus)


def test_make_task():
    assert isinstance(make_task("coin_flip", min_steps=2, max_steps=3), CoinFlip)
    rs = make_task("running_sum", modulus=3)
    assert isinstance(rs, RunningSum) and rs.modulus == 3
    with pytest.raises(ValueError, match="nosuch"):
        make_task("nosuch")


def test_legible_cot_is_the_state_words():
    p = CoinFlip(min_steps=5, max_steps=5).sample(random.Random(1))
    assert legible_cot(p).split() == list(p.states)


# ---------------------------------------------------------------- split_completion and score


@pytest.mark.parametrize(
    "completion,cot,answer",
    [
        ("heads tails answer tails", "heads tails", "tails"),
        ("heads tails answer tails extra words", "heads tails", "tails"),
        ("  heads   tails  answer   heads  ", "heads   tails", "heads"),
        ("heads tails", "heads tails", None),  # no marker
        ("heads tails answer", "heads tails", None),  # nothing after the marker
        ("heads tails answer   ", "heads tails", None),
        ("answer heads answer", "answer heads", None),  # the last marker counts
        ("heads answer tails answer heads", "heads answer tails", "heads"),
        ("", "", None),
        ("answer 3", "", "3"),
    ],
)
def test_split_completion(completion, cot, answer):
    assert split_completion(completion) == (cot, answer)


def test_split_completion_custom_marker():
    assert split_completion("a b ANSWER: c", marker="ANSWER:") == ("a b", "c")


@given(
    st.lists(st.sampled_from([w for w in VOCAB.words if w != "answer"]), max_size=20),
    st.sampled_from(["heads", "tails", "3"]),
)
def test_split_completion_round_trip(cot_words, answer):
    cot = " ".join(cot_words)
    assert split_completion(f"{cot} answer {answer}") == (cot, answer)
    assert split_completion(cot) == (cot, None)


def test_score():
    task = CoinFlip()
    p = Problem(prompt="coin heads same", answer="heads", steps=1, states=("heads",))
    assert task.score(p, "heads") == 1.0
    assert task.score(p, " heads ") == 1.0
    assert task.score(p, "tails") == 0.0
    assert task.score(p, None) == 0.0
    assert task.score(p, "") == 0.0
    completion = "heads answer"
    assert task.score(p, split_completion(completion)[1]) == 0.0


@pytest.mark.parametrize(
    "completion,cot,answer",
    [
        ("Let me add. 3 + 4 = 7. Answer: 7", "Let me add. 3 + 4 = 7.", "7"),
        ("So it costs $1,000. Answer: $1,000.", "So it costs $1,000.", "$1,000."),
        ("Answer: (B), the final answer.", "", "(B),"),  # a marker with a colon wins
        ("the answer is 42", "the", "42"),
        ("ANSWER:B", "", "B"),
        ("the answers are many", "the answers are many", None),  # whole word only
        ("I cannot answer that.", "I cannot", "that."),
    ],
)
def test_split_completion_english(completion, cot, answer):
    assert split_completion(completion) == (cot, answer)
