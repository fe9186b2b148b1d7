"""The audit's own statistics: area over a same-answer curve and the answer-bias correction (the
general ones, bootstrap CIs, AUROC, JS divergence, live in ``legible.stats``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


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
