"""TRL's reward functions, one per reward term of the condition, and the step's metrics they leave
behind once every term has reported (reward, accuracy, each term, drift with the hierarchy level)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from legible.config import RunConfig
from legible.monitor import JudgeMonitor, KeywordMonitor, Monitor, drift_metrics, hierarchy_level
from legible.reward import Episode, Reward, is_async_term
from legible.tasks import Problem, Task

if TYPE_CHECKING:
    from legible.train.trl._rollout import ShoggothFaceRollout


class StepRecord:
    """Collects one generation batch's episodes and term values as TRL's reward functions run, and
    turns them into the step's metrics once every term has reported (drift metrics included)."""

    def __init__(
        self, cfg: RunConfig, task: Task, reward: Reward, monitor: Monitor | None, pool: list[Problem]
    ) -> None:
        self.cfg, self.task, self.reward, self.monitor = cfg, task, reward, monitor
        self.pool = pool  # the training problems, indexed by the dataset's problem_id column
        self.key: object = None
        self.episodes: list[Episode] = []
        self.values: dict[str, list[float]] = {}
        self.row: dict[str, Any] | None = None  # the finished step's metrics, for the callback
        self.rollout: ShoggothFaceRollout | None = None

    def episodes_for(self, completions: list, completion_ids: list, kwargs: dict) -> list[Episode]:
        if completion_ids is not self.key:  # a new batch: every reward function gets the same list object
            self.key, self.values = completion_ids, {}
            self.episodes = episodes_from_trl(self.task, self._problems(kwargs), completions, kwargs, self.cfg)
        return self.episodes

    def _problems(self, kwargs: dict) -> list[Problem]:
        return [self.pool[i] for i in kwargs["problem_id"]]

    def record(self, name: str, values: list[float], kwargs: dict) -> list[float]:
        """Store a term's raw values; return them scaled by the penalty ramp, as TRL should sum them."""
        self.values[name] = values
        step = kwargs["trainer_state"].global_step
        if len(self.values) == len(self.reward.terms):
            self.finish(step, kwargs.get("log_metric"))
        share = self.cfg.reward_scale(step)[name]
        return [v * share for v in values]

    def finish(self, step: int, log_metric: Callable[[str, float], None] | None) -> None:
        eps, values = self.episodes, self.values
        ramp = self.cfg.penalty_ramp(step)
        scale = self.cfg.reward_scale(step)
        totals = [self.reward.total({n: values[n][i] for n in self.reward.weights}, scale) for i in range(len(eps))]
        row: dict[str, Any] = {
            "reward": _mean(totals),
            "accuracy": _mean([self.task.score(e.problem, e.answer) for e in eps]),
            "finished_rate": _mean([float(e.extras.get("finished", e.answer is not None)) for e in eps]),
            "cot_words": _mean([len(e.cot.split()) for e in eps]),
            "penalty_ramp": ramp,
        }
        if "paraphrased" in self.cfg.condition.views:  # else no answer was produced from a paraphrase
            row["paraphrased_answer_accuracy"] = _mean(
                [self.task.score(e.problem, e.extras.get("paraphrased_answer")) for e in eps]
            )
        row |= {f"term_{n}": _mean(v) for n, v in values.items()}
        row |= {k: v for k, v in step_drift(eps, self.monitor, values).items() if k != "drift_hierarchy"}
        if self.rollout is not None and self.rollout.last is not None:
            row |= self.rollout.last.stats
        self.row = row
        if log_metric is not None:  # TRL's logs (and its report_to) get the same numbers
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("term_"):
                    log_metric(f"legible/{k}", float(v))


def step_drift(episodes: list[Episode], monitor: Monitor | None, values: dict[str, list[float]]) -> dict:
    """``drift_metrics`` on the batch's CoTs plus the hierarchy level. A judge monitor is not called a
    second time: its flag rate is the share of CoTs its term scored at 0.5 or more."""
    cots = [e.cot for e in episodes]
    keyword = monitor if isinstance(monitor, KeywordMonitor) else None
    sens = values.get("sensitivity")
    metrics = drift_metrics(cots, monitor=keyword, sensitivity=-_mean(sens) if sens else None)
    if isinstance(monitor, JudgeMonitor) and "monitor" in values:
        metrics["monitor_flag_rate"] = _mean([float(-v >= 0.5) for v in values["monitor"]])
    if keyword is not None:
        metrics["banned_rate"] = _mean([keyword.score(e.cot) / max(1, e.problem.steps) for e in episodes])
    level, text = hierarchy_level(metrics)
    # the organism trainer's names (drift_<metric>, drift_level), so one run report reads both backends
    banned = {"banned_rate": metrics.pop("banned_rate")} if "banned_rate" in metrics else {}
    return {f"drift_{k}": v for k, v in metrics.items()} | banned | {"drift_level": level, "drift_hierarchy": text}


def episodes_from_trl(
    task: Task, problems: list[Problem], completions: list, kwargs: dict, cfg: RunConfig
) -> list[Episode]:
    """Episodes from what TRL passes a reward function: the rollout's extras when it ran (CoT and
    answer as the rollout split them), else the completion parsed with ``split_completion``."""
    keys = ("paraphrase", "original_answer", "paraphrased_answer", "answer_probs", "answer_probs_paraphrased")
    out = []
    for i, (problem, completion) in enumerate(zip(problems, completions)):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        extras = {k: kwargs[k][i] for k in keys if k in kwargs}
        if "cot" in kwargs:
            extras["finished"] = kwargs["finished"][i]
            out.append(Episode(problem, kwargs["cot"][i], kwargs["answer"][i], extras))
        else:
            ep = Episode.from_completion(problem, text, cfg.trl.answer_marker, **extras)
            if "original_answer" not in extras:
                ep.extras["original_answer"] = ep.answer
            out.append(ep)
    return out


def make_reward_funcs(record: StepRecord) -> list[Callable]:
    """One TRL reward function per term, named after it (TRL logs ``rewards/<name>/mean``); ``async``
    for terms that call a model, which TRL runs concurrently with the others."""
    funcs = []
    for name, term in record.reward.terms.items():
        if is_async_term(term):

            async def func(prompts, completions, completion_ids, _name=name, **kwargs):
                episodes = record.episodes_for(completions, completion_ids, kwargs)
                values = await record.reward.term_values_async(_name, episodes)
                return record.record(_name, values, kwargs)

        else:

            def func(prompts, completions, completion_ids, _name=name, **kwargs):
                episodes = record.episodes_for(completions, completion_ids, kwargs)
                values = [float(record.reward.terms[_name](e.problem, e.cot, e.answer, e.extras)) for e in episodes]
                return record.record(_name, values, kwargs)

        func.__name__ = func.__qualname__ = name
        funcs.append(func)
    return funcs


def _mean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None
