"""Speed of legible's organism trainer against TRL's GRPOTrainer at the same model size, and the cost of
the Shoggoth/Face/paraphraser rollout on top of plain GRPOTrainer steps.

Why: the organism has its own trainer because the demo needs many RL runs on 2 CPU cores; this puts a
number on what that buys over the general-purpose path, and on what the defences cost inside TRL.

The same work on both sides: the coin-flip task (8 to 14 flips), ``--prompts`` problems x ``--group``
samples per step (default 32 x 4 = 128 episodes), at most 2 * 14 + 4 CoT tokens, the answer after the
marker, reward = outcome + 0.3 x monitor (the ``monitor`` condition) or the same with the paraphraser in
the loop (``monitor+paraphrase``, paraphraser ``legible_only``), temperature 1, one on-policy update
per batch, fp32 on CPU, ``torch.set_num_threads(--threads)``. The models:

* organism: ``legible.policy._tiny.TinyTransformer``, 2 layers, 64 wide, 4 heads (rotary positions,
  KV-cached sampler), pretrained ``--pretrain-steps`` by ``legible.train._pretrain`` so that its CoTs have
  their real length;
* TRL: a ``GPT2LMHeadModel`` of the same size (2 layers, 64 wide, 4 heads, vocabulary = the organism's 37
  words through a word-level tokenizer, so a token is a word on both sides), supervised on the same
  legible CoTs for the same number of steps, then trained by TRL 1.16's GRPOTrainer (transformers
  ``generate``, KV cache on). In 300 steps it learns the format and writes CoTs of the right length
  (one word per flip, then the marker and an answer) but not yet the state tracking, so its accuracy
  stays near chance; the work per episode, which is what is timed, is the same.

Measured (wall clock, after ``--warmup`` untimed steps, ``--steps`` timed steps, mean of the step times):

1. organism ``train_grpo``, conditions ``monitor`` and ``monitor+paraphrase``;
2. TRL plain: GRPOTrainer with its own generation and reward functions that parse the completion
   (``legible.train.trl.build_run(use_rollout=False)``), condition ``monitor``;
3. TRL + rollout: GRPOTrainer with ``ShoggothFaceRollout`` (``legible train`` with ``backend: trl``),
   conditions ``monitor`` (the policy answers itself: one generation, as plain) and
   ``monitor+paraphrase`` (CoT stopped at the marker, paraphrase, the shared model answers from it and
   takes its own answer step).

Printed: episodes/s and seconds/step of each, split into generation (organism: ``write_cots``; TRL:
``_generate_and_score_completions``, which also runs the reward functions) and the rest, mean generated
CoT words and accuracy (so the work is seen to be the same), the ratio organism / TRL plain with the
bound the organism's non-sampling work puts on it, and the overhead of the rollout over plain
GRPOTrainer steps. Figures only; no assertion.

Run:

    .venv/bin/python benchmarks/trl_vs_organism.py
    .venv/bin/python benchmarks/trl_vs_organism.py --steps 10 --json /tmp/trl_vs_organism.json

Both pretrained models are cached in the temp directory (keyed by the settings), so only the first run
pays for pretraining (about a minute on one core).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from legible.config import RunConfig
from legible.paraphrase import make_paraphraser
from legible.policy._vocab import VOCAB
from legible.tasks._organism import legible_cot

MAX_STEPS = 14
COT_BUDGET = 2 * MAX_STEPS + 4  # the organism's write_cots budget


def load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return "n/a"


def organism_config(condition: str, args: argparse.Namespace) -> RunConfig:
    return RunConfig.model_validate(
        {
            "seed": args.seed,
            "condition": condition,
            "pretrain": {"steps": args.pretrain_steps, "target_accuracy": None},
            "rl": {
                "steps": args.warmup + args.steps,
                "prompts": args.prompts,
                "group_size": args.group,
                "checkpoint_every": 10**9,
                "eval_every": 10**9,
            },
        }
    )


def trl_config(condition: str, model: Path, args: argparse.Namespace) -> RunConfig:
    return RunConfig.model_validate(
        {
            "seed": args.seed,
            "backend": "trl",
            "model": str(model),
            "condition": condition,
            "paraphraser": "legible_only",
            "rl": {
                "steps": args.warmup + args.steps,
                "prompts": args.prompts,
                "group_size": args.group,
                "checkpoint_every": 10**9,
                "eval_every": 10**9,
            },
            "trl": {
                "answer_marker": "answer",
                "instruction": None,
                "max_cot_tokens": COT_BUDGET,
                "max_answer_tokens": 2,
                "dataset_size": (args.warmup + args.steps) * args.prompts,
            },
        }
    )


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ models


def organism_stage1(args: argparse.Namespace, workdir: Path):
    from legible.policy._checkpoint import load_policy, save_policy
    from legible.train._pretrain import pretrain

    cfg = organism_config("monitor", args)
    task = cfg.task.build()
    key = cache_key(cfg.seed, cfg.task, cfg.model, cfg.pretrain, torch.__version__)
    cached = args.cache_dir / f"legible_trl_bench_organism_{key}"
    if cached.with_suffix(".safetensors").exists():
        return load_policy(cached).eval(), task
    with contextlib.redirect_stdout(io.StringIO()):
        model = pretrain(cfg, task, make_paraphraser(cfg.paraphraser, task), workdir / "stage1")
    save_policy(model, cached)
    return model.eval(), task


def word_tokenizer():
    """A tokenizer whose tokens are the organism's words, one id per word, same ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB.words)}, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", padding_side="left"
    )


def gpt2_stage1(args: argparse.Namespace) -> Path:
    """A GPT-2 of the organism's size, supervised on the same legible CoTs ("prompt cot answer A <eos>")
    with the organism's schedule (warm-up 50 steps, linear decay, AdamW 3e-3, batch 64)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    path = args.cache_dir / f"legible_trl_bench_gpt2_{cache_key(args.pretrain_steps, args.seed, torch.__version__)}"
    if (path / "model.safetensors").exists():
        return path
    tok = word_tokenizer()
    cfg = GPT2Config(
        vocab_size=len(VOCAB),
        n_positions=64,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=VOCAB.bos_id,
        eos_token_id=VOCAB.eos_id,
        pad_token_id=VOCAB.pad_id,
    )
    torch.manual_seed(args.seed)
    model = GPT2LMHeadModel(cfg)
    task = organism_config("monitor", args).task.build()
    rng = random.Random(args.seed)
    steps = args.pretrain_steps
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / steps))
    model.train()
    for _ in range(steps):
        problems = [task.sample(rng) for _ in range(64)]
        heads = [len(tok(p.prompt).input_ids) for p in problems]
        texts = [f"{p.prompt} {legible_cot(p)} answer {p.answer} <eos>" for p in problems]
        # right-padded, so every row's positions start at 0 as they do in generate()
        enc = tok(texts, return_tensors="pt", padding=True, padding_side="right")
        labels = enc.input_ids.clone()
        labels[enc.attention_mask == 0] = -100
        for i, h in enumerate(heads):
            labels[i, :h] = -100  # the loss on CoT, marker, answer and eos only
        loss = model(**enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    model.eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


# ------------------------------------------------------------------------------------------ trainers


class Steps:
    """When each RL step ended (``on_step``, called by either trainer) and the rows of the timed steps."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stamps: dict[int, float] = {}
        self.rows: list[dict] = []

    def start(self) -> None:
        self.stamps[0] = time.perf_counter()

    def on_step(self, step: int, row: dict) -> None:
        self.stamps[step] = time.perf_counter()
        if step > self.args.warmup:
            self.rows.append(row)

    def summary(self, trainer: str, condition: str) -> dict:
        args = self.args
        per_step = [self.stamps[s] - self.stamps[s - 1] for s in range(args.warmup + 1, args.warmup + args.steps + 1)]
        seconds = statistics.mean(per_step)
        words = [r["cot_words"] for r in self.rows if r.get("cot_words") is not None]
        acc = [r["accuracy"] for r in self.rows if r.get("accuracy") is not None]
        return {
            "trainer": trainer,
            "condition": condition,
            "seconds_per_step": seconds,
            "median_seconds_per_step": statistics.median(per_step),
            "episodes_per_s": args.prompts * args.group / seconds,
            "cot_words": statistics.mean(words) if words else None,
            "accuracy": statistics.mean(acc) if acc else None,
        }


class Timed:
    """Wall time spent inside ``owner.name`` while it is swapped for a timing wrapper."""

    def __init__(self, owner, name: str) -> None:
        self.owner, self.name, self.calls = owner, name, []

    def __enter__(self) -> Timed:
        inner = getattr(self.owner, self.name)

        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                self.calls.append((t0, time.perf_counter() - t0))

        setattr(self.owner, self.name, timed)
        self.inner = inner
        return self

    def __exit__(self, *exc) -> None:
        setattr(self.owner, self.name, self.inner)

    def per_step(self, steps: Steps) -> float:
        """Mean seconds per timed step spent in the wrapped call."""
        args = steps.args
        lo, hi = steps.stamps[args.warmup], steps.stamps[args.warmup + args.steps]
        return sum(d for t0, d in self.calls if lo <= t0 < hi) / args.steps


def bench_organism(condition: str, stage1, task, args, workdir: Path) -> dict:
    import legible.train._grpo as grpo_module
    from legible.train._grpo import train_grpo

    cfg = organism_config(condition, args)
    steps = Steps(args)
    steps.start()
    paraphraser = make_paraphraser(cfg.paraphraser, task)
    with contextlib.redirect_stdout(io.StringIO()), Timed(grpo_module, "write_cots") as sampling:
        out = workdir / f"org_{condition.replace('+', '_')}"
        train_grpo(cfg, task, paraphraser, stage1, out, on_step=steps.on_step)
    return steps.summary("organism", condition) | {"generation_seconds_per_step": sampling.per_step(steps)}


def bench_trl(condition: str, model: Path, args, workdir: Path, rollout: bool) -> dict:
    from transformers import TrainerCallback

    from legible.train.trl import build_run

    steps = Steps(args)

    class Stamp(TrainerCallback):  # plain GRPO has no rollout row; time it from TRL's own logs
        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs and not rollout:
                steps.on_step(state.global_step, {"cot_words": None, "accuracy": None})

    cfg = trl_config(condition, model, args)
    name = f"trl_{'rollout' if rollout else 'plain'}_{condition.replace('+', '_')}"
    with contextlib.redirect_stdout(io.StringIO()):
        run = build_run(cfg, workdir / name, on_step=steps.on_step if rollout else None, use_rollout=rollout)
        run.trainer.add_callback(Stamp())
        steps.start()
        # generation (TRL's generate, or the rollout), the reward functions and TRL's bookkeeping
        with Timed(run.trainer, "_generate_and_score_completions") as generation:
            run.trainer.train()
    result = steps.summary("TRL + rollout" if rollout else "TRL plain", condition)
    if not rollout:  # the reward functions still parsed every episode: read accuracy and length there
        hist = [h for h in run.trainer.state.log_history if "legible/accuracy" in h][args.warmup :]
        result["accuracy"] = statistics.mean(h["legible/accuracy"] for h in hist) if hist else None
        result["cot_words"] = statistics.mean(h["legible/cot_words"] for h in hist) if hist else None
    result["generation_seconds_per_step"] = generation.per_step(steps)
    return result


# ------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed RL steps per trainer")
    parser.add_argument("--warmup", type=int, default=1, help="untimed RL steps first")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import transformers

    transformers.logging.set_verbosity_error()
    import trl

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}")
    print(f"threads {args.threads}; load average {load_average()} (other jobs on the cores slow every figure)")
    print(f"{args.prompts} prompts x {args.group} samples = {args.prompts * args.group} episodes per step; ")
    print(f"{args.warmup} warm-up + {args.steps} timed steps per trainer; CoT budget {COT_BUDGET} tokens")

    with tempfile.TemporaryDirectory(prefix="legible-trl-bench-") as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        stage1, task = organism_stage1(args, workdir)
        gpt2 = gpt2_stage1(args)
        from transformers import GPT2LMHeadModel

        gpt2_params = sum(p.numel() for p in GPT2LMHeadModel.from_pretrained(gpt2).parameters())
        print(f"models ready in {time.perf_counter() - t0:.0f} s: organism {stage1.num_params():,} parameters, "
              f"GPT-2 {gpt2_params:,} parameters")  # fmt: skip

        results = [
            bench_organism("monitor", stage1, task, args, workdir),
            bench_organism("monitor+paraphrase", stage1, task, args, workdir),
            bench_trl("monitor", gpt2, args, workdir, rollout=False),
            bench_trl("monitor", gpt2, args, workdir, rollout=True),
            bench_trl("monitor+paraphrase", gpt2, args, workdir, rollout=True),
        ]

    print()
    print(
        f"{'trainer':<16} {'condition':<20} {'episodes/s':>11} {'s/step':>8} {'generation':>11} {'the rest':>9} "
        f"{'CoT words':>10} {'accuracy':>9}"
    )
    for r in results:
        words = f"{r['cot_words']:.1f}" if r["cot_words"] is not None else "n/a"
        acc = f"{r['accuracy']:.2f}" if r["accuracy"] is not None else "n/a"
        gen = r["generation_seconds_per_step"]
        print(
            f"{r['trainer']:<16} {r['condition']:<20} {r['episodes_per_s']:>11.0f} {r['seconds_per_step']:>8.3f} "
            f"{gen:>11.3f} {r['seconds_per_step'] - gen:>9.3f} {words:>10} {acc:>9}"
        )
    by = {(r["trainer"], r["condition"]): r for r in results}
    org, plain = by[("organism", "monitor")], by[("TRL plain", "monitor")]
    ratio = org["episodes_per_s"] / plain["episodes_per_s"]
    print()
    print(f"organism / TRL plain (monitor): {ratio:.1f}x episodes/s (target: at least 10x)")
    # What bounds the ratio: the organism's step without its sampling (the policy's forward and backward
    # over the same tokens, the rewards, the optimizer) against TRL's whole step.
    rest = org["seconds_per_step"] - org["generation_seconds_per_step"]
    print(
        f"  the organism's step without sampling takes {rest:.3f} s: even with free sampling it would be "
        f"{plain['seconds_per_step'] / rest:.1f}x TRL plain; 10x needs a whole step under "
        f"{plain['seconds_per_step'] / 10:.3f} s"
    )
    ratio_para = (
        by[("organism", "monitor+paraphrase")]["episodes_per_s"]
        / by[("TRL + rollout", "monitor+paraphrase")]["episodes_per_s"]
    )
    print(f"organism / TRL + rollout (monitor+paraphrase): {ratio_para:.1f}x episodes/s")
    overheads = {}
    for cond in ("monitor", "monitor+paraphrase"):
        extra = by[("TRL + rollout", cond)]["seconds_per_step"] / plain["seconds_per_step"] - 1
        overheads[cond] = extra
        print(f"rollout overhead over plain GRPOTrainer steps ({cond}): {100 * extra:+.0f}% seconds per step")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"results": results, "ratio": ratio, "ratio_paraphrase": ratio_para, "rollout_overhead": overheads},
                indent=1,
            )
        )


if __name__ == "__main__":
    sys.exit(main())
