"""Checkpoints as safetensors plus JSON; nothing is ever unpickled.

A model file ``NAME.safetensors`` sits beside ``NAME.json`` (its TinyConfig and vocabulary).
A trainer checkpoint is a directory holding every model, every optimizer's tensors, the RNG
states and the step, written to a temporary directory and renamed into place so that a kill
mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from legible.policy._tiny import TinyConfig, TinyTransformer
from legible.policy._vocab import VOCAB, Vocab


def _policy_files(path: str | Path) -> tuple[Path, Path]:
    """``NAME`` (or ``NAME.safetensors``/``NAME.json``) -> the weights and config files. Names
    may contain dots (``policy.step1``), so the suffix is appended, never substituted."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.parent / f"{path.name}.safetensors", path.parent / f"{path.name}.json"


def save_policy(model: TinyTransformer, path: Path, vocab: Vocab = VOCAB) -> None:
    """Write the weights and their config, each to a temporary name first and renamed into place, so that
    a kill leaves either the old pair or a complete new one (the config, renamed last, marks it complete)."""
    weights, meta_path = _policy_files(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # from here until the new config lands, the pair reads as unfinished
    tmp_weights, tmp_meta = weights.with_name(weights.name + ".tmp"), meta_path.with_name(meta_path.name + ".tmp")
    save_model(model, str(tmp_weights))
    tmp_weights.replace(weights)
    meta = {"config": model.cfg.to_dict(), "vocab": list(vocab.words)}
    tmp_meta.write_text(json.dumps(meta, indent=1))
    tmp_meta.replace(meta_path)


def load_policy(path: str | Path) -> TinyTransformer:
    path = Path(path)
    weights, meta_path = _policy_files(path)
    if not weights.exists() or not meta_path.exists():
        raise FileNotFoundError(f"{path}: expected {weights.name} and {meta_path.name}")
    meta = json.loads(meta_path.read_text())
    if tuple(meta["vocab"]) != VOCAB.words:
        raise ValueError(f"{meta_path}: vocabulary differs from this version of legible")
    model = TinyTransformer(TinyConfig(**meta["config"]))
    load_model(model, str(weights))
    return model


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    state = opt.state_dict()
    tensors, scalars = {}, {"param_groups": state["param_groups"], "state": {}}
    for idx, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value.detach().clone().contiguous()
            else:
                scalars["state"].setdefault(str(idx), {})[key] = value
    return tensors, scalars


def restore_optimizer(opt: torch.optim.Optimizer, prefix: str, tensors: dict, scalars: dict) -> None:
    state: dict = {}
    for name, value in tensors.items():
        parts = name.split(".", 2)
        if len(parts) == 3 and parts[0] == prefix:
            state.setdefault(int(parts[1]), {})[parts[2]] = value
    for idx, slots in scalars["state"].items():
        state.setdefault(int(idx), {}).update(slots)
    opt.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})


def save_trainer(
    directory: Path,
    *,
    step: int,
    models: dict[str, TinyTransformer],
    optimizers: dict[str, torch.optim.Optimizer],
    py_rng: random.Random,
    generator: torch.Generator,
    extra: dict | None = None,
) -> None:
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, model in models.items():
        save_policy(model, tmp / name)
    tensors = {"rng.torch": generator.get_state()}
    scalars = {}
    for name, opt in optimizers.items():
        t, s = optimizer_tensors(opt, name)
        tensors.update(t)
        scalars[name] = s
    save_file(tensors, str(tmp / "trainer.safetensors"))
    version, internal, gauss = py_rng.getstate()
    state = {"step": step, "optimizers": scalars, "py_rng": [version, list(internal), gauss], "extra": extra or {}}
    (tmp / "state.json").write_text(json.dumps(state))
    # Never a moment without a complete checkpoint: the old one is moved aside, not deleted,
    # until the new one is in place.
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def load_trainer(
    directory: Path,
    *,
    models: dict[str, TinyTransformer],
    optimizers: dict[str, torch.optim.Optimizer],
    py_rng: random.Random,
    generator: torch.Generator,
) -> dict:
    """Restore everything saved by ``save_trainer`` in place; returns the saved state dict."""
    directory = Path(directory)
    if not (directory / "state.json").exists() and directory.with_name(directory.name + ".old").exists():
        directory = directory.with_name(directory.name + ".old")  # killed between the two renames
    for name, model in models.items():
        load_model(model, str(directory / f"{name}.safetensors"))
    tensors = load_file(str(directory / "trainer.safetensors"))
    state = json.loads((directory / "state.json").read_text())
    for name, opt in optimizers.items():
        restore_optimizer(opt, name, tensors, state["optimizers"][name])
    generator.set_state(tensors["rng.torch"])
    version, internal, gauss = state["py_rng"]
    py_rng.setstate((version, tuple(internal), gauss))
    return state
