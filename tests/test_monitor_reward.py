"""Keyword monitor, reward terms, their composition, and the JS divergence."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legible.monitor import KeywordMonitor
from legible.reward import Reward, RewardContext, term_names
from legible.stats import js_divergence
from legible.tasks import CoinFlip, Problem

# ---------------------------------------------------------------- monitor


def test_keyword_monitor_counts_whole_words_case_insensitively():
    m = KeywordMonitor(["heads"])
    assert m.score("heads") == 1.0
    assert m.score("Heads HEADS heads, heads.") == 4.0
    assert m.score("headset overheads heads_up") == 0.0
    assert m.score("tails ok then") == 0.0
    assert m.score("") == 0.0


def test_keyword_monitor_several_words():
    m = KeywordMonitor(["heads", "tails"])
    assert m.score("heads tails ok heads") == 3.0
    assert m.words == ("heads", "tails")


def test_keyword_monitor_escapes_words():
    m = KeywordMonitor(["a.b"])
    assert m.score("a.b") == 1.0
    assert m.score("axb") == 0.0


def test_keyword_monitor_patterns():
    m = KeywordMonitor(patterns=[r"h\w*s"])
    assert m.score("heads hats Hoops ok") == 3.0
    both = KeywordMonitor(["tails"], patterns=[r"\bd(?:iff)\b"])
    assert both.score("tails DIFF same diffs") == 2.0


def test_keyword_monitor_pattern_with_groups_counts_matches():
    m = KeywordMonitor(patterns=[r"(he)(ads)"])
    assert m.score("heads heads") == 2.0


def test_keyword_monitor_needs_something():
    with pytest.raises(ValueError):
        KeywordMonitor()
    with pytest.raises(ValueError):
        KeywordMonitor([], [])


# ---------------------------------------------------------------- reward terms

TASK = CoinFlip()
MONITOR = KeywordMonitor(["heads", "tails"])
CTX = RewardContext(task=TASK, monitor=MONITOR)
PROBLEM = Problem("coin heads same diff same diff", "heads", steps=4, states=("heads", "tails", "tails", "heads"))


def term(name, cot="", answer=None, extras=None, problem=PROBLEM):
    reward = Reward({name: 1.0}, CTX)
    total, values = reward(problem, cot, answer, extras or {})
    assert total == pytest.approx(values[name])
    return values[name]


def test_term_names():
    assert {"outcome", "monitor", "paraphrase_outcome", "sensitivity", "length"} <= set(term_names())


def test_outcome_term():
    assert term("outcome", answer="heads") == 1.0
    assert term("outcome", answer="tails") == 0.0
    assert term("outcome", answer=None) == 0.0


def test_monitor_term_is_hits_per_step_capped():
    assert term("monitor", cot="ok then so") == 0.0
    assert term("monitor", cot="heads ok tails") == pytest.approx(-0.5)
    assert term("monitor", cot="heads tails tails") == pytest.approx(-0.75)
    assert term("monitor", cot="heads " * 9) == -1.0
    zero_steps = Problem("coin heads", "heads", steps=0)
    assert term("monitor", cot="heads", problem=zero_steps) == -1.0


def test_monitor_term_needs_a_monitor():
    with pytest.raises(ValueError, match="monitor"):
        Reward({"monitor": 1.0}, RewardContext(task=TASK))


def test_paraphrase_outcome_term_reads_the_paraphrased_answer():
    assert term("paraphrase_outcome", answer="tails", extras={"paraphrased_answer": "heads"}) == 1.0
    assert term("paraphrase_outcome", answer="heads", extras={"paraphrased_answer": "tails"}) == 0.0
    assert term("paraphrase_outcome", answer="heads", extras={"paraphrased_answer": None}) == 0.0


def test_sensitivity_term_is_minus_js():
    same = {"answer_probs": [0.3, 0.7], "answer_probs_paraphrased": [0.3, 0.7]}
    assert term("sensitivity", extras=same) == pytest.approx(0.0, abs=1e-12)
    disjoint = {"answer_probs": [1.0, 0.0], "answer_probs_paraphrased": [0.0, 1.0]}
    assert term("sensitivity", extras=disjoint) == pytest.approx(-1.0)
    some = {"answer_probs": [0.9, 0.1], "answer_probs_paraphrased": [0.5, 0.5]}
    assert term("sensitivity", extras=some) == pytest.approx(-js_divergence([0.9, 0.1], [0.5, 0.5]))
    assert -1.0 < term("sensitivity", extras=some) < 0.0


def test_length_term_is_minus_words_per_step():
    assert term("length", cot="") == 0.0
    assert term("length", cot="heads ok tails then heads ok") == pytest.approx(-1.5)
    assert term("length", cot="a  b\tc", problem=Problem("p", "x", steps=1)) == -3.0


# ---------------------------------------------------------------- composition


def test_reward_weighted_sum_and_scale():
    reward = Reward({"outcome": 1.0, "monitor": 0.4, "length": 0.1}, CTX)
    cot = "heads ok tails heads"  # 3 hits, 4 words, 4 steps
    total, values = reward(PROBLEM, cot, "heads", {})
    assert values == pytest.approx({"outcome": 1.0, "monitor": -0.75, "length": -1.0})
    assert total == pytest.approx(1.0 - 0.4 * 0.75 - 0.1)
    total, values = reward(PROBLEM, cot, "heads", {}, scale={"monitor": 0.5, "length": 0.0})
    assert values["monitor"] == pytest.approx(-0.75)  # values stay unweighted and unscaled
    assert total == pytest.approx(1.0 - 0.5 * 0.4 * 0.75)


def test_reward_rejects_unknown_terms():
    with pytest.raises(ValueError, match="'bogus'"):
        Reward({"outcome": 1.0, "bogus": 1.0}, CTX)


# ---------------------------------------------------------------- js_divergence

probs = st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6).filter(lambda v: sum(v) > 1e-3)


def normalise(v):
    s = sum(v)
    return [x / s for x in v]


def test_js_divergence_known_values():
    assert js_divergence([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert js_divergence([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    assert js_divergence([0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]) == pytest.approx(1.0)
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4); JS = 1/2 log2(4/3) + 1/2 (1/2 log2(2/3) + 1/2 log2(2))
    expected = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5 * math.log2(2))
    assert js_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(expected)


@given(probs, probs)
def test_js_divergence_symmetric_and_bounded(a, b):
    n = min(len(a), len(b))
    if sum(a[:n]) < 1e-3 or sum(b[:n]) < 1e-3:
        return
    p, q = normalise(a[:n]), normalise(b[:n])
    d = js_divergence(p, q)
    assert d == pytest.approx(js_divergence(q, p), abs=1e-12)
    assert -1e-12 <= d <= 1.0 + 1e-12
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
