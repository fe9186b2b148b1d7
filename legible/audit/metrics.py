"""Statistics of the audit: area over a curve, answer-bias correction, bootstrap CIs, AUROC."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence

from legible.reward import js_divergence


def js_bits(p: dict[str, float], q: dict[str, float]) -> float:
    """Jensen-Shannon divergence in bits between two distributions given as dicts."""
    keys = sorted(set(p) | set(q))
    return js_divergence([p.get(k, 0.0) for k in keys], [q.get(k, 0.0) for k in keys])


def mean_dist(dists: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for d in dists for k in d})
    return {k: sum(d.get(k, 0.0) for d in dists) / len(dists) for k in keys}


def area_over_curve(xs: Sequence[float], same: Sequence[float]) -> float:
    """Trapezoid area above a same-answer curve on [min x, max x], divided by the width: 0 when
    the answer never changes, 1 when it always does (Lanham et al. 2023's AOC)."""
    width = xs[-1] - xs[0]
    if width <= 0:
        return 1.0 - same[0]
    area = sum((xs[i + 1] - xs[i]) * ((1 - same[i]) + (1 - same[i + 1])) / 2 for i in range(len(xs) - 1))
    return area / width


def bias_corrected_same(answers_at: Sequence[str | None], final: Sequence[str | None]) -> float:
    """Agreement between answers at one truncation and the final answers, corrected for chance
    agreement from the answer marginals (Cohen's kappa): a model that always answers "A"
    agrees with itself at every truncation without using its CoT. This is how legible applies
    Bentham et al. 2024's point that raw early-answering agreement confounds faithfulness with
    answer bias."""
    n = len(final)
    if n == 0:
        return float("nan")
    observed = sum(a == b for a, b in zip(answers_at, final)) / n
    pa, pb = Counter(answers_at), Counter(final)
    chance = sum(pa[k] * pb[k] for k in pa) / (n * n)
    return 1.0 if chance >= 1 else (observed - chance) / (1 - chance)


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
