"""The condition model: the facts every trainer (organism, TRL, verl) derives from a condition, written once
in legible.config and read by all three."""

from __future__ import annotations

import pytest

from legible.config import CONDITIONS, ConditionConfig, RLConfig, RunConfig
from legible.monitor import JudgeMonitor, KeywordMonitor
from legible.reward import GrammarJudge, Reward
from legible.tasks import GSM8K, CoinFlip

VIEWS = {
    "outcome": ("original", True, {"original"}, False),
    "monitor": ("original", True, {"original"}, False),
    "monitor+paraphrase": ("paraphrased", False, {"paraphrased"}, True),
    "monitor+face": ("paraphrased", False, {"paraphrased"}, True),
    "monitor+sensitivity": ("original", True, {"original", "paraphrased"}, True),
    "monitor+stepwise": ("paraphrased", False, {"paraphrased"}, True),
    "monitor+stepwise+face": ("paraphrased", False, {"paraphrased"}, True),
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_each_preset_says_which_views_count_and_who_answers(name):
    cond = CONDITIONS[name]
    view, policy_answers, views, needs_loop = VIEWS[name]
    assert (cond.view, cond.policy_answers, set(cond.views), cond.needs_loop) == (
        view,
        policy_answers,
        views,
        needs_loop,
    )


def test_a_paraphrase_outcome_term_needs_the_paraphrased_view_too():
    cond = ConditionConfig(name="x", rewards={"outcome": 1.0, "paraphrase_outcome": 0.5})
    assert cond.view == "original" and cond.views == {"original", "paraphrased"} and cond.needs_loop


def test_the_penalty_ramp_rises_to_one_and_never_touches_the_outcome():
    cfg = RunConfig(condition="monitor+sensitivity", rl=RLConfig(ramp_steps=50))
    assert [cfg.penalty_ramp(s) for s in (0, 25, 50, 500)] == [0.0, 0.5, 1.0, 1.0]
    assert cfg.penalty_ramp(None) == 1.0  # a step the caller does not know: no ramp
    assert cfg.reward_scale(10) == {"outcome": 1.0, "monitor": 0.2, "sensitivity": 0.2}
    assert RunConfig(rl=RLConfig(ramp_steps=0)).penalty_ramp(0) == 1.0


def test_the_monitor_and_reward_come_from_the_config_on_every_backend():
    organism = RunConfig(condition="monitor")
    monitor = organism.build_monitor(CoinFlip())
    assert isinstance(monitor, KeywordMonitor) and monitor.words == ("heads", "tails")
    reward = organism.build_reward(CoinFlip())
    assert isinstance(reward, Reward) and reward.weights == {"outcome": 1.0, "monitor": 0.3}
    assert isinstance(reward.ctx.judge, GrammarJudge)  # the organism's steps are words of its grammar

    text = RunConfig(
        backend="trl", model="some/model", task={"name": "gsm8k"}, condition="monitor",
        monitor_words=["total"], trl={"monitor_patterns": [r"\d+\s*\*"]},
    )  # fmt: skip
    monitor = text.build_monitor(GSM8K())
    assert isinstance(monitor, KeywordMonitor) and monitor.score("the total is 3 * 4") == 2.0
    judged = text.model_copy(update={"trl": text.trl.model_copy(update={"monitor_judge": "mockllm/model"})})
    assert isinstance(judged.build_monitor(GSM8K()), JudgeMonitor)
