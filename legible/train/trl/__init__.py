"""GRPO with the CoT defences on a transformers model, through TRL's GRPOTrainer.

Why TRL: it already does what a real-model run needs and the organism's trainer does not (vLLM
generation, LoRA, mixed precision, gradient accumulation, DeepSpeed/FSDP, resumable checkpoints). What
it lacks is the Shoggoth/Face/paraphraser episode, which lives here as a ``rollout_func``; the reward
terms are ``legible.reward``'s, one TRL reward function each, so a config's ``rewards:``
means what it means for the organism.

One training step, as GRPOTrainer runs it with ``rollout=ShoggothFaceRollout(...)``:

  1. TRL draws ``rl.prompts`` problems and repeats each ``rl.group_size`` times (the prompts reach the
     rollout already repeated);
  2. the policy (the Shoggoth) writes each CoT and stops at the answer marker; when the condition has
     no paraphraser in the loop it writes its own answer in the same pass, as plain GRPO does;
  3. the paraphraser rewrites every finished CoT;
  4. the answerer (a separate Face model, or the policy's own weights) writes the answer from the
     paraphrase; other views the reward terms need (the answer from the original CoT or from the
     paraphrase) are produced the same way. Where the answer space is closed (the task's ``answer_words``:
     heads/tails, choice letters) the answer is *read*, not generated: one forward over the prompt and the
     view gives the answerer's distribution over the answer words at the marker (``read_answers``), the
     answer is drawn from it (argmax in evaluation), and its training step (6) is taken in the same pass.
     Every CoT then stops at the marker, the policy's own included, and a CoT that ended without writing
     it (end of sequence, or the budget) is answered at the marker appended where it stopped, as early
     answering forces an answer (``finished_rate`` still counts the CoTs that wrote it);
  5. the completion handed back to TRL is the policy's CoT tokens followed by the answerer's tokens,
     with ``env_mask`` 1 on the first and 0 on the second. TRL multiplies its loss mask by ``env_mask``
     (it is its tool-output mask), so the answerer's tokens are in the sequence (the rewards and TRL's
     logs see the whole episode) but carry no policy gradient; being after the CoT in a causal model,
     they do not change the CoT tokens' log-probs either;
  6. the answerer is trained in its own pass (``trl.train_answerer``): one policy-gradient step on its
     answer tokens given the paraphrase, the reward being the outcome of its answer, centred within the
     group, with its own AdamW (a read answer: on the drawn word's log-probability, the gradient flowing
     through the reading at the answer position with the context's keys and values held fixed, which is
     what makes the step nearly free; with the policy answering itself, its reading of its own CoT). A
     term that does not depend on the answer (the monitor penalty) adds nothing to this gradient in
     expectation, so it is left out. With a separate Face that is the
     Face's training; with a shared model it is the shared weights learning to answer from
     paraphrases, as the organism's policy does, which the GRPO loss cannot do (there the answer tokens
     follow the original CoT, not the paraphrase they were produced from);
  7. the extras (CoT, answer, paraphrase, each view's answer, distributions) go back with the tokens;
     TRL hands them to the reward functions, computes group advantages and its GRPO loss, and steps.

Then ``LegibleCallback`` writes the step's row to ``metrics.jsonl`` (TRL's numbers, each term's mean,
accuracy, and the drift metrics with the hierarchy level, also logged to TRL as ``legible/...``),
evaluates every ``rl.eval_every`` steps, and adds the rollout's own state (answerer weights and
optimizer, paraphraser RNG) to TRL's checkpoints so ``--resume`` continues exactly.

Generation is transformers' ``generate`` with a stopping criterion at the answer marker, or TRL's vLLM
backend (``trl.use_vllm``) for the policy's CoT; the Face always generates with transformers.

The package, one job a file: ``_generate`` (generation: transformers with a stop at the marker, vLLM, answer
distributions), ``_models`` (loading tokenizer and models), ``_rollout`` (the episode and the answerer's
pass), ``_rewards`` (the reward functions and the step's metrics), ``_checkpoint`` (the rollout's state in
TRL's checkpoints), ``_callback`` (``LegibleCallback``), ``_run`` (GRPOConfig, ``grpo_parts``,
``build_run``, ``train_trl``, ``evaluate_run``).

Each name below is imported from its module when first looked up (module ``__getattr__``), so importing
this package costs nothing until a name is used: transformers' Trainer machinery takes seconds to import.
"""

from __future__ import annotations

from legible.lazy import lazy_exports

# where each exported name lives; each loads on first use (transformers takes seconds to import)
_HOMES = {
    "legible.train._text": ("build_prompt", "marker_pattern"),
    "legible.train.trl._callback": ("LegibleCallback",),
    "legible.train.trl._checkpoint": (
        "LEGIBLE_STATE",
        "drop_pickles",
        "latest_complete_checkpoint",
        "load_rollout_state",
        "save_rollout_state",
    ),
    "legible.train.trl._generate": (
        "Samples",
        "StopAt",
        "answer_distribution",
        "answer_spellings",
        "hf_generate",
        "left_pad",
        "read_answers",
        "tail_logprobs",
        "vllm_generate",
    ),
    "legible.train.trl._models": ("load_model", "load_tokenizer"),
    "legible.train.trl._rewards": ("StepRecord", "episodes_from_trl", "make_reward_funcs", "step_drift"),
    "legible.train.trl._rollout": ("Episodes", "ShoggothFaceRollout"),
    "legible.train.trl._run": (
        "GRPOParts",
        "TRLRun",
        "build_run",
        "evaluate_run",
        "grpo_args",
        "grpo_parts",
        "train_trl",
    ),
}
_EXPORTS = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
