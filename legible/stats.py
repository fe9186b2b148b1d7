"""Statistics every layer uses: information (mutual information, Jensen-Shannon divergence),
intervals (bootstrap, t-interval of a mean) and ranking (AUROC).

Written by hand, not taken from scipy or scikit-learn: each is a few lines over Python lists, the
callers pass lists of a few hundred numbers (where numpy's conversion costs more than the sum), and
the Miller-Madow correction and the None/NaN handling are ours to define.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Hashable, Sequence

__all__ = [
    "auroc",
    "bootstrap_ci",
    "js_bits",
    "js_divergence",
    "mean_ci",
    "mean_dist",
    "mutual_information",
]


# ------------------------------------------------------------------------------------ information


def js_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence in bits (0 to 1) between two distributions over the same outcomes."""

    def kl(a, b):
        return sum(x * math.log2(x / y) for x, y in zip(a, b) if x > 0)

    m = [(x + y) / 2 for x, y in zip(p, q)]
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def js_bits(p: dict, q: dict) -> float:
    """Jensen-Shannon divergence in bits between two distributions given as {outcome: probability}.
    Outcomes may be of any hashable kind, None included (an answer nobody could parse)."""
    keys = sorted(set(p) | set(q), key=_order)
    return js_divergence([p.get(k, 0.0) for k in keys], [q.get(k, 0.0) for k in keys])


def mean_dist(dists: Sequence[dict]) -> dict:
    """The average of distributions given as {outcome: probability}."""
    keys = sorted({k for d in dists for k in d}, key=_order)
    return {k: sum(d.get(k, 0.0) for d in dists) / len(dists) for k in keys}


def _order(key: Hashable) -> tuple[bool, str]:
    # A total order over mixed outcomes: None (unparsable) last, the rest by their text.
    return (key is None, str(key))


def _entropy_bits(counts: Counter, n: int) -> float:
    h = -sum(c / n * math.log2(c / n) for c in counts.values() if c)
    return h + (sum(1 for c in counts.values() if c) - 1) / (2 * n * math.log(2))


def mutual_information(true: Sequence[Hashable], decoded: Sequence[Hashable]) -> float:
    """I(true; decoded) in bits from the confusion matrix of (true, decoded) pairs, with the Miller-Madow
    bias correction on each entropy, floored at 0. By the data-processing inequality it bounds from below
    the information the text carries about the variable (up to estimation error)."""
    if len(true) != len(decoded):
        raise ValueError("true and decoded must have the same length")
    n = len(true)
    if n == 0:
        return 0.0
    mi = (
        _entropy_bits(Counter(true), n)
        + _entropy_bits(Counter(decoded), n)
        - _entropy_bits(Counter(zip(true, decoded)), n)
    )
    return max(0.0, mi)


# -------------------------------------------------------------------------------------- intervals


def bootstrap_ci(
    values: Sequence, statistic: Callable[[list], float] | None = None, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """(estimate, 2.5th percentile, 97.5th percentile) of ``statistic`` (default: mean) over
    samples resampled with replacement. Nones are dropped first for the default mean."""
    if statistic is None:
        values = [v for v in values if v is not None]
        statistic = lambda xs: sum(xs) / len(xs)  # noqa: E731
    values = list(values)
    if not values:
        return (float("nan"),) * 3
    rng = random.Random(seed)
    estimate = statistic(values)
    stats = sorted(statistic([values[rng.randrange(len(values))] for _ in values]) for _ in range(n_boot))
    return estimate, stats[int(0.025 * (n_boot - 1))], stats[int(0.975 * (n_boot - 1))]


# Student's t, 97.5th percentile, by degrees of freedom (1.96 beyond the table).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def mean_ci(values: Sequence[float | None], bounds: tuple[float | None, float | None] = (None, None)) -> dict:
    """{"mean", "ci95", "values"}: the mean of the numbers among ``values`` (None and NaN skipped) and its
    95% t-interval (None with fewer than two numbers), clipped to ``bounds`` (the metric's range: a share's
    interval stays in [0, 1]); ``values`` as given."""
    values = list(values)
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return {"mean": None, "ci95": None, "values": values}
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return {"mean": mean, "ci95": None, "values": values}
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    half = T_975.get(len(vals) - 1, 1.96) * sd / math.sqrt(len(vals))
    lo, hi = mean - half, mean + half
    if bounds[0] is not None:
        lo = max(lo, bounds[0])
    if bounds[1] is not None:
        hi = min(hi, bounds[1])
    return {"mean": mean, "ci95": [lo, hi], "values": values}


# ---------------------------------------------------------------------------------------- ranking


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a positive scores above a negative), ties counting half (the Mann-Whitney U form)."""
    if not positives or not negatives:
        return float("nan")
    ranked = sorted([(v, 1) for v in positives] + [(v, 0) for v in negatives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # average 1-based rank of the tie block
        rank_sum += mid * sum(label for _, label in ranked[i:j])
        i = j
    p, n = len(positives), len(negatives)
    return (rank_sum - p * (p + 1) / 2) / (p * n)
