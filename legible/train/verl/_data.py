"""verl's dataset: legible problems as verl's parquet rows (``prompt`` chat list, ``data_source``,
``reward_model.ground_truth``, ``extra_info`` with the whole problem as JSON)."""

from __future__ import annotations

import os
import random
from pathlib import Path

from legible.config import TEXT_TASKS, TRLSettings
from legible.tasks import Problem, Task, make_task
from legible.train._text import build_prompt
from legible.train.verl._config import load_legible_config
from legible.train.verl._rows import DATA_SOURCE_PREFIX, problem_to_json


def verl_row(
    problem: Problem, task: Task, settings: TRLSettings, split: str, index: int, agent_name: str | None = None
) -> dict:
    """One verl dataset row: the chat prompt (with the instruction that names the answer marker), the
    data source, the ground truth, and the whole problem in ``extra_info`` for scoring."""
    row = {
        "data_source": DATA_SOURCE_PREFIX + task.name,
        "prompt": build_prompt(problem, settings, chat=True),
        "reward_model": {"style": "rule", "ground_truth": problem.answer},
        "extra_info": {"split": split, "index": index, "problem": problem_to_json(problem)},
    }
    if agent_name:
        row["agent_name"] = agent_name
    return row


def prepare(
    task_name: str,
    out: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | None = None,
    train: int | None = None,
    val: int | None = None,
    seed: int = 0,
    path: str | None = None,
    agent_name: str | None = None,
) -> dict[str, Path]:
    """Write ``train.parquet`` and ``val.parquet`` (none when ``val`` is 0) under ``out``; returns their paths.

    A task read from a file (GSM8K, multiple choice, programs from a JSONL file) is shuffled with ``seed``
    and split: ``val`` problems (default: a tenth, at most 64), then the rest (at most ``train``). A
    generated task (programs, text games) draws ``train`` problems (default 1024) with ``seed`` and ``val``
    (default 64) more with ``seed + 1``, none whose prompt is in the training set. Prompts carry the
    config's instruction (``trl.instruction``)."""
    import pandas as pd

    if task_name not in TEXT_TASKS:
        raise ValueError(f"task {task_name!r}: verl trains on the text tasks {TEXT_TASKS}")
    if (val is not None and val < 0) or (train is not None and train < 1):
        raise ValueError("need train >= 1 and val >= 0")
    cfg = load_legible_config(config)
    if cfg.task.name == task_name and path is None:
        task = cfg.task.build()  # the config's own task: its path, or its min_steps..max_steps (coin_flip_text)
    else:
        task = make_task(task_name, **({"path": path} if path is not None else {}))
    pool = getattr(task, "problems", None)
    if pool:
        val = min(64, max(1, len(pool) // 10)) if val is None else val
        order = list(pool)
        random.Random(seed).shuffle(order)
        val_set, train_set = order[:val], order[val:]
        train_set = train_set[:train] if train else train_set
        if not train_set:
            raise ValueError(f"{task_name}: {len(pool)} problems leave none for training after {val} for validation")
    else:
        val = 64 if val is None else val
        rng = random.Random(seed)
        train_set = [task.sample(rng) for _ in range(train or 1024)]
        seen = {p.prompt for p in train_set}
        vrng, val_set = random.Random(seed + 1), []
        for _ in range(20 * val):
            if len(val_set) == val:
                break
            p = task.sample(vrng)
            if p.prompt not in seen:
                seen.add(p.prompt)
                val_set.append(p)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, problems in (("train", train_set), ("val", val_set)):
        if not problems:
            continue
        rows = [verl_row(p, task, cfg.trl, split, i, agent_name) for i, p in enumerate(problems)]
        paths[split] = out / f"{split}.parquet"
        pd.DataFrame(rows).to_parquet(paths[split], index=False)
    return paths
