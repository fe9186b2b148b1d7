"""Local JSONL datasets as Tasks: GSM8K-format word problems and multiple-choice questions.

Both loaders read one JSON object per line (blank lines skipped) and raise DatasetError for
anything malformed, with a one-line message "{path}:{line}: what is wrong": a bad dataset should
read like a compiler error, not a traceback. The shipped samples in ``legible/tasks/data/`` were
written for this project in the GSM8K, MMLU and ARC formats; point the tasks at real files for
real runs.

Answers are compared in a normal form, so that "$1,000." from a CoT scores against "1000":
``normalize_number`` for numbers and ``normalize_choice`` for choice letters.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from legible.tasks._base import Problem, Task, register_task

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    # A file on disk, or a file inside the installed package (what importlib.resources gives).
    DataPath = str | os.PathLike[str] | Traversable

__all__ = [
    "DatasetError",
    "GSM8K",
    "MultipleChoice",
    "load_gsm8k",
    "load_multiple_choice",
    "normalize_choice",
    "normalize_number",
    "sample_path",
]

LETTERS = "ABCDEFGHIJ"  # at most 10 choices, as in MMLU-Pro
MIN_CHOICES, MAX_CHOICES = 2, len(LETTERS)


class DatasetError(ValueError):
    """A malformed dataset file. ``str(e)`` is one line: ``"{path}:{line}: {what}"``, or
    ``"{path}: {what}"`` for the file as a whole."""

    def __init__(self, path: str, line: int | None, what: str) -> None:
        super().__init__(path, line, what)  # all three in args, so the error pickles across processes
        self.path, self.line, self.what = path, line, what

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return " ".join(f"{where}: {self.what}".splitlines())  # one line, whatever the data held


# ---------------------------------------------------------------- normal forms

# Optional sign and "$", then digits with proper thousands commas ("1,000" but not "1,0000") or
# plain digits, then optional decimals; or bare decimals (".5").
_NUMBER = re.compile(r"(?P<sign>[-+\u2212]?)\$?(?P<digits>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)")


def _canonical(match: re.Match[str]) -> str:
    whole, _, frac = match["digits"].replace(",", "").partition(".")
    text = (whole.lstrip("0") or "0") + ("." + frac.rstrip("0") if frac.rstrip("0") else "")
    return "-" + text if match["sign"] in ("-", "\u2212") and text != "0" else text


def normalize_number(text: str | None) -> str | None:
    """The first number in ``text`` in normal form, or None: "$1,000." -> "1000", "2.50" -> "2.5",
    "-3" -> "-3", "7.00" -> "7". Fractions and exponents are not parsed ("1/2" -> "1")."""
    match = _NUMBER.search(text) if text else None
    return _canonical(match) if match else None


# What a model wraps a choice letter in: "(B)", "B.", "b)", "**B**", "[B],".
_WRAPPING = "()[]{}<>.,:;!?*_'\"`"


def normalize_choice(text: str | None, labels: Sequence[str]) -> str | None:
    """The choice letter that ``text`` starts with, upper-cased, if it is one of ``labels``:
    "(b)" -> "B", "B." -> "B". A longer first word ("Because") is no letter, so None."""
    words = text.split() if text else []
    letter = words[0].strip(_WRAPPING).upper() if words else ""
    return letter if len(letter) == 1 and letter in labels else None


# ---------------------------------------------------------------- reading JSONL


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    kinds = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _show(value: object, limit: int = 40) -> str:
    """A short repr for error messages: a whole wrong question would bury the point."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(path: DataPath) -> str:
    return os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)


def _rows(path: DataPath) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; DatasetError for anything else."""
    where = _where(path)
    source = Path(path) if isinstance(path, (str, os.PathLike)) else path
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise DatasetError(where, None, "no such file") from None
    except OSError as e:
        raise DatasetError(where, None, f"cannot read ({e.strerror or e})") from None
    found = False
    # Split bytes, not text, so a bad byte is reported on its own line and not as a whole-file failure.
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetError(where, lineno, "not UTF-8") from None
        if lineno == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark from some Windows editors
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(where, lineno, f"not valid JSON ({e.msg} at column {e.colno})") from None
        except (ValueError, RecursionError) as e:  # a 5000-digit number, or arrays nested thousands deep
            raise DatasetError(where, lineno, f"not valid JSON ({type(e).__name__})") from None
        if not isinstance(row, dict):
            raise DatasetError(where, lineno, f"expected a JSON object, got {_json_type(row)}")
        found = True
        yield lineno, row
    if not found:
        raise DatasetError(where, None, "no problems in the file")


class _Line:
    """One row being checked: typed field access whose errors name the file, line and field."""

    def __init__(self, path: DataPath, lineno: int, row: dict) -> None:
        self.where, self.lineno, self.row = _where(path), lineno, row

    def error(self, what: str) -> DatasetError:
        return DatasetError(self.where, self.lineno, what)

    def get(self, name: str, kind: type, obj: dict | None = None, label: str | None = None):
        """``obj[name]`` (the row by default), which must be a ``kind``; ``label`` names it in errors."""
        obj, label = (self.row if obj is None else obj), (label or name)
        if name not in obj:
            raise self.error(f"missing field {label!r}")
        value = obj[name]
        if not isinstance(value, kind):  # kind() is an empty str, list or dict: names the JSON type
            raise self.error(f"field {label!r}: expected {_json_type(kind())}, got {_json_type(value)}")
        if kind is str and not value.strip():
            raise self.error(f"field {label!r}: empty")
        return value

    def ident(self, seen: dict[str, int]) -> str:
        """The optional ``id`` (a string or an integer), else "{file stem}-{line}"; ids must be unique."""
        value = self.row.get("id")
        if value is None:
            ident = f"{Path(self.where).stem}-{self.lineno}"
        elif isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            ident = str(value)
        else:
            raise self.error(f"field 'id': expected a string or an integer, got {_json_type(value)}")
        if ident in seen:
            raise self.error(f"duplicate id {_show(ident)} (first on line {seen[ident]})")
        seen[ident] = self.lineno
        return ident


# ---------------------------------------------------------------- GSM8K


def load_gsm8k(path: DataPath) -> list[Problem]:
    """Problems from a GSM8K-format file: ``question`` and ``answer``, a worked solution whose last
    line is ``#### <number>``. The Problem's answer is that number in normal form and ``steps`` is
    the number of non-empty solution lines."""
    problems, seen = [], {}
    for lineno, row in _rows(path):
        line = _Line(path, lineno, row)
        question, worked = line.get("question", str), line.get("answer", str)
        *solution, last = worked.strip().split("\n")
        if not last.strip().startswith("####"):
            raise line.error("field 'answer': expected a final '#### <number>' line")
        final = last.strip().removeprefix("####").strip()
        number = _NUMBER.fullmatch(final)
        if number is None:
            raise line.error(f"field 'answer': expected a number after '####', got {_show(final)}")
        solution_text = "\n".join(solution).strip()
        meta = {"id": line.ident(seen), "solution": solution_text, "line": lineno, "source": line.where}
        steps = sum(1 for s in solution if s.strip())
        problems.append(Problem(prompt=question.strip(), answer=_canonical(number), steps=steps, metadata=meta))
    return problems


# ---------------------------------------------------------------- multiple choice


def _choices_mmlu(line: _Line) -> tuple[str, list[str], int]:
    """MMLU style: ``question`` str, ``choices`` [str], ``answer`` an index or a letter."""
    question, choices = line.get("question", str), line.get("choices", list)
    if not all(isinstance(c, str) and c.strip() for c in choices):
        raise line.error("field 'choices': expected an array of non-empty strings")
    _check_count(line, "choices", len(choices))
    answer, n = line.row.get("answer"), len(choices)
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < n:
        return question, choices, answer
    if isinstance(answer, str) and answer.strip().upper() in LETTERS[:n] and len(answer.strip()) == 1:
        return question, choices, LETTERS.index(answer.strip().upper())
    if "answer" not in line.row:
        raise line.error("missing field 'answer'")
    expected = f"an index 0..{n - 1} or a letter A..{LETTERS[n - 1]}"
    raise line.error(f"field 'answer': expected {expected}, got {_show(answer)}")


def _choices_arc(line: _Line) -> tuple[str, list[str], int]:
    """ARC style: ``question`` {``stem``, ``choices`` [{``label``, ``text``}]}, ``answerKey`` a label.
    Labels are A, B, C... or 1, 2, 3... in order (ARC uses both); either way the Problem uses letters."""
    q = line.row["question"]
    stem = line.get("stem", str, q, "question.stem")
    items = line.get("choices", list, q, "question.choices")
    if not all(isinstance(c, dict) and all(isinstance(c.get(k), str) for k in ("label", "text")) for c in items):
        raise line.error("field 'question.choices': expected an array of objects with string 'label' and 'text'")
    if not all(c["text"].strip() for c in items):
        raise line.error("field 'question.choices': empty choice text")
    _check_count(line, "question.choices", len(items))
    labels, n = [c["label"].strip() for c in items], len(items)
    if labels != list(LETTERS[:n]) and labels != [str(i) for i in range(1, n + 1)]:
        raise line.error(f"field 'question.choices': labels must be A, B, C... or 1, 2, 3... in order, got {labels}")
    key = line.get("answerKey", str).strip()
    if key not in labels:
        raise line.error(f"field 'answerKey': expected one of {', '.join(labels)}, got {_show(key)}")
    return stem, [c["text"] for c in items], labels.index(key)


def _check_count(line: _Line, field: str, n: int) -> None:
    if not MIN_CHOICES <= n <= MAX_CHOICES:
        raise line.error(f"field {field!r}: expected {MIN_CHOICES} to {MAX_CHOICES} choices, got {n}")


def load_multiple_choice(path: DataPath) -> list[Problem]:
    """Problems from a multiple-choice file whose lines are MMLU style or ARC style (mixed freely).
    The prompt is the question, then one line per choice "(A) text"; the answer is the letter."""
    problems, seen = [], {}
    for lineno, row in _rows(path):
        line = _Line(path, lineno, row)
        if isinstance(row.get("question"), dict):
            question, choices, k = _choices_arc(line)
        elif isinstance(row.get("question"), str) or "question" not in row:
            question, choices, k = _choices_mmlu(line)  # reports a missing 'question' itself
        else:
            raise line.error(
                f"field 'question': expected a string or an object with 'stem' and 'choices', "
                f"got {_json_type(row['question'])}"
            )
        labels = list(LETTERS[: len(choices)])
        prompt = "\n".join([question.strip(), *(f"({lab}) {text.strip()}" for lab, text in zip(labels, choices))])
        meta = {
            "id": line.ident(seen),
            "question": question.strip(),
            "choices": [c.strip() for c in choices],
            "labels": labels,
            "line": lineno,
            "source": line.where,
        }
        problems.append(Problem(prompt=prompt, answer=labels[k], metadata=meta))
    return problems


# ---------------------------------------------------------------- tasks


def sample_path(name: str) -> Traversable:
    """A sample file shipped with the package: "gsm8k_sample.jsonl" or "multiple_choice_sample.jsonl"."""
    return resources.files("legible.tasks").joinpath(f"data/{name}")


@register_task
class GSM8K(Task):
    """Grade-school word problems with a numeric answer; ``score`` compares normal forms."""

    name = "gsm8k"

    def __init__(self, path: DataPath | None = None) -> None:
        self.path = path if path is not None else sample_path("gsm8k_sample.jsonl")
        self.problems = load_gsm8k(self.path)

    def sample(self, rng: random.Random) -> Problem:
        return rng.choice(self.problems)

    def score(self, problem: Problem, answer: str | None) -> float:
        return float(normalize_number(answer) == problem.answer)

    def answer_key(self, problem: Problem, answer: str | None) -> str | None:
        return normalize_number(answer)


@register_task
class MultipleChoice(Task):
    """Questions with lettered choices; ``answer_words`` are the letters any question uses."""

    name = "multiple_choice"

    def __init__(self, path: DataPath | None = None) -> None:
        self.path = path if path is not None else sample_path("multiple_choice_sample.jsonl")
        self.problems = load_multiple_choice(self.path)
        self.answer_words = tuple(LETTERS[: max(len(p.metadata["labels"]) for p in self.problems)])

    def sample(self, rng: random.Random) -> Problem:
        return rng.choice(self.problems)

    def score(self, problem: Problem, answer: str | None) -> float:
        return float(normalize_choice(answer, problem.metadata["labels"]) == problem.answer)

    def answer_key(self, problem: Problem, answer: str | None) -> str | None:
        return normalize_choice(answer, problem.metadata["labels"])
