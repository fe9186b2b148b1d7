"""The organism's word-level vocabulary: one token per word, so a CoT is plain text."""

from __future__ import annotations

SPECIAL = ("<pad>", "<bos>", "<eos>")
MARKERS = ("coin", "sum", "answer", "_")
COIN_WORDS = ("heads", "tails", "same", "diff")
DIGITS = tuple(str(d) for d in range(10))
# Words with no task meaning that a model could repurpose to carry state.
NEUTRAL = (
    "then",
    "next",
    "so",
    "now",
    "ok",
    "step",
    "it",
    "is",
    "and",
    "well",
    "hmm",
    "right",
    "yes",
    "go",
    "we",
    "see",
)
ANSWER_MARKER = "answer"


class Vocab:
    def __init__(self, words: tuple[str, ...] = SPECIAL + MARKERS + COIN_WORDS + DIGITS + NEUTRAL):
        if len(set(words)) != len(words):
            raise ValueError("vocabulary words must be unique")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        self.pad_id, self.bos_id, self.eos_id = (self.index[w] for w in SPECIAL)
        self.answer_id = self.index[ANSWER_MARKER]

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.index[w] for w in text.split()]
        except KeyError as e:
            raise ValueError(f"word {e.args[0]!r} is not in the organism vocabulary") from None

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.words[i] for i in ids if i != self.pad_id)

    def ids(self, words: tuple[str, ...] | list[str]) -> list[int]:
        return [self.index[w] for w in words]


VOCAB = Vocab()
