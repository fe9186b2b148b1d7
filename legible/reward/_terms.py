"""Reward terms, their one registry, and the weighted sum a condition trains on.

A term is a function ``(problem, cot, answer, extras) -> float``, or an ``async`` function with the same
arguments when it calls a model (a judge). The same names mean the same thing on every backend, so a YAML
``rewards: {outcome: 1, monitor: 0.3}`` trains the same objective on the organism, through TRL and on
verl. ``extras`` carries what the rollout measured besides the answer:

* ``paraphrased_answer``: the answer produced from a paraphrase of the CoT;
* ``answer_probs`` / ``answer_probs_paraphrased``: the answerer's distributions over a closed answer space
  given the original and the paraphrased CoT, where the backend could read them;
* ``original_answer``: the answer from the unparaphrased CoT, where there are no distributions;
* ``output``: what the answerer wrote after the answer (the organism's explaining tasks).

The terms:

* ``outcome``: the task's score of the answer. The CoT is never scored: the one parser
  (``split_completion``) cuts the completion at its answer marker and only what follows is the answer.
* ``monitor``: minus the monitor's reading, in [-1, 0]: a keyword monitor's hits per reasoning step,
  capped at 1; a judge model's flag score in [0, 1].
* ``output_monitor``: minus ``output_flag_rate``: the monitor's hits in the output after the answer per
  word of the task's legible explanation, capped at 1; a monitor that never reads the CoT (feedback
  spillover).
* ``paraphrase_outcome``: the score of the answer produced from the paraphrased CoT (missing: wrong).
* ``sensitivity``: minus the Jensen-Shannon divergence (bits) between the answer distributions given the
  CoT and its paraphrase; without distributions, minus the 0/1 disagreement of the two answers in the
  task's normal form. Both are 0 for an answer the paraphrase does not move and at most 1.
* ``process``: the mean over the CoT's steps of a step judge's correct / relevant / understandable
  grades, in [0, 1]; on the organism, the share of steps written as one word of the legible grammar
  (``GrammarJudge``, which grades how steps look, not whether they are true).
* ``length``: minus the CoT length in words per reasoning step.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from legible.monitor import JudgeMonitor, Monitor
from legible.registry import Registry
from legible.reward._judges import GrammarJudge, HeuristicStepJudge, StepJudge
from legible.stats import js_divergence
from legible.sync import run_sync
from legible.tasks import Problem, Task, split_completion

__all__ = [
    "Episode",
    "Reward",
    "RewardContext",
    "RewardTerm",
    "disagreement",
    "is_async_term",
    "output_flag_rate",
    "reward_term",
    "term_names",
]

RewardTerm = Callable[[Problem, str, "str | None", dict], "float | Awaitable[float]"]


@dataclass
class RewardContext:
    """What term factories may use: the task, the monitor (keyword or judge), the process judge."""

    task: Task
    monitor: Monitor | None = None
    judge: StepJudge | GrammarJudge | None = None


@dataclass
class Episode:
    """One scored episode: the problem, the CoT (without the answer), the answer that counts, and what
    the rollout measured besides (paraphrase, the answers from each view, answer distributions)."""

    problem: Problem
    cot: str
    answer: str | None
    extras: dict = field(default_factory=dict)

    @classmethod
    def from_completion(cls, problem: Problem, completion: str, marker: str = "answer", **extras: Any) -> Episode:
        """Parse a completion with the one parser: no marker, no answer (scored wrong, never a crash)."""
        cot, answer = split_completion(completion, marker)
        return cls(problem, cot, answer, dict(extras))


@dataclass(frozen=True)
class _Entry:
    factory: Callable[[RewardContext], RewardTerm]
    organism: bool  # usable on the organism's episodes (its CoT is a word sequence, not prose)


_TERMS: Registry[_Entry] = Registry("reward term")


def reward_term(name: str, *, organism: bool = True):
    """Register a term factory ``(RewardContext) -> term`` under ``name``; ``organism=False`` for a term
    that reads prose (a step judge) and so needs a text backend."""

    def wrap(factory: Callable[[RewardContext], RewardTerm]):
        _TERMS.add(name, _Entry(factory, organism))
        return factory

    return wrap


def term_names(*, organism: bool | None = None) -> list[str]:
    """Every registered term, or those usable (``organism=True``) or not usable on the organism."""
    return sorted(n for n, e in _TERMS.items() if organism is None or e.organism == organism)


def is_async_term(term: RewardTerm) -> bool:
    return inspect.iscoroutinefunction(term)


def disagreement(task: Task, problem: Problem, a: str | None, b: str | None) -> float:
    """1.0 when the two answers differ in the task's normal form (a missing answer differs from any)."""
    ka, kb = task.answer_key(problem, a), task.answer_key(problem, b)
    return float(ka is None or kb is None or ka != kb)


@reward_term("outcome")
def outcome(ctx: RewardContext) -> RewardTerm:
    return lambda problem, cot, answer, extras: ctx.task.score(problem, answer)


@reward_term("monitor")
def monitor_penalty(ctx: RewardContext) -> RewardTerm:
    """Minus the monitor's hits per reasoning step, capped at 1; minus a judge's flag score."""
    monitor = ctx.monitor
    if monitor is None:
        raise ValueError("the 'monitor' reward term needs a monitor (monitor_words or a judge model)")
    if isinstance(monitor, JudgeMonitor):

        async def judged(problem: Problem, cot: str, answer: str | None, extras: dict) -> float:
            return -await monitor.score_async(cot)

        return judged
    return lambda problem, cot, answer, extras: -min(1.0, monitor.score(cot) / max(1, problem.steps))


def output_flag_rate(monitor: Monitor, task: Task, problem: Problem, output: str) -> float:
    """The monitor's hits in ``output`` (what was written after the answer) per word of the task's legible
    explanation, capped at 1. Counted per legible word rather than per word written, so that padding the
    output with more words does not dilute it."""
    return min(1.0, monitor.score(output) / max(1, len(task.explanation(problem).split())))


@reward_term("output_monitor")
def output_monitor_penalty(ctx: RewardContext) -> RewardTerm:
    """Minus ``output_flag_rate`` of the output after the answer (no output: 0)."""
    monitor = ctx.monitor
    if monitor is None or isinstance(monitor, JudgeMonitor):
        raise ValueError("the 'output_monitor' reward term needs a keyword monitor (monitor_words)")
    return lambda problem, cot, answer, extras: -output_flag_rate(monitor, ctx.task, problem, extras.get("output", ""))


@reward_term("paraphrase_outcome")
def paraphrase_outcome(ctx: RewardContext) -> RewardTerm:
    """Reward a CoT that is useful even after paraphrasing."""
    return lambda problem, cot, answer, extras: ctx.task.score(problem, extras.get("paraphrased_answer"))


@reward_term("sensitivity")
def sensitivity_penalty(ctx: RewardContext) -> RewardTerm:
    def term(problem: Problem, cot: str, answer: str | None, extras: dict) -> float:
        p, q = extras.get("answer_probs"), extras.get("answer_probs_paraphrased")
        if p is not None and q is not None:
            return -js_divergence(p, q)
        return -disagreement(ctx.task, problem, extras.get("original_answer"), extras.get("paraphrased_answer"))

    return term


@reward_term("process")
def process_score(ctx: RewardContext) -> RewardTerm:
    judge = ctx.judge or HeuristicStepJudge()
    if isinstance(judge, GrammarJudge):
        return lambda problem, cot, answer, extras: judge.score(cot, problem.steps)

    async def term(problem: Problem, cot: str, answer: str | None, extras: dict) -> float:
        return await judge.score_async(cot, problem.prompt)

    return term


@reward_term("length")
def length_penalty(ctx: RewardContext) -> RewardTerm:
    """Minus the CoT length in words per reasoning step."""
    return lambda problem, cot, answer, extras: -len(cot.split()) / max(1, problem.steps)


class Reward:
    """A weighted sum of named terms; ``scale`` multiplies each term's weight (the penalty ramp).
    Call it on one episode, or ``score`` a batch (model-calling terms then run concurrently)."""

    def __init__(self, weights: dict[str, float], ctx: RewardContext) -> None:
        for name in sorted(weights):
            _TERMS[name]  # an unknown name raises, naming the known ones
        self.weights = dict(weights)
        self.ctx = ctx
        self.terms: dict[str, RewardTerm] = {name: _TERMS[name].factory(ctx) for name in weights}

    def total(self, values: dict[str, float], scale: dict[str, float] | None = None) -> float:
        """The weighted sum of one episode's term values."""
        scale = scale or {}
        return sum(self.weights[n] * scale.get(n, 1.0) * v for n, v in values.items())

    def __call__(
        self, problem: Problem, cot: str, answer: str | None, extras: dict, scale: dict[str, float] | None = None
    ) -> tuple[float, dict[str, float]]:
        """The total reward of one episode and each term's unweighted value."""
        values = {}
        for name, term in self.terms.items():
            value = term(problem, cot, answer, extras)
            values[name] = run_sync(value) if inspect.isawaitable(value) else value
        return self.total(values, scale), values

    async def term_values_async(self, name: str, episodes: Sequence[Episode]) -> list[float]:
        term = self.terms[name]
        if is_async_term(term):
            return list(await asyncio.gather(*(term(e.problem, e.cot, e.answer, e.extras) for e in episodes)))
        return [float(term(e.problem, e.cot, e.answer, e.extras)) for e in episodes]

    async def score_async(
        self, episodes: Sequence[Episode], scale: dict[str, float] | None = None
    ) -> tuple[list[float], dict[str, list[float]]]:
        """(total reward per episode, each term's unweighted values)."""
        names = list(self.terms)
        columns = await asyncio.gather(*(self.term_values_async(n, episodes) for n in names))
        values = dict(zip(names, columns))
        totals = [self.total({n: values[n][i] for n in names}, scale) for i in range(len(episodes))]
        return totals, values

    def score(
        self, episodes: Sequence[Episode], scale: dict[str, float] | None = None
    ) -> tuple[list[float], dict[str, list[float]]]:
        return run_sync(self.score_async(episodes, scale))
