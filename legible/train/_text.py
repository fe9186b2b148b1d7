"""The text backends' (TRL, verl) prompt and answer format: what a prompt says, where a CoT ends, how an
answer is read after the marker. Written once so that both backends train on the same episodes."""

from __future__ import annotations

import re

from legible.config import TRLSettings
from legible.tasks import Problem

__all__ = ["LINE_END", "build_prompt", "first_word", "marker_pattern", "prompt_text"]


def build_prompt(problem: Problem, settings: TRLSettings, chat: bool) -> str | list[dict]:
    """The prompt TRL's dataset holds: the task's prompt plus the instruction (unless the prompt already
    names the answer marker), as one user message when the tokenizer has a chat template."""
    text = problem.prompt
    if settings.instruction and not marker_pattern(settings.answer_marker).search(text):
        text = f"{text}\n\n{settings.instruction}"
    return [{"role": "user", "content": text}] if chat else text


def prompt_text(prompt: str | list[dict]) -> str:
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


def marker_pattern(marker: str) -> re.Pattern[str]:
    """Where a CoT ends: the marker as a whole word, case-insensitive, with its colon when it has one
    (the stop rule; ``split_completion`` reads the same text back)."""
    word = re.escape(marker.rstrip(":").strip())
    return re.compile(rf"(?<!\w){word}[ \t]*:" if marker.rstrip().endswith(":") else rf"(?<!\w){word}(?!\w)", re.I)


# An answer is read up to the end of its first non-empty line.
LINE_END = re.compile(r"\S[^\n]*\n")


def first_word(text: str) -> str | None:
    """The answer as written: the first whitespace-delimited word after the marker."""
    words = text.split()
    return words[0] if words else None
