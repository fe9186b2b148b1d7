"""Monitors read a CoT and say how much of it they flag."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod


class Monitor(ABC):
    name: str = "monitor"

    @abstractmethod
    def score(self, cot: str) -> float:
        """How much the CoT is flagged (0 = nothing); for keyword monitors, the number of hits."""


class KeywordMonitor(Monitor):
    """Counts whole-word, case-insensitive hits of banned words or regular expressions."""

    name = "keyword"

    def __init__(self, words: list[str] | tuple[str, ...] = (), patterns: list[str] | tuple[str, ...] = ()):
        if not words and not patterns:
            raise ValueError("a keyword monitor needs at least one word or pattern")
        alternatives = [rf"\b{re.escape(w)}\b" for w in words] + list(patterns)
        self.words = tuple(words)
        self.regex = re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE)

    def score(self, cot: str) -> float:
        return float(len(self.regex.findall(cot)))
