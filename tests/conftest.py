"""Shared fixtures. Torch runs single-threaded: on a 2-core machine with other work running,
intra-op threads make the small matrices in these tests many times slower, not faster."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)

settings.register_profile("legible", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("legible")
