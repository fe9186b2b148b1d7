"""Speed benchmark of the model organism: trainer, sampler, and the machine's matmul peak.

What it measures (all on CPU, fp32, ``torch.set_num_threads(--threads)``, timed with
``time.perf_counter``):

1. **RL trainer throughput.** A stage-1 model is pretrained for ``--pretrain-steps`` (default
   300, so its CoTs have the real length and end with the answer marker; 0 = an untrained
   model, whose CoTs have random length) and then the real ``train_grpo`` runs ``--warmup``
   steps (not timed) plus ``--steps`` timed steps of the default config (32 prompts x group 4
   = 128 episodes per step), once per condition (default: every named condition; ``--conditions`` picks some).
   Reported: episodes/s and seconds/step (mean, median and fastest step). The peer, in the same run: the
   same condition with every episode trained with gradients (the trainer skips the episodes whose
   advantage is zero, which add nothing to the update; how many it skips depends on how settled the
   policy is, so a stage-1 model trained longer skips more). ``--no-every-episode-peer`` leaves it out.
2. **Sampler throughput with and without the KV cache.** ``sample(..., use_cache=True)`` vs
   ``use_cache=False`` at batch 128 on coin-flip prompts with the trainer's budget
   (``2*max_steps + 4`` new tokens), same model and seed. Only real generated tokens count
   (tokens up to and including the answer marker, no padding). Reported: tokens/s (median
   and best of ``--repeats``) and the ratio cache / no cache.
3. **Matmul peak and MFU.** fp32 ``torch.matmul`` of n x n matrices (best of several
   repeats, 2*n^3 FLOPs each) gives the machine's GFLOP/s. The trainer's model FLOPs per RL
   step are counted from the real tokens of every pass in that step (the passes are wrapped,
   in this process only, to count their tokens; a prompt that a GRPO group shares is run, and
   counted, once):
       sampling (no grad, KV cache)   2 * P * (prompt + generated tokens)
       answer passes without grad     2 * P * tokens      (original and paraphrased view)
       passes with grad (policy       6 * P * tokens      (forward 2P + backward 4P)
       log-probs, answer loss)
   where P = all parameters of the model. Attention-score FLOPs (QK^T and AV, about
   4 * n_layer * context * n_embd per token, a few percent here) and left-padding are left
   out, so the figure is model FLOPs utilisation in the usual sense (the share of padding
   computed is printed beside it). A pass that reads only some columns (answer and prompt
   passes: ``TinyTransformer.forward(at=)``) runs its last layer's attention output, MLP and head
   at those columns alone, but is counted as if it ran every layer everywhere, so the figure
   overstates those passes. MFU = FLOPs per step / seconds per step / matmul peak of
   the first size. The model's matmuls are 64 wide and every op is small, so per-op overhead
   and small-matrix efficiency, not the peak, bound it.
4. **Demo wall time**, read from ``wall_seconds`` in the ``summary.json`` that
   ``legible demo`` writes (pass ``--demo-summary PATH``; the demo is not run here).

Run:

    .venv/bin/python benchmarks/organism_speed.py
    .venv/bin/python benchmarks/organism_speed.py --json /tmp/speed.json --demo-summary runs/demo/summary.json
    .venv/bin/python benchmarks/organism_speed.py --threads 1          # when other jobs use the cores
    .venv/bin/python benchmarks/organism_speed.py --profile            # also cProfile 3 GRPO steps

The pretrained stage-1 model is kept in the temp directory (``--cache-dir``), keyed by the
config and the source of the model and pretraining code, so only the first run pays for
pretraining (about 30 s on 2 cores); a later run took about 25 s with ``--threads 1`` even
with two other training jobs on the 2 cores.

Timings are wall-clock: other processes on the machine slow every figure down, so compare
runs taken on an idle machine (the load average is printed at the start, with a warning when
it is not near zero). With other jobs on the cores, ``--threads 2`` is far slower than
``--threads 1`` (intra-op threads wait for a descheduled sibling), so a busy machine measures
mostly contention.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from legible.config import CONDITIONS, RunConfig, TaskConfig
from legible.demo import task_for
from legible.paraphrase import make_paraphraser
from legible.policy._rollout import LENGTH_GROUP, prompt_ids
from legible.policy._tiny import sample
from legible.policy._vocab import VOCAB
from legible.train import _grpo as grpo_module
from legible.train._grpo import train_grpo
from legible.train._pretrain import build_model, pretrain

# Targets from the feasibility study (2 cores): one RL step of 128 episodes, and KV-cached
# sampling at batch 128.
TARGET_STEP_SECONDS = (0.09, 0.14)
TARGET_CACHE_TOKENS_PER_S = 150_000


# --------------------------------------------------------------------------------------------
# Helpers


def load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return "n/a"


def base_config(condition: str, args: argparse.Namespace) -> RunConfig:
    # a condition with an output monitor trains on the task whose output restates the state, as in the demo
    task = task_for(TaskConfig(), condition).model_dump()
    return RunConfig.model_validate(
        {
            "seed": args.seed,
            "task": task,
            "condition": condition,
            "pretrain": {"steps": args.pretrain_steps},
            # No checkpoint or evaluation inside the timed window.
            "rl": {"steps": args.warmup + args.steps, "checkpoint_every": 10**9, "eval_every": 10**9},
        }
    )


class FlopCounter:
    """Counts the real tokens of every forward pass the trainer makes, by wrapping the rollout
    functions that ``legible.train._grpo`` calls (in this process only; nothing is edited)."""

    NAMES = ("write_cots", "answer_logprobs", "completion_logprobs")

    def __init__(self, params: int) -> None:
        self.params = params
        self.sample_tokens = 0  # forward only, KV cache
        self.nograd_tokens = 0  # forward only
        self.grad_tokens = 0  # forward + backward
        self.generated_tokens = 0
        self.episodes = 0
        self.computed_tokens = 0  # every pass's batch x width, padding included
        self._saved: dict[str, object] = {}
        self.active = False

    def flops(self) -> float:
        p = self.params
        return 2 * p * (self.sample_tokens + self.nograd_tokens) + 6 * p * self.grad_tokens

    def reset(self) -> None:
        self.sample_tokens = self.nograd_tokens = self.grad_tokens = 0
        self.generated_tokens = self.episodes = self.computed_tokens = 0

    def real_tokens(self) -> int:
        return self.sample_tokens + self.nograd_tokens + self.grad_tokens

    def _add(self, tokens: int) -> None:
        if torch.is_grad_enabled():
            self.grad_tokens += tokens
        else:
            self.nograd_tokens += tokens

    def __enter__(self) -> FlopCounter:
        missing = [n for n in self.NAMES if not hasattr(grpo_module, n)]
        if missing:
            print(f"  (FLOP counting off: legible.train._grpo has no {missing})", file=sys.stderr)
            return self
        self._saved = {n: getattr(grpo_module, n) for n in self.NAMES}
        self.active = True
        write_cots, answer_logprobs, completion_logprobs = (self._saved[n] for n in self.NAMES)

        def prompts_once(problems) -> tuple[int, int]:
            """Real tokens and padded positions of the prompts as the passes run them: each distinct
            prompt once (a GRPO group shares its prompt's pass), left-padded to the widest."""
            distinct = {tuple(prompt_ids(p)) for p in problems}
            return sum(map(len, distinct)), len(distinct) * max(map(len, distinct))

        def counted_write_cots(policy, problems, *rest, **kw):
            written = write_cots(policy, problems, *rest, **kw)
            tokens = written.tokens
            prompts, prompt_positions = prompts_once(problems)
            generated = sum(len(t) for t in tokens)
            self.sample_tokens += prompts + generated
            self.generated_tokens += generated
            self.episodes += len(problems)
            # the prompts' prefill, then one token per row for every further decode step
            self.computed_tokens += prompt_positions + len(problems) * (max((len(t) for t in tokens), default=1) - 1)
            return written

        def continuations(problems, lengths: list[int]) -> None:
            prompts, prompt_positions = prompts_once(problems)
            self._add(prompts + sum(lengths))
            # continuations run in groups of similar length, each padded to its own longest
            ordered = sorted(lengths)
            groups = [ordered[i : i + LENGTH_GROUP] for i in range(0, len(ordered), LENGTH_GROUP)]
            self.computed_tokens += prompt_positions + sum(len(g) * g[-1] for g in groups)

        def counted_answer_logprobs(answerer, problems, cots, *rest, **kw):
            continuations(problems, [len(c.split()) + 1 for c in cots])
            return answer_logprobs(answerer, problems, cots, *rest, **kw)

        def counted_completion_logprobs(policy, problems, tokens, *rest, **kw):
            continuations(problems, [len(t) for t in tokens])
            return completion_logprobs(policy, problems, tokens, *rest, **kw)

        grpo_module.write_cots = counted_write_cots
        grpo_module.answer_logprobs = counted_answer_logprobs
        grpo_module.completion_logprobs = counted_completion_logprobs
        return self

    def __exit__(self, *exc) -> None:
        for name, fn in self._saved.items():
            setattr(grpo_module, name, fn)


# --------------------------------------------------------------------------------------------
# 1. The trainer


def stage1_cache_path(cfg: RunConfig, cache_dir: Path) -> Path:
    """A file name that changes with everything stage 1 depends on, code included."""
    import inspect

    from legible.policy import _tiny as tiny
    from legible.train import _pretrain as pretrain_module

    key = json.dumps(
        [
            cfg.seed,
            cfg.task.model_dump(),
            cfg.model.model_dump(),
            cfg.pretrain.model_dump(),
            cfg.paraphraser,
            list(VOCAB.words),
            inspect.getsource(pretrain_module),
            inspect.getsource(tiny),
            torch.__version__,
        ],
        sort_keys=True,
    )
    return cache_dir / f"legible_speed_stage1_{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def stage1_model(args: argparse.Namespace, workdir: Path):
    """The model RL starts from: pretrained (cached between runs under --cache-dir) or untrained."""
    from legible.policy._checkpoint import load_policy, save_policy

    cfg = base_config("monitor", args)
    task = cfg.task.build()
    t0 = time.perf_counter()
    if args.pretrain_steps <= 0:
        torch.manual_seed(args.seed)
        return build_model(cfg, task).eval(), task, "untrained (CoTs of random length)", time.perf_counter() - t0
    kind = f"pretrained {args.pretrain_steps} steps"
    cached = stage1_cache_path(cfg, args.cache_dir) if args.cache_dir else None
    if cached is not None and cached.with_suffix(".safetensors").exists():
        with contextlib.suppress(Exception):
            model = load_policy(cached)
            return model.eval(), task, f"{kind} (loaded from {cached}.safetensors)", time.perf_counter() - t0
    paraphraser = make_paraphraser(cfg.paraphraser, task)
    with contextlib.redirect_stdout(io.StringIO()):
        model = pretrain(cfg, task, paraphraser, workdir / "stage1")
    seconds = time.perf_counter() - t0
    if cached is not None:
        with contextlib.suppress(OSError):
            save_policy(model, cached)
            kind += f" (saved to {cached}.safetensors for later runs)"
    return model.eval(), task, kind, seconds


def bench_trainer(
    condition: str, stage1, args, workdir: Path, profile: bool = False, every_episode: bool = False
) -> dict:
    """Time ``train_grpo`` on one condition. ``every_episode`` is the peer: the update runs every episode with
    gradients, as the trainer did before it skipped the episodes whose advantage is zero (same update)."""
    cfg = base_config(condition, args)
    # The stage-1 model is coin flip's: on the explaining task it writes its outputs without having learned
    # to, so it times an output of up to OUTPUT_BUDGET tokens rather than the legible two words.
    task = cfg.task.build()
    paraphraser = make_paraphraser(cfg.paraphraser, task)
    stamps: dict[int, float] = {}
    counter = FlopCounter(stage1.num_params())
    profiler = cProfile.Profile() if profile else None
    warm, last = args.warmup, args.warmup + args.steps
    rows: list[dict] = []

    def on_step(step: int, row: dict) -> None:
        stamps[step] = time.perf_counter()
        if step > warm:
            rows.append(row)
        if step == warm:
            counter.reset()
            if profiler:
                profiler.enable()
        if profiler and step == warm + args.profile_steps:
            profiler.disable()

    skip = grpo_module.trained_rows
    if every_episode:
        grpo_module.trained_rows = lambda adv, cot_adv, *, every: list(range(len(adv)))
    stamps[0] = time.perf_counter()
    try:
        with counter, contextlib.redirect_stdout(io.StringIO()):
            name = f"rl_{condition.replace('+', '_')}{'_every' if every_episode else ''}"
            train_grpo(cfg, task, paraphraser, stage1, workdir / name, on_step=on_step)
    finally:
        grpo_module.trained_rows = skip
    per_step = [stamps[s] - stamps[s - 1] for s in range(warm + 1, last + 1)]
    total = stamps[last] - stamps[warm]
    episodes = args.steps * cfg.rl.prompts * cfg.rl.group_size
    result = {
        "condition": condition,
        "steps": args.steps,
        "episodes_per_step": cfg.rl.prompts * cfg.rl.group_size,
        "seconds": total,
        "episodes_per_s": episodes / total,
        "seconds_per_step": total / args.steps,
        "median_seconds_per_step": statistics.median(per_step),
        "min_seconds_per_step": min(per_step),
        "flops_per_step": counter.flops() / args.steps if counter.active else None,
        "generated_tokens_per_step": counter.generated_tokens / args.steps,
        "padding_share": 1 - counter.real_tokens() / counter.computed_tokens if counter.computed_tokens else None,
        "mean_cot_words": statistics.mean(r.get("cot_words", 0.0) for r in rows) if rows else None,
        "mean_accuracy": statistics.mean(r.get("accuracy", 0.0) for r in rows) if rows else None,
        "trained_share": statistics.mean(r.get("trained_share", 1.0) for r in rows) if rows else None,
    }
    if profiler:
        result["_profiler"] = profiler
    return result


# --------------------------------------------------------------------------------------------
# 2. The sampler


def bench_sampler(model, task, args) -> dict:
    rng = random.Random(args.seed + 1)
    prompts = [prompt_ids(task.sample(rng)) for _ in range(args.batch)]
    budget = 2 * task.max_steps + 4
    out = {"batch": args.batch, "max_new_tokens": budget}
    for use_cache in (True, False):
        times, counts, longest = [], [], []
        for rep in range(args.repeats + 1):  # the first run warms up and is not counted
            gen = torch.Generator().manual_seed(args.seed + rep)
            t0 = time.perf_counter()
            rows = sample(
                model,
                prompts,
                max_new_tokens=budget,
                stop_id=VOCAB.answer_id,
                pad_id=VOCAB.pad_id,
                temperature=1.0,
                generator=gen,
                use_cache=use_cache,
            )
            dt = time.perf_counter() - t0
            if rep:
                times.append(dt)
                counts.append(sum(len(r) for r in rows))
                longest.append(max(len(r) for r in rows))
        key = "cache" if use_cache else "no_cache"
        rates = [c / t for c, t in zip(counts, times, strict=True)]
        out[key] = {
            "tokens_per_call": statistics.mean(counts),
            "decode_steps_per_call": statistics.mean(longest),
            "seconds_per_call": statistics.median(times),
            "tokens_per_s": statistics.median(rates),
            "best_tokens_per_s": max(rates),
        }
    out["ratio"] = out["cache"]["tokens_per_s"] / out["no_cache"]["tokens_per_s"]
    return out


# --------------------------------------------------------------------------------------------
# 3. The matmul peak


def bench_matmul(sizes: list[int], min_seconds: float = 0.15, repeats: int = 5) -> dict:
    out = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = torch.empty(n, n)
        torch.matmul(a, b, out=c)
        # enough calls per repeat to take ~min_seconds
        inner, dt = 1, 0.0
        while True:
            t0 = time.perf_counter()
            for _ in range(inner):
                torch.matmul(a, b, out=c)
            dt = time.perf_counter() - t0
            if dt >= min_seconds / 4 or inner >= 1 << 16:
                break
            inner *= 4
        inner = max(1, int(inner * min_seconds / max(dt, 1e-9)))
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(inner):
                torch.matmul(a, b, out=c)
            best = min(best, (time.perf_counter() - t0) / inner)
        out[n] = 2 * n**3 / best / 1e9
    return out


# --------------------------------------------------------------------------------------------
# Output


def cpu_busy_share(seconds: float = 0.5) -> float | None:
    """Share of all CPUs' time that was busy over the next ``seconds`` (from /proc/stat; Linux),
    measured before this benchmark starts working: what other processes are using."""

    def read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return idle, sum(values)

    try:
        idle0, total0 = read()
        time.sleep(seconds)
        idle1, total1 = read()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def _busy_warning(threads: int, busy: float | None) -> str | None:
    """A warning when other processes are using the CPUs this benchmark needs."""
    cpus = os.cpu_count() or 1
    if busy is None:
        try:
            busy = min(1.0, os.getloadavg()[0] / cpus)
        except (OSError, AttributeError):
            return None
    if busy < 0.15:
        return None
    msg = (
        f"WARNING: other processes kept {100 * busy:.0f}% of the {cpus} CPUs busy just before this benchmark "
        "started, so every figure below is slowed down and noisy."
    )
    if threads > 1:
        msg += (
            f" With {threads} torch threads on busy cores the intra-op threads wait for each other (a step can take"
            " several times longer); compare with --threads 1."
        )
    return msg


def _public(result: dict) -> dict:
    """A trainer result without its private entries (the profiler)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or x == 0:
        return str(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for j, r in enumerate(rows):
        print(
            "  ".join(
                c.ljust(w) if i != 1 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
        if j == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--steps", type=int, default=30, help="timed GRPO steps per condition (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed GRPO steps before them (default 3)")
    ap.add_argument("--pretrain-steps", type=int, default=300, help="stage-1 steps before RL; 0 = untrained model")
    ap.add_argument(
        "--cache-dir",
        default=tempfile.gettempdir(),
        help="where the pretrained stage-1 model is kept between runs (default: the temp dir; '' = never)",
    )
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help="comma-separated condition names (default: all)")
    ap.add_argument("--batch", type=int, default=128, help="sampler batch (default 128)")
    ap.add_argument(
        "--repeats", type=int, default=3, help="timed sampler calls per mode, after one warm-up call (default 3)"
    )
    ap.add_argument("--matmul-sizes", default="1024,256,64", help="n for the n x n matmul peak (first = the peak)")
    ap.add_argument(
        "--every-episode-peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time each condition training every episode with gradients (the peer; default on)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--demo-summary", type=Path, help="summary.json written by `legible demo`")
    ap.add_argument("--profile", action="store_true", help="cProfile GRPO steps of the first condition")
    ap.add_argument("--profile-steps", type=int, default=3, help="steps to profile with --profile (default 3)")
    args = ap.parse_args(argv)
    args.cache_dir = Path(args.cache_dir) if args.cache_dir else None
    if args.profile:
        args.profile_steps = max(1, min(args.profile_steps, args.steps))

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    print(
        f"legible organism speed benchmark  torch {torch.__version__}  threads={torch.get_num_threads()}  "
        f"cpus={os.cpu_count()}  load average (1/5/15 min) at start: {load_average()}"
    )
    busy = cpu_busy_share()
    print(f"CPU busy before start (other processes): {'n/a' if busy is None else f'{100 * busy:.0f}%'}")
    warning = _busy_warning(args.threads, busy)
    if warning:
        print(warning)

    with tempfile.TemporaryDirectory(prefix="legible_speed_") as tmp:
        workdir = Path(tmp)
        model, task, model_kind, pretrain_s = stage1_model(args, workdir)
        params = model.num_params()
        c = model.cfg
        print(
            f"model: {params:,} parameters (n_layer={c.n_layer}, n_embd={c.n_embd}, n_head={c.n_head}, "
            f"vocab={c.vocab_size}), {model_kind} in {pretrain_s:.1f} s; task {task.name} "
            f"{task.min_steps}-{task.max_steps} steps"
        )

        matmul = bench_matmul([int(s) for s in args.matmul_sizes.split(",")])
        peak_n = next(iter(matmul))
        peak = matmul[peak_n]
        sampler = bench_sampler(model, task, args)
        trainer, every = [], {}
        for i, cond in enumerate(conditions):  # each condition beside its peer, so drift over the run hits both
            trainer.append(bench_trainer(cond, model, args, workdir, profile=args.profile and i == 0))
            if args.every_episode_peer:
                every[cond] = bench_trainer(cond, model, args, workdir, every_episode=True)

    rows = [("figure", "value", "unit", "peer / note")]
    for n, g in matmul.items():
        note = "peak (best of 5)" if n == peak_n else f"{g / peak:.2f} x peak"
        rows.append((f"fp32 matmul {n}x{n}", fmt(g), "GFLOP/s", note))
    cache, nocache = sampler["cache"], sampler["no_cache"]
    rows.append(
        (
            f"sample, KV cache (batch {sampler['batch']})",
            fmt(cache["tokens_per_s"]),
            "tokens/s",
            f"best {fmt(cache['best_tokens_per_s'])}; {fmt(cache['tokens_per_call'])} tokens in "
            f"{fmt(cache['decode_steps_per_call'])} decode steps/call; "
            f"target {TARGET_CACHE_TOKENS_PER_S:,} ({fmt(cache['tokens_per_s'] / TARGET_CACHE_TOKENS_PER_S, 2)} x)",
        )
    )
    rows.append(
        (
            f"sample, no cache (batch {sampler['batch']})",
            fmt(nocache["tokens_per_s"]),
            "tokens/s",
            f"best {fmt(nocache['best_tokens_per_s'])}; {fmt(nocache['tokens_per_call'])} tokens/call",
        )
    )
    rows.append(("sample, cache / no cache", f"{sampler['ratio']:.2f}", "x", "median tokens/s ratio"))
    lo, hi = TARGET_STEP_SECONDS
    for t in trainer:
        name = t["condition"]
        flops = t["flops_per_step"]
        mfu = flops / t["seconds_per_step"] / (peak * 1e9) if flops is not None else None
        rows.append(
            (
                f"RL [{name}] episodes/s",
                fmt(t["episodes_per_s"]),
                "episodes/s",
                f"{t['episodes_per_step']} episodes/step, {t['steps']} steps after {args.warmup} warm-up",
            )
        )
        rows.append(
            (
                f"RL [{name}] time/step",
                fmt(t["seconds_per_step"]),
                "s/step",
                f"median {fmt(t['median_seconds_per_step'])}, fastest {fmt(t['min_seconds_per_step'])}; "
                f"target {lo}-{hi} s/step: {t['seconds_per_step'] / hi:.2f}-{t['seconds_per_step'] / lo:.2f} x target",
            )
        )
        if name in every:
            peer = every[name]["seconds_per_step"]
            rows.append(
                (
                    f"RL [{name}] every episode (peer)",
                    fmt(peer),
                    "s/step",
                    f"trained with gradients: {fmt(t['trained_share'], 2)} of episodes; "
                    f"skipping the rest is {peer / t['seconds_per_step']:.2f}x",
                )
            )
        rows.append(
            (
                f"RL [{name}] model FLOPs/step",
                "n/a" if flops is None else fmt(flops / 1e9),
                "GFLOP",
                f"{fmt(t['generated_tokens_per_step'])} sampled tokens/step, "
                f"mean CoT {fmt(t['mean_cot_words'])} words, accuracy {fmt(t['mean_accuracy'], 2)}",
            )
        )
        if t["padding_share"] is not None:
            rows.append(
                (
                    f"RL [{name}] padding",
                    f"{100 * t['padding_share']:.0f}",
                    "%",
                    "of the token positions computed (left padding, finished rows in sampling)",
                )
            )
        if flops is not None:
            rows.append(
                (
                    f"RL [{name}] achieved",
                    fmt(flops / t["seconds_per_step"] / 1e9),
                    "GFLOP/s",
                    f"MFU {100 * mfu:.2f}% of the {peak_n}x{peak_n} matmul peak",
                )
            )
        t["mfu"] = mfu
    demo = None
    if args.demo_summary:
        try:
            demo = float(json.loads(args.demo_summary.read_text())["wall_seconds"])
            rows.append(("demo wall time", fmt(demo), "s", f"from {args.demo_summary}"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            rows.append(("demo wall time", "n/a", "s", f"could not read wall_seconds from {args.demo_summary}: {e}"))
    else:
        rows.append(("demo wall time", "n/a", "s", "run `legible demo` and pass --demo-summary"))
    print()
    print_table(rows)
    print()
    print(
        f"FLOPs per RL step = 2*P*(sampled prompt+generated tokens) + 2*P*(no-grad answer-pass tokens) "
        f"+ 6*P*(tokens of passes with grad: policy log-probs, answer loss), P = {params:,} parameters; "
        f"attention scores and padding not counted; passes that read some columns counted whole (an overcount)."
    )
    elapsed = time.perf_counter() - started
    busy_end = cpu_busy_share()
    print(
        f"CPU busy after the benchmark (other processes): {'n/a' if busy_end is None else f'{100 * busy_end:.0f}%'}; "
        f"load average at end: {load_average()}; total benchmark time {elapsed:.0f} s"
    )

    if args.profile and trainer and "_profiler" in trainer[0]:
        stats = pstats.Stats(trainer[0]["_profiler"])
        total = stats.total_tt
        print(
            f"\ncProfile of {args.profile_steps} GRPO step(s) [{trainer[0]['condition']}]: "
            f"{total / args.profile_steps:.3f} s/step profiled (profiling adds overhead)"
        )
        stream = io.StringIO()
        stats.stream = stream
        stats.sort_stats("cumulative").print_stats(30)
        print(stream.getvalue())

    if args.json:
        figures = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "model_params": params,
            "model": model_kind,
            "cpu_busy_before_start": busy,
            "cpu_busy_after_end": busy_end,
            "load_average_end": load_average(),
            "matmul_gflops": {str(n): g for n, g in matmul.items()},
            "sampler": sampler,
            "trainer": [_public(t) for t in trainer],
            "trainer_every_episode": {c: _public(t) for c, t in every.items()},
            "demo_wall_seconds": demo,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
