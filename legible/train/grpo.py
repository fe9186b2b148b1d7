"""Stage 2: GRPO on the organism, the whole loop in one place.

Each step:
  1. sample ``prompts`` problems and repeat each ``group_size`` times;
  2. the policy writes a CoT for each (until the answer marker);
  3. the paraphraser rewrites every CoT; the answerer (the policy, or the Face) reads the
     original and the paraphrase and gives a distribution over answers for each;
  4. the answer is sampled from the view the condition answers from (the paraphrase when
     the paraphraser is in the loop), and the reward terms score the episode;
  5. advantages are the rewards centred within each group (optionally divided by its std);
  6. policy loss = -advantage * log-prob of the policy's own tokens (plus the answer token
     when the policy answers), token-averaged, plus optional KL to the stage-1 model and an
     entropy bonus; the Face, if any, gets the same loss on its answer token only, so Face
     tokens never reach the policy's gradient;
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
from legible.monitor.base import KeywordMonitor
from legible.paraphrase import Paraphraser
from legible.policy.checkpoint import load_trainer, save_policy, save_trainer
from legible.policy.rollout import answer_logprobs, completion_logprobs, write_cots
from legible.policy.tiny import TinyTransformer
from legible.reward import Reward, RewardContext
from legible.tasks.base import Task
from legible.train.common import MetricsLog, Stopwatch, latest_checkpoint, prune_checkpoints


def monitor_for(cfg: RunConfig, task: Task) -> KeywordMonitor:
    return KeywordMonitor(words=cfg.monitor_words or list(task.state_words))


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
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=rl.lr, weight_decay=0.0) for name, m in models.items()}
    monitor = monitor_for(cfg, task)
    reward = Reward(cond.rewards, RewardContext(task=task, monitor=monitor))
    answer_words = task.answer_words

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
        tokens, cots, finished = write_cots(
            policy, problems, max_steps=task.max_steps, temperature=rl.temperature, generator=generator
        )
        # 3. paraphrase; the answerer reads both the original and the paraphrase
        paraphrased = [paraphraser.paraphrase(c, p.prompt, rng) for c, p in zip(cots, problems)]
        answerer = face if face is not None else policy
        with torch.no_grad():
            probs_original = answer_logprobs(answerer, problems, cots, answer_words).exp()
            probs_paraphrased = answer_logprobs(answerer, problems, paraphrased, answer_words).exp()
        # 4. answers from the condition's view, then rewards
        probs_view = probs_paraphrased if cond.paraphrase_in_loop else probs_original
        picks = torch.multinomial(probs_view, 1, generator=generator).squeeze(1).tolist()
        picks_para = torch.multinomial(probs_paraphrased, 1, generator=generator).squeeze(1).tolist()
        answers = [answer_words[i] if f else None for i, f in zip(picks, finished)]
        ramp = min(1.0, step / rl.ramp_steps) if rl.ramp_steps else 1.0
        scale = {name: (1.0 if name == "outcome" else ramp) for name in cond.rewards}
        rewards, term_values = [], {name: [] for name in cond.rewards}
        for i, (problem, cot) in enumerate(zip(problems, cots)):
            extras = {
                "paraphrased_answer": answer_words[picks_para[i]] if finished[i] else None,
                "answer_probs": probs_original[i].tolist(),
                "answer_probs_paraphrased": probs_paraphrased[i].tolist(),
            }
            total, values = reward(problem, cot, answers[i], extras, scale)
            rewards.append(total)
            for name, v in values.items():
                term_values[name].append(v)
        # 5. group-normalised advantages. Dividing by the group's std (GRPO) turns a penalty
        # difference of 0.01 into +-1; centring alone (Dr. GRPO) keeps rewards on their scale.
        r = torch.tensor(rewards).view(rl.prompts, rl.group_size)
        adv = r - r.mean(1, keepdim=True)
        if rl.scale_advantages:
            adv = adv / (r.std(1, keepdim=True) + 1e-4)
        adv = adv.view(-1)
        # 6. policy loss on its own tokens; the answer token joins it only when the policy answers
        policy.train()
        logp, mask, entropy = completion_logprobs(policy, problems, tokens, rl.temperature)
        mask = mask.float()
        n_tokens = mask.sum().clamp(min=1)
        loss = -(adv.unsqueeze(1) * logp * mask).sum() / n_tokens
        loss = loss - rl.entropy_coef * (entropy * mask).sum() / n_tokens
        kl_value = 0.0
        if reference is not None:
            with torch.no_grad():
                ref_logp, _, _ = completion_logprobs(reference, problems, tokens, rl.temperature)
            log_ratio = ref_logp - logp
            kl = ((log_ratio.exp() - log_ratio - 1) * mask).sum() / n_tokens  # k3 estimator
            loss = loss + rl.kl_coef * kl
            kl_value = kl.item()
        answered = torch.tensor(finished, dtype=torch.float)
        view = paraphrased if cond.paraphrase_in_loop else cots
        answer_loss = torch.zeros(())
        if answered.sum() > 0:
            answer_lp = answer_logprobs(answerer.train(), problems, view, answer_words)
            chosen = answer_lp.gather(1, torch.tensor(picks).unsqueeze(1)).squeeze(1)
            answer_loss = -(adv * chosen * answered).sum() / answered.sum()
        if face is None:
            loss = loss + answer_loss
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        (loss + (answer_loss if face is not None else 0.0)).backward()
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
            "entropy": ((entropy.detach() * mask).sum() / n_tokens).item(),
            "seconds": round(clock(), 2),
        } | {f"term_{n}": _mean(v) for n, v in term_values.items()}
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


def _mean(values: list[float]) -> float:
    return sum(values) / max(1, len(values))
