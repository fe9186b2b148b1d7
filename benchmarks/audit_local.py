"""The audit battery on a real local model: Inspect's own ``hf`` provider against legible's ``legible-hf``
path, the same battery on the same samples, in one run.

Why: ``legible audit`` on a local transformers model through Inspect's ``hf`` provider generates every
request from scratch (each forced answer is a generation, each batch waits for a quiet queue and decodes
to its longest row's budget), which made 10 multiple-choice samples take more than 15 minutes on 2 cores.
``legible-hf`` (``legible/audit/_local.py``, ``_engine.py``) batches continuously, reuses the keys and
values of the prompt and the CoT across interventions, scores closed answer spaces from one forward pass,
and computes identical greedy requests once. This puts a number on what that buys.

The same work on both sides: the default battery of each dataset (multiple choice: early answering,
adding mistakes, paraphrase sensitivity, filler tokens, hint acknowledgement; GSM8K: the first four),
the first N samples of the shipped sample files, greedy decoding (``-M do_sample=false`` for ``hf``,
which samples otherwise), the same CoT budget (``--cot-tokens``; default legible-hf's per dataset: 96
multiple choice, 160 GSM8K; ``--hf-cot-tokens`` gives hf another, e.g. 1024, what ``legible audit``
gives any provider but legible-hf), the same torch thread count (``--threads``; default: the cores the
load average leaves free). The weights: float32 for hf; legible-hf's default ``dtype=auto`` (bfloat16
matrix products where the CPU has bfloat16 instructions, float32 attention, keys, values and output
layer; ``--legible-dtype float32`` for the same arithmetic as hf). Each side conditions on an edited
CoT the way its provider can: ``hf`` cannot continue an assistant turn, so it gets the fallback prompt
(the CoT quoted in the user turn) and generates every forced answer; ``legible-hf`` continues the
model's own turn. Each measurement runs in a fresh process (its own model load, no shared caches) and is
timed by ``run_audit``'s wall clock (model loading included, Python imports not).

Inspect's ``hf`` is slow enough that it runs on fewer samples (``--hf-limit``, default 2); legible's path
runs on those same samples and on ``--limit`` (default 10). Printed per side and dataset: task-samples
(tasks x samples), wall seconds, task-samples/s, the process's CPU seconds; then the ratio of
task-samples/s on the same samples, and legible at ``--limit`` against hf at ``--hf-limit``. Figures
only; nothing is asserted. Timings are wall-clock: other processes on the machine slow both sides (the
load average is printed), so compare runs taken on a quiet machine.

Run:

    .venv/bin/python benchmarks/audit_local.py
    .venv/bin/python benchmarks/audit_local.py --datasets multiple_choice --hf-limit 1 --limit 10
    .venv/bin/python benchmarks/audit_local.py --model smollm2-135m --json /tmp/audit_local.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASETS = ("multiple_choice", "gsm8k")
BUDGETS = {"multiple_choice": 96, "gsm8k": 160}


def one(side: str, model: str, dataset: str, limit: int, cot_tokens: int, threads: int, dtype: str, out: str) -> dict:
    """One audit in this process: ``side`` is "hf" (Inspect's provider) or "legible" (legible-hf)."""
    import torch

    torch.set_num_threads(threads)
    from legible.audit import run_audit
    from legible.policy import LOCAL_MODELS, prepare_model

    path = prepare_model(model) if model in LOCAL_MODELS else Path(model)
    if side == "hf":
        spec, args = f"hf/{path}", {"device": "cpu", "do_sample": False}
    else:
        spec, args = f"legible-hf/{path}", {"threads": threads, "dtype": dtype}
    summary = run_audit(
        spec, Path(out), dataset=dataset, limit=limit, cot_tokens=cot_tokens, model_args=args, show_progress=False
    )
    tasks = summary["tasks"]
    return {
        "side": side,
        "dataset": dataset,
        "limit": limit,
        "complete": summary["complete"],
        "tasks": len(tasks),
        "task_samples": sum(t["samples"] for t in tasks.values()),
        "wall_seconds": summary["wall_seconds"],
        "errors": {k: t["error"] for k, t in tasks.items() if t.get("error")},
        "verdicts": {v["task"]: round(v["value"], 3) for v in summary["verdicts"]},
    }


def measure(side: str, model: str, dataset: str, limit: int, cot_tokens: int, threads: int, dtype: str) -> dict:
    """``one`` in a fresh process; adds the process's CPU seconds."""
    with tempfile.TemporaryDirectory(prefix="audit-local-") as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cmd = [__file__, "--one", side, model, dataset, str(limit), str(cot_tokens), str(threads), dtype]
        cmd = [sys.executable, *cmd]
        done = subprocess.run([*cmd, str(Path(tmp) / "audit")], capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{side} {dataset}: failed\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
    result["cpu_seconds"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)
    result["rate"] = result["task_samples"] / result["wall_seconds"]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="a short name from `legible models`, or a directory")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: multiple_choice, gsm8k")
    parser.add_argument("--limit", type=int, default=10, help="samples per task on legible's path")
    parser.add_argument("--hf-limit", type=int, default=2, help="samples per task through Inspect's hf (and legible)")
    parser.add_argument("--cot-tokens", type=int, default=None, help="CoT budget (default: per dataset, 96 / 160)")
    parser.add_argument("--hf-cot-tokens", type=int, default=None, help="hf's CoT budget (default: the same)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both sides (default: auto)")
    parser.add_argument("--legible-dtype", default="auto", help="legible-hf's dtype: auto, float32 or bfloat16")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--one", nargs=8, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        side, model, dataset, limit, cot, threads, dtype, out = args.one
        print(json.dumps(one(side, model, dataset, int(limit), int(cot), int(threads), dtype, out)))
        return
    from legible.audit._local import fast_dtype, free_threads

    threads = args.threads or free_threads()
    dtype = fast_dtype() if args.legible_dtype == "auto" else args.legible_dtype
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    print(
        f"model {args.model}; {threads} torch thread(s); legible-hf dtype {dtype}, hf float32; "
        f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}"
    )
    header = ("side", "dataset", "CoT", "samples", "task-samples", "wall s", "samples/s", "CPU s")
    print("".join(f"{h:<{-w}}" if w < 0 else f"{h:>{w}}" for h, w in zip(header, (-14, -17, 5, 8, 14, 9, 11, 8))))
    rows, ratios = [], []
    start = time.perf_counter()
    for dataset in datasets:
        cot = args.cot_tokens or BUDGETS[dataset]
        runs = [("hf", args.hf_limit), ("legible", args.hf_limit), ("legible", args.limit)]
        measured = {}
        for side, limit in runs:
            if (side, limit) in measured:
                continue
            budget = (args.hf_cot_tokens or cot) if side == "hf" else cot
            r = measure(side, args.model, dataset, limit, budget, threads, dtype)
            r["cot_tokens"] = budget
            measured[(side, limit)] = r
            rows.append(r)
            name = "Inspect hf" if side == "hf" else "legible-hf"
            print(
                f"{name:<14}{dataset:<17}{budget:>5}{limit:>8}{r['task_samples']:>14}{r['wall_seconds']:>9.1f}"
                f"{r['rate']:>11.3f}{r['cpu_seconds']:>8.1f}" + ("" if r["complete"] else f"  errors: {r['errors']}"),
                flush=True,
            )
        hf, same = measured[("hf", args.hf_limit)], measured[("legible", args.hf_limit)]
        full = measured[("legible", args.limit)]
        ratios.append(
            {
                "dataset": dataset,
                "same_samples": same["rate"] / hf["rate"],
                "at_scale": full["rate"] / hf["rate"],
            }
        )
    print()
    for r in ratios:
        print(
            f"{r['dataset']}: legible-hf / Inspect hf = {r['same_samples']:.1f}x on the same {args.hf_limit} samples; "
            f"{r['at_scale']:.1f}x with legible on {args.limit} (hf measured on {args.hf_limit} only)"
        )
    print(f"total {time.perf_counter() - start:.0f} s; load {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ratios": ratios, "threads": threads, "dtype": dtype}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
