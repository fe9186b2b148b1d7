"""Turning problems into episodes with the organism: the policy writes CoTs, an answerer
(the policy itself or a separate Face) reads a view of each CoT and answers.

Used by the GRPO trainer and by the evaluation, so both see episodes made the same way.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F

from legible.policy._tiny import KVCache, TinyTransformer, last_column, left_pad, right_pad, sample, shared_prompts
from legible.policy._vocab import VOCAB
from legible.tasks import Problem, Task


def prompt_ids(problem: Problem) -> list[int]:
    return [VOCAB.bos_id, *VOCAB.encode(problem.prompt)]


class StepParaphrase(Protocol):
    """A paraphrase applied to each token of a CoT as the policy writes it (step-wise paraphrasing): the
    policy reads back the paraphrase of its CoT so far, never its own tokens. Token j of a row is rewritten
    with ``fillers[:, j]``, drawn once per rollout, so the sampler and the training pass read the same text."""

    def fillers(self, rows: int, length: int, generator: torch.Generator | None) -> torch.Tensor: ...

    def __call__(self, tokens: torch.Tensor, fillers: torch.Tensor) -> torch.Tensor: ...


class Written(NamedTuple):
    """CoTs the policy wrote: its tokens (the answer marker included when written), their text, whether the
    marker was written (no marker: no answer), the tokens it read back (its own, or their step-wise
    paraphrase), which its log-probabilities are conditioned on, and when asked for, the logits (E, V) the
    policy gives after its answer marker: its answer distribution, read off the sampling pass."""

    tokens: list[list[int]]
    cots: list[str]
    finished: list[bool]
    read: list[list[int]]
    answer_logits: torch.Tensor | None = None


def write_cots(
    policy: TinyTransformer,
    problems: list[Problem],
    *,
    max_steps: int,
    temperature: float,
    generator: torch.Generator | None,
    prefixes: list[list[int]] | None = None,
    step_paraphrase: StepParaphrase | None = None,
    answer_logits: bool = False,
) -> Written:
    """Sample CoTs until the answer marker, after each problem's prompt and prefix (the policy's words
    so far). With ``step_paraphrase``, the policy reads every token, the prefix's included, through it.
    With ``answer_logits``, also the logits after each answer marker (``Written.answer_logits``)."""
    prefixes = prefixes or [[] for _ in problems]
    budget = 2 * max_steps + 4
    feed, reread = None, lambda rows: rows
    if step_paraphrase is not None:
        offsets = torch.tensor([len(pre) for pre in prefixes])
        fillers = step_paraphrase.fillers(len(problems), int(offsets.max()) + budget, generator)
        rows_at = torch.arange(len(problems))

        def feed(drawn: torch.Tensor, t: int) -> torch.Tensor:
            return step_paraphrase(drawn, fillers[rows_at, offsets + t])

        def reread(rows: list[list[int]]) -> list[list[int]]:
            return [
                step_paraphrase(torch.tensor(r, dtype=torch.long), fillers[i, : len(r)]).tolist()
                for i, r in enumerate(rows)
            ]

    prompts = [prompt_ids(p) + pre for p, pre in zip(problems, reread(prefixes))]
    new = sample(
        policy,
        prompts,
        max_new_tokens=budget,
        stop_id=VOCAB.answer_id,
        pad_id=VOCAB.pad_id,
        temperature=temperature,
        generator=generator,
        feed=feed,
        after_stop=answer_logits,
    )
    new, after = new if answer_logits else (new, None)
    tokens = [pre + n for pre, n in zip(prefixes, new)]
    finished = [bool(t) and t[-1] == VOCAB.answer_id for t in tokens]
    cots = [VOCAB.decode(t[:-1] if f else t) for t, f in zip(tokens, finished)]
    return Written(tokens, cots, finished, reread(tokens), after)


def continuation_logits(
    model: TinyTransformer,
    problems: list[Problem],
    continuations: list[list[int]],
    at: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits (E, C + 1, V): column j is what ``model`` predicts after row i's prompt and the first
    j tokens of its continuation (C = the longest continuation; rows are right-padded). With ``at``
    (E, K), only columns ``at + 1``, each at least 1: (E, K, V), computed at those columns alone
    (``TinyTransformer.forward``).

    Rows that share a prompt (a GRPO group: the same problem G times) share one pass over it:
    the prompt runs once and every row continues from a copy of its keys and values. That is
    the same computation as running each row whole, and gradients reach the prompt's
    positions through the copies."""
    distinct, copy_of = shared_prompts([prompt_ids(p) for p in problems])
    ids, mask = left_pad(distinct, VOCAB.pad_id)
    cache = KVCache(model.cfg.n_layer)
    after_prompt = model(ids, mask, cache, at=last_column(ids)).index_select(0, copy_of)
    # Rows run in groups of similar length, each padded to its own longest: continuations vary (a paraphrase
    # from 10 to 30 words), and one batch padded to the longest spent two fifths of an answer pass on padding.
    order = sorted(range(len(continuations)), key=lambda i: len(continuations[i]))
    parts = []
    for start in range(0, len(order), LENGTH_GROUP):
        rows = torch.tensor(order[start : start + LENGTH_GROUP])
        cont, cont_mask = right_pad([continuations[i] for i in rows.tolist()], VOCAB.pad_id)
        width = cont.shape[1]
        if width == 0:
            parts.append(after_prompt.new_zeros(len(rows), 0 if at is None else at.shape[1], after_prompt.shape[-1]))
            continue
        # a column past a row's continuation is padding, whose logits mean nothing (callers mask it)
        cols = None if at is None else at.index_select(0, rows).clamp(max=width - 1)
        parts.append(model(cont, cont_mask, cache.select(copy_of.index_select(0, rows)), at=cols))
    widest = max(p.shape[1] for p in parts)
    back = torch.tensor(order).argsort()  # each row's place among the grouped rows
    logits = torch.cat([F.pad(p, (0, 0, 0, widest - p.shape[1])) for p in parts]).index_select(0, back)
    return logits if at is not None else torch.cat([after_prompt, logits], 1)


# Rows per length group in ``continuation_logits``: a quarter of a training batch, so each pass stays wide
# enough that the cost per call does not outweigh the padding saved.
LENGTH_GROUP = 32


def answer_logprobs(
    answerer: TinyTransformer, problems: list[Problem], cots: list[str], answer_words: tuple[str, ...]
) -> torch.Tensor:
    """Log-probabilities (E, A) over ``answer_words`` that the answerer gives after reading
    ``prompt cot answer``; differentiable, so the trainer uses it for the answer's loss."""
    rows = [VOCAB.encode(c) + [VOCAB.answer_id] for c in cots]
    marker = torch.tensor([[len(r) - 1] for r in rows])  # the answer marker's column, the last of each row
    last = continuation_logits(answerer, problems, rows, at=marker)[:, 0]
    return last[:, VOCAB.ids(answer_words)].log_softmax(-1)


def completion_logprobs(
    policy: TinyTransformer,
    problems: list[Problem],
    tokens: list[list[int]],
    temperature: float = 1.0,
    read: list[list[int]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the policy's own tokens after each prompt, under the
    distribution they were sampled from (logits divided by ``temperature``): token j conditioned on
    the first j tokens of ``read`` (what the policy read back as it wrote them; default ``tokens``).

    Returns (logprobs (E, L), mask (E, L) of real completion tokens, entropy (E, L), and the
    untempered logits (E, V) after each row's last token: after an answer marker, that is the
    answer distribution)."""
    logits = continuation_logits(policy, problems, tokens if read is None else read)
    targets, completion = right_pad(tokens, VOCAB.pad_id)
    logp_all = (logits[:, :-1, :] / temperature).log_softmax(-1)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, completion, entropy, logits[torch.arange(len(tokens)), completion.sum(1)]


# Tokens the answerer may write after its answer on an explaining task: the legible explanation is two words
# and the end token, so a few spare.
OUTPUT_BUDGET = 6


def write_outputs(
    answerer: TinyTransformer,
    problems: list[Problem],
    views: list[str],
    answers: list[str | None],
    *,
    temperature: float,
    generator: torch.Generator | None,
) -> list[list[int]]:
    """What the answerer writes after its answer (an explaining task's output), until the end token (kept)
    or ``OUTPUT_BUDGET``: it reads ``prompt view answer-marker answer``. Empty where there is no answer."""
    rows = [i for i, a in enumerate(answers) if a is not None]
    outputs: list[list[int]] = [[] for _ in problems]
    if not rows:
        return outputs
    prompts = [prompt_ids(problems[i]) + _answered(views[i], answers[i]) for i in rows]
    new = sample(
        answerer,
        prompts,
        max_new_tokens=OUTPUT_BUDGET,
        stop_id=VOCAB.eos_id,
        pad_id=VOCAB.pad_id,
        temperature=temperature,
        generator=generator,
    )
    for i, tokens in zip(rows, new):
        outputs[i] = tokens
    return outputs


def output_logprobs(
    answerer: TinyTransformer,
    problems: list[Problem],
    views: list[str],
    answers: list[str | None],
    outputs: list[list[int]],
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities (E, L) of each output's tokens under the distribution they were sampled from, and the
    mask (E, L) of real output tokens (none where there is no answer); differentiable."""
    heads = [_answered(v, a) if a is not None else [] for v, a in zip(views, answers)]
    kept = [o if a is not None else [] for o, a in zip(outputs, answers)]
    rows = [h + o for h, o in zip(heads, kept)]
    width = max((len(o) for o in kept), default=0)
    targets, mask = right_pad(kept, VOCAB.pad_id)
    if width == 0:
        return torch.zeros(len(kept), 0), mask
    # output token k of row i is predicted after continuation token len(heads[i]) + k - 1 (the answer's, for k = 0);
    # a column past a row's end is clamped by continuation_logits and masked here
    at = (torch.tensor([len(h) for h in heads]).unsqueeze(1) + torch.arange(width) - 1).clamp(min=0)
    picked = continuation_logits(answerer, problems, rows, at=at)
    logp = (picked / temperature).log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logp, mask


def output_text(output: list[int]) -> str:
    """An output's words, without its end token."""
    return VOCAB.decode([t for t in output if t != VOCAB.eos_id])


def _answered(view: str, answer: str) -> list[int]:
    return VOCAB.encode(view) + [VOCAB.answer_id, VOCAB.index[answer]]


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
        written = write_cots(model, items, max_steps=task.max_steps, temperature=0, generator=None)
        cots, finished = written.cots, written.finished
    else:
        cots, finished = [""] * len(items), [True] * len(items)
    return [task.score(p, a) for p, a in zip(items, answers_for(model, items, cots, finished, task))]
