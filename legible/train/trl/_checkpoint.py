"""The rollout's part of a TRL checkpoint (Face weights, answerer optimizer, paraphraser RNG) beside TRL's
files, and the newest complete checkpoint to resume from."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from trl import GRPOTrainer

    from legible.train.trl._rollout import ShoggothFaceRollout

LEGIBLE_STATE = "legible"  # our part of a TRL checkpoint directory; its state.json marks it complete


def drop_pickles(directory: Path) -> None:
    """transformers pickles its TrainingArguments beside every save and never reads them back; the run
    directory holds none (the optimizer, scheduler and RNG files are torch tensors loaded with
    ``weights_only=True``)."""
    (Path(directory) / "training_args.bin").unlink(missing_ok=True)


def save_rollout_state(rollout: ShoggothFaceRollout, checkpoint: Path) -> None:
    """Our part of a checkpoint, beside TRL's files: safetensors and JSON, written to a temporary
    directory and renamed, so its ``state.json`` marks a complete checkpoint."""
    from safetensors.torch import save_file, save_model

    from legible.policy import optimizer_tensors

    target = checkpoint / LEGIBLE_STATE
    tmp = checkpoint / (LEGIBLE_STATE + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    scalars = None
    if rollout.face is not None:
        save_model(rollout.face, str(tmp / "face.safetensors"))  # one file; tied weights stored once
    if rollout.answerer_opt is not None:
        tensors, scalars = optimizer_tensors(rollout.answerer_opt, "answerer")
        save_file(tensors or {"empty": torch.zeros(0)}, str(tmp / "answerer_optimizer.safetensors"))
    version, internal, gauss = rollout.rng.getstate()
    state = {"paraphraser_rng": [version, list(internal), gauss], "answerer_optimizer": scalars}
    (tmp / "state.json").write_text(json.dumps(state))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def load_rollout_state(rollout: ShoggothFaceRollout, checkpoint: Path, trainer: GRPOTrainer) -> None:
    from safetensors.torch import load_file, load_model

    from legible.policy import restore_optimizer

    source = checkpoint / LEGIBLE_STATE
    state = json.loads((source / "state.json").read_text())
    if rollout.face is not None:
        load_model(rollout.face, str(source / "face.safetensors"))
    if state["answerer_optimizer"] is not None:
        tensors = load_file(str(source / "answerer_optimizer.safetensors"))
        restore_optimizer(rollout.answerer_optimizer(trainer), "answerer", tensors, state["answerer_optimizer"])
    version, internal, gauss = state["paraphraser_rng"]
    rollout.rng.setstate((version, tuple(internal), gauss))


def latest_complete_checkpoint(directory: Path) -> Path | None:
    """The newest ``checkpoint-N`` whose legible state was written (so TRL's files were, before it);
    newer incomplete ones, from a kill mid-save, are removed."""
    found = []
    for p in Path(directory).glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m:
            found.append((int(m.group(1)), p))
    found.sort()
    while found and not (found[-1][1] / LEGIBLE_STATE / "state.json").exists():
        shutil.rmtree(found.pop()[1], ignore_errors=True)
    return found[-1][1] if found else None
