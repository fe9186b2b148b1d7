"""Mutual information between a hidden variable and what a decoder recovers, in bits.

Estimated from the confusion matrix of (true, decoded) pairs with the Miller-Madow bias
correction on each entropy; by the data-processing inequality this bounds from below the
information the text carries about the variable (up to estimation error).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence


def _entropy_bits(counts: Counter, n: int) -> float:
    h = -sum(c / n * math.log2(c / n) for c in counts.values() if c)
    return h + (sum(1 for c in counts.values() if c) - 1) / (2 * n * math.log(2))


def mutual_information(true: Sequence[Hashable], decoded: Sequence[Hashable]) -> float:
    """I(true; decoded) in bits, Miller-Madow corrected, floored at 0."""
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
