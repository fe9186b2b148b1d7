"""The organism's tasks: coin flip and running sum mod m.

Prompts have a fixed width (the steps are followed by the blank word "_" up to
``max_steps``) and the legible CoT is one word per step, so the k-th step of every CoT sits
at the same distance from the k-th input. With variable-width prompts, or two CoT words per
step ("then heads"), that distance depends on N or on k, and a 2-layer transformer stayed at
chance on the later steps for over 1000 supervised steps.

Both are state-tracking problems whose answer a tiny transformer cannot compute in one
forward pass but can compute step by step in a CoT; every intermediate state is kept in
``Problem.states`` so analyses can measure how much of it a CoT carries.
"""

from __future__ import annotations

import random

from legible.tasks._base import Problem, Task, register_task


@register_task
class CoinFlip(Task):
    """A coin starts on a side and is flipped N times, each flip "same" or "diff"."""

    name = "coin_flip"
    state_words = ("heads", "tails")
    answer_words = ("heads", "tails")

    def __init__(self, min_steps: int = 8, max_steps: int = 14) -> None:
        self.min_steps, self.max_steps = min_steps, max_steps

    def sample(self, rng: random.Random, steps: int | None = None) -> Problem:
        n = steps if steps is not None else rng.randint(self.min_steps, self.max_steps)
        start = rng.choice(self.state_words)
        return self._problem(start, [rng.choice(("same", "diff")) for _ in range(n)])

    def _problem(self, start: str, flips: list[str]) -> Problem:
        side, states = start, []
        for f in flips:
            if f == "diff":
                side = "tails" if side == "heads" else "heads"
            states.append(side)
        prompt = " ".join(["coin", start, *flips, *["_"] * (self.max_steps - len(flips))])
        return Problem(prompt, states[-1], len(flips), tuple(states), {"flips": flips, "start": start})

    def counterfactual(self, problem: Problem) -> Problem:
        """The same problem with the first flip changed: every state, the first one included, differs."""
        flips = list(problem.metadata["flips"])
        flips[0] = "same" if flips[0] == "diff" else "diff"
        return self._problem(problem.metadata["start"], flips)


@register_task
class CoinFlipExplained(CoinFlip):
    """Coin flip whose output restates the state after the answer ("heads, because it was tails and is heads
    now"): the last two states, then the end token. The explanation is not scored; it gives a monitor that
    reads only the output something to read (feedback spillover, Drori et al. 2025)."""

    name = "coin_flip_explained"
    explains = True

    def explanation(self, problem: Problem) -> str:
        return " ".join(problem.states[-2:])


@register_task
class RunningSum(Task):
    """N digits; the answer is their sum mod m, and each state is the running sum mod m."""

    name = "running_sum"

    def __init__(self, min_steps: int = 8, max_steps: int = 14, modulus: int = 5) -> None:
        if not 2 <= modulus <= 10:
            raise ValueError("modulus must be between 2 and 10")
        self.min_steps, self.max_steps, self.modulus = min_steps, max_steps, modulus
        self.state_words = tuple(str(d) for d in range(modulus))
        self.answer_words = self.state_words

    def sample(self, rng: random.Random, steps: int | None = None) -> Problem:
        n = steps if steps is not None else rng.randint(self.min_steps, self.max_steps)
        return self._problem([rng.randrange(self.modulus) for _ in range(n)])

    def _problem(self, digits: list[int]) -> Problem:
        states, total = [], 0
        for d in digits:
            total = (total + d) % self.modulus
            states.append(str(total))
        prompt = " ".join(["sum", *map(str, digits), *["_"] * (self.max_steps - len(digits))])
        return Problem(prompt, states[-1], len(digits), tuple(states), {"digits": digits})

    def counterfactual(self, problem: Problem) -> Problem:
        """The same problem with the first digit changed: every running sum differs."""
        digits = list(problem.metadata["digits"])
        digits[0] = (digits[0] + 1) % self.modulus
        return self._problem(digits)


def slot_of(position: int, steps: int) -> int:
    """The reasoning step a CoT word belongs to: the organism's grammar writes step k at
    position k, and words past the last step (a repeated final state, say) count to it."""
    return min(position, steps - 1)


def legible_cot(problem: Problem) -> str:
    """The legible grammar: the state after each step, one word per step."""
    return " ".join(problem.states)
