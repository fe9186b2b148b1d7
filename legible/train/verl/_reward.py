"""verl's reward plug-in (``reward.custom_reward_function``): ``compute_score`` scores one episode with the
condition's reward terms, built once per (config, task) in each reward worker."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from legible.config import RunConfig
from legible.monitor import english_score, odd_token_rate
from legible.reward import Episode, Reward
from legible.tasks import Problem, Task, make_task
from legible.train._text import marker_pattern
from legible.train.verl._config import AGENT_NAME, _config_path, _load_config
from legible.train.verl._rows import problem_from_row, task_name_for


@dataclass
class _Scorer:
    cfg: RunConfig
    task: Task
    reward: Reward


@functools.lru_cache(maxsize=32)
def _scorer(config_path: str | None, task_name: str) -> _Scorer:
    """The reward for one (config, task), built once per reward worker (a judge model is a client)."""
    cfg = _load_config(config_path)
    task = make_task(task_name)  # scoring reads the problem, not the task's pool: no dataset path needed
    return _Scorer(cfg, task, cfg.build_reward(task))


def _episode(scorer: _Scorer, problem: Problem, solution_str: str, info: dict) -> Episode:
    """The episode to score: the agent loop's record when it ran (CoT and answer as it split them, and
    the answers from each view), else the completion parsed with the one parser."""
    loop = info.get("legible")
    if isinstance(loop, dict):
        extras = {k: loop.get(k) for k in ("paraphrase", "original_answer", "paraphrased_answer")}
        extras["finished"] = bool(loop.get("finished"))
        return Episode(problem, loop.get("cot") or "", loop.get("answer"), extras)
    if scorer.cfg.condition.needs_loop:
        raise ValueError(
            f"condition {scorer.cfg.condition.name!r} scores answers produced from a paraphrase, but this "
            f"completion did not come from legible's agent loop: set actor_rollout_ref.rollout.agent."
            f"default_agent_loop={AGENT_NAME} with agent_loop_config_path=configs/verl/agent_loop.yaml"
        )
    marker = scorer.cfg.trl.answer_marker
    finished = bool(marker_pattern(marker).search(solution_str))
    episode = Episode.from_completion(problem, solution_str, marker, finished=finished)
    episode.extras["original_answer"] = episode.answer
    return episode


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    *,
    legible_config: str | None = None,
    **_: Any,
) -> dict[str, float | str]:
    """verl's reward function. ``legible_config`` comes from ``reward_kwargs`` (else ``$LEGIBLE_CONFIG``).

    Returns ``score`` (the weighted, ramped sum of the condition's terms), ``acc`` (the counted answer's
    task score), ``term_<name>`` (each term unweighted), ``finished`` (the CoT reached the answer marker),
    ``cot_words``, ``penalty_ramp``, ``pred`` (the answer in the task's normal form, for verl's majority
    vote), and ``paraphrased_acc`` when the condition produces an answer from the paraphrase. The keys
    depend only on the config, never on the episode: verl stacks them across a batch. ``drift_english_score``
    and ``drift_odd_token_rate`` are the CoT's drift readings (``legible.monitor._drift``). ``async`` because
    judge terms call a model; verl awaits coroutine reward functions."""
    scorer = _scorer(_config_path(legible_config), task_name_for(data_source))
    info = dict(extra_info or {})
    problem = problem_from_row(scorer.task, ground_truth, info)
    episode = _episode(scorer, problem, str(solution_str), info)
    loop = info.get("legible") if isinstance(info.get("legible"), dict) else {}
    # the agent loop's step (the trainer's, or the weights' version); verl's own single-turn loop passes the
    # rollout server's weights version, which verl merges into extra_info too
    step = loop.get("global_steps", info.get("global_steps"))
    ramp, scale = scorer.cfg.penalty_ramp(step), scorer.cfg.reward_scale(step)
    totals, values = await scorer.reward.score_async([episode], scale)
    task = scorer.task
    result: dict[str, float | str] = {
        "score": float(totals[0]),
        "acc": float(task.score(problem, episode.answer)),
        **{f"term_{name}": float(v[0]) for name, v in values.items()},
        "finished": float(bool(episode.extras.get("finished"))),
        "cot_words": float(len(episode.cot.split())),
        "penalty_ramp": ramp,
        "pred": task.answer_key(problem, episode.answer) or "",
        # drift, per episode: verl averages every key over the batch into its step metrics, which makes
        # these the step's drift readings (empty CoTs read 0)
        "drift_english_score": float(english_score(episode.cot) or 0.0),
        "drift_odd_token_rate": float(odd_token_rate(episode.cot) or 0.0),
    }
    if "paraphrased" in scorer.cfg.condition.views:
        result["paraphrased_acc"] = float(task.score(problem, episode.extras.get("paraphrased_answer")))
    return result
