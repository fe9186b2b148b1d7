"""A run assembled and driven: TRL's GRPOConfig from a RunConfig, the parts legible adds to a GRPOTrainer
(``grpo_parts``), the trainer of ``legible train`` (``build_run``), training (``train_trl``) and the
held-out evaluation (``evaluate_run``)."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from legible.config import RunConfig
from legible.monitor import JudgeMonitor, KeywordMonitor
from legible.paraphrase import make_paraphraser
from legible.reward import Episode, disagreement
from legible.tasks import Problem, Task
from legible.train._common import MetricsLog
from legible.train._text import build_prompt, prompt_text
from legible.train.trl._callback import LegibleCallback
from legible.train.trl._checkpoint import drop_pickles, latest_complete_checkpoint, load_rollout_state
from legible.train.trl._models import _peft_config, load_model, load_tokenizer
from legible.train.trl._rewards import StepRecord, _mean, make_reward_funcs, step_drift
from legible.train.trl._rollout import ShoggothFaceRollout

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from trl import GRPOTrainer


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
        trainer.remove_callback(cb)  # progress is ours (rich bars in legible.train._run); logs go to JSONL
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
