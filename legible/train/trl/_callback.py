"""``LegibleCallback``: the Trainer callback that writes ``metrics.jsonl``, evaluates every
``rl.eval_every`` steps, reports progress, and adds the rollout's state to TRL's checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import TrainerCallback

from legible.train._common import MetricsLog, Stopwatch
from legible.train.trl._checkpoint import drop_pickles, save_rollout_state

if TYPE_CHECKING:
    from legible.train.trl._rewards import StepRecord
    from legible.train.trl._rollout import ShoggothFaceRollout


class LegibleCallback(TrainerCallback):
    """Writes ``metrics.jsonl`` rows as TRL logs, evaluates, reports progress, and keeps the rollout's
    state (answerer weights and optimizer, paraphraser RNG) in TRL's checkpoints."""

    TRL_KEYS = ("loss", "grad_norm", "learning_rate", "kl", "entropy", "completions/mean_length", "reward_std")

    def __init__(
        self,
        record: StepRecord,
        rollout: ShoggothFaceRollout,
        log: MetricsLog,
        *,
        evaluate: Callable[[int], dict] | None = None,
        on_step: Callable[[int, dict], None] | None = None,
    ) -> None:
        self.record, self.rollout, self.log = record, rollout, log
        self.evaluate, self.on_step = evaluate, on_step
        self.clock = Stopwatch()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs or self.record.row is None:
            return
        step = state.global_step
        row = {"phase": "rl", "step": step, "kind": "train", **self.record.row}
        row |= {k.replace("/", "_"): logs[k] for k in self.TRL_KEYS if k in logs}
        row["seconds"] = round(self.clock(), 2)
        self.log.write({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()})
        self.record.row = None
        if self.evaluate is not None and step % self.record.cfg.rl.eval_every == 0:
            self.log.write({"phase": "rl", "step": step, "kind": "eval", **self.evaluate(step)})
        if self.on_step is not None:
            self.on_step(step, row)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_save = True  # the last step is always a checkpoint: a kill during evaluation resumes there

    def on_save(self, args, state, control, **kwargs):
        directory = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if directory.exists():
            drop_pickles(directory)
            save_rollout_state(self.rollout, directory)
