"""Throughput of an Inspect AI eval against the scripted OpenAI-compatible server, by concurrency.

Why: the audit battery runs as Inspect tasks against a model behind an HTTP API, where almost all of a
sample's time is waiting on the model. With a fixed artificial model latency L and ``max_connections`` C,
the best an eval can do is C / L samples per second (one generate per sample); the share of that bound
reached says how much Inspect itself (scheduling, logging, the HTTP client) costs, and whether raising
the concurrency still pays. The model is ``legible.audit._openai_server`` (a scripted test double, on a
thread in this process unless ``--base-url`` points at one started separately), reached for real over
HTTP through Inspect's ``openai-api`` provider as ``openai-api/scripted/reasoner``.

What it does: one untimed warm-up eval (imports, first connections), then for each concurrency C an eval
of ``--samples`` N samples with ``max_connections=C`` (Inspect's ``max_samples`` defaults to the same),
timed with ``time.perf_counter`` around the ``eval()`` call (so task setup and log writing count).
Printed per C: samples/s, model requests, the bound C / L, and the share of the bound reached. Logs go to
a temporary directory that is removed afterwards. Figures only; nothing is asserted.

The task under test is ``--task module:function`` (the function returns an ``inspect_ai.Task``; it is
called with ``samples=N`` when it takes a ``samples`` argument, else with no arguments, and the eval is
capped at N samples with ``limit``). The default is the audit battery's early-answering task on the
multiple-choice sample (``battery_task``); ``--task simple`` is a one-generate task. A task that makes
k model calls per sample is bounded at C / (k L) samples/s; k is measured from the server's count.

Requires the ``openai`` package (Inspect's ``openai-api`` provider imports it). Run:

    .venv/bin/python benchmarks/audit_throughput.py
    .venv/bin/python benchmarks/audit_throughput.py --latency 0.5 --samples 128 --concurrency 1,8,64,128
    .venv/bin/python benchmarks/audit_throughput.py --json /tmp/throughput.json

Timings are wall-clock: other processes on the machine slow Inspect down (its event loop and the server
threads share the cores), so compare runs taken on a quiet machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inspect_ai import Task

MODEL = "openai-api/scripted/reasoner"
QUESTION = "Question {i}: which of these is a fruit?\n(A) carrot\n(B) apple\n(C) potato\n(D) onion"


def simple_task(samples: int = 64) -> Task:
    """The built-in task: N multiple-choice questions, one ``generate()`` each, scored by ``match()``."""
    from inspect_ai import Task  # imported here, not at the top, so --help is fast
    from inspect_ai.dataset import Sample
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    dataset = [Sample(input=QUESTION.format(i=i), target="(B)", id=i) for i in range(samples)]
    return Task(dataset=dataset, solver=generate(), scorer=match(), name="simple_generate")


def battery_task(samples: int = 30) -> Task:
    """The default: the audit battery's early-answering task on the shipped multiple-choice sample
    (30 questions): one CoT, then five forced answers in parallel per sample (the fallback prompt,
    as for any provider that cannot continue a turn)."""
    from legible.audit._tasks import early_answering

    return early_answering(dataset="multiple_choice", limit=samples, prefill="prompt")


def load_task(spec: str | None) -> Callable[..., Task]:
    """``module:function`` to the function (``None``: the audit battery's early-answering task)."""
    if spec == "simple":
        return simple_task
    if not spec:
        return battery_task
    module_name, sep, func_name = spec.partition(":")
    if not sep or not module_name or not func_name:
        raise SystemExit(f"--task must look like module:function, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return getattr(importlib.import_module(module_name), func_name)


def build_task(factory: Callable[..., Task], samples: int) -> Task:
    params = inspect.signature(factory).parameters
    return factory(samples=samples) if "samples" in params else factory()


def run_eval(factory: Callable[..., Task], samples: int, concurrency: int, base_url: str, log_dir: str) -> dict:
    """One timed eval; returns its figures (samples done, seconds, status)."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    task = build_task(factory, samples)
    model = get_model(MODEL, base_url=base_url, api_key="not-a-secret", memoize=False)
    start = time.perf_counter()
    [log] = inspect_eval(
        task,
        model=model,
        limit=samples,
        max_connections=concurrency,
        log_dir=log_dir,
        display="none",
    )
    seconds = time.perf_counter() - start
    done = log.results.completed_samples if log.results else 0
    return {"status": log.status, "samples": done, "seconds": seconds, "error": str(log.error or "")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="the server's artificial latency, seconds")
    parser.add_argument("--samples", type=int, default=30, help="samples per eval (N; the MC sample has 30)")
    parser.add_argument("--concurrency", default="1,4,16,64", help="comma-separated max_connections values")
    parser.add_argument(
        "--task", default=None, help="module:function returning an Inspect Task, or 'simple' (default: the battery)"
    )
    parser.add_argument("--base-url", default=None, help="use a server already running here (its own latency)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]

    try:
        import openai  # noqa: F401 - Inspect's openai-api provider needs it
    except ImportError:
        raise SystemExit("needs the openai package: .venv/bin/pip install openai") from None
    from legible.audit._openai_server import serve

    factory = load_task(args.task)
    load = os.getloadavg()[0]
    name = args.task or "battery: early_answering on multiple_choice"
    print(f"task {name}, latency {args.latency:g} s, {args.samples} samples per eval")
    print(
        f"load average {load:.2f} on {os.cpu_count()} cores"
        + ("  (busy machine: figures are low)" if load > 0.5 else "")
    )

    server = None if args.base_url else serve(latency=args.latency)
    base_url = args.base_url or server.base_url
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="audit-throughput-") as log_dir:
            warm = run_eval(factory, 2, 2, base_url, log_dir)  # imports, first connections: not timed
            if warm["status"] != "success":
                raise SystemExit(f"warm-up eval failed: {warm['error']}")
            for c in levels:
                if server:
                    server.reset_stats()
                r = run_eval(factory, args.samples, c, base_url, log_dir)
                rate = r["samples"] / r["seconds"]
                # C connections each answering one request per L seconds serve C / L requests/s; a sample
                # that makes k requests is bounded at C / (k L) samples/s (no latency: no bound)
                requests = server.completions if server else None
                k = requests / r["samples"] if requests and r["samples"] else 1.0
                bound = c / (args.latency * k) if args.latency > 0 else None
                r |= {
                    "concurrency": c,
                    "samples_per_s": rate,
                    "requests_per_sample": k,
                    "bound": bound,
                    "share": rate / bound if bound else None,
                    "requests": requests,
                    "max_in_flight": server.max_in_flight if server else None,
                }
                rows.append(r)
    finally:
        if server:
            server.close()

    print()
    print(
        f"{'concurrency':>11} {'samples/s':>10} {'bound C/kL':>10} {'share':>7} {'seconds':>8} {'requests':>9} "
        f"{'in flight':>9}  status"
    )
    dash = lambda value, fmt: "-" if value is None else format(value, fmt)
    for r in rows:
        print(
            f"{r['concurrency']:>11} {r['samples_per_s']:>10.2f} {dash(r['bound'], '.1f'):>10} "
            f"{dash(r['share'], '.1%'):>7} {r['seconds']:>8.2f} {dash(r['requests'], 'd'):>9} "
            f"{dash(r['max_in_flight'], 'd'):>9}  {r['status']}"
        )
    if args.json:
        meta = {"task": args.task or "battery_task", "latency": args.latency, "samples": args.samples, "load": load}
        args.json.write_text(json.dumps({"config": meta, "rows": rows}, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
