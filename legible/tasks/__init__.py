"""Tasks make problems with a verifiable answer and score answers: the organism's coin flip and running
sum, the coin flip in English for language models, GSM8K and multiple choice (JSONL), program output
(sandboxed), a text game."""

from legible.tasks._base import Problem, Task, make_task, register_task, split_completion, task_names
from legible.tasks._coin_text import CoinFlipText, coin_side
from legible.tasks._datasets import (
    GSM8K,
    LETTERS,
    DatasetError,
    MultipleChoice,
    load_gsm8k,
    load_multiple_choice,
    normalize_choice,
    normalize_number,
)
from legible.tasks._organism import CoinFlip, CoinFlipExplained, RunningSum, legible_cot, slot_of
from legible.tasks._program import ProgramOutput, load_programs, run_program
from legible.tasks._text_game import TextGame, TextGameTask, parse_commands

__all__ = [
    "Problem",
    "Task",
    "slot_of",
    "split_completion",
    "CoinFlip",
    "CoinFlipExplained",
    "CoinFlipText",
    "coin_side",
    "RunningSum",
    "legible_cot",
    "make_task",
    "register_task",
    "task_names",
    "GSM8K",
    "LETTERS",
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
