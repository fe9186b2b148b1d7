"""What the CoT defences cost on a real language model: a plain GRPOTrainer step against a step with legible's
Shoggoth/Face/paraphraser rollout, SmolLM2-135M-Instruct with LoRA, the same batch, in one run.

Why: the defences are only usable if they cost little next to the RL step itself. The target (issue 12) is
at most +15% seconds per step for ``monitor+paraphrase`` with a closed answer space; the Face's cost
(``monitor+face``: a second model that answers and trains) is reported beside it.

The same work in every trainer: ``configs/trl-smollm2-cpu.yaml`` (the English coin flip, 1 or 2 flips,
``--prompts`` x ``--group`` episodes a step, a 48-token CoT budget, LoRA r 8 on every linear layer, fp32),
the same seed, so TRL draws the same prompts in the same order for every trainer. Trainers:

1. plain: GRPOTrainer with its own generation (``legible.train.trl.build_run(use_rollout=False)``): the
   policy writes CoT and answer in one generation of up to 53 tokens; legible's reward functions parse it;
2. ``monitor`` with the rollout: the policy's CoT stops at the marker, the answer is read from the policy's
   log-probs at the marker (heads or tails: a closed answer space), and that reading takes its own
   policy-gradient step in the same pass;
3. ``monitor+paraphrase``: the same, the answer read from the paraphrase (canonical+lexical);
4. ``monitor+face``: the answer read by a separate Face model (a second copy of SmolLM2), which trains.

The trainers are built first and their steps run in turn (plain, monitor, monitor+paraphrase, monitor+face,
plain, ...), so that a load that changes from minute to minute on a shared machine falls on all of them
alike. Each is timed over ``--steps`` steps after ``--warmup`` untimed ones (wall clock from the start of a
step to its end; the median is the figure), split into generation (TRL's ``_generate_and_score_completions``:
generation or the rollout, and the reward functions) and the rest (the GRPO loss's forward and backward, the
optimizer), and inside the rollout into the policy's generation, the paraphraser, and the answerer's reading
(with its training step). Printed: seconds per step of each, the overhead of each condition over plain, and
where it goes.

Run (about 15 minutes on 2 busy cores with the defaults):

    .venv/bin/python benchmarks/trl_overhead.py
    .venv/bin/python benchmarks/trl_overhead.py --steps 6 --json /tmp/trl_overhead.json

The model is prepared once (``legible models smollm2-135m``, about 20 s) into legible's cache.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "trl-smollm2-cpu.yaml"


def load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return "n/a"


def config(condition: str, args: argparse.Namespace):
    from legible.config import load_config

    steps = args.warmup + args.steps
    base = load_config(CONFIG).model_dump()
    rl = base["rl"] | {"steps": steps, "prompts": args.prompts, "group_size": args.group, "checkpoint_every": 10**6,
                       "eval_every": 10**6}  # fmt: skip
    return load_config(CONFIG, {"condition": condition, "rl": rl, "seed": args.seed})


class Clock:
    """Seconds spent inside ``owner.name`` while it is swapped for a timing wrapper, per call."""

    def __init__(self, owner, name: str) -> None:
        self.owner, self.name, self.calls = owner, name, []

    def __enter__(self) -> Clock:
        self.inner = getattr(self.owner, self.name)

        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return self.inner(*a, **kw)
            finally:
                self.calls.append((t0, time.perf_counter() - t0))

        setattr(self.owner, self.name, timed)
        return self

    def __exit__(self, *exc) -> None:
        setattr(self.owner, self.name, self.inner)

    def within(self, lo: float, hi: float) -> float:
        return sum(d for t0, d in self.calls if lo <= t0 < hi)


class Baton:
    """Interleaves the trainers step by step (each runs ``trainer.train()`` in its own thread, one at a time):
    on a shared machine the load changes from minute to minute, and trainers timed one after the other
    would each meet a different load."""

    def __init__(self, names: list[str]) -> None:
        self.names, self.turn, self.cv = names, 0, threading.Condition()

    def wait(self, name: str) -> None:
        with self.cv:
            self.cv.wait_for(lambda: self.names[self.turn % len(self.names)] == name)

    def hand_on(self) -> None:
        with self.cv:
            self.turn += 1
            self.cv.notify_all()


def build(condition: str, rollout: bool, args: argparse.Namespace, workdir: Path, baton: Baton) -> dict:
    from transformers import TrainerCallback

    from legible.train.trl import build_run

    name = f"{'rollout' if rollout else 'plain'}_{condition.replace('+', '_')}"
    steps: list[tuple[float, float]] = []

    class Turn(TrainerCallback):
        """A step is timed from its start to its end, only while this trainer holds the baton."""

        def on_step_begin(self, a, state, control, **kw):
            baton.wait(name)
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            steps.append((self.t0, time.perf_counter()))
            baton.hand_on()

    cfg = config(condition, args)
    with contextlib.redirect_stdout(io.StringIO()):
        run = build_run(cfg, workdir / name, use_rollout=rollout)
    run.trainer.add_callback(Turn())
    clocks = [Clock(run.trainer, "_generate_and_score_completions")]
    if rollout:
        r = run.rollout
        clocks += [Clock(r, "_generate"), Clock(r, "_paraphrase"), Clock(r, "_read"), Clock(r, "_update_answerer")]
    return {"name": name, "condition": condition, "rollout": rollout, "run": run, "steps": steps, "clocks": clocks}


def train(job: dict) -> None:
    with contextlib.ExitStack() as stack:
        for c in job["clocks"]:
            stack.enter_context(c)
        job["run"].trainer.train()


def summary(job: dict, args: argparse.Namespace) -> dict:
    timed = job["steps"][args.warmup :]
    per_step = [b - a for a, b in timed]
    parts = {c.name.strip("_"): sum(c.within(a, b) for a, b in timed) / len(timed) for c in job["clocks"]}
    trainer = job["run"].trainer
    hist = [h for h in trainer.state.log_history if "legible/accuracy" in h][args.warmup :]
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    return {
        "trainer": "TRL + rollout" if job["rollout"] else "TRL plain",
        "condition": job["condition"],
        "seconds_per_step": statistics.median(per_step),
        "mean_seconds_per_step": statistics.mean(per_step),
        "step_seconds": per_step,
        "generation": parts.pop("generate_and_score_completions"),
        "parts": parts,
        "accuracy": statistics.mean(h["legible/accuracy"] for h in hist) if hist else None,
        "completion_tokens": statistics.mean(lengths) if lengths else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per trainer")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--conditions", nargs="+", default=["monitor", "monitor+paraphrase", "monitor+face"])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import transformers
    import trl

    from legible.policy import prepare_model

    transformers.logging.set_verbosity_error()
    prepare_model("smollm2-135m")
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}; "
        f"threads {args.threads}; load average {load_average()} (other jobs on the cores slow every figure)"
    )
    print(
        f"SmolLM2-135M-Instruct + LoRA, {args.prompts} prompts x {args.group} samples per step, "
        f"{args.warmup} warm-up + {args.steps} timed steps per trainer",
        flush=True,
    )
    plan = [("monitor", False)] + [(c, True) for c in args.conditions]
    names = [f"{'rollout' if r else 'plain'}_{c.replace('+', '_')}" for c, r in plan]
    baton = Baton(names)
    with tempfile.TemporaryDirectory(prefix="legible-trl-overhead-") as tmp:
        jobs = [build(c, r, args, Path(tmp), baton) for c, r in plan]
        print(f"{len(jobs)} trainers built; their steps run in turn", flush=True)
        threads = [threading.Thread(target=train, args=(job,), name=job["name"]) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = [summary(job, args) for job in jobs]
    print(f"load average after: {load_average()}")
    plain = results[0]
    print()
    print(f"{'trainer':<14} {'condition':<20} {'s/step':>7} {'overhead':>9} {'generation':>11} {'the rest':>9} "
          f"{'policy gen':>11} {'paraphrase':>11} {'answerer':>9} {'accuracy':>9}")  # fmt: skip
    overheads = {}
    for r in results:
        extra = r["seconds_per_step"] / plain["seconds_per_step"] - 1
        if r is not plain:
            overheads[r["condition"]] = extra
        p = r["parts"]
        answerer = f"{p.get('read', 0.0) + p.get('update_answerer', 0.0):9.2f}" if p else f"{'':>9}"
        cells = [f"{p[k]:11.2f}" if k in p else f"{'':>11}" for k in ("generate", "paraphrase")]
        overhead = "" if r is plain else f"{100 * extra:+.0f}%"
        accuracy = "n/a" if r["accuracy"] is None else f"{r['accuracy']:.2f}"
        print(
            f"{r['trainer']:<14} {r['condition']:<20} {r['seconds_per_step']:7.2f} {overhead:>9} "
            f"{r['generation']:11.2f} {r['seconds_per_step'] - r['generation']:9.2f} {cells[0]} {cells[1]} "
            f"{answerer} {accuracy:>9}"
        )
    print()
    for cond, extra in overheads.items():
        target = " (target: at most +15%)" if cond == "monitor+paraphrase" else ""
        print(f"rollout overhead over a plain GRPOTrainer step ({cond}): {100 * extra:+.0f}% seconds per step{target}")
    if args.json:
        settings = vars(args) | {"json": str(args.json)}
        args.json.write_text(json.dumps({"results": results, "overhead": overheads, "args": settings}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
