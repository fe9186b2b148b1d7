"""Turning problems into episodes with the organism: the policy writes CoTs, an answerer
(the policy itself or a separate Face) reads a view of each CoT and answers.

Used by the GRPO trainer and by the evaluation, so both see episodes made the same way.
"""

from __future__ import annotations

import torch

from legible.policy._tiny import KVCache, TinyTransformer, left_pad, right_pad, sample, shared_prompts
from legible.policy._vocab import VOCAB
from legible.tasks import Problem, Task


def prompt_ids(problem: Problem) -> list[int]:
    return [VOCAB.bos_id, *VOCAB.encode(problem.prompt)]


def write_cots(
    policy: TinyTransformer,
    problems: list[Problem],
    *,
    max_steps: int,
    temperature: float,
    generator: torch.Generator | None,
    prefixes: list[list[int]] | None = None,
) -> tuple[list[list[int]], list[str], list[bool]]:
    """Sample CoTs until the answer marker. Returns the policy's tokens (marker included when
    written), the CoT text, and whether the marker was written (no marker: no answer)."""
    prefixes = prefixes or [[] for _ in problems]
    prompts = [prompt_ids(p) + pre for p, pre in zip(problems, prefixes)]
    budget = 2 * max_steps + 4
    new = sample(
        policy,
        prompts,
        max_new_tokens=budget,
        stop_id=VOCAB.answer_id,
        pad_id=VOCAB.pad_id,
        temperature=temperature,
        generator=generator,
    )
    tokens = [pre + n for pre, n in zip(prefixes, new)]
    finished = [bool(t) and t[-1] == VOCAB.answer_id for t in tokens]
    cots = [VOCAB.decode(t[:-1] if f else t) for t, f in zip(tokens, finished)]
    return tokens, cots, finished


def continuation_logits(
    model: TinyTransformer, problems: list[Problem], continuations: list[list[int]]
) -> torch.Tensor:
    """Logits (E, C + 1, V): column j is what ``model`` predicts after row i's prompt and the first
    j tokens of its continuation (C = the longest continuation; rows are right-padded).

    Rows that share a prompt (a GRPO group: the same problem G times) share one pass over it:
    the prompt runs once and every row continues from a copy of its keys and values. That is
    the same computation as running each row whole, and gradients reach the prompt's
    positions through the copies."""
    distinct, copy_of = shared_prompts([prompt_ids(p) for p in problems])
    ids, mask = left_pad(distinct, VOCAB.pad_id)
    cache = KVCache(model.cfg.n_layer)
    after_prompt = model(ids, mask, cache)[:, -1:, :].index_select(0, copy_of)
    cont, cont_mask = right_pad(continuations, VOCAB.pad_id)
    if cont.shape[1] == 0:
        return after_prompt
    return torch.cat([after_prompt, model(cont, cont_mask, cache.select(copy_of))], 1)


def answer_logprobs(
    answerer: TinyTransformer, problems: list[Problem], cots: list[str], answer_words: tuple[str, ...]
) -> torch.Tensor:
    """Log-probabilities (E, A) over ``answer_words`` that the answerer gives after reading
    ``prompt cot answer``; differentiable, so the trainer uses it for the answer's loss."""
    rows = [VOCAB.encode(c) + [VOCAB.answer_id] for c in cots]
    logits = continuation_logits(answerer, problems, rows)
    last = logits[torch.arange(len(rows)), torch.tensor([len(r) for r in rows])]
    return last[:, VOCAB.ids(answer_words)].log_softmax(-1)


def completion_logprobs(
    policy: TinyTransformer, problems: list[Problem], tokens: list[list[int]], temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the policy's own tokens after each prompt, under the
    distribution they were sampled from (logits divided by ``temperature``).

    Returns (logprobs (E, L), mask (E, L) of real completion tokens, entropy (E, L), and the
    untempered logits (E, V) after each row's last token: after an answer marker, that is the
    answer distribution)."""
    logits = continuation_logits(policy, problems, tokens)
    targets, completion = right_pad(tokens, VOCAB.pad_id)
    logp_all = (logits[:, :-1, :] / temperature).log_softmax(-1)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, completion, entropy, logits[torch.arange(len(tokens)), completion.sum(1)]


def answers_for(
    answerer: TinyTransformer, problems: list[Problem], views: list[str], finished: list[bool], task: Task
) -> list[str | None]:
    """The answerer's greedy answer from each view of a CoT; None where no answer marker was written."""
    with torch.no_grad():
        picks = answer_logprobs(answerer, problems, views, task.answer_words).argmax(-1).tolist()
    return [task.answer_words[i] if f else None for i, f in zip(picks, finished)]


def greedy_accuracy(model: TinyTransformer, task: Task, items: list[Problem], with_cot: bool = True) -> list[float]:
    """Per-problem correctness of greedy decoding: the model writes its CoT (or none) and answers."""
    if with_cot:
        _, cots, finished = write_cots(model, items, max_steps=task.max_steps, temperature=0, generator=None)
    else:
        cots, finished = [""] * len(items), [True] * len(items)
    return [task.score(p, a) for p, a in zip(items, answers_for(model, items, cots, finished, task))]
