"""Cover texts for the hidden-channel schemes: short legible reasoning written for this project.

``legible/stego/data/cover_texts.jsonl`` holds one JSON object per line with ``id``, ``kind``
("math" or "everyday"), ``text``, ``answer`` (the final answer string, which occurs in ``text``) and,
optionally, ``question`` (what the reasoning answers: the context a context-aware paraphraser sees).
"""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["COVER_FILE", "load_cover_texts"]

COVER_FILE = "data/cover_texts.jsonl"
_KINDS = ("math", "everyday")
_FIELDS = {"id": str, "kind": str, "text": str, "answer": str}


def load_cover_texts() -> list[dict]:
    """All cover texts, in file order. ValueError naming the file and line for a malformed line."""
    path = resources.files("legible.stego").joinpath(COVER_FILE)
    where = f"legible/stego/{COVER_FILE}"
    covers: list[dict] = []
    seen: set[str] = set()
    with path.open("r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}, line {lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}, line {lineno}: expected a JSON object, got {type(row).__name__}")
            for field, typ in _FIELDS.items():
                if not isinstance(row.get(field), typ):
                    raise ValueError(f"{where}, line {lineno}: field {field!r} missing or not a {typ.__name__}")
            if not isinstance(row.get("question", ""), str):
                raise ValueError(f"{where}, line {lineno}: field 'question' not a str")
            if row["kind"] not in _KINDS:
                raise ValueError(f"{where}, line {lineno}: kind must be one of {_KINDS}, got {row['kind']!r}")
            if row["answer"] not in row["text"]:
                raise ValueError(f"{where}, line {lineno}: answer {row['answer']!r} does not occur in the text")
            if row["id"] in seen:
                raise ValueError(f"{where}, line {lineno}: duplicate id {row['id']!r}")
            seen.add(row["id"])
            covers.append(row)
    return covers
