"""Generation for the rollout: transformers' ``generate`` stopped at the answer marker, TRL's vLLM backend
for the policy's CoTs, and the answerer's distribution over a closed answer space (teacher-forced)."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformers import StoppingCriteria

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from trl import GRPOTrainer


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
