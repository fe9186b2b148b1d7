"""Run configuration: pydantic models, YAML loading, and the named conditions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if TYPE_CHECKING:
    from legible.monitor import Monitor
    from legible.policy import StepParaphrase
    from legible.reward import Reward
    from legible.tasks import Task


class ConfigError(ValueError):
    """Bad input: a config, a command line, or a file a command reads (a run's metrics, a dataset); its
    message is one line naming the file and the field or line."""


class ConfigFieldError(ConfigError):
    """A config field found bad only when the run uses it (a model that does not load, a dataset file
    with a bad line); its message names the field, and the command line adds the file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


ORGANISM_TASKS = ("coin_flip", "running_sum", "coin_flip_explained")
TEXT_TASKS = ("gsm8k", "multiple_choice", "program_output", "text_game", "coin_flip_text")
# The tasks whose problems have N steps drawn from min_steps..max_steps (the others ignore both fields).
STEP_TASKS = ("coin_flip", "running_sum", "coin_flip_explained", "coin_flip_text")
# coin_flip_text's N when the config does not say: few enough flips that a 135M-parameter instruct model
# (SmolLM2) is right more often than by chance, so RL gets a reward signal (Skaf et al. 2025 used 6).
TEXT_COIN_STEPS = (1, 3)
# Evaluation sizes: the organism evaluates in a blink, so its numbers must rest on enough problems; a real
# model on a CPU takes seconds a problem, so the text backends may evaluate on a handful.
ORGANISM_EVAL_MIN, ORGANISM_RL_EVAL_MIN, TEXT_EVAL_MIN = 30, 8, 4


class TaskConfig(_Strict):
    name: Literal[
        "coin_flip",
        "running_sum",
        "coin_flip_explained",
        "gsm8k",
        "multiple_choice",
        "program_output",
        "text_game",
        "coin_flip_text",
    ] = "coin_flip"
    min_steps: int = Field(8, ge=1, le=24, description="the step tasks (coin_flip_text's default: 1) only")
    max_steps: int = Field(14, ge=1, le=24, description="the step tasks (coin_flip_text's default: 3) only")
    modulus: int = Field(5, ge=2, le=10, description="running_sum only")
    path: str | None = Field(
        None,
        description="gsm8k, multiple_choice, program_output: a JSONL file (default: the shipped sample, or "
        "generated programs)",
    )

    @model_validator(mode="before")
    @classmethod
    def _text_coin_defaults(cls, data):
        # the organism's 8..14 flips are far beyond a small language model: coin_flip_text has its own N
        if isinstance(data, dict) and data.get("name") == "coin_flip_text":
            lo, hi = TEXT_COIN_STEPS
            data = dict(data)
            data.setdefault("min_steps", lo)
            if "max_steps" not in data:  # a larger min_steps alone moves the range up
                data["max_steps"] = max(hi, data["min_steps"]) if isinstance(data["min_steps"], int) else hi
        return data

    @model_validator(mode="after")
    def _steps_ordered(self):
        if self.min_steps > self.max_steps:
            raise ValueError("min_steps must not exceed max_steps")
        return self

    @model_validator(mode="after")
    def _path_only_for_files(self):
        if self.path is not None and self.name not in ("gsm8k", "multiple_choice", "program_output"):
            raise ValueError(f"path: task {self.name} reads no file")
        return self

    def kwargs(self) -> dict:
        """The task's constructor arguments."""
        if self.name not in STEP_TASKS:
            return {"path": self.path} if self.path is not None else {}
        kwargs = {"min_steps": self.min_steps, "max_steps": self.max_steps}
        if self.name == "running_sum":
            kwargs["modulus"] = self.modulus
        return kwargs

    def build(self):
        from legible.tasks import DatasetError, make_task

        try:
            return make_task(self.name, **self.kwargs())
        except DatasetError as e:
            raise ConfigFieldError(f"task.path: {e}") from None


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
    eval_problems: int = Field(
        128, ge=1, description=f"held-out problems per evaluation during RL (organism: at least {ORGANISM_RL_EVAL_MIN})"
    )
    checkpoint_every: int = Field(100, ge=1)


class ConditionConfig(_Strict):
    """A named combination of reward terms and defences, and the facts every trainer derives from it:
    which views of the CoT answers are produced from, who answers, which view's answer counts."""

    name: str
    rewards: dict[str, float] = Field(default_factory=lambda: {"outcome": 1.0})
    paraphrase_in_loop: bool = Field(False, description="the answer is produced from a paraphrase of the CoT")
    face: bool = Field(
        False, description="a separate Face model writes the answer (from the paraphrase, or from the CoT itself)"
    )
    targeted: bool = Field(
        False,
        description="reward targeting: the output terms (output_monitor) reach the output tokens' advantage only; "
        "the CoT's tokens are trained on the rest of the reward",
    )
    stepwise: bool = Field(
        False,
        description="step-wise paraphrasing (organism): the policy continues from the paraphrase of its own CoT "
        "so far, so a private code carries neither the answer nor the policy's own later steps",
    )

    @model_validator(mode="after")
    def _known_terms(self):
        from legible.reward import term_names

        known = term_names()
        for name in self.rewards:
            if name not in known:
                raise ValueError(f"unknown reward term {name!r}; choose from {known}")
        if self.targeted and not self.output_terms:
            raise ValueError(f"targeted: true needs an output term in rewards ({', '.join(OUTPUT_TERMS)})")
        if self.stepwise and not self.paraphrase_in_loop:
            raise ValueError("stepwise: true needs paraphrase_in_loop: true (the answer is read from a paraphrase too)")
        return self

    @property
    def view(self) -> Literal["original", "paraphrased"]:
        """The view of the CoT whose answer counts: the paraphrase when the paraphraser is in the loop."""
        return "paraphrased" if self.paraphrase_in_loop else "original"

    @property
    def output_terms(self) -> list[str]:
        """The reward terms that read only the output after the answer (``OUTPUT_TERMS``), never the CoT."""
        return sorted(set(self.rewards) & set(OUTPUT_TERMS))

    @property
    def policy_answers(self) -> bool:
        """Whether the policy answers from its own CoT in the same pass that writes it (plain GRPO)."""
        return not self.paraphrase_in_loop and not self.face

    def cot_scale(self, scale: dict[str, float]) -> dict[str, float]:
        """The term weights the CoT's tokens are trained on: with reward targeting, the output terms drop out."""
        return {n: (0.0 if self.targeted and n in OUTPUT_TERMS else v) for n, v in scale.items()}

    @property
    def views(self) -> frozenset[str]:
        """Every view an answer is needed from: the one that counts, and those the reward terms compare."""
        views = {self.view}
        if "sensitivity" in self.rewards:
            views |= {"original", "paraphrased"}
        if "paraphrase_outcome" in self.rewards:
            views.add("paraphrased")
        return frozenset(views)

    @property
    def needs_loop(self) -> bool:
        """Whether a plain completion cannot be scored because some answer comes from a paraphrase."""
        return not self.policy_answers or self.views != {"original"}

    def reward_scale(self, ramp: float) -> dict[str, float]:
        """Each term's share of its weight while the penalties ramp in: ``outcome`` is never ramped."""
        return {name: (1.0 if name == "outcome" else ramp) for name in self.rewards}


# Terms that read only what the answerer writes after the answer, never the CoT.
OUTPUT_TERMS = ("output_monitor",)
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
        ConditionConfig(
            name="monitor+stepwise",
            rewards={"outcome": 1.0, "monitor": MONITOR_WEIGHT},
            paraphrase_in_loop=True,
            stepwise=True,
        ),
        ConditionConfig(
            name="monitor+stepwise+face",
            rewards={"outcome": 1.0, "monitor": MONITOR_WEIGHT},
            paraphrase_in_loop=True,
            face=True,
            stepwise=True,
        ),
        # Feedback spillover (Drori et al. 2025): a monitor on the output only, on a task whose output restates
        # the state; the Mind & Face split, and reward targeting.
        # Process supervision of how steps look (each one a word of the legible grammar), beside the monitor.
        ConditionConfig(
            name="monitor+process", rewards={"outcome": 1.0, "monitor": MONITOR_WEIGHT, "process": MONITOR_WEIGHT}
        ),
        ConditionConfig(name="output-monitor", rewards={"outcome": 1.0, "output_monitor": MONITOR_WEIGHT}),
        ConditionConfig(
            name="output-monitor+face", rewards={"outcome": 1.0, "output_monitor": MONITOR_WEIGHT}, face=True
        ),
        ConditionConfig(
            name="output-monitor+targeted", rewards={"outcome": 1.0, "output_monitor": MONITOR_WEIGHT}, targeted=True
        ),
    ]
}


class LoraSettings(_Strict):
    """LoRA adapters on the policy (needs ``peft``); the base weights stay frozen."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = Field("all-linear", description="module names, or peft's 'all-linear'")


class TRLSettings(_Strict):
    """The trl backend: GRPO on a transformers model through TRL's GRPOTrainer (``legible.train.trl``).

    The RL fields (``rl.steps``, ``rl.prompts``, ``rl.group_size``, ``rl.lr``, ``rl.kl_coef``, ...) keep
    their meaning; these are what a language model needs besides."""

    max_cot_tokens: int = Field(256, ge=1, description="the policy's CoT budget, answer marker included")
    max_answer_tokens: int = Field(16, ge=1, description="the answerer's budget after the answer marker")
    answer_marker: str = Field("Answer:", min_length=1, description="ends the CoT; what follows is the answer")
    instruction: str | None = Field(
        "Think step by step, then write 'Answer:' followed by the final answer.",
        description="appended to every prompt that does not already mention the answer marker",
    )
    face_model: str | None = Field(
        None, description="condition face: true: the Face's weights (local path or id); default: the policy's"
    )
    face_lr: float | None = Field(None, gt=0, description="the answerer's own learning rate (default rl.lr)")
    train_answerer: bool = Field(
        True,
        description="train whoever answers from the paraphrase (the Face, or the shared model) on its answer "
        "tokens in its own pass; the policy's GRPO loss never sees those tokens either way",
    )
    monitor_patterns: list[str] = Field(
        default_factory=list, description="regular expressions the keyword monitor also counts (with monitor_words)"
    )
    monitor_judge: str | None = Field(
        None, description="an Inspect model that judges the CoT instead of the keyword monitor"
    )
    monitor_description: str | None = Field(None, description="what the judge monitor looks for")
    process_judge: str = Field("heuristic", description="'heuristic', or an Inspect model that grades each step")
    dataset_size: int = Field(512, ge=1, description="problems drawn up front for training (cycled)")
    micro_batch: int | None = Field(
        None, ge=1, description="episodes per forward/backward pass (gradient accumulation); default: all"
    )
    loss_type: Literal["dapo", "dr_grpo", "grpo", "bnpo"] = "dapo"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32",
        description="the weights' dtype (auto: the checkpoint's). float32 with bf16 compute is TRL's default: "
        "a small RL update is lost in bfloat16 weights",
    )
    bf16: bool | None = Field(None, description="bf16 mixed precision (default: on a GPU that supports it)")
    gradient_checkpointing: bool = False
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    chat_template_kwargs: dict = Field(default_factory=dict, description="e.g. {enable_thinking: false}")
    lora: LoraSettings | None = None
    trust_remote_code: bool = False

    @field_validator("monitor_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        import re

        for p in patterns:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"{p!r} is not a regular expression ({e})") from None
        return patterns


# The backends that train a language model on text; they share the trl section and the text tasks.
TEXT_BACKENDS = ("trl", "verl")


class EvalConfig(_Strict):
    problems: int = Field(
        500,
        ge=TEXT_EVAL_MIN,
        description=f"held-out problems for the final evaluation (organism: at least {ORGANISM_EVAL_MIN}; text "
        f"backends: at least {TEXT_EVAL_MIN}, so that a real model on a CPU can be evaluated on a handful)",
    )
    seed: int = 12345


class RunConfig(_Strict):
    seed: int = 0
    backend: Literal["organism", "trl", "verl"] = Field(
        "organism",
        description="organism: the CPU model organism's own trainer; trl: a transformers model via TRL on one "
        "machine; verl: the same on a Ray cluster (legible.train.verl, docs/verl.md)",
    )
    task: TaskConfig = TaskConfig()
    model: ModelConfig | str = Field(
        ModelConfig(),
        description="organism: its size; trl, verl: a local model directory or a Hugging Face id (verl: what "
        "legible train launches; verl's own config may set it instead)",
    )
    pretrain: PretrainConfig = PretrainConfig()
    rl: RLConfig = RLConfig()
    condition: ConditionConfig = CONDITIONS["monitor"]
    paraphraser: str = "legible_only"
    monitor_words: list[str] | None = Field(None, description="banned words; default: the task's state words")
    init: str | None = Field(None, description="a stage-1 model file to start RL from, skipping stage 1")
    eval: EvalConfig = EvalConfig()
    trl: TRLSettings = TRLSettings()

    @model_validator(mode="before")
    @classmethod
    def _condition_by_name(cls, data):
        if isinstance(data, dict) and isinstance(data.get("condition"), str):
            name = data["condition"]
            if name not in CONDITIONS:
                raise ValueError(f"condition: unknown preset {name!r}; choose from {sorted(CONDITIONS)}")
            data = {**data, "condition": CONDITIONS[name].model_dump()}
        if isinstance(data, dict) and data.get("backend") in TEXT_BACKENDS and "paraphraser" not in data:
            # legible_only knows only the organism's words; text gets the text paraphrasers
            data = {**data, "paraphraser": "canonical+lexical"}
        return data

    @model_validator(mode="after")
    def _backend_fields(self):
        if self.backend == "organism":
            if isinstance(self.model, str):
                raise ValueError("model: a model path or id needs backend: trl or verl (the organism takes n_layer)")
            if self.task.name not in ORGANISM_TASKS:
                raise ValueError(f"task.name: {self.task.name} needs backend: trl or verl")
            from legible.reward import term_names

            text_only = sorted(set(self.condition.rewards) & set(term_names(organism=False)))
            if text_only:
                raise ValueError(f"condition.rewards: {text_only[0]!r} needs backend: trl or verl")
            reads_output = self.condition.output_terms
            if reads_output and not self.task.build().explains:
                raise ValueError(
                    f"condition.rewards: {reads_output[0]!r} reads the output after the answer: it needs a task "
                    "whose output explains (task.name: coin_flip_explained)"
                )
            if self.trl != TRLSettings():
                raise ValueError("trl: these settings need backend: trl or verl")
            if self.eval.problems < ORGANISM_EVAL_MIN:
                raise ValueError(
                    f"eval.problems: the organism's final evaluation needs at least {ORGANISM_EVAL_MIN} problems "
                    f"(got {self.eval.problems}; backend trl or verl takes fewer)"
                )
            if self.rl.eval_problems < ORGANISM_RL_EVAL_MIN:
                raise ValueError(
                    f"rl.eval_problems: the organism's evaluations need at least {ORGANISM_RL_EVAL_MIN} problems "
                    f"(got {self.rl.eval_problems}; backend trl or verl takes fewer)"
                )
            return self
        if self.condition.stepwise:
            raise ValueError(
                f"condition.stepwise: step-wise paraphrasing is the organism's (backend {self.backend} paraphrases "
                "the whole CoT once)"
            )
        # what only the organism's trainer does: an output monitor, reward targeting, a Face that reads the CoT itself
        organism_only = list(self.condition.output_terms)
        organism_only += ["targeted"] * self.condition.targeted
        organism_only += ["face without paraphrase_in_loop"] * (
            self.condition.face and not self.condition.paraphrase_in_loop
        )
        if organism_only:
            raise ValueError(
                f"condition: {organism_only[0]} is the organism's; backend {self.backend} does not train it"
            )
        if isinstance(self.model, str) and not self.model.strip():
            raise ValueError(f"model: backend {self.backend} needs a local model directory or a Hugging Face id")
        if self.backend == "trl" and not isinstance(self.model, str):
            raise ValueError("model: backend trl needs a local model directory or a Hugging Face id")
        if self.backend == "verl" and not isinstance(self.model, str) and self.model != ModelConfig():
            raise ValueError("model: backend verl takes a model path or id (or none: verl's config sets it)")
        # Compared with the defaults, not with what was set: a saved config writes every field out.
        for name, unset in (("pretrain", PretrainConfig()), ("init", None)):
            if getattr(self, name) != unset:
                raise ValueError(
                    f"{name}: stage 1 is the organism's; backend {self.backend} starts from the given model"
                )
        if self.trl.micro_batch is not None and (self.rl.prompts * self.rl.group_size) % self.trl.micro_batch:
            raise ValueError("trl.micro_batch: must divide rl.prompts * rl.group_size")
        if self.trl.face_model is not None and not self.condition.face:
            raise ValueError("trl.face_model: the condition has no Face (face: false)")
        monitored = "monitor" in self.condition.rewards
        if monitored and self.trl.monitor_judge is None and not self.monitor_words and not self.trl.monitor_patterns:
            from legible.tasks import GSM8K, MultipleChoice, ProgramOutput, TextGameTask

            classes = {c.name: c for c in (GSM8K, MultipleChoice, ProgramOutput, TextGameTask)}
            if self.task.name in classes and not classes[self.task.name].state_words:
                raise ValueError(
                    f"monitor_words: the monitor term on task {self.task.name} needs banned words "
                    "(or trl.monitor_judge)"
                )
        return self

    def penalty_ramp(self, step: int | None) -> float:
        """The penalty terms' share of their weight at RL step ``step``: rising linearly from 0 to 1 over
        ``rl.ramp_steps``; 1 when there is no ramp or the step is unknown."""
        if not self.rl.ramp_steps or step is None:
            return 1.0
        return min(1.0, max(0.0, float(step) / self.rl.ramp_steps))

    def reward_scale(self, step: int | None) -> dict[str, float]:
        """Each reward term's share of its weight at RL step ``step``."""
        return self.condition.reward_scale(self.penalty_ramp(step))

    def build_monitor(self, task: Task) -> Monitor | None:
        """The monitor this run trains against: a judge model when ``trl.monitor_judge`` names one, else a
        keyword monitor on ``monitor_words`` (default: the task's state words) and ``trl.monitor_patterns``."""
        from legible.monitor import make_monitor

        s = self.trl
        words = self.monitor_words or list(task.state_words)
        return make_monitor(words, s.monitor_judge, s.monitor_description, s.monitor_patterns)

    def state_aliases(self, states: tuple[str, ...]) -> dict[str, list[str]]:
        """The stage-1 corpus's rare other names for each state: neutral words drawn from the seed.

        They stand in for an LLM's prior associations (Skaf et al. 2025 saw RL turn "heads"/"tails"
        into "R"/"L" and "S"): without any, a tiny model has no substitute to find and RL only
        sharpens the legible CoT or collapses to guessing."""
        import random

        from legible.policy import NEUTRAL

        k = self.pretrain.aliases_per_state
        words = random.Random(f"aliases-{self.seed}").sample(NEUTRAL, len(states) * k)
        return {s: words[i * k : (i + 1) * k] for i, s in enumerate(states)}

    def legible_grammar(self, task: Task) -> dict[str, str]:
        """The organism's legible grammar as a reader knows it: every word that names a state (the state
        words and their stage-1 aliases) and the state it names."""
        aliases = self.state_aliases(task.state_words)
        return {s: s for s in task.state_words} | {a: s for s, names in aliases.items() for a in names}

    def build_step_paraphrase(self, task: Task) -> StepParaphrase | None:
        """The paraphrase the policy reads its own CoT through as it writes it (``condition.stepwise``)."""
        if not self.condition.stepwise:
            return None
        from legible.paraphrase import WordWise

        return WordWise(task.state_words)

    def build_reward(self, task: Task, monitor: Monitor | None = None) -> Reward:
        """The condition's weighted reward terms on ``task``, with ``monitor`` (default: ``build_monitor``)
        and the step judge: ``trl.process_judge`` on text, the legible grammar's on the organism."""
        from legible.reward import GrammarJudge, Reward, RewardContext, make_step_judge

        monitor = monitor if monitor is not None else self.build_monitor(task)
        if self.backend == "organism":
            judge = GrammarJudge(self.legible_grammar(task))
        else:
            judge = make_step_judge(self.trl.process_judge)
        return Reward(self.condition.rewards, RewardContext(task=task, monitor=monitor, judge=judge))

    @field_validator("paraphraser")
    @classmethod
    def _paraphraser_known(cls, spec: str) -> str:
        from legible.paraphrase import check_paraphraser_spec

        check_paraphraser_spec(spec)
        return spec


def format_validation_error(err: ValidationError, source: str, model: type[BaseModel] | None = None) -> str:
    """Every error in ``err`` on one line, ``source: field: what; field: what``, so that one run of the
    command shows all that is wrong. With ``model`` (the class validated), an unknown field names the
    closest known one."""
    import difflib
    import typing

    def branch(part) -> bool:
        # pydantic puts the member of a union it tried in the location ("str", "function-after[...,
        # ModelConfig]", "list[str]"); a field name is snake_case
        return isinstance(part, str) and (part[:1].isupper() or "[" in part or part in ("str", "int", "float", "bool"))

    def model_in(tp) -> type[BaseModel] | None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
        return next((m for m in map(model_in, typing.get_args(tp)) if m is not None), None)

    def fields_at(loc: tuple) -> list[str]:
        cls = model
        for part in loc:
            if cls is None or not isinstance(part, str) or part not in cls.model_fields:
                return []
            cls = model_in(cls.model_fields[part].annotation)
        return list(cls.model_fields) if cls is not None else []

    def show(value) -> str:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."

    errors = err.errors()
    # Where the input reached inside one member of a union (a mapping for a model), the other members'
    # "should be a valid string" is noise: keep the deepest members' errors only.
    depth: dict[tuple, int] = {}
    for e in errors:
        cut = next((i for i, p in enumerate(e["loc"]) if branch(p)), None)
        if cut is not None:
            key = e["loc"][:cut]
            depth[key] = max(depth.get(key, 0), len(e["loc"]) - cut)
    by_field: dict[str, list[str]] = {}
    for e in errors:
        cut = next((i for i, p in enumerate(e["loc"]) if branch(p)), None)
        if cut is not None and len(e["loc"]) - cut < depth[e["loc"][:cut]]:
            continue
        loc = tuple(p for p in e["loc"] if not branch(p))
        where = ".".join(str(p) for p in loc)
        msg = " ".join(e["msg"].removeprefix("Value error, ").split())
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), fields_at(loc[:-1]), n=1)
            msg = "unknown field" + (f" (did you mean {close[0]}?)" if close else "")
        elif e["type"] not in ("value_error", "missing", "assertion_error", "json_invalid") and not isinstance(
            e.get("input"), (dict, list, bytes)
        ):
            msg += f" (got {show(e.get('input'))})"
        msgs = by_field.setdefault(where, [])
        if msg not in msgs:
            msgs.append(msg)
    # Whole-config checks (an empty location) name their field at the start of the message themselves.
    parts = [f"{where}: {' or '.join(msgs)}" if where else " or ".join(msgs) for where, msgs in by_field.items()]
    limit = 20  # a list of a thousand wrong items is one mistake, not a thousand
    more = f"; and {len(parts) - limit} more" if len(parts) > limit else ""
    return f"{source}: {'; '.join(parts[:limit])}{more}"


def load_config(path: str | Path, overrides: dict | None = None, *, max_bytes: int = 1 << 20) -> RunConfig:
    """Read and validate a YAML run config. Anything wrong with the file (missing, a directory, not
    UTF-8, empty, larger than ``max_bytes``, not YAML, not a mapping, invalid fields: all of them) is
    one ConfigError whose message names the file and the line or fields."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)  # bounded: a device or a runaway file is not read whole
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a directory, not a config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(raw) > max_bytes:
        raise ConfigError(f"{path}: larger than {max_bytes // 1024} KiB; a run config is a few lines of YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(e, "problem", None)
        why = f" ({' '.join(str(problem).split())})" if problem else ""
        raise ConfigError(f"{path}:{where} not valid YAML{why}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a run config") from None
    if data is None:
        # an empty file is more often a mistake (a wrong path, a truncated copy) than a wish for every default
        raise ConfigError(f"{path}: empty config (write {{}} to run on every default)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping, not a {type(data).__name__}")
    data.update(overrides or {})
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path), RunConfig)) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a run config") from None


def save_config(cfg: RunConfig, path: Path) -> None:
    """Every field written out, except the sections the other backend uses."""
    other = {"trl"} if cfg.backend == "organism" else {"pretrain", "init"}
    if cfg.backend == "verl" and not isinstance(cfg.model, str):
        other.add("model")  # verl's own config names the model
    text = yaml.safe_dump(cfg.model_dump(exclude=other), sort_keys=False)
    # whole or not at all: --resume compares against this file, and a cut-off copy would refuse the run
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
