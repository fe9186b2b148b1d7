"""The policy: the organism (one readable model file, its vocabulary, rollouts and safetensors
checkpoints) and the real language models legible prepares offline by short name."""

from legible.policy._checkpoint import (
    load_policy,
    load_trainer,
    optimizer_tensors,
    restore_optimizer,
    save_policy,
    save_trainer,
)
from legible.policy._local_models import (
    LOCAL_MODELS,
    LocalModel,
    LocalModelError,
    cache_dir,
    is_prepared,
    local_model_names,
    model_dir,
    prepare_model,
    resolve_model,
)
from legible.policy._rollout import (
    answer_logprobs,
    answers_for,
    completion_logprobs,
    greedy_accuracy,
    prompt_ids,
    write_cots,
)
from legible.policy._tiny import KVCache, TinyConfig, TinyTransformer, draw, left_pad, right_pad, sample
from legible.policy._vocab import NEUTRAL, VOCAB, Vocab

__all__ = [
    "LOCAL_MODELS",
    "KVCache",
    "LocalModel",
    "LocalModelError",
    "NEUTRAL",
    "TinyConfig",
    "TinyTransformer",
    "VOCAB",
    "Vocab",
    "answer_logprobs",
    "answers_for",
    "cache_dir",
    "completion_logprobs",
    "draw",
    "greedy_accuracy",
    "is_prepared",
    "left_pad",
    "load_policy",
    "load_trainer",
    "local_model_names",
    "model_dir",
    "optimizer_tensors",
    "prepare_model",
    "prompt_ids",
    "resolve_model",
    "restore_optimizer",
    "right_pad",
    "sample",
    "save_policy",
    "save_trainer",
    "write_cots",
]
