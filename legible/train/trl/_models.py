"""Loading the tokenizer and the models (policy, Face) from a local directory or a Hugging Face id, with
errors that name the config field; the LoRA config TRL wraps the policy with."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from legible.config import ConfigFieldError, TRLSettings
from legible.policy import LocalModelError, resolve_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def _local(spec: str, what: str) -> str:
    """A short name of a model legible prepares offline (``smollm2-135m``) becomes its directory."""
    try:
        return resolve_model(spec, on_status=lambda message: print(f"legible: {message}", file=sys.stderr))
    except LocalModelError as e:
        raise ConfigFieldError(f"{what}: {e}") from None


def _check_local(spec: str, what: str) -> None:
    """A spec that can only be a path (absolute, relative, home, or more than "org/name") must exist:
    the hub's error for a missing directory talks about repo ids."""
    looks_local = spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or os.sep != "/" and os.sep in spec
    if looks_local and not Path(spec).expanduser().is_dir():
        raise ConfigFieldError(f"{what}: no model directory at {spec!r}")


def load_tokenizer(spec: str, settings: TRLSettings) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    spec = _local(spec, "model")
    _check_local(spec, "model")
    try:
        tok = AutoTokenizer.from_pretrained(spec, padding_side="left", trust_remote_code=settings.trust_remote_code)
    except (OSError, ValueError) as e:
        raise ConfigFieldError(f"model: cannot load a tokenizer from {spec!r}: {_first_line(e)}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(spec: str, settings: TRLSettings, what: str = "model") -> PreTrainedModel:
    """A causal LM from a local directory, a Hugging Face id (offline runs: set HF_HUB_OFFLINE=1) or the short
    name of a model legible prepares offline (``legible models``)."""
    from transformers import AutoModelForCausalLM

    dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    spec = _local(spec, what)
    _check_local(spec, what)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            spec, dtype=dtype[settings.dtype], trust_remote_code=settings.trust_remote_code
        )
    except (OSError, ValueError) as e:
        raise ConfigFieldError(f"{what}: cannot load a causal language model from {spec!r}: {_first_line(e)}") from None
    return model


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _peft_config(settings: TRLSettings):
    if settings.lora is None:
        return None
    try:
        from peft import LoraConfig
    except ImportError:
        raise ConfigFieldError("trl.lora: needs the peft package (pip install peft)") from None
    lora = settings.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
