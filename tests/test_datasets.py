"""JSONL datasets: the shipped samples, the answer normal forms, and the one-line errors."""

from __future__ import annotations

import json
import pickle
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legible.tasks import (
    GSM8K,
    DatasetError,
    MultipleChoice,
    load_gsm8k,
    load_multiple_choice,
    make_task,
    normalize_choice,
    normalize_number,
    split_completion,
)
from legible.tasks._datasets import sample_path

GOOD_GSM8K = {"question": "Tom has 2 boxes of 3 eggs. How many eggs?", "answer": "2 * 3 = <<2*3=6>>6 eggs.\n#### 6"}
GOOD_MMLU = {"question": "2 + 2 = ?", "choices": ["3", "4", "5", "6"], "answer": 1}
GOOD_ARC = {
    "id": "arc-1",
    "question": {
        "stem": "Which is a metal?",
        "choices": [{"label": str(i), "text": t} for i, t in enumerate("xyz", 1)],
    },
    "answerKey": "3",
}


def write(tmp_path, lines: list, name: str = "data.jsonl"):
    """A JSONL file of these lines: dicts are dumped, strings and bytes written as they are."""
    path = tmp_path / name
    raw = [
        line if isinstance(line, bytes) else (line if isinstance(line, str) else json.dumps(line)).encode()
        for line in lines
    ]
    path.write_bytes(b"\n".join(raw) + b"\n")
    return path


# ---------------------------------------------------------------- the shipped samples


def test_gsm8k_sample():
    problems = load_gsm8k(sample_path("gsm8k_sample.jsonl"))
    assert len(problems) == 30
    first = problems[0]
    assert first.prompt.startswith("Maya buys 4 packs of pencils") and first.answer == "33" and first.steps == 2
    assert first.metadata["id"] == "gsm8k_sample-1" and first.metadata["line"] == 1
    assert first.metadata["solution"].endswith("<<48-15=33>>33 pencils.") and "####" not in first.metadata["solution"]
    answers = {p.answer for p in problems}
    assert {"-2", "14.5", "6.25"} <= answers  # negative and decimal answers are exercised
    assert all(2 <= p.steps <= 5 for p in problems)
    assert len({p.metadata["id"] for p in problems}) == 30


def test_gsm8k_sample_annotations_compute():
    """Every <<expression=result>> in the shipped solutions is right, and the last one is the answer."""
    for p in load_gsm8k(sample_path("gsm8k_sample.jsonl")):
        results = []
        for expr, result in re.findall(r"<<([^=<>]+)=([^<>]+)>>", p.metadata["solution"]):
            assert eval(expr, {"__builtins__": {}}) == pytest.approx(float(result)), (p.metadata["id"], expr)
            results.append(result)
        if results:
            assert normalize_number(results[-1]) == p.answer, p.metadata["id"]


def test_multiple_choice_sample():
    problems = load_multiple_choice(sample_path("multiple_choice_sample.jsonl"))
    assert len(problems) == 30
    assert all(len(p.metadata["choices"]) == 4 and p.metadata["labels"] == list("ABCD") for p in problems)
    letters = [p.answer for p in problems]
    assert all(letters.count(x) >= 5 for x in "ABCD")  # the right letter is not always the same
    first = problems[0]  # MMLU style, answer as an index
    assert first.answer == "B" and first.metadata["id"] == "multiple_choice_sample-1"
    assert first.prompt.splitlines()[1:] == ["(A) Oxygen", "(B) Carbon dioxide", "(C) Nitrogen", "(D) Hydrogen"]
    seasons = next(p for p in problems if p.metadata["id"] == "sample-arc-03")  # ARC style, digit labels
    assert seasons.answer == "B" and seasons.metadata["choices"][1] == "The tilt of Earth's axis"
    assert seasons.prompt.splitlines()[0] == "What causes the seasons on Earth?"


def test_both_formats_in_one_file(tmp_path):
    letter = {"question": "Pick C", "choices": ["a", "b", "c"], "answer": "c"}
    path = write(tmp_path, [GOOD_MMLU, "", GOOD_ARC, letter])
    mmlu, arc, by_letter = load_multiple_choice(path)
    assert (mmlu.answer, arc.answer, by_letter.answer) == ("B", "C", "C")
    assert mmlu.prompt == "2 + 2 = ?\n(A) 3\n(B) 4\n(C) 5\n(D) 6"
    assert arc.metadata == {
        "id": "arc-1",
        "question": "Which is a metal?",
        "choices": ["x", "y", "z"],
        "labels": ["A", "B", "C"],
        "line": 3,
        "source": str(path),
    }
    assert by_letter.metadata["line"] == 4  # blank lines are skipped but still counted


def test_gsm8k_formats(tmp_path):
    rows = [
        {**GOOD_GSM8K, "id": "own-id"},
        {"question": "q", "answer": "a\n\nb\n#### $1,000"},
        {"question": "q", "answer": "#### -3.50"},
    ]
    own, money, bare = load_gsm8k(write(tmp_path, rows))
    assert own.metadata["id"] == "own-id" and own.answer == "6" and own.steps == 1
    assert money.answer == "1000" and money.steps == 2 and money.metadata["id"] == "data-2"
    assert bare.answer == "-3.5" and bare.steps == 0 and bare.metadata["solution"] == ""


# ---------------------------------------------------------------- normal forms


@pytest.mark.parametrize(
    "text,number",
    [
        ("42", "42"),
        ("$1,000.", "1000"),
        ("-3", "-3"),
        ("2.50", "2.5"),
        ("7.00", "7"),
        ("7.0", "7"),
        ("0.5", "0.5"),
        (".5", "0.5"),
        ("007", "7"),
        ("-0", "0"),
        ("-$5", "-5"),
        ("1,234,567", "1234567"),
        ("1,0000", "1"),  # not a thousands comma: the first number is 1
        ("3,4", "3"),
        ("about 12 apples", "12"),
        ("x=5", "5"),
        ("50%", "50"),
        ("\u22124", "-4"),  # the Unicode minus sign
        ("", None),
        ("none", None),
        (None, None),
    ],
)
def test_normalize_number(text, number):
    assert normalize_number(text) == number


@given(st.integers(-(10**12), 10**12))
def test_normalize_number_round_trips_formatted_ints(n):
    for text in (str(n), f"{n:,}", f"{n:,}.", f"{n}.00", f"{n}.0"):
        assert normalize_number(text) == str(n)
    sign = "-" if n < 0 else ""
    assert normalize_number(f"{sign}${abs(n):,}") == str(n)


@pytest.mark.parametrize(
    "text,letter",
    [
        ("B", "B"),
        ("(B)", "B"),
        ("b)", "B"),
        ("B.", "B"),
        ("(b)", "B"),
        ("(B),", "B"),
        ("**D**", "D"),
        ("A: because", "A"),
        ("E", None),  # not one of the labels
        ("Because", None),
        ("BC", None),
        ("()", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_choice(text, letter):
    assert normalize_choice(text, ["A", "B", "C", "D"]) == letter


# ---------------------------------------------------------------- errors


def _error(load, path) -> str:
    with pytest.raises(DatasetError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "load,lines,line,what",
    [
        (
            load_gsm8k,
            [GOOD_GSM8K, '{"question": "q" "answer": "#### 1"}'],
            2,
            "not valid JSON (Expecting ',' delimiter",
        ),
        (load_gsm8k, ["[1, 2]"], 1, "expected a JSON object, got an array"),
        (load_gsm8k, [{"question": "q"}], 1, "missing field 'answer'"),
        (load_gsm8k, [{"question": 3, "answer": "#### 1"}], 1, "field 'question': expected a string, got a number"),
        (load_gsm8k, [{"question": "  ", "answer": "#### 1"}], 1, "field 'question': empty"),
        (
            load_gsm8k,
            [GOOD_GSM8K, "", {"question": "q", "answer": "so 5"}],
            3,
            "field 'answer': expected a final '#### <number>' line",
        ),
        (
            load_gsm8k,
            [{"question": "q", "answer": "#### 5\nso 5"}],
            1,
            "field 'answer': expected a final '#### <number>' line",
        ),
        (
            load_gsm8k,
            [{"question": "q", "answer": "#### five"}],
            1,
            "field 'answer': expected a number after '####', got 'five'",
        ),
        (load_gsm8k, [{**GOOD_GSM8K, "id": "a"}, {**GOOD_GSM8K, "id": "a"}], 2, "duplicate id 'a' (first on line 1)"),
        (load_gsm8k, [{**GOOD_GSM8K, "id": [1]}], 1, "field 'id': expected a string or an integer, got an array"),
        (load_gsm8k, [GOOD_GSM8K, b'{"question": "caf\xe9", "answer": "#### 1"}'], 2, "not UTF-8"),
        (load_gsm8k, ["1" * 5000], 1, "not valid JSON (ValueError)"),
        (load_gsm8k, ["[" * 100_000], 1, "not valid JSON (RecursionError)"),
        (
            load_multiple_choice,
            [{**GOOD_MMLU, "answer": "E"}],
            1,
            "field 'answer': expected an index 0..3 or a letter A..D, got 'E'",
        ),
        (load_multiple_choice, [{**GOOD_MMLU, "answer": 4}], 1, "field 'answer': expected an index 0..3"),
        (load_multiple_choice, [{**GOOD_MMLU, "answer": True}], 1, "field 'answer': expected an index 0..3"),
        (load_multiple_choice, [{"question": "q", "choices": ["a", "b"]}], 1, "missing field 'answer'"),
        (load_multiple_choice, [{"choices": ["a", "b"], "answer": 0}], 1, "missing field 'question'"),
        (load_multiple_choice, [{**GOOD_MMLU, "question": 7}], 1, "field 'question': expected a string or an object"),
        (
            load_multiple_choice,
            [{**GOOD_MMLU, "choices": "abcd"}],
            1,
            "field 'choices': expected an array, got a string",
        ),
        (
            load_multiple_choice,
            [{**GOOD_MMLU, "choices": ["a", 2]}],
            1,
            "field 'choices': expected an array of non-empty strings",
        ),
        (
            load_multiple_choice,
            [{**GOOD_MMLU, "choices": ["a"], "answer": 0}],
            1,
            "field 'choices': expected 2 to 10 choices, got 1",
        ),
        (
            load_multiple_choice,
            [{**GOOD_MMLU, "choices": list("abcdefghijk")}],
            1,
            "field 'choices': expected 2 to 10 choices, got 11",
        ),
        (
            load_multiple_choice,
            [{**GOOD_ARC, "answerKey": "4"}],
            1,
            "field 'answerKey': expected one of 1, 2, 3, got '4'",
        ),
        (load_multiple_choice, [{**GOOD_ARC, "answerKey": 3}], 1, "field 'answerKey': expected a string, got a number"),
        (
            load_multiple_choice,
            [{k: v for k, v in GOOD_ARC.items() if k != "answerKey"}],
            1,
            "missing field 'answerKey'",
        ),
        (load_multiple_choice, [{**GOOD_ARC, "question": {"choices": []}}], 1, "missing field 'question.stem'"),
        (
            load_multiple_choice,
            [
                {
                    **GOOD_ARC,
                    "question": {"stem": "s", "choices": [{"label": "A", "text": "x"}, {"label": "C", "text": "y"}]},
                }
            ],
            1,
            "field 'question.choices': labels must be A, B, C... or 1, 2, 3... in order, got ['A', 'C']",
        ),
        (
            load_multiple_choice,
            [{**GOOD_ARC, "question": {"stem": "s", "choices": [{"label": "A"}, {"label": "B", "text": "y"}]}}],
            1,
            "field 'question.choices': expected an array of objects with string 'label' and 'text'",
        ),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, load, lines, line, what):
    path = write(tmp_path, lines)
    message = _error(load, path)
    assert message.startswith(f"{path}:{line}: {what}")


def test_error_for_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, [GOOD_GSM8K, GOOD_GSM8K, "{", GOOD_GSM8K])
    assert (
        _error(load_gsm8k, "data.jsonl")
        == "data.jsonl:3: not valid JSON (Expecting property name enclosed in double quotes at column 2)"
    )


def test_whole_file_errors(tmp_path):
    assert _error(load_gsm8k, tmp_path / "missing.jsonl") == f"{tmp_path / 'missing.jsonl'}: no such file"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert _error(load_gsm8k, empty) == f"{empty}: no problems in the file"
    blank = write(tmp_path, ["", "   "], name="blank.jsonl")
    assert _error(load_multiple_choice, blank) == f"{blank}: no problems in the file"
    assert _error(load_gsm8k, tmp_path).startswith(f"{tmp_path}: cannot read (")


def test_dataset_error_pickles():
    error = pickle.loads(pickle.dumps(DatasetError("d.jsonl", 7, "bad")))
    assert str(error) == "d.jsonl:7: bad" and error.line == 7 and isinstance(error, ValueError)


def test_byte_order_mark_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD_GSM8K).encode() + b"\r\n" + json.dumps(GOOD_GSM8K).encode())
    assert [p.answer for p in load_gsm8k(path)] == ["6", "6"]


@given(st.binary(max_size=200) | st.text(alphabet='{}[]":,#0123456789 \nabq', max_size=80))
def test_any_bytes_load_or_raise_dataset_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "data.jsonl"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    for load in (load_gsm8k, load_multiple_choice):
        try:
            load(path)
        except DatasetError as e:
            assert "\n" not in str(e) and str(e).startswith(str(path))


# ---------------------------------------------------------------- tasks


@pytest.mark.parametrize("name,cls", [("gsm8k", GSM8K), ("multiple_choice", MultipleChoice)])
def test_make_task(tmp_path, name, cls):
    task = make_task(name)
    assert isinstance(task, cls) and task.name == name and len(task.problems) == 30
    rng = random.Random(0)
    assert all(task.sample(rng) in task.problems for _ in range(20))
    assert make_task(name, path=None).problems == task.problems
    own = make_task(name, path=write(tmp_path, [GOOD_GSM8K if name == "gsm8k" else GOOD_ARC]))
    assert len(own.problems) == 1


def test_multiple_choice_answer_words(tmp_path):
    assert MultipleChoice().answer_words == ("A", "B", "C", "D")
    five = {"question": "q", "choices": list("vwxyz"), "answer": "E"}
    assert MultipleChoice(write(tmp_path, [GOOD_MMLU, five])).answer_words == ("A", "B", "C", "D", "E")


def test_gsm8k_score():
    task = GSM8K(sample_path("gsm8k_sample.jsonl"))
    p = next(p for p in task.problems if p.answer == "14.5")
    for answer, score in [("14.5", 1.0), ("$14.50.", 1.0), ("14.50", 1.0), ("14", 0.0), ("", 0.0), (None, 0.0)]:
        assert task.score(p, answer) == score, answer


def test_multiple_choice_score():
    task = MultipleChoice()
    p = task.problems[0]  # answer B
    for answer, score in [("B", 1.0), ("(b)", 1.0), ("B.", 1.0), ("A", 0.0), ("Because", 0.0), (None, 0.0)]:
        assert task.score(p, answer) == score, answer


def test_score_end_to_end_with_the_cot_parser(tmp_path):
    """Needs split_completion's English form: case-insensitive marker, colon skipped."""
    money = {"question": "q", "answer": "500 * 2 = <<500*2=1000>>1000\n#### 1,000"}
    task = GSM8K(write(tmp_path, [money]))
    cot, answer = split_completion("Two payments of $500 make $1,000. Answer: $1,000.")
    assert cot == "Two payments of $500 make $1,000." and answer == "$1,000."
    assert task.score(task.problems[0], answer) == 1.0
    mc = MultipleChoice()
    p = mc.problems[0]
    assert mc.score(p, split_completion("Plants take in carbon dioxide. The answer is (B).")[1]) == 1.0
    assert mc.score(p, split_completion("I am not sure.")[1]) == 0.0
