from legible.tasks.base import Problem, Task, split_completion
from legible.tasks.datasets import (
    GSM8K,
    DatasetError,
    MultipleChoice,
    load_gsm8k,
    load_multiple_choice,
    normalize_choice,
    normalize_number,
)
from legible.tasks.organism import CoinFlip, RunningSum, legible_cot
from legible.tasks.program import ProgramOutput, load_programs, run_program
from legible.tasks.text_game import TextGame, TextGameTask, parse_commands


def make_task(name: str, **kwargs) -> Task:
    """A task by name; keyword arguments go to its constructor (``path=`` for the JSONL tasks)."""
    tasks = {
        "coin_flip": CoinFlip,
        "running_sum": RunningSum,
        "gsm8k": GSM8K,
        "multiple_choice": MultipleChoice,
        "program_output": ProgramOutput,
        "text_game": TextGameTask,
    }
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(tasks)}")
    return tasks[name](**kwargs)


__all__ = [
    "Problem",
    "Task",
    "split_completion",
    "CoinFlip",
    "RunningSum",
    "legible_cot",
    "make_task",
    "GSM8K",
    "MultipleChoice",
    "DatasetError",
    "load_gsm8k",
    "load_multiple_choice",
    "normalize_number",
    "normalize_choice",
    "ProgramOutput",
    "load_programs",
    "run_program",
    "TextGame",
    "TextGameTask",
    "parse_commands",
]
