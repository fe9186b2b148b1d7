"""``python -m legible.train.verl``: the command line (``prepare``: a legible task as verl parquet files)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from legible.config import TEXT_TASKS, ConfigError
from legible.tasks import DatasetError
from legible.train.verl._config import AGENT_NAME, CONFIG_ENV
from legible.train.verl._data import prepare


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m legible.train.verl", description="legible's verl backend")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="write a legible task as verl parquet files (train.parquet, val.parquet)")
    p.add_argument("--task", required=True, choices=TEXT_TASKS)
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--config", help=f"a legible run config (instruction, answer marker, task path); else ${CONFIG_ENV}")
    p.add_argument("--path", help="the task's JSONL file (default: the config's task.path, or the shipped sample)")
    p.add_argument("--train", type=int, help="training problems (default: all of a file; 1024 generated)")
    p.add_argument("--val", type=int, help="validation problems (default: a tenth of a file, at most 64; 64 generated)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--agent-name", help=f"write an agent_name column (e.g. {AGENT_NAME}); default: none, so "
                   "rollout.agent.default_agent_loop decides")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        paths = prepare(
            args.task,
            args.out,
            config=args.config,
            train=args.train,
            val=args.val,
            seed=args.seed,
            path=args.path,
            agent_name=args.agent_name,
        )
    except (ConfigError, DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import pyarrow.parquet as pq

    for split, where in paths.items():
        print(f"{split}: {where} ({pq.ParquetFile(where).metadata.num_rows} rows)")
    return 0
