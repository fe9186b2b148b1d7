"""Turning problems into episodes with the organism: the policy writes CoTs, an answerer
(the policy itself or a separate Face) reads a view of each CoT and answers.

Used by the GRPO trainer and by the evaluation, so both see episodes made the same way.
"""

from __future__ import annotations

import torch

from legible.policy.tiny import TinyTransformer, left_pad, sample
from legible.policy.vocab import VOCAB
from legible.tasks.base import Problem


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


def answer_logprobs(
    answerer: TinyTransformer, problems: list[Problem], cots: list[str], answer_words: tuple[str, ...]
) -> torch.Tensor:
    """Log-probabilities (E, A) over ``answer_words`` that the answerer gives after reading
    ``prompt cot answer``; differentiable, so the trainer uses it for the answer's loss."""
    rows = [prompt_ids(p) + VOCAB.encode(c) + [VOCAB.answer_id] for p, c in zip(problems, cots)]
    ids, mask = left_pad(rows, VOCAB.pad_id)
    logits = answerer(ids, mask)[:, -1, :]
    return logits[:, VOCAB.ids(answer_words)].log_softmax(-1)


def completion_logprobs(
    policy: TinyTransformer, problems: list[Problem], tokens: list[list[int]], temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the policy's own tokens after each prompt, under the
    distribution they were sampled from (logits divided by ``temperature``).

    Returns (logprobs (E, L), mask (E, L) of real completion tokens, entropy (E, L), and the
    untempered logits (E, V) after each row's last token: rows are left-padded, so that is
    the last column, and after an answer marker it is the answer distribution)."""
    prompts = [prompt_ids(p) for p in problems]
    rows = [p + t for p, t in zip(prompts, tokens)]
    ids, mask = left_pad(rows, VOCAB.pad_id)
    all_logits = policy(ids, mask)
    logits = all_logits[:, :-1, :] / temperature
    logp_all = logits.log_softmax(-1)
    targets = ids[:, 1:]
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    width = ids.shape[1]
    completion = torch.zeros_like(mask)
    for i, t in enumerate(tokens):
        completion[i, width - len(t) :] = True
    completion = completion[:, 1:] & mask[:, 1:]
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, completion, entropy, all_logits[:, -1, :]
