"""Generation for the rollout: transformers' ``generate`` stopped at the answer marker, TRL's vLLM backend
for the policy's CoTs, and the answerer's reading of a closed answer space from log-probs (``read_answers``:
one forward over each row instead of a generation; ``answer_distribution``: the same teacher-forced, one
row per spelling)."""

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
    prompts: PromptCache | None = None,
) -> Samples:
    """transformers ``generate`` on left-padded rows with ``StopAt``. ``config`` also replaces the model's
    own generation config for the call: ``generate`` fills unset fields from it (a chat model's default
    top_k or repetition penalty would otherwise change what is sampled). ``prompts``: the rows' own
    ``PromptCache`` (the rows are the batch's prompts), so that each distinct prompt is not run again."""
    if not rows:
        return Samples([], [])
    device = next(model.parameters()).device
    ids, mask = left_pad(rows, tokenizer.pad_token_id, device)
    extra = {}
    if prompts is not None and prompts.width == ids.shape[1] and len(prompts.index) == len(rows):
        extra["cache"] = prompts.select(range(len(rows)))[0]
    stopper = StopAt(tokenizer, ids.shape[1], len(rows), eos_ids, stop, window)
    config = copy.copy(config)
    config.max_new_tokens = max_new_tokens
    saved = model.generation_config
    model.generation_config = config
    try:
        with torch.no_grad():
            out = model.generate(
                input_ids=ids, attention_mask=mask, generation_config=config, stopping_criteria=[stopper], **extra
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
    (" B", "B", " b", "b"; " heads", " Heads", "heads", "Heads"); None for an open answer space."""
    if not words:
        return None
    out = []
    for w in words:
        forms = dict.fromkeys((w, w.lower(), w.capitalize()))
        spellings = {tuple(tokenizer(f"{pre}{form}", add_special_tokens=False).input_ids)
                     for pre in (" ", "") for form in forms}  # fmt: skip
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


class PromptCache:
    """The keys and values of each distinct prompt of a batch, computed once: a GRPO group's rows share one
    prompt, and every row continues from a copy of its prompt's cache (in the policy's generation and in the
    answerer's reading), so a prompt's forward runs once per batch instead of once per row.

    The prompts are left-padded to the batch's width ``W``; the cache holds their first ``W - 1`` columns,
    so that whoever continues has the prompt's last token to feed (``generate`` needs one)."""

    def __init__(self, model: PreTrainedModel, pad_id: int, rows: Sequence[Sequence[int]]) -> None:
        from transformers import DynamicCache

        distinct = list(dict.fromkeys(tuple(r) for r in rows))
        where = {p: u for u, p in enumerate(distinct)}
        self.index = [where[tuple(r)] for r in rows]
        self.ids, self.mask = left_pad(distinct, pad_id, next(model.parameters()).device)
        self.cache = DynamicCache()
        positions = (self.mask.cumsum(-1) - 1).clamp_min(0)
        with torch.no_grad():
            model(
                input_ids=self.ids[:, :-1],
                attention_mask=self.mask[:, :-1],
                position_ids=positions[:, :-1],
                cache=self.cache,
                use_cache=True,
                logits_to_keep=1,
            )

    @property
    def width(self) -> int:
        return self.ids.shape[1]

    def select(self, rows: Sequence[int]) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """(a copy of the cache, the prompt ids, the prompt mask) for these batch rows, in their order."""
        idx = torch.tensor([self.index[r] for r in rows], device=self.ids.device)
        cache = copy.deepcopy(self.cache)
        cache.batch_select_indices(idx)
        return cache, self.ids[idx], self.mask[idx]


def read_answers(
    model: PreTrainedModel,
    pad_id: int,
    rows: list[list[int]],
    spellings: list[list[list[int]]],
    *,
    chunk: int = 64,
    grad: bool = False,
    prompts: PromptCache | None = None,
    which: Sequence[int] | None = None,
) -> tuple[torch.Tensor, list[list[list[float]]]]:
    """The answerer's reading of a closed answer space after each row (which ends at the answer marker), in
    one forward over the row: returns ``(word_logp, spelling_logp)``, where ``word_logp[r, w]`` is the log of
    the summed probability of word ``w``'s spellings (not renormalised over the words) and
    ``spelling_logp[r][w][k]`` the log-probability of its ``k``-th spelling.

    The cost is one forward over each row plus, per multi-token spelling prefix (" T" of " T|ails"), a
    forward of one or two tokens on the cached row; ``answer_distribution`` runs a whole row per spelling.
    With ``prompts`` (the batch's ``PromptCache``, computed by ``model``), ``rows`` are what follows each
    row's prompt and ``which[k]`` is the batch row of ``rows[k]``: the prompts are not run again. With
    ``grad`` the row is read without gradient up to its last token, and that token (and the spelling
    tokens) with it: ``word_logp`` carries the gradient of the reading at the answer position, the context's
    keys and values held fixed."""
    n_words = len(spellings)
    if not rows:
        return torch.zeros(0, n_words), []
    device = next(model.parameters()).device
    # each proper prefix of a multi-token spelling is read once, on the cached row
    prefixes = sorted({tuple(v[:k]) for variants in spellings for v in variants for k in range(len(v))}, key=len)
    word_parts, spelling_parts = [], []
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        cache, last, mask, last_pos = _context(model, pad_id, part, device, prompts, which, start)
        next_logp: dict[tuple[int, ...], torch.Tensor] = {}
        with torch.set_grad_enabled(grad):
            for prefix in prefixes:
                extra = torch.tensor(prefix, dtype=torch.long, device=device).expand(len(part), -1)
                tokens = torch.cat([last, extra], dim=1)
                logits = model(
                    input_ids=tokens,
                    attention_mask=torch.cat([mask, torch.ones_like(extra)], dim=1),
                    position_ids=last_pos + torch.arange(tokens.shape[1], device=device),
                    cache=cache,
                    use_cache=cache is not None,
                ).logits
                next_logp[prefix] = logits[:, -1].float().log_softmax(-1)
                if cache is not None:
                    cache.crop(-tokens.shape[1])  # back to the context alone (a negative count removes tokens)
            words = []
            chunk_spellings: list[list[list[float]]] = [[[] for _ in spellings] for _ in part]
            for w, variants in enumerate(spellings):
                per_spelling = []
                for v in variants:
                    lp = sum(next_logp[tuple(v[:i])][:, v[i]] for i in range(len(v)))
                    per_spelling.append(lp)
                    for r, x in enumerate(lp.detach().cpu().tolist()):
                        chunk_spellings[r][w].append(x)
                words.append(torch.logsumexp(torch.stack(per_spelling, dim=1), dim=1))
        word_parts.append(torch.stack(words, dim=1))
        spelling_parts.extend(chunk_spellings)
    return torch.cat(word_parts), spelling_parts


def _context(model, pad_id, part, device, prompts, which, start):
    """The cache of each row but its last token (run without gradient), that last token, the attention mask
    of the whole row and the last token's position: what ``read_answers`` continues from."""
    from transformers import DynamicCache

    if prompts is None:
        ids, mask = left_pad(part, pad_id, device)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        cache = None
        if ids.shape[1] > 1:
            cache = DynamicCache()
            with torch.no_grad():
                model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
                      cache=cache, use_cache=True, logits_to_keep=1)  # fmt: skip
        return cache, ids[:, -1:], mask, positions[:, -1:]
    rows_of = list(which[start : start + len(part)])
    cache, prompt_ids, prompt_mask = prompts.select(rows_of)
    tail, tail_mask = left_pad(part, pad_id, device)  # each row's continuation, left-padded in its own segment
    ids = torch.cat([prompt_ids[:, -1:], tail], dim=1)  # the prompt's last token is not in its cache
    mask = torch.cat([prompt_mask, tail_mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    width = prompts.width
    if ids.shape[1] > 1:
        with torch.no_grad():
            model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, width - 1 : -1],
                  cache=cache, use_cache=True, logits_to_keep=1)  # fmt: skip
    return cache, ids[:, -1:], mask, positions[:, -1:]
