"""What a verl dataset row's fields mean to legible: ``data_source`` names the task, ``extra_info["problem"]``
holds the problem as JSON (else ``ground_truth`` rebuilds it)."""

from __future__ import annotations

import json
from typing import Any

from legible.config import TEXT_TASKS
from legible.tasks import Problem, Task, normalize_number

DATA_SOURCE_PREFIX = "legible/"
# data_source values other projects use for the same tasks: verl's examples write GSM8K as openai/gsm8k
_DATA_SOURCE_ALIASES = {"openai/gsm8k": "gsm8k"}


def task_name_for(data_source: str) -> str:
    """The legible task a verl ``data_source`` names: ``legible/<task>``, ``<task>`` or a known alias."""
    source = str(data_source)
    name = _DATA_SOURCE_ALIASES.get(source, source.removeprefix(DATA_SOURCE_PREFIX))
    if name not in TEXT_TASKS:
        raise ValueError(
            f"data_source {source!r} is no legible task; use {DATA_SOURCE_PREFIX}<task> with a task among {TEXT_TASKS}"
        )
    return name


def problem_to_json(problem: Problem) -> str:
    """The whole problem as one JSON string: a parquet column of it keeps one type whatever the task's
    metadata holds (a text game's seed and world arguments, a question's choice labels)."""
    data = {
        "prompt": problem.prompt,
        "answer": problem.answer,
        "steps": problem.steps,
        "states": list(problem.states),
        "metadata": problem.metadata,
    }
    return json.dumps(data, default=str)


def problem_from_json(data: str | dict) -> Problem:
    d = json.loads(data) if isinstance(data, str) else dict(data)
    return Problem(d["prompt"], d["answer"], int(d.get("steps", 1)), tuple(d.get("states", ())), d.get("metadata", {}))


def problem_from_row(task: Task, ground_truth: Any, extra_info: dict | None, prompt: str = "") -> Problem:
    """The problem of a verl row: ``extra_info["problem"]`` when ``prepare`` wrote it, else one rebuilt
    from ``ground_truth`` (enough for GSM8K and multiple choice; a text game needs its seed)."""
    info = extra_info or {}
    if info.get("problem"):
        return problem_from_json(info["problem"])
    if task.name == "text_game":
        raise ValueError("text_game rows need extra_info['problem'] (the game's seed): write them with prepare")
    answer = str(ground_truth).strip()
    metadata: dict[str, Any] = {}
    if task.name == "gsm8k":
        answer = normalize_number(answer) or answer  # verl's GSM8K files hold the number as written
    elif task.name == "coin_flip_text":
        from legible.tasks import coin_side

        answer = coin_side(answer) or answer  # "Heads", as a coin-flip dataset of another project writes it
    elif task.name == "multiple_choice":
        from legible.tasks import LETTERS

        metadata["labels"] = list(LETTERS)  # the row does not say how many choices: accept any letter
    return Problem(prompt or str(info.get("question", "")), answer, metadata=metadata)
