"""Reward terms and their composition.

A reward term is a function ``(problem, cot, answer, extras) -> float``. A condition names
terms with weights; the reward of an episode is their weighted sum. ``extras`` carries what
the rollout measured besides the answer: ``paraphrased_answer`` (the answer produced from
a paraphrase of the CoT) and ``answer_probs`` / ``answer_probs_paraphrased`` (the
answerer's distributions over answers given the original and the paraphrased CoT).
Factories receive a ``RewardContext`` and return the term, so a term can hold its task or
monitor without globals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from legible.monitor.base import Monitor
from legible.tasks.base import Problem, Task

RewardTerm = Callable[[Problem, str, "str | None", dict], float]


@dataclass
class RewardContext:
    task: Task
    monitor: Monitor | None = None


_TERMS: dict[str, Callable[[RewardContext], RewardTerm]] = {}


def reward_term(name: str):
    def wrap(factory: Callable[[RewardContext], RewardTerm]):
        _TERMS[name] = factory
        return factory

    return wrap


def term_names() -> list[str]:
    return sorted(_TERMS)


@reward_term("outcome")
def outcome(ctx: RewardContext) -> RewardTerm:
    return lambda problem, cot, answer, extras: ctx.task.score(problem, answer)


@reward_term("monitor")
def monitor_penalty(ctx: RewardContext) -> RewardTerm:
    """Minus the monitor's hits per reasoning step, capped at 1."""
    if ctx.monitor is None:
        raise ValueError("the 'monitor' reward term needs a monitor")
    return lambda problem, cot, answer, extras: -min(1.0, ctx.monitor.score(cot) / max(1, problem.steps))


@reward_term("paraphrase_outcome")
def paraphrase_outcome(ctx: RewardContext) -> RewardTerm:
    """Reward a CoT that is useful even after paraphrasing."""
    return lambda problem, cot, answer, extras: ctx.task.score(problem, extras["paraphrased_answer"])


@reward_term("sensitivity")
def sensitivity_penalty(ctx: RewardContext) -> RewardTerm:
    """Minus the Jensen-Shannon divergence (bits) between the answer distributions given the
    original and the paraphrased CoT."""
    return lambda problem, cot, answer, extras: (
        -js_divergence(extras["answer_probs"], extras["answer_probs_paraphrased"])
    )


@reward_term("length")
def length_penalty(ctx: RewardContext) -> RewardTerm:
    """Minus the CoT length in words per reasoning step."""
    return lambda problem, cot, answer, extras: -len(cot.split()) / max(1, problem.steps)


def js_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence in bits (0 to 1)."""

    def kl(a, b):
        return sum(x * math.log2(x / y) for x, y in zip(a, b) if x > 0)

    m = [(x + y) / 2 for x, y in zip(p, q)]
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


class Reward:
    """A weighted sum of named terms; ``scale`` multiplies each term's weight (for ramps)."""

    def __init__(self, weights: dict[str, float], ctx: RewardContext) -> None:
        unknown = sorted(set(weights) - set(_TERMS))
        if unknown:
            raise ValueError(f"unknown reward term {unknown[0]!r}; choose from {term_names()}")
        self.weights = dict(weights)
        self.terms = {name: _TERMS[name](ctx) for name in weights}

    def __call__(
        self, problem: Problem, cot: str, answer: str | None, extras: dict, scale: dict[str, float] | None = None
    ) -> tuple[float, dict[str, float]]:
        """The total reward and each term's unweighted value."""
        values = {name: term(problem, cot, answer, extras) for name, term in self.terms.items()}
        scale = scale or {}
        total = sum(self.weights[n] * scale.get(n, 1.0) * v for n, v in values.items())
        return total, values
