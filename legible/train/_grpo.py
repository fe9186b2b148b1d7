"""Stage 2: GRPO on the organism, the whole loop in one place.

Each step:
  1. sample ``prompts`` problems and repeat each ``group_size`` times;
  2. the policy writes a CoT for each (until the answer marker); with step-wise paraphrasing it
     reads back each word it wrote through the step paraphrase, never the word itself;
  3. the paraphraser rewrites every CoT; the answerer (the policy, or the Face) reads the
     original and the paraphrase and gives a distribution over answers for each;
  4. the answer is sampled from the view the condition answers from (the paraphrase when
     the paraphraser is in the loop); on an explaining task the answerer then writes the output
     that restates the state; the reward terms score the episode;
  5. advantages are the rewards centred within each group (optionally divided by its std); with
     reward targeting the CoT's tokens get the advantage of the reward without the output terms;
  6. policy loss = -advantage * log-prob of the policy's own tokens, each conditioned on what
     the policy read when it drew it (plus the answer token
     when the policy answers), token-averaged, plus optional KL to the stage-1 model and an
     entropy bonus; the Face, if any, gets the same loss on its answer (and output) tokens only,
     so Face tokens never reach the policy's gradient. Only episodes with a nonzero advantage are
     run with gradients (the others add nothing), unless the KL or the entropy term reads them;
  7. log metrics, evaluate every ``eval_every`` steps, checkpoint every ``checkpoint_every``.

Updates are on-policy (one gradient step per batch), so the PPO ratio is 1 and clipping
would never act; it is left out rather than written and never exercised.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from pathlib import Path

import torch

from legible.config import RunConfig
from legible.monitor import drift_metrics, hierarchy_level
from legible.paraphrase import Paraphraser
from legible.policy import (
    VOCAB,
    TinyTransformer,
    answer_logprobs,
    completion_logprobs,
    draw,
    load_trainer,
    output_logprobs,
    output_text,
    save_policy,
    save_trainer,
    write_cots,
    write_outputs,
)
from legible.reward import output_flag_rate
from legible.stats import js_divergence
from legible.tasks import Task
from legible.train._common import MetricsLog, Stopwatch, latest_checkpoint, prune_checkpoints


def train_grpo(
    cfg: RunConfig,
    task: Task,
    paraphraser: Paraphraser,
    stage1: TinyTransformer,
    out: Path,
    *,
    resume: bool = False,
    evaluate: Callable[[int, TinyTransformer, TinyTransformer | None], dict] | None = None,
    on_step: Callable[[int, dict], None] | None = None,
) -> tuple[TinyTransformer, TinyTransformer | None]:
    """Train the policy (and the Face, for conditions that have one) from ``stage1``.
    Returns (policy, face or None); both are also saved under ``out``."""
    rl, cond = cfg.rl, cfg.condition
    out = Path(out)
    ckpt_dir = out / "checkpoints"
    rng = random.Random(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    policy = copy.deepcopy(stage1).train()
    reference = copy.deepcopy(stage1).eval().requires_grad_(False) if rl.kl_coef > 0 else None
    face = copy.deepcopy(stage1).train() if cond.face else None
    models = {"policy": policy} | ({"face": face} if face else {})
    # fused: one kernel per step instead of a dozen small ops per parameter tensor (4x faster here)
    optimizers = {
        name: torch.optim.AdamW(m.parameters(), lr=rl.lr, weight_decay=0.0, fused=True) for name, m in models.items()
    }
    monitor = cfg.build_monitor(task)
    reward = cfg.build_reward(task, monitor)
    answer_words = task.answer_words
    answer_ids = VOCAB.ids(answer_words)
    answerer = face if face is not None else policy
    view = cond.view
    step_paraphrase = cfg.build_step_paraphrase(task)

    start = 0
    last = latest_checkpoint(ckpt_dir, "rl") if resume else None
    if last is not None:
        start = load_trainer(last, models=models, optimizers=optimizers, py_rng=rng, generator=generator)["step"]
    # Rows up to the checkpoint's step were written before it was saved, so they stay; with no
    # RL checkpoint yet (start 0) every RL row goes, the step-0 evaluation included.
    log = MetricsLog(out / "metrics.jsonl", resume_step=(start if start else -1) if resume else None, phase="rl")
    clock = Stopwatch()
    if start == 0 and evaluate is not None:
        log.write({"phase": "rl", "step": 0, "kind": "eval", **evaluate(0, policy.eval(), face)})

    for step in range(start, rl.steps):
        # 1-2. problems, G samples each; the policy writes its CoTs
        problems = [p for p in (task.sample(rng) for _ in range(rl.prompts)) for _ in range(rl.group_size)]
        policy.eval()
        # the policy's own answer distribution, when it answers from its own CoT, comes off the sampling pass
        own_answer = "original" in cond.views and face is None
        tokens, cots, finished, read, answer_logits = write_cots(
            policy,
            problems,
            max_steps=task.max_steps,
            temperature=rl.temperature,
            generator=generator,
            step_paraphrase=step_paraphrase,
            answer_logits=own_answer,
        )
        # 3. paraphrase; the answerer's distribution over answers from every view the condition reads
        paraphrased = [paraphraser.paraphrase(c, p.prompt, rng) for c, p in zip(cots, problems)]
        texts = {"original": cots, "paraphrased": paraphrased}
        probs = {"original": answer_logits[:, answer_ids].softmax(-1)} if own_answer else {}
        with torch.no_grad():
            for v in sorted(cond.views - set(probs)):
                probs[v] = answer_logprobs(answerer, problems, texts[v], answer_words).exp()
        # 4. answers sampled from the condition's view, then rewards
        picks = draw(probs[view], generator)
        answers = [answer_words[i] if f else None for i, f in zip(picks.tolist(), finished)]
        para_answers = answers if view == "paraphrased" else None
        if "paraphrased" in probs and view != "paraphrased":
            para_picks = draw(probs["paraphrased"], generator).tolist()
            para_answers = [answer_words[i] if f else None for i, f in zip(para_picks, finished)]
        answered_from = paraphrased if view == "paraphrased" else cots
        outputs, output_texts = None, None
        if task.explains:  # the output that restates the state, written by whoever answered
            outputs = write_outputs(
                answerer.eval(),
                problems,
                answered_from,
                answers,
                temperature=rl.temperature,
                generator=generator,
            )
            output_texts = [output_text(o) for o in outputs]
        ramp = cfg.penalty_ramp(step)
        scale = cond.reward_scale(ramp)
        rewards, cot_rewards, term_values = [], [], {name: [] for name in cond.rewards}
        for i, (problem, cot) in enumerate(zip(problems, cots)):
            extras = {"paraphrased_answer": para_answers[i]} if para_answers is not None else {}
            extras |= {"answer_probs": probs["original"][i].tolist()} if "original" in probs else {}
            extras |= {"answer_probs_paraphrased": probs["paraphrased"][i].tolist()} if "paraphrased" in probs else {}
            extras |= {"output": output_texts[i]} if output_texts is not None else {}
            total, values = reward(problem, cot, answers[i], extras, scale)
            rewards.append(total)
            cot_rewards.append(reward.total(values, cond.cot_scale(scale)))
            for name, v in values.items():
                term_values[name].append(v)
        # 5. group-normalised advantages. Dividing by the group's std (GRPO) turns a penalty
        # difference of 0.01 into +-1; centring alone (Dr. GRPO) keeps rewards on their scale.
        adv = _advantages(rewards, rl.prompts, rl.scale_advantages)
        cot_adv = _advantages(cot_rewards, rl.prompts, rl.scale_advantages) if cond.targeted else adv
        # 6. policy loss on its own tokens, KL to stage 1, entropy bonus; the loss of the answer token
        # (and of the output after it) goes to whoever answered: the policy, or the Face (whose tokens
        # never reach the policy). An episode whose advantages are zero adds nothing to the loss unless
        # the KL or the entropy term reads it, so only the others are run with gradients (under outcome
        # reward alone a settled policy leaves almost none; a continuous penalty, most); the loss keeps its
        # denominators over every episode.
        rows = trained_rows(adv, cot_adv, every=reference is not None or rl.entropy_coef != 0)
        n_tokens = max(1, sum(len(t) for t in tokens))
        answered = torch.tensor(finished, dtype=torch.float)
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        kl_value, entropy_value = 0.0, None
        if rows:
            at = torch.tensor(rows)
            trained = _take(problems, rows)
            policy.train()
            logp, mask, entropy, last_logits = completion_logprobs(
                policy, trained, _take(tokens, rows), rl.temperature, _take(read, rows)
            )
            mask = mask.float()
            loss = -(cot_adv[at].unsqueeze(1) * logp * mask).sum() / n_tokens
            loss = loss - rl.entropy_coef * (entropy * mask).sum() / n_tokens
            entropy_value = ((entropy.detach() * mask).sum() / mask.sum().clamp(min=1)).item()
            if reference is not None:
                with torch.no_grad():
                    ref_logp, _, _, _ = completion_logprobs(
                        reference, trained, _take(tokens, rows), rl.temperature, _take(read, rows)
                    )
                log_ratio = ref_logp - logp
                kl = ((log_ratio.exp() - log_ratio - 1) * mask).sum() / n_tokens  # k3 estimator
                loss = loss + rl.kl_coef * kl
                kl_value = kl.item()
            # Rows are left-padded, so the last column of the policy's pass is the answer position: when
            # the policy answers from its own CoT, that pass gives the answer's log-probabilities.
            if cond.policy_answers:
                answer_lp = last_logits[:, answer_ids].log_softmax(-1)
            else:
                answer_lp = answer_logprobs(answerer.train(), trained, _take(texts[view], rows), answer_words)
            chosen = answer_lp.gather(1, picks[at].unsqueeze(1)).squeeze(1)
            answer_loss = -(adv[at] * chosen * answered[at]).sum() / answered.sum().clamp(min=1)
            if outputs is not None:
                views, said, written = (_take(x, rows) for x in (answered_from, answers, outputs))
                out_logp, out_mask = output_logprobs(answerer.train(), trained, views, said, written, rl.temperature)
                n_output = max(1, sum(len(o) for o, a in zip(outputs, answers) if a is not None))
                answer_loss = answer_loss - (adv[at].unsqueeze(1) * out_logp * out_mask.float()).sum() / n_output
            (loss + answer_loss).backward()
        for m in models.values():  # a step with no gradient still moves by AdamW's momentum, as before
            for p in m.parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
        for name, m in models.items():
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            optimizers[name].step()
        # 7. metrics, evaluation, checkpoints
        row = {
            "phase": "rl",
            "step": step + 1,
            "kind": "train",
            "reward": _mean(rewards),
            "accuracy": _mean([task.score(p, a) for p, a in zip(problems, answers)]),
            "banned_rate": _mean([monitor.score(c) / p.steps for c, p in zip(cots, problems)]),
            "cot_words": _mean([len(c.split()) for c in cots]),
            "penalty_ramp": ramp,
            "kl": kl_value,
            "entropy": entropy_value,  # over the tokens of the episodes trained on (nonzero advantage)
            "trained_share": len(rows) / len(problems),
            "seconds": round(clock(), 2),
        } | {f"term_{n}": _mean(v) for n, v in term_values.items()}
        if output_texts is not None:
            flagged = [output_flag_rate(monitor, task, p, t) for p, t in zip(problems, output_texts)]
            row["output_banned_rate"] = _mean(flagged)
        if step % DRIFT_EVERY == 0 or step + 1 == rl.steps:
            sensitivity = None
            if "original" in probs and "paraphrased" in probs:
                pairs = zip(probs["original"].tolist(), probs["paraphrased"].tolist())
                sensitivity = _mean([js_divergence(p, q) for p, q in pairs])
            drift = drift_metrics(cots, legible_words=task.state_words, monitor=monitor, sensitivity=sensitivity)
            row |= {f"drift_{k}": v for k, v in drift.items() if k in DRIFT_LOGGED and v is not None}
            row["drift_level"] = hierarchy_level(drift)[0]
        log.write({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()})
        if evaluate is not None and (step + 1) % rl.eval_every == 0:
            log.write({"phase": "rl", "step": step + 1, "kind": "eval", **evaluate(step + 1, policy.eval(), face)})
        if on_step:
            on_step(step + 1, row)
        if (step + 1) % rl.checkpoint_every == 0 and step + 1 < rl.steps:
            save_trainer(
                ckpt_dir / f"rl_step{step + 1}",
                step=step + 1,
                models=models,
                optimizers=optimizers,
                py_rng=rng,
                generator=generator,
            )
            prune_checkpoints(ckpt_dir, "rl")

    policy.eval()
    save_policy(policy, out / "policy")
    if face is not None:
        face.eval()
        save_policy(face, out / "face")
    return policy, face


# Drift metrics (legible.monitor._drift) every this many steps: cheap, but not free at 1,000 episodes/s.
DRIFT_EVERY = 10
DRIFT_LOGGED = ("legible_score", "odd_token_rate", "monitor_flag_rate", "paraphrase_sensitivity", "cot_tokens")


def trained_rows(adv: torch.Tensor, cot_adv: torch.Tensor, *, every: bool) -> list[int]:
    """The episodes the update runs with gradients: those with a nonzero advantage (on the CoT or on the
    answer), or all of them when a term of the loss reads every episode (``every``)."""
    return list(range(len(adv))) if every else ((adv != 0) | (cot_adv != 0)).nonzero().flatten().tolist()


def _advantages(rewards: list[float], prompts: int, scale: bool) -> torch.Tensor:
    """Rewards centred within each group (and divided by its std with ``scale``), flattened."""
    r = torch.tensor(rewards).view(prompts, -1)
    adv = r - r.mean(1, keepdim=True)
    if scale:
        adv = adv / (r.std(1, keepdim=True) + 1e-4)
    return adv.view(-1)


def _take(values: list, rows: list[int]) -> list:
    return [values[i] for i in rows]


def _mean(values: list[float]) -> float:
    return sum(values) / max(1, len(values))
