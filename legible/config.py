"""Run configuration: pydantic models, YAML loading, and the named conditions."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A bad config or command line; its message is one line naming the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskConfig(_Strict):
    name: Literal["coin_flip", "running_sum"] = "coin_flip"
    min_steps: int = Field(8, ge=1, le=24)
    max_steps: int = Field(14, ge=1, le=24)
    modulus: int = Field(5, ge=2, le=10, description="running_sum only")

    @model_validator(mode="after")
    def _steps_ordered(self):
        if self.min_steps > self.max_steps:
            raise ValueError("min_steps must not exceed max_steps")
        return self

    def kwargs(self) -> dict:
        """The task's constructor arguments."""
        kwargs = {"min_steps": self.min_steps, "max_steps": self.max_steps}
        if self.name == "running_sum":
            kwargs["modulus"] = self.modulus
        return kwargs

    def build(self):
        from legible.tasks import make_task

        return make_task(self.name, **self.kwargs())


class ModelConfig(_Strict):
    n_layer: int = Field(2, ge=1)
    n_head: int = Field(4, ge=1)
    n_embd: int = Field(64, ge=8)

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.n_embd % self.n_head:
            raise ValueError("n_embd must be divisible by n_head")
        return self


class PretrainConfig(_Strict):
    """Stage 1: supervised training on legible CoTs."""

    steps: int = Field(1500, ge=0, description="at most this many steps")
    target_accuracy: float | None = Field(
        0.99, gt=0, le=1, description="stop once held-out greedy accuracy reaches this (checked every check_every)"
    )
    paraphrase_ratio: float | None = Field(
        0.98,
        gt=0,
        le=1,
        description="also stop only once answers from paraphrased legible CoTs reach this share of the "
        "unparaphrased accuracy (with a paraphraser; checked with target_accuracy)",
    )
    check_every: int = Field(100, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    paraphrase_prob: float = Field(
        0.5, ge=0, le=1, description="share of examples whose CoT is paraphrased, loss on the answer only"
    )
    alias_rate: float = Field(
        0.05,
        ge=0,
        le=0.5,
        description="share of state slots the corpus writes with an alias of the state: a neutral word that "
        "the monitor does not know, as an LLM's corpus holds rare other names for things",
    )
    aliases_per_state: int = Field(
        1, ge=1, le=3, description="aliases of each state, drawn per seed from the neutral words"
    )
    checkpoint_every: int = Field(400, ge=1)


class RLConfig(_Strict):
    """Stage 2: GRPO."""

    steps: int = Field(300, ge=0)
    prompts: int = Field(32, ge=1, description="problems per step")
    group_size: int = Field(4, ge=2, description="samples per problem (G)")
    lr: float = Field(3e-4, gt=0)
    scale_advantages: bool = Field(
        False, description="divide group-centred rewards by the group's std (GRPO) instead of only centring (Dr. GRPO)"
    )
    kl_coef: float = Field(0.0, ge=0)
    entropy_coef: float = Field(0.0, ge=0)
    temperature: float = Field(1.0, gt=0)
    ramp_steps: int = Field(50, ge=0, description="steps over which every penalty term ramps in")
    eval_every: int = Field(50, ge=1)
    eval_problems: int = Field(128, ge=8)
    checkpoint_every: int = Field(100, ge=1)


class ConditionConfig(_Strict):
    """A named combination of reward terms and defences."""

    name: str
    rewards: dict[str, float] = Field(default_factory=lambda: {"outcome": 1.0})
    paraphrase_in_loop: bool = Field(False, description="the answer is produced from a paraphrase of the CoT")
    face: bool = Field(False, description="a separate Face model writes the answer")

    @model_validator(mode="after")
    def _known_terms(self):
        from legible.reward import term_names

        for name in self.rewards:
            if name not in term_names():
                raise ValueError(f"unknown reward term {name!r}; choose from {term_names()}")
        if self.face and not self.paraphrase_in_loop:
            raise ValueError("face: true needs paraphrase_in_loop: true (the Face reads the paraphrase)")
        return self


MONITOR_WEIGHT = 0.3
CONDITIONS: dict[str, ConditionConfig] = {
    c.name: c
    for c in [
        ConditionConfig(name="outcome", rewards={"outcome": 1.0}),
        ConditionConfig(name="monitor", rewards={"outcome": 1.0, "monitor": MONITOR_WEIGHT}),
        ConditionConfig(
            name="monitor+paraphrase", rewards={"outcome": 1.0, "monitor": MONITOR_WEIGHT}, paraphrase_in_loop=True
        ),
        ConditionConfig(
            name="monitor+face",
            rewards={"outcome": 1.0, "monitor": MONITOR_WEIGHT},
            paraphrase_in_loop=True,
            face=True,
        ),
        ConditionConfig(
            name="monitor+sensitivity", rewards={"outcome": 1.0, "monitor": MONITOR_WEIGHT, "sensitivity": 1.0}
        ),
    ]
}


class EvalConfig(_Strict):
    problems: int = Field(500, ge=30, description="held-out problems for the final evaluation")
    seed: int = 12345


class RunConfig(_Strict):
    seed: int = 0
    task: TaskConfig = TaskConfig()
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    rl: RLConfig = RLConfig()
    condition: ConditionConfig = CONDITIONS["monitor"]
    paraphraser: str = "legible_only"
    monitor_words: list[str] | None = Field(None, description="banned words; default: the task's state words")
    init: str | None = Field(None, description="a stage-1 model file to start RL from, skipping stage 1")
    eval: EvalConfig = EvalConfig()

    @model_validator(mode="before")
    @classmethod
    def _condition_by_name(cls, data):
        if isinstance(data, dict) and isinstance(data.get("condition"), str):
            name = data["condition"]
            if name not in CONDITIONS:
                raise ValueError(f"condition: unknown preset {name!r}; choose from {sorted(CONDITIONS)}")
            data = {**data, "condition": CONDITIONS[name].model_dump()}
        return data

    @field_validator("paraphraser")
    @classmethod
    def _paraphraser_known(cls, spec: str) -> str:
        from legible.paraphrase import check_paraphraser_spec

        check_paraphraser_spec(spec)
        return spec


def format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{source}: {where}: {msg}{more}"


def load_config(path: str | Path, overrides: dict | None = None) -> RunConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping")
    data.update(overrides or {})
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path))) from None


def save_config(cfg: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False))
