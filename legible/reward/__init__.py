"""Reward terms (one registry for every backend), their weighted sum, and the step judges of process
supervision."""

from legible.reward._judges import (
    GrammarJudge,
    HeuristicStepJudge,
    ModelStepJudge,
    StepGrade,
    StepJudge,
    make_step_judge,
    parse_step_grades,
    split_steps,
)
from legible.reward._terms import (
    Episode,
    Reward,
    RewardContext,
    RewardTerm,
    disagreement,
    is_async_term,
    output_flag_rate,
    reward_term,
    term_names,
)

__all__ = [
    "Episode",
    "GrammarJudge",
    "HeuristicStepJudge",
    "ModelStepJudge",
    "Reward",
    "RewardContext",
    "RewardTerm",
    "StepGrade",
    "StepJudge",
    "disagreement",
    "is_async_term",
    "make_step_judge",
    "output_flag_rate",
    "parse_step_grades",
    "reward_term",
    "split_steps",
    "term_names",
]
