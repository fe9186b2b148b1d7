"""Shared fixtures. Torch runs single-threaded: on a 2-core machine with other work running,
intra-op threads make the small matrices in these tests many times slower, not faster."""

from __future__ import annotations

import os

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)

# Derandomized so CI is reproducible; the "explore" profile (HYPOTHESIS_PROFILE=explore) draws
# fresh, many more examples for bug hunting.
settings.register_profile(
    "legible", max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "legible"))
