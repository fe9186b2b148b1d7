"""Stage 1: supervised training of the organism on legible CoTs.

Each example is ``<bos> prompt cot answer A``, the CoT in the legible grammar (the state
after each step, one word per step), a share ``alias_rate`` of the state slots written with
an alias of the state (see ``RunConfig.state_aliases``). A share of examples
shows a paraphrase of the CoT instead, with the loss on the answer only: the model learns
to answer from a paraphrased CoT without learning to write paraphrases. ``with_cot=False``
trains the no-CoT baseline on ``<bos> prompt answer A``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import torch

from legible.config import RunConfig
from legible.paraphrase import Paraphraser
from legible.policy import (
    VOCAB,
    TinyConfig,
    TinyTransformer,
    answers_for,
    greedy_accuracy,
    left_pad,
    load_trainer,
    prompt_ids,
    save_policy,
    save_trainer,
)
from legible.tasks import Problem, Task, legible_cot
from legible.train._common import MetricsLog, latest_checkpoint, prune_checkpoints


def make_example(
    problem: Problem,
    rng: random.Random,
    cfg: RunConfig,
    paraphraser: Paraphraser | None,
    with_cot: bool,
    aliases: dict[str, list[str]],
    explanation: str = "",
) -> tuple[list[int], int]:
    """Token ids and the index from which the loss applies."""
    head = prompt_ids(problem)
    # the output: the answer, and for an explaining task what it restates, then the end token
    output = [VOCAB.answer_id, VOCAB.index[problem.answer]]
    if explanation:
        output += VOCAB.encode(explanation) + [VOCAB.eos_id]
    if not with_cot:
        return head + output, len(head)
    if paraphraser is not None and rng.random() < cfg.pretrain.paraphrase_prob:
        cot = paraphraser.paraphrase(legible_cot(problem), problem.prompt, rng)
        ids = head + VOCAB.encode(cot) + output
        return ids, len(ids) - len(output) + 1  # the loss starts at the answer
    rate = cfg.pretrain.alias_rate
    cot = " ".join(rng.choice(aliases[s]) if s in aliases and rng.random() < rate else s for s in problem.states)
    return head + VOCAB.encode(cot) + output, len(head)


def batch_loss(model: TinyTransformer, examples: list[tuple[list[int], int]]) -> torch.Tensor:
    ids, mask = left_pad([e[0] for e in examples], VOCAB.pad_id)
    width = ids.shape[1]
    # Rows end together (left padding), so every target lies in the last ``span`` columns; the model computes
    # its output only after the columns that predict them, not over the prompts.
    span = max(len(row) - start for row, start in examples)
    targets = ids[:, width - span :]
    target_mask = torch.arange(span).unsqueeze(0) >= torch.tensor([[span - len(r) + s] for r, s in examples])
    at = torch.arange(width - span - 1, width - 1).expand(len(examples), -1)
    logits = model(ids, mask, at=at)
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return (loss * target_mask).sum() / target_mask.sum()


def build_model(cfg: RunConfig, task: Task) -> TinyTransformer:
    return TinyTransformer(
        TinyConfig(vocab_size=len(VOCAB), n_layer=cfg.model.n_layer, n_head=cfg.model.n_head, n_embd=cfg.model.n_embd)
    )


def pretrain(
    cfg: RunConfig,
    task: Task,
    paraphraser: Paraphraser | None,
    out: Path,
    *,
    with_cot: bool = True,
    resume: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> TinyTransformer:
    """Train from scratch (or from the last stage-1 checkpoint under ``out``) until the held-out
    greedy accuracy reaches ``target_accuracy`` (and, with a paraphraser, answers from
    paraphrased legible CoTs reach ``paraphrase_ratio`` of the unparaphrased accuracy) or
    ``steps`` run out; save the model to ``out/policy.safetensors`` and its steps and
    accuracies to ``out/stage1.json``."""
    out = Path(out)
    ckpt_dir = out / "checkpoints"
    seed = cfg.seed * 1000 + (0 if with_cot else 1)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_model(cfg, task)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain.lr, weight_decay=0.0, fused=True)
    steps = cfg.pretrain.steps
    sched = lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / max(1, steps))  # noqa: E731
    start = 0
    last = latest_checkpoint(ckpt_dir, "pretrain") if resume else None
    if last is not None:
        start = load_trainer(
            last, models={"policy": model}, optimizers={"policy": opt}, py_rng=rng, generator=generator
        )["step"]
    log = MetricsLog(out / "metrics.jsonl", resume_step=start if resume else None, phase="pretrain")
    aliases = cfg.state_aliases(task.state_words)
    (out / "aliases.json").write_text(json.dumps({"rate": cfg.pretrain.alias_rate, "aliases": aliases}))
    heldout_rng = random.Random(f"heldout-{seed}")
    heldout = [task.sample(heldout_rng) for _ in range(128)]
    # The paraphrase check reads legible CoTs (as the paraphraser defence will show them), not the
    # model's own: it asks whether the model can answer from a paraphrase at all.
    check_paraphrase = paraphraser is not None and with_cot and cfg.pretrain.paraphrase_ratio is not None
    if check_paraphrase:
        legible_cots = [legible_cot(p) for p in heldout]
        paraphrased_cots = [paraphraser.paraphrase(c, p.prompt, heldout_rng) for c, p in zip(legible_cots, heldout)]

    def heldout_scores() -> dict:
        scores = {"heldout_accuracy": sum(greedy_accuracy(model, task, heldout, with_cot)) / len(heldout)}
        if check_paraphrase:
            done_all = [True] * len(heldout)
            for key, cots in (
                ("heldout_legible_accuracy", legible_cots),
                ("heldout_paraphrased_accuracy", paraphrased_cots),
            ):
                answers = answers_for(model, heldout, cots, done_all, task)
                scores[key] = sum(task.score(p, a) for p, a in zip(heldout, answers)) / len(heldout)
        return scores

    def reached(scores: dict) -> bool:
        if scores["heldout_accuracy"] < cfg.pretrain.target_accuracy:
            return False
        ratio = cfg.pretrain.paraphrase_ratio
        return (
            not check_paraphrase or scores["heldout_paraphrased_accuracy"] >= ratio * scores["heldout_legible_accuracy"]
        )

    scores, done = None, start
    model.train()
    for step in range(start, steps):
        done = step + 1
        for group in opt.param_groups:
            group["lr"] = cfg.pretrain.lr * sched(step)
        examples = []
        for _ in range(cfg.pretrain.batch_size):  # one problem and its example at a time: one random stream
            problem = task.sample(rng)
            examples.append(make_example(problem, rng, cfg, paraphraser, with_cot, aliases, task.explanation(problem)))
        loss = batch_loss(model, examples)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % 50 == 0 or step + 1 == steps:
            log.write({"phase": "pretrain", "step": step + 1, "loss": round(loss.item(), 5)})
        if on_step:
            on_step(step + 1, loss.item())
        if cfg.pretrain.target_accuracy is not None and (step + 1) % cfg.pretrain.check_every == 0:
            model.eval()
            scores = heldout_scores()
            model.train()
            log.write({"phase": "pretrain", "step": step + 1, **scores})
            if reached(scores):
                break
        if (step + 1) % cfg.pretrain.checkpoint_every == 0 and step + 1 < steps:
            save_trainer(
                ckpt_dir / f"pretrain_step{step + 1}",
                step=step + 1,
                models={"policy": model},
                optimizers={"policy": opt},
                py_rng=rng,
                generator=generator,
            )
            prune_checkpoints(ckpt_dir, "pretrain")
    model.eval()
    if scores is None:
        scores = heldout_scores()
    (out / "stage1.json").write_text(json.dumps({"steps": done, **scores, "with_cot": with_cot}))
    save_policy(model, out / "policy")
    return model
