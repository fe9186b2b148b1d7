"""Training: stage 1 (supervised, legible CoTs), the organism's GRPO loop, its evaluator, a run directory
that resumes, and the TRL (``legible.train.trl``) and verl (``legible.train.verl``) backends.

``run_training(cfg, out)`` trains a run on any backend. The names load on first use (PEP 562).
"""

from __future__ import annotations

from legible.lazy import lazy_exports

_EXPORTS = {
    "run_training": "legible.train._run",
    "prepare_run_dir": "legible.train._run",
    "pretrain": "legible.train._pretrain",
    "build_model": "legible.train._pretrain",
    "train_grpo": "legible.train._grpo",
    "evaluate_organism": "legible.train._evaluate",
    "example_episodes": "legible.train._evaluate",
    "learned_code": "legible.train._evaluate",
    "legibility": "legible.train._evaluate",
    "MetricsLog": "legible.train._common",
    "read_metrics": "legible.train._common",
    "latest_checkpoint": "legible.train._common",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
