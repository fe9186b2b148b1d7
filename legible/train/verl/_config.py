"""The legible run config a verl worker reads (``legible_config``, else ``$LEGIBLE_CONFIG``), and the names
verl's two plug-ins and the launch script share."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import yaml

from legible.config import TEXT_BACKENDS, ConfigError, RunConfig, load_config

log = logging.getLogger(__name__)

AGENT_NAME = "legible_shoggoth_face"
CONFIG_ENV = "LEGIBLE_CONFIG"


def load_legible_config(path: str | os.PathLike[str] | None = None) -> RunConfig:
    """The run config the reward and the agent loop share: ``path``, else ``$LEGIBLE_CONFIG``, else the
    ``outcome`` condition with every other field at its default."""
    return _load_config(_config_path(path))


def _config_path(path: str | os.PathLike[str] | None) -> str | None:
    path = path or os.environ.get(CONFIG_ENV) or None
    return str(Path(path).expanduser()) if path else None


@functools.lru_cache(maxsize=8)  # Ray's reward and agent-loop workers live for the run: read the file once
def _load_config(path: str | None) -> RunConfig:
    if path is None:
        log.warning("no legible config (reward_kwargs legible_config or $%s): condition outcome", CONFIG_ENV)
        return RunConfig.model_validate({"backend": "verl", "condition": "outcome"})
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        # A Ray worker on another node reads it: the usual cause is a path only the launching node has.
        raise ConfigError(f"{path}: no such config file on this node (use a path every node sees)") from None
    except yaml.YAMLError:
        data = None  # load_config reports the line
    missing_backend = isinstance(data, dict) and "backend" not in data
    cfg = load_config(path, {"backend": "verl"} if missing_backend else None)
    if cfg.backend not in TEXT_BACKENDS:  # a trl config has every field verl reads
        raise ConfigError(f"{path}: backend: {cfg.backend} is the organism's; write backend: verl")
    return cfg
