"""GRPO with the CoT defences on a transformers model, through TRL's GRPOTrainer.

Why TRL: it already does what a real-model run needs and the organism's trainer does not (vLLM
generation, LoRA, mixed precision, gradient accumulation, DeepSpeed/FSDP, resumable checkpoints). What
it lacks is the Shoggoth/Face/paraphraser episode, which lives here as a ``rollout_func``; the reward
terms are ``legible.train.text_reward``'s, one TRL reward function each, so a config's ``rewards:``
means what it means for the organism.

One training step, as GRPOTrainer runs it with ``rollout=ShoggothFaceRollout(...)``:

  1. TRL draws ``rl.prompts`` problems and repeats each ``rl.group_size`` times (the prompts reach the
     rollout already repeated);
  2. the policy (the Shoggoth) writes each CoT and stops at the answer marker; when the condition has
     no paraphraser in the loop it writes its own answer in the same pass, as plain GRPO does;
  3. the paraphraser rewrites every finished CoT;
  4. the answerer (a separate Face model, or the policy's own weights) writes the answer from the
     paraphrase; other views the reward terms need (the answer from the original CoT or from the
     paraphrase, answer distributions for closed answer spaces) are produced the same way;
  5. the completion handed back to TRL is the policy's CoT tokens followed by the answerer's tokens,
     with ``env_mask`` 1 on the first and 0 on the second. TRL multiplies its loss mask by ``env_mask``
     (it is its tool-output mask), so the answerer's tokens are in the sequence (the rewards and TRL's
     logs see the whole episode) but carry no policy gradient; being after the CoT in a causal model,
     they do not change the CoT tokens' log-probs either;
  6. the answerer is trained in its own pass (``trl.train_answerer``): one policy-gradient step on its
     answer tokens given the paraphrase, the reward being the outcome of its answer, centred within the
     group, with its own AdamW. A term that does not depend on the answer (the monitor penalty) adds
     nothing to this gradient in expectation, so it is left out. With a separate Face that is the
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
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import StoppingCriteria, TrainerCallback

from legible.config import ConfigFieldError, RunConfig, TRLSettings
from legible.monitor import JudgeMonitor, KeywordMonitor, Monitor
from legible.monitor.drift import drift_metrics, hierarchy_level
from legible.paraphrase import Paraphraser, make_paraphraser
from legible.reward import Episode, Reward, disagreement, is_async_term
from legible.tasks.base import Problem, Task, split_completion
from legible.train._text import LINE_END, build_prompt, first_word, marker_pattern, prompt_text
from legible.train.common import MetricsLog, Stopwatch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from trl import GRPOTrainer

LEGIBLE_STATE = "legible"  # our part of a TRL checkpoint directory; its state.json marks it complete

__all__ = [
    "GRPOParts",
    "LegibleCallback",
    "ShoggothFaceRollout",
    "TRLRun",
    "build_prompt",
    "build_run",
    "evaluate_run",
    "grpo_args",
    "grpo_parts",
    "load_model",
    "load_tokenizer",
    "make_reward_funcs",
    "train_trl",
]


# ------------------------------------------------------------------------------------------ prompts


# --------------------------------------------------------------------------------------- generation


class StopAt(StoppingCriteria):
    """Stops each row at an end-of-sequence token or when its generated text matches ``pattern``, and
    records where (``cuts``), so the caller keeps exactly the tokens the model wrote up to the stop.
    ``window`` tokens of each row's tail are decoded per step (None: the whole row, for short answers);
    the first step at which the pattern appears is the step its last character was written."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        prompt_len: int,
        rows: int,
        eos_ids: Sequence[int],
        pattern: re.Pattern[str] | None,
        window: int | None,
    ) -> None:
        self.tokenizer, self.prompt_len, self.eos = tokenizer, prompt_len, set(eos_ids)
        self.pattern, self.window = pattern, window
        self.cuts: list[int | None] = [None] * rows
        self.by_pattern = [False] * rows

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_len :]
        n = new.shape[1]
        tail = new if self.window is None else new[:, -self.window :]
        tail = tail.tolist()  # one device-to-host copy per step
        for i, cut in enumerate(self.cuts):
            if cut is not None:
                continue
            if tail[i][-1] in self.eos:
                self.cuts[i] = n
            elif self.pattern is not None and self.pattern.search(self.tokenizer.decode(tail[i])):
                self.cuts[i], self.by_pattern[i] = n, True
        return torch.tensor([c is not None for c in self.cuts], device=input_ids.device)


@dataclass
class Samples:
    """Generated tokens per row (cut at the stop, EOS kept), whether the stop pattern ended the row,
    and the sampler's log-probs per token when the backend gives them (vLLM)."""

    ids: list[list[int]]
    by_pattern: list[bool]
    logprobs: list[list[float]] | None = None


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """(ids, attention mask) of left-padded rows."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r)
            mask[i, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


def tail_logprobs(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Log-probs (rows, k) of each left-padded row's last ``k`` tokens given what precedes them. Logits
    are computed for those positions only (the vocabulary projection dominates a small model's cost),
    and positions count from each row's first real token, as ``generate`` counts them (a model with
    absolute positions would otherwise read a shifted prompt)."""
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=k + 1).logits
    logp = logits[:, -(k + 1) : -1].float().log_softmax(-1)
    return logp.gather(2, ids[:, -k:].unsqueeze(2)).squeeze(2)


def hf_generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[list[int]],
    *,
    max_new_tokens: int,
    stop: re.Pattern[str] | None,
    window: int | None,
    eos_ids: Sequence[int],
    config: Any,
) -> Samples:
    """transformers ``generate`` on left-padded rows with ``StopAt``. ``config`` also replaces the model's
    own generation config for the call: ``generate`` fills unset fields from it (a chat model's default
    top_k or repetition penalty would otherwise change what is sampled)."""
    if not rows:
        return Samples([], [])
    device = next(model.parameters()).device
    ids, mask = left_pad(rows, tokenizer.pad_token_id, device)
    stopper = StopAt(tokenizer, ids.shape[1], len(rows), eos_ids, stop, window)
    config = copy.copy(config)
    config.max_new_tokens = max_new_tokens
    saved = model.generation_config
    model.generation_config = config
    try:
        with torch.no_grad():
            out = model.generate(
                input_ids=ids, attention_mask=mask, generation_config=config, stopping_criteria=[stopper]
            )
    finally:
        model.generation_config = saved
    new = out[:, ids.shape[1] :].tolist()
    cut = [c if c is not None else len(r) for c, r in zip(stopper.cuts, new)]
    return Samples([r[:c] for r, c in zip(new, cut)], stopper.by_pattern)


@contextmanager
def _vllm_overrides(trainer: GRPOTrainer, max_new_tokens: int, stop: list[str]):
    """TRL's vLLM backend reads its budget and sampling extras from attributes; a rollout phase sets
    them for its own call and puts them back."""
    vg = trainer.vllm_generation
    saved = vg.max_completion_length, vg.generation_kwargs
    vg.max_completion_length = max_new_tokens
    vg.generation_kwargs = {**(saved[1] or {}), "stop": stop, "include_stop_str_in_output": True}
    try:
        yield vg
    finally:
        vg.max_completion_length, vg.generation_kwargs = saved


def vllm_generate(
    trainer: GRPOTrainer, rows: list[list[int]], *, max_new_tokens: int, stop: list[str], pattern: re.Pattern[str]
) -> Samples:
    """The policy's CoTs from TRL's vLLM backend (weights were synced by TRL before the rollout)."""
    with _vllm_overrides(trainer, max_new_tokens, stop) as vg:
        _, ids, logprobs, _ = vg.generate(prompts=rows, images=None, num_generations=1)
    logprobs = [[lp[0] for lp in seq] for seq in logprobs] if logprobs is not None else None
    tok = trainer.processing_class
    by_pattern = [bool(pattern.search(tok.decode(r, skip_special_tokens=True))) for r in ids]
    return Samples([list(r) for r in ids], by_pattern, logprobs)


def answer_spellings(tokenizer: PreTrainedTokenizerBase, words: Sequence[str]) -> list[list[list[int]]] | None:
    """For a closed answer space: the token sequences that spell each answer word right after the marker
    (" B", "B", " b", "b"); None for an open answer space."""
    if not words:
        return None
    out = []
    for w in words:
        spellings = {tuple(tokenizer(f"{pre}{form}", add_special_tokens=False).input_ids)
                     for pre in (" ", "") for form in dict.fromkeys((w, w.lower()))}  # fmt: skip
        out.append([list(t) for t in sorted(spellings) if t])
    return out


def answer_distribution(
    model: PreTrainedModel, pad_id: int, rows: list[list[int]], spellings: list[list[list[int]]], chunk: int = 64
) -> list[list[float]]:
    """The model's distribution over the answer words after each row (which ends at the marker): each
    word's probability is the summed probability of its spellings (teacher-forced), renormalised."""
    if not rows:
        return []
    device = next(model.parameters()).device
    seqs, owners = [], []
    for r, row in enumerate(rows):
        for w, variants in enumerate(spellings):
            for v in variants:
                seqs.append(row + v)
                owners.append((r, w, len(v)))
    mass = torch.zeros(len(rows), len(spellings), dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(seqs), chunk):
            ids, mask = left_pad(seqs[start : start + chunk], pad_id, device)
            part = owners[start : start + chunk]
            token_lp = tail_logprobs(model, ids, mask, max(n for _, _, n in part)).cpu()
            for k, (r, w, n) in enumerate(part):
                mass[r, w] += token_lp[k, -n:].sum().exp().item()
    return (mass / mass.sum(1, keepdim=True).clamp_min(1e-300)).tolist()


# ------------------------------------------------------------------------------------- the rollout


@dataclass
class Episodes:
    """What one rollout produced, row by row (rows = prompts x group size)."""

    problems: list[Problem]
    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    env_mask: list[list[int]] | None
    logprobs: list[list[float]] | None
    cots: list[str]
    finished: list[bool]
    answers: list[str | None]  # the answer that counts (the condition's view)
    extras: dict[str, list]  # paraphrase, original_answer, paraphrased_answer, answer_probs, ...
    stats: dict[str, float] = field(default_factory=dict)


class ShoggothFaceRollout:
    """TRL's ``rollout_func``: the episode of the module docstring. Call it as ``rollout(prompts,
    trainer)`` (TRL does); ``play`` is the same loop for evaluation."""

    def __init__(
        self,
        cfg: RunConfig,
        task: Task,
        problems: dict[str, Problem],
        paraphraser: Paraphraser,
        tokenizer: PreTrainedTokenizerBase,
        face: PreTrainedModel | None = None,
    ) -> None:
        self.cfg, self.task, self.problems, self.paraphraser = cfg, task, problems, paraphraser
        self.settings, self.cond = cfg.trl, cfg.condition
        self.tokenizer = tokenizer
        self.face = face  # a separate Face model; None: the policy's weights answer
        self.rng = random.Random(cfg.seed + 1)  # the paraphraser's draws
        self.marker = marker_pattern(self.settings.answer_marker)
        # the policy answers from its own CoT: one pass writes CoT and answer (plain GRPO)
        self.policy_answers = self.cond.policy_answers
        self.view = self.cond.view
        self.views = self.cond.views
        rewards = self.cond.rewards
        self.spellings = answer_spellings(tokenizer, task.answer_words) if "sensitivity" in rewards else None
        self.answerer_opt: torch.optim.Optimizer | None = None
        self.last: Episodes | None = None

    # -- the loop ---------------------------------------------------------------------------------------

    def __call__(self, prompts: list, trainer: GRPOTrainer) -> dict[str, Any]:
        problems = [self.problems[prompt_text(p)] for p in prompts]
        ep = self.play(problems, self.encode(prompts), trainer, train=True)
        self.last = ep
        out: dict[str, Any] = {
            "prompt_ids": ep.prompt_ids,
            "completion_ids": ep.completion_ids,
            "logprobs": ep.logprobs,
            "cot": ep.cots,
            "answer": ep.answers,
            "finished": ep.finished,
            **ep.extras,
        }
        if ep.env_mask is not None:
            out["env_mask"] = ep.env_mask
        return out

    def play(
        self, problems: list[Problem], prompt_ids: list[list[int]], trainer: GRPOTrainer, *, train: bool
    ) -> Episodes:
        s, tok = self.settings, self.tokenizer
        n = len(problems)
        greedy = not train
        eos = trainer.eos_token_ids

        # 1. the policy writes its CoT up to the answer marker (and its answer, when it answers itself)
        if self.policy_answers:
            stop = re.compile(self.marker.pattern + r"[ \t]*\S[^\n]*\n", re.I)  # the answer's line ends it
            budget = s.max_cot_tokens + s.max_answer_tokens
            window = len(s.answer_marker) + s.max_answer_tokens + 8  # tokens that can hold marker and line
        else:
            stop, budget = self.marker, s.max_cot_tokens
            window = len(s.answer_marker) + 4  # a token holds at least one character of the marker
        if trainer.use_vllm and train:
            # vLLM stops on strings, not on "the marker and then the answer's line": a policy that answers
            # itself must not stop at the marker (its answer would be cut off); EOS and the budget end it
            stop_strings = [] if self.policy_answers else [s.answer_marker, s.answer_marker.lower()]
            policy = vllm_generate(trainer, prompt_ids, max_new_tokens=budget, stop=stop_strings, pattern=stop)
        else:
            with self._policy(trainer) as model:
                policy = self._generate(model, trainer, prompt_ids, budget, stop, window, greedy)
        texts = [tok.decode(ids, skip_special_tokens=True) for ids in policy.ids]
        finished = [bool(self.marker.search(t)) for t in texts]
        cots, own_answers = [], []
        for text in texts:
            cot, answer = split_completion(text, s.answer_marker)
            cots.append(cot)
            own_answers.append(answer)

        # 2. the paraphraser rewrites every finished CoT (a model paraphraser batches its calls)
        done = [i for i in range(n) if finished[i]]
        paraphrases: list[str | None] = [None] * n
        if done:
            rewritten = self._paraphrase([cots[i] for i in done], [problems[i].prompt for i in done])
            for i, p in zip(done, rewritten):
                paraphrases[i] = p

        # 3. the answerer reads each view it is needed for and answers (the paraphrase: Face or shared)
        answers_by_view: dict[str, list[str | None]] = {}
        answer_tokens: dict[str, list[list[int]]] = {}
        rows_by_view: dict[str, list[list[int]]] = {}
        with self._answerer(trainer) as answerer:
            for v in sorted(self.views):
                if v == "original" and self.policy_answers:
                    answers_by_view[v] = [a if f else None for a, f in zip(own_answers, finished)]
                    continue
                source = cots if v == "original" else paraphrases
                rows = [prompt_ids[i] + self._encode_view(source[i]) for i in done]
                out = self._generate(answerer, trainer, rows, s.max_answer_tokens, LINE_END, None, greedy)
                answers: list[str | None] = [None] * n
                tokens: list[list[int]] = [[] for _ in range(n)]
                for i, ids in zip(done, out.ids):
                    tokens[i] = ids
                    answers[i] = first_word(tok.decode(ids, skip_special_tokens=True))
                answers_by_view[v], answer_tokens[v], rows_by_view[v] = answers, tokens, rows
            probs: dict[str, list | None] = {}
            if self.spellings is not None:
                for v in ("original", "paraphrased"):
                    source = cots if v == "original" else paraphrases
                    rows = [prompt_ids[i] + self._encode_view(source[i]) for i in done]
                    dist = answer_distribution(answerer, tok.pad_token_id, rows, self.spellings, s.micro_batch or 64)
                    probs[v] = [None] * n
                    for i, d in zip(done, dist):
                        probs[v][i] = d

        # 4. the completion TRL trains on: the policy's tokens (env_mask 1), then the answerer's (0)
        answers = answers_by_view[self.view]
        completion_ids, env_mask, logprobs = [], [], [] if policy.logprobs is not None else None
        for i in range(n):
            own = list(policy.ids[i])
            mask = [1] * len(own)
            if self.policy_answers and policy.by_pattern[i]:
                own, mask = own + [eos[0]], mask + [0]  # stopped at the answer's line: end it, unsampled
            theirs = answer_tokens[self.view][i] if not self.policy_answers and finished[i] else []
            if theirs and theirs[-1] not in eos:
                theirs = theirs + [eos[0]]  # stopped at the line's end: ended for TRL's length statistics
            completion_ids.append(own + theirs)
            env_mask.append(mask + [0] * len(theirs))
            if logprobs is not None:
                logprobs.append(list(policy.logprobs[i]) + [0.0] * (len(completion_ids[-1]) - len(policy.ids[i])))

        # 5. the answerer's own pass: policy gradient on its answer tokens given the paraphrase
        stats: dict[str, float] = {}
        if train and s.train_answerer and not self.policy_answers and done:
            rewards = [self.task.score(problems[i], answers[i]) for i in done]
            stats = self._update_answerer(trainer, rows_by_view[self.view], done, answer_tokens[self.view], rewards)

        extras: dict[str, list] = {
            "paraphrase": paraphrases,
            "original_answer": answers_by_view.get("original", [None] * n),
            "paraphrased_answer": answers_by_view.get("paraphrased", [None] * n),
        }
        if probs:
            extras["answer_probs"], extras["answer_probs_paraphrased"] = probs["original"], probs["paraphrased"]
        masked = any(0 in m for m in env_mask)
        return Episodes(
            problems=problems,
            prompt_ids=prompt_ids,
            completion_ids=completion_ids,
            env_mask=env_mask if masked else None,
            logprobs=logprobs,
            cots=cots,
            finished=finished,
            answers=answers,
            extras=extras,
            stats=stats,
        )

    # -- the pieces the loop calls ----------------------------------------------------------------------

    def encode(self, prompts: list) -> list[list[int]]:
        """Token ids of TRL's prompts: through the chat template when they are messages."""
        if isinstance(prompts[0], str):
            return [list(ids) for ids in self.tokenizer(prompts).input_ids]
        enc = self.tokenizer.apply_chat_template(
            prompts, add_generation_prompt=True, tokenize=True, return_dict=True, **self.settings.chat_template_kwargs
        )
        return [list(ids) for ids in enc["input_ids"]]

    def _encode_view(self, cot: str) -> list[int]:
        """What the answerer reads after the prompt: a CoT (or its paraphrase), then the answer marker."""
        return self.tokenizer(f"{cot}\n{self.settings.answer_marker}", add_special_tokens=False).input_ids

    def _paraphrase(self, cots: list[str], contexts: list[str]) -> list[str]:
        # a model paraphraser makes its calls concurrently, seeds drawn in order
        return self.paraphraser.paraphrase_batch(cots, contexts, self.rng)

    def _generate(self, model, trainer, rows, budget, stop, window, greedy) -> Samples:
        return hf_generate(
            model,
            self.tokenizer,
            rows,
            max_new_tokens=budget,
            stop=stop,
            window=window,
            eos_ids=trainer.eos_token_ids,
            config=self.generation_config(trainer.eos_token_ids, greedy),
        )

    def generation_config(self, eos_ids: Sequence[int], greedy: bool) -> Any:
        """Sampling as TRL's own generation does it (temperature, no top-k/top-p), or greedy for
        evaluation; the same for the policy and the Face."""
        from transformers import GenerationConfig

        tok = self.tokenizer
        common = {"pad_token_id": tok.pad_token_id, "eos_token_id": list(eos_ids), "bos_token_id": tok.bos_token_id}
        if greedy:
            return GenerationConfig(do_sample=False, **common)
        return GenerationConfig(do_sample=True, temperature=self.cfg.rl.temperature, top_p=1.0, top_k=0, **common)

    @contextmanager
    def _policy(self, trainer: GRPOTrainer):
        """The policy, unwrapped for generation as TRL's own generation path does it."""
        from trl.models import unwrap_model_for_generation

        with unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
        ) as model:
            yield model

    def _answerer(self, trainer: GRPOTrainer):
        return nullcontext(self.face) if self.face is not None else self._policy(trainer)

    def _answerer_params(self, trainer: GRPOTrainer) -> tuple[torch.nn.Module, list[torch.nn.Parameter]]:
        model = self.face if self.face is not None else trainer.accelerator.unwrap_model(trainer.model)
        return model, [p for p in model.parameters() if p.requires_grad]

    def answerer_optimizer(self, trainer: GRPOTrainer) -> torch.optim.Optimizer:
        if self.answerer_opt is None:
            _, params = self._answerer_params(trainer)
            lr = self.settings.face_lr or self.cfg.rl.lr
            self.answerer_opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        return self.answerer_opt

    def _update_answerer(
        self,
        trainer: GRPOTrainer,
        rows: list[list[int]],
        done: list[int],
        tokens: list[list[int]],
        rewards: list[float],
    ) -> dict[str, float]:
        """One step of -advantage x log-prob of the answer tokens given the view, token-averaged, in
        micro-batches; advantages are the rewards centred within each group (and scaled by its std
        when ``rl.scale_advantages``)."""
        g = self.cfg.rl.group_size
        groups: dict[int, list[float]] = {}
        for i, r in zip(done, rewards):
            groups.setdefault(i // g, []).append(r)
        adv = []
        for i, r in zip(done, rewards):
            group = groups[i // g]
            mean = sum(group) / len(group)
            std = math.sqrt(sum((x - mean) ** 2 for x in group) / max(1, len(group) - 1))
            adv.append((r - mean) / (std + 1e-4) if self.cfg.rl.scale_advantages else r - mean)
        model, params = self._answerer_params(trainer)
        opt = self.answerer_optimizer(trainer)
        model.train()
        opt.zero_grad(set_to_none=True)
        n_tokens = sum(len(tokens[i]) for i in done)
        chunk = self.settings.micro_batch or len(done)
        device = next(model.parameters()).device
        for start in range(0, len(done), chunk):
            part = range(start, min(start + chunk, len(done)))
            seqs = [rows[k] + tokens[done[k]] for k in part]
            ids, mask = left_pad(seqs, self.tokenizer.pad_token_id, device)
            logp = tail_logprobs(model, ids, mask, max(len(tokens[done[k]]) for k in part))
            weight = torch.zeros_like(logp)
            for row, k in enumerate(part):
                m = len(tokens[done[k]])
                weight[row, -m:] = adv[k]
            loss = -(logp * weight).sum() / max(1, n_tokens)
            loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0).item()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return {"answerer_grad_norm": grad_norm, "answerer_accuracy": sum(rewards) / len(rewards)}


# -------------------------------------------------------------------------------- reward functions


class StepRecord:
    """Collects one generation batch's episodes and term values as TRL's reward functions run, and
    turns them into the step's metrics once every term has reported (drift metrics included)."""

    def __init__(
        self, cfg: RunConfig, task: Task, reward: Reward, monitor: Monitor | None, pool: list[Problem]
    ) -> None:
        self.cfg, self.task, self.reward, self.monitor = cfg, task, reward, monitor
        self.pool = pool  # the training problems, indexed by the dataset's problem_id column
        self.key: object = None
        self.episodes: list[Episode] = []
        self.values: dict[str, list[float]] = {}
        self.row: dict[str, Any] | None = None  # the finished step's metrics, for the callback
        self.rollout: ShoggothFaceRollout | None = None

    def episodes_for(self, completions: list, completion_ids: list, kwargs: dict) -> list[Episode]:
        if completion_ids is not self.key:  # a new batch: every reward function gets the same list object
            self.key, self.values = completion_ids, {}
            self.episodes = episodes_from_trl(self.task, self._problems(kwargs), completions, kwargs, self.cfg)
        return self.episodes

    def _problems(self, kwargs: dict) -> list[Problem]:
        return [self.pool[i] for i in kwargs["problem_id"]]

    def record(self, name: str, values: list[float], kwargs: dict) -> list[float]:
        """Store a term's raw values; return them scaled by the penalty ramp, as TRL should sum them."""
        self.values[name] = values
        step = kwargs["trainer_state"].global_step
        if len(self.values) == len(self.reward.terms):
            self.finish(step, kwargs.get("log_metric"))
        share = self.cfg.reward_scale(step)[name]
        return [v * share for v in values]

    def finish(self, step: int, log_metric: Callable[[str, float], None] | None) -> None:
        eps, values = self.episodes, self.values
        ramp = self.cfg.penalty_ramp(step)
        scale = self.cfg.reward_scale(step)
        totals = [self.reward.total({n: values[n][i] for n in self.reward.weights}, scale) for i in range(len(eps))]
        row: dict[str, Any] = {
            "reward": _mean(totals),
            "accuracy": _mean([self.task.score(e.problem, e.answer) for e in eps]),
            "finished_rate": _mean([float(e.extras.get("finished", e.answer is not None)) for e in eps]),
            "cot_words": _mean([len(e.cot.split()) for e in eps]),
            "penalty_ramp": ramp,
        }
        if "paraphrased_answer" in (eps[0].extras if eps else {}):
            row["paraphrased_answer_accuracy"] = _mean(
                [self.task.score(e.problem, e.extras.get("paraphrased_answer")) for e in eps]
            )
        row |= {f"term_{n}": _mean(v) for n, v in values.items()}
        row |= {k: v for k, v in step_drift(eps, self.monitor, values).items() if k != "drift_hierarchy"}
        if self.rollout is not None and self.rollout.last is not None:
            row |= self.rollout.last.stats
        self.row = row
        if log_metric is not None:  # TRL's logs (and its report_to) get the same numbers
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("term_"):
                    log_metric(f"legible/{k}", float(v))


def step_drift(episodes: list[Episode], monitor: Monitor | None, values: dict[str, list[float]]) -> dict:
    """``drift_metrics`` on the batch's CoTs plus the hierarchy level. A judge monitor is not called a
    second time: its flag rate is the share of CoTs its term scored at 0.5 or more."""
    cots = [e.cot for e in episodes]
    keyword = monitor if isinstance(monitor, KeywordMonitor) else None
    sens = values.get("sensitivity")
    metrics = drift_metrics(cots, monitor=keyword, sensitivity=-_mean(sens) if sens else None)
    if isinstance(monitor, JudgeMonitor) and "monitor" in values:
        metrics["monitor_flag_rate"] = _mean([float(-v >= 0.5) for v in values["monitor"]])
    if keyword is not None:
        metrics["banned_rate"] = _mean([keyword.score(e.cot) / max(1, e.problem.steps) for e in episodes])
    level, text = hierarchy_level(metrics)
    # the organism trainer's names (drift_<metric>, drift_level), so one run report reads both backends
    banned = {"banned_rate": metrics.pop("banned_rate")} if "banned_rate" in metrics else {}
    return {f"drift_{k}": v for k, v in metrics.items()} | banned | {"drift_level": level, "drift_hierarchy": text}


def episodes_from_trl(
    task: Task, problems: list[Problem], completions: list, kwargs: dict, cfg: RunConfig
) -> list[Episode]:
    """Episodes from what TRL passes a reward function: the rollout's extras when it ran (CoT and
    answer as the rollout split them), else the completion parsed with ``split_completion``."""
    keys = ("paraphrase", "original_answer", "paraphrased_answer", "answer_probs", "answer_probs_paraphrased")
    out = []
    for i, (problem, completion) in enumerate(zip(problems, completions)):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        extras = {k: kwargs[k][i] for k in keys if k in kwargs}
        if "cot" in kwargs:
            extras["finished"] = kwargs["finished"][i]
            out.append(Episode(problem, kwargs["cot"][i], kwargs["answer"][i], extras))
        else:
            ep = Episode.from_completion(problem, text, cfg.trl.answer_marker, **extras)
            if "original_answer" not in extras:
                ep.extras["original_answer"] = ep.answer
            out.append(ep)
    return out


def make_reward_funcs(record: StepRecord) -> list[Callable]:
    """One TRL reward function per term, named after it (TRL logs ``rewards/<name>/mean``); ``async``
    for terms that call a model, which TRL runs concurrently with the others."""
    funcs = []
    for name, term in record.reward.terms.items():
        if is_async_term(term):

            async def func(prompts, completions, completion_ids, _name=name, **kwargs):
                episodes = record.episodes_for(completions, completion_ids, kwargs)
                values = await record.reward.term_values_async(_name, episodes)
                return record.record(_name, values, kwargs)

        else:

            def func(prompts, completions, completion_ids, _name=name, **kwargs):
                episodes = record.episodes_for(completions, completion_ids, kwargs)
                values = [float(record.reward.terms[_name](e.problem, e.cot, e.answer, e.extras)) for e in episodes]
                return record.record(_name, values, kwargs)

        func.__name__ = func.__qualname__ = name
        funcs.append(func)
    return funcs


# -------------------------------------------------------------------------------------- the callback


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


def drop_pickles(directory: Path) -> None:
    """transformers pickles its TrainingArguments beside every save and never reads them back; the run
    directory holds none (the optimizer, scheduler and RNG files are torch tensors loaded with
    ``weights_only=True``)."""
    (Path(directory) / "training_args.bin").unlink(missing_ok=True)


def save_rollout_state(rollout: ShoggothFaceRollout, checkpoint: Path) -> None:
    """Our part of a checkpoint, beside TRL's files: safetensors and JSON, written to a temporary
    directory and renamed, so its ``state.json`` marks a complete checkpoint."""
    from safetensors.torch import save_file, save_model

    from legible.policy.checkpoint import _optimizer_tensors

    target = checkpoint / LEGIBLE_STATE
    tmp = checkpoint / (LEGIBLE_STATE + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    scalars = None
    if rollout.face is not None:
        save_model(rollout.face, str(tmp / "face.safetensors"))  # one file; tied weights stored once
    if rollout.answerer_opt is not None:
        tensors, scalars = _optimizer_tensors(rollout.answerer_opt, "answerer")
        save_file(tensors or {"empty": torch.zeros(0)}, str(tmp / "answerer_optimizer.safetensors"))
    version, internal, gauss = rollout.rng.getstate()
    state = {"paraphraser_rng": [version, list(internal), gauss], "answerer_optimizer": scalars}
    (tmp / "state.json").write_text(json.dumps(state))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def load_rollout_state(rollout: ShoggothFaceRollout, checkpoint: Path, trainer: GRPOTrainer) -> None:
    from safetensors.torch import load_file, load_model

    from legible.policy.checkpoint import _restore_optimizer

    source = checkpoint / LEGIBLE_STATE
    state = json.loads((source / "state.json").read_text())
    if rollout.face is not None:
        load_model(rollout.face, str(source / "face.safetensors"))
    if state["answerer_optimizer"] is not None:
        tensors = load_file(str(source / "answerer_optimizer.safetensors"))
        _restore_optimizer(rollout.answerer_optimizer(trainer), "answerer", tensors, state["answerer_optimizer"])
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


# ---------------------------------------------------------------------------------------- loading


def _check_local(spec: str, what: str) -> None:
    """A spec that can only be a path (absolute, relative, home, or more than "org/name") must exist:
    the hub's error for a missing directory talks about repo ids."""
    looks_local = spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or os.sep != "/" and os.sep in spec
    if looks_local and not Path(spec).expanduser().is_dir():
        raise ConfigFieldError(f"{what}: no model directory at {spec!r}")


def load_tokenizer(spec: str, settings: TRLSettings) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    _check_local(spec, "model")
    try:
        tok = AutoTokenizer.from_pretrained(spec, padding_side="left", trust_remote_code=settings.trust_remote_code)
    except (OSError, ValueError) as e:
        raise ConfigFieldError(f"model: cannot load a tokenizer from {spec!r}: {_first_line(e)}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(spec: str, settings: TRLSettings, what: str = "model") -> PreTrainedModel:
    """A causal LM from a local directory or a Hugging Face id (offline runs: set HF_HUB_OFFLINE=1)."""
    from transformers import AutoModelForCausalLM

    dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
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


def grpo_args(cfg: RunConfig, out: Path, names: list[str], **overrides: Any) -> Any:
    """TRL's GRPOConfig from ours: one generation (``rl.prompts`` x ``rl.group_size`` episodes) per
    optimizer step, in micro-batches of ``trl.micro_batch``, so updates stay on-policy as in the organism;
    the reward weights in the order of ``names`` (the reward functions'). ``overrides`` are GRPOConfig
    fields set on top (``report_to="wandb"``, ``bf16=True``, ...)."""
    from trl import GRPOConfig

    rl, s = cfg.rl, cfg.trl
    episodes = rl.prompts * rl.group_size
    micro = s.micro_batch or episodes
    cuda = torch.cuda.is_available()
    bf16 = s.bf16 if s.bf16 is not None else bool(cuda and torch.cuda.is_bf16_supported())
    settings = dict(
        output_dir=str(out / "checkpoints"),
        seed=cfg.seed,
        max_steps=rl.steps,
        learning_rate=rl.lr,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=episodes // micro,
        steps_per_generation=episodes // micro,
        num_generations=rl.group_size,
        max_completion_length=s.max_cot_tokens + s.max_answer_tokens + 1,
        temperature=rl.temperature,
        beta=rl.kl_coef,
        entropy_coef=rl.entropy_coef,
        scale_rewards="group" if rl.scale_advantages else "none",
        loss_type=s.loss_type,
        reward_weights=[cfg.condition.rewards[n] for n in names],
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=1,
        save_strategy="steps",
        save_steps=rl.checkpoint_every,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        bf16=bf16,
        use_cpu=not cuda,
        activation_checkpointing=s.gradient_checkpointing,  # transformers 5 name of gradient_checkpointing
        disable_dropout=True,
        use_vllm=s.use_vllm,
        vllm_mode=s.vllm_mode,
        vllm_gpu_memory_utilization=s.vllm_gpu_memory_utilization,
        chat_template_kwargs=s.chat_template_kwargs or None,
        shuffle_dataset=True,
        remove_unused_columns=False,  # the reward functions find each episode's problem by its problem_id
        dataloader_num_workers=0,
    )
    return GRPOConfig(**(settings | overrides))


# --------------------------------------------------------------------------------------- the run


@dataclass
class TRLRun:
    """Everything a run builds, kept together so tests and the benchmark can drive pieces of it."""

    cfg: RunConfig
    task: Task
    trainer: GRPOTrainer
    rollout: ShoggothFaceRollout
    record: StepRecord
    callback: LegibleCallback
    _eval: dict[tuple[int, int], list[Problem]] = field(default_factory=dict)

    def eval_problems(self, n: int | None = None, seed: int | None = None) -> list[Problem]:
        """``n`` problems drawn with ``seed`` (default: ``eval.problems`` with ``eval.seed``, the final
        evaluation's), drawn when first asked for (generating programs takes a while) and kept."""
        key = (n or self.cfg.eval.problems, self.cfg.eval.seed if seed is None else seed)
        if key not in self._eval:
            rng = random.Random(key[1])
            self._eval[key] = [self.task.sample(rng) for _ in range(key[0])]
        return self._eval[key]


@dataclass
class GRPOParts:
    """What legible adds to a GRPOTrainer, for a training script of your own::

        parts = grpo_parts(cfg, tokenizer)          # cfg: a RunConfig (legible.config.load_config)
        trainer = GRPOTrainer(
            model=model, processing_class=tokenizer, train_dataset=parts.dataset,
            reward_funcs=parts.reward_funcs, rollout_func=parts.rollout,
            args=parts.args("runs/mine", report_to="wandb"),
        )

    ``dataset`` holds the prompts and a ``problem_id`` column through which the reward functions find
    each episode's problem (so keep ``remove_unused_columns=False``); ``args`` gives the reward weights in
    the reward functions' order and legible's on-policy batch shape, with any GRPOConfig field on top.
    ``record.row`` holds the last step's metrics (accuracy, each term, drift); ``legible train`` adds
    a callback that writes them to ``metrics.jsonl``, evaluates, and checkpoints the rollout's state."""

    cfg: RunConfig
    task: Task
    dataset: Any
    pool: list[Problem]
    reward_funcs: list[Callable]
    reward_names: list[str]
    rollout: ShoggothFaceRollout
    record: StepRecord

    def args(self, out: str | Path, **overrides: Any) -> Any:
        return grpo_args(self.cfg, Path(out), self.reward_names, **overrides)


def grpo_parts(
    cfg: RunConfig,
    tokenizer: PreTrainedTokenizerBase,
    *,
    face: PreTrainedModel | None = None,
    problems: Sequence[Problem] | None = None,
) -> GRPOParts:
    """The reward functions (one per term of ``cfg.condition``), the Shoggoth/Face/paraphraser rollout
    and the prompt dataset of ``cfg``. ``face``: the Face model for conditions with ``face: true``.
    ``problems``: the training problems (default: ``trl.dataset_size`` drawn from ``cfg.task``)."""
    from datasets import Dataset

    if cfg.condition.face and face is None:
        raise ValueError(f"condition {cfg.condition.name}: give the Face model (face=...)")
    task = cfg.task.build()
    s = cfg.trl
    paraphraser = make_paraphraser(cfg.paraphraser, task)
    monitor = cfg.build_monitor(task)
    reward = cfg.build_reward(task, monitor)
    if problems is None:
        rng = random.Random(cfg.seed)
        problems = [task.sample(rng) for _ in range(s.dataset_size)]
    pool = list(problems)
    chat = tokenizer.chat_template is not None
    prompts = [build_prompt(p, s, chat) for p in pool]
    by_prompt = {}
    for p, prompt in zip(pool, prompts):
        by_prompt.setdefault(prompt_text(prompt), p)
    dataset = Dataset.from_dict({"prompt": prompts, "problem_id": list(range(len(pool)))})
    rollout = ShoggothFaceRollout(cfg, task, by_prompt, paraphraser, tokenizer, face)
    record = StepRecord(cfg, task, reward, monitor, pool)
    record.rollout = rollout
    return GRPOParts(cfg, task, dataset, pool, make_reward_funcs(record), list(reward.terms), rollout, record)


def build_run(
    cfg: RunConfig,
    out: Path,
    *,
    resume: bool = False,
    on_step: Callable[[int, dict], None] | None = None,
    use_rollout: bool = True,
) -> TRLRun:
    """Build the task, reward, models and GRPOTrainer of a run (``use_rollout=False``: plain GRPO, the
    policy writes CoT and answer, for comparisons)."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is experimental in TRL 1.16
    from transformers import PrinterCallback, ProgressCallback
    from trl import GRPOTrainer

    out = Path(out)
    s = cfg.trl
    tokenizer = load_tokenizer(cfg.model, s)
    model = load_model(cfg.model, s)
    face = None
    if cfg.condition.face:
        face = load_model(s.face_model or cfg.model, s, what="trl.face_model")
        face.to("cuda" if torch.cuda.is_available() else "cpu")
        from trl.trainer.utils import disable_dropout_in_model

        disable_dropout_in_model(face)
    parts = grpo_parts(cfg, tokenizer, face=face)
    rollout, record = parts.rollout, parts.record
    record.rollout = rollout if use_rollout else None
    resume_step = None
    if resume:
        last = latest_complete_checkpoint(out / "checkpoints")
        resume_step = int(last.name.split("-")[1]) if last else -1
    log = MetricsLog(out / "metrics.jsonl", resume_step=resume_step, phase="rl")
    run_holder: dict[str, TRLRun] = {}

    def evaluate(step: int) -> dict:
        run = run_holder["run"]
        return evaluate_run(run, problems=run.eval_problems(cfg.rl.eval_problems, cfg.eval.seed + 1)) | {"step": step}

    callback = LegibleCallback(record, rollout, log, evaluate=evaluate, on_step=on_step)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=parts.reward_funcs,
        args=parts.args(out),
        train_dataset=parts.dataset,
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=_peft_config(s),
        rollout_func=rollout if use_rollout else None,
    )
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)  # progress is ours (rich bars in legible.train.run); logs go to JSONL
    run = TRLRun(cfg, parts.task, trainer, rollout, record, callback)
    run_holder["run"] = run
    return run


def evaluate_run(run: TRLRun, problems: list[Problem] | None = None) -> dict:
    """Greedy episodes on held-out problems (problems the training pool did not draw, for generated
    tasks; the shipped JSONL samples are small, so there the pool and these overlap), the answer
    produced the way the condition produces it. Returns accuracy, paraphrased-answer accuracy, the
    monitor's readings and the drift metrics with the hierarchy level."""
    problems = problems if problems is not None else run.eval_problems()
    rollout, s = run.rollout, run.cfg.trl
    chat = rollout.tokenizer.chat_template is not None
    saved_views = rollout.views
    rollout.views = saved_views | {"original", "paraphrased"}  # always measure both views
    episodes: list[Episode] = []
    batch = run.cfg.rl.prompts * run.cfg.rl.group_size
    try:
        for start in range(0, len(problems), batch):
            part = problems[start : start + batch]
            prompt_ids = rollout.encode([build_prompt(p, s, chat) for p in part])
            ep = rollout.play(part, prompt_ids, run.trainer, train=False)
            for i, p in enumerate(part):
                extras = {k: v[i] for k, v in ep.extras.items()} | {"finished": ep.finished[i]}
                episodes.append(Episode(p, ep.cots[i], ep.answers[i], extras))
    finally:
        rollout.views = saved_views
    task, monitor = run.task, run.record.monitor
    keyword = monitor if isinstance(monitor, KeywordMonitor) else None
    result = {
        "problems": len(problems),
        "accuracy": _mean([task.score(e.problem, e.answer) for e in episodes]),
        "paraphrased_answer_accuracy": _mean(
            [task.score(e.problem, e.extras.get("paraphrased_answer")) for e in episodes]
        ),
        "paraphrase_disagreement": _mean(
            [
                disagreement(task, e.problem, e.extras.get("original_answer"), e.extras.get("paraphrased_answer"))
                for e in episodes
                if e.extras.get("finished")
            ]
        ),
        "finished_rate": _mean([float(e.extras["finished"]) for e in episodes]),
        "cot_words": _mean([len(e.cot.split()) for e in episodes]),
    }
    if isinstance(monitor, JudgeMonitor):
        scores = monitor.score_many([e.cot for e in episodes])
        result["monitor_score"] = _mean(scores)
    result |= step_drift(episodes, keyword, {})
    if isinstance(monitor, JudgeMonitor):
        result["drift_monitor_flag_rate"] = _mean([float(x >= 0.5) for x in scores])
    result["examples"] = [
        {"prompt": e.problem.prompt, "cot": e.cot, "paraphrase": e.extras.get("paraphrase"), "answer": e.answer,
         "truth": e.problem.answer}
        for e in episodes[:5]
    ]  # fmt: skip
    return result


def train_trl(
    cfg: RunConfig,
    out: Path,
    *,
    resume: bool = False,
    on_step: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train, save the policy (and Face) as safetensors, evaluate; returns the final evaluation."""
    out = Path(out)
    run = build_run(cfg, out, resume=resume, on_step=on_step)
    checkpoint = latest_complete_checkpoint(out / "checkpoints") if resume else None
    if checkpoint is not None:
        load_rollout_state(run.rollout, checkpoint, run.trainer)
    if resume and checkpoint is None:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)  # nothing complete to resume from
    start = time.perf_counter()
    if checkpoint is not None and int(checkpoint.name.split("-")[1]) >= cfg.rl.steps:
        # Training had finished (a kill came later). Trainer.train would still take one more step from
        # here, so the final weights are loaded instead, as train() would load them.
        run.trainer._load_from_checkpoint(str(checkpoint))
    else:
        run.trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    run.trainer.save_model(str(out / "policy"))
    drop_pickles(out / "policy")
    if run.rollout.face is not None:
        run.rollout.face.save_pretrained(out / "face", safe_serialization=True)
    final = evaluate_run(run)
    final["condition"] = cfg.condition.name
    final["train_seconds"] = round(time.perf_counter() - start, 2)
    return final


def _mean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None
