"""Program-output task: generated programs, the answer from a real run, and the sandbox's limits."""

from __future__ import annotations

import json
import os
import random
import socket
import time

import pytest

import legible.tasks._program as program
from legible.tasks import DatasetError, ProgramOutput, load_programs, make_task, run_program, split_completion
from legible.tasks._program import TEMPLATES, Sandbox, generate_program, outputs_match, sandbox

# ---------------------------------------------------------------- generation


def test_generated_programs_are_deterministic_under_a_seed():
    task = ProgramOutput()
    first, second = random.Random(3), random.Random(3)
    for _ in range(3):
        a, b = task.sample(first), task.sample(second)
        assert (a.prompt, a.answer, a.steps, a.metadata) == (b.prompt, b.answer, b.steps, b.metadata)


def test_answer_is_what_the_program_prints():
    task, rng = ProgramOutput(), random.Random(11)
    for _ in range(4):
        problem = task.sample(rng)
        source = problem.metadata["program"]
        assert run_program(source).stdout.strip() == problem.answer  # a second run agrees
        assert len(problem.answer.split()) == 1 and problem.steps >= problem.metadata["lines"] - 1
        assert f"```python\n{source}```" in problem.prompt and "Answer:" in problem.prompt


def test_generator_stays_within_the_line_bounds():
    rng, kinds = random.Random(0), set()
    for _ in range(500):
        kind, source = generate_program(rng)
        lines = source.splitlines()
        kinds.add(kind)
        assert 5 <= len(lines) <= 12, source
        assert lines[-1].startswith("print(")
    assert kinds == set(TEMPLATES)


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_every_kind_makes_problems(kind):
    problem = ProgramOutput(kinds=[kind]).sample(random.Random(kind))
    assert problem.metadata["kind"] == kind and problem.answer


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown program kinds"):
        ProgramOutput(kinds=["nosuch"])
    with pytest.raises(ValueError, match="min_lines"):
        ProgramOutput(min_lines=9, max_lines=4)
    with pytest.raises(RuntimeError, match="no usable program"):  # no template is that short
        ProgramOutput(min_lines=1, max_lines=2, max_attempts=5).sample(random.Random(0))


# ---------------------------------------------------------------- scoring


def test_score():
    task = make_task("program_output")
    problem = task.sample(random.Random(1))
    _, answer = split_completion(f"Step by step... so it prints that.\nAnswer: {problem.answer}")
    assert task.score(problem, answer) == 1.0
    assert task.score(problem, None) == 0.0 and task.score(problem, "") == 0.0
    number = problem.__class__("p", "42")
    assert task.score(number, split_completion("x = 40 + 2. Answer: 42")[1]) == 1.0
    answers = ("42.0", "42.", "`42`", "+42", "4.2e1", "41", "42a")
    assert [task.score(number, a) for a in answers] == [1, 1, 1, 1, 1, 0, 0]


def test_outputs_match():
    assert outputs_match("7.0", "7") and outputs_match("-0", "0") and outputs_match(" HELLO ", "HELLO")
    assert not outputs_match("hello", "HELLO") and not outputs_match("True", "1")
    assert not outputs_match("100000000000000001", "1e17")  # exact, not float
    assert outputs_match("a.", "a.") and outputs_match("a.b", "a.b") and not outputs_match("a", "a.")
    start = time.perf_counter()
    assert not outputs_match("1e999999999", "1") and time.perf_counter() - start < 0.1  # no huge integer built


# ---------------------------------------------------------------- the sandbox


def test_sandbox_reports_what_applies():
    box = sandbox()
    assert "network:" in box.describe() and "user:" in box.describe()
    result = run_program("import os\nprint(os.listdir('.'), sorted(os.environ))\nprint(input())")
    # A fresh directory holding only the program; nothing from our environment (Python itself may
    # set LC_CTYPE); stdin closed, so input() hits end of file.
    assert result.stdout.startswith("['program.py'] ") and "PATH" not in result.stdout
    assert "EOFError" in result.stderr and not result.ok


def test_timeout_kills_the_program():
    start = time.perf_counter()
    result = run_program("while True:\n    pass\n", timeout_s=0.5)
    assert result.timed_out and not result.ok and result.failure() == "timed out"
    assert time.perf_counter() - start < 3.0


def test_memory_bomb_fails_cleanly():
    result = run_program("x = 'a' * 10**10\nprint(len(x))\n", memory_mb=256)
    assert not result.timed_out and result.returncode != 0 and "MemoryError" in result.stderr


def test_big_files_cannot_be_written():
    source = "with open('big', 'wb') as f:\n    for _ in range(100):\n        f.write(b'x' * 10**6)\nprint('wrote')\n"
    result = run_program(source)
    assert result.returncode != 0 and "File too large" in result.stderr and result.stdout == ""


def test_output_is_bounded():
    result = run_program("print('x' * 5_000_000)")
    assert not result.ok and len(result.stdout) <= program.MAX_OUTPUT_BYTES


@pytest.mark.parametrize("where", ["this machine", "prelude only"])
def test_no_network(monkeypatch, where):
    if where == "prelude only":  # what a machine without namespaces gets
        monkeypatch.setattr(program, "sandbox", lambda: Sandbox())
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        for source in (
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')",
            f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint('connected')",
        ):
            result = run_program(source, timeout_s=3.0)
            assert result.returncode != 0 and "connected" not in result.stdout
            assert ("PermissionError" if where == "prelude only" else "Error") in result.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
        with socket.create_connection(("127.0.0.1", port)):  # and the listener does work
            time.sleep(0.05)
            listener.accept()[0].close()


def test_failures_are_reported_not_raised():
    result = run_program("def f():\n    raise ValueError('boom')\nf()\n")
    assert result.returncode == 1 and "program.py" in result.stderr and "ValueError: boom" in result.failure()
    assert run_program("import sys\nsys.exit(3)").returncode == 3
    assert run_program("def (:").failure().endswith("SyntaxError: invalid syntax")


def test_count_lines():
    result = run_program("t = 0\nfor i in range(3):\n    t += i\nprint(t)\n", count_lines=True)
    # The for line runs once per pass and once more to find the end.
    assert result.stdout == "3\n" and result.lines_executed == 1 + 4 + 3 + 1
    assert run_program("print(1)").lines_executed is None


# ---------------------------------------------------------------- datasets


def write(tmp_path, rows: list) -> str:
    path = tmp_path / "programs.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_load_programs(tmp_path):
    path = write(tmp_path, [{"program": "print(6 * 7)", "output": "42"}, "", {"program": "x = 'ab'\nprint(x * 2)"}])
    problems = load_programs(path)
    assert [p.answer for p in problems] == ["42", "abab"] and problems[1].steps == 2
    assert problems[1].metadata["line"] == 3 and problems[1].metadata["program"] == "x = 'ab'\nprint(x * 2)"
    task = make_task("program_output", path=path)
    assert task.sample(random.Random(0)) in problems and task.score(problems[0], "42.0") == 1.0


def test_dataset_programs_are_never_run_in_process(tmp_path):
    (problem,) = load_programs(write(tmp_path, [{"program": "import os\nprint(os.getpid())"}]))
    assert problem.answer != str(os.getpid())


@pytest.mark.parametrize(
    "row, message",
    [
        ({"output": "1"}, "missing field 'program'"),
        ({"program": 3}, "field 'program': expected a string, got a number"),
        ({"program": "print(1)", "output": [1]}, "field 'output': expected a string, got an array"),
        ({"program": "print(1)", "output": "2"}, "field 'output': the program prints '1', not '2'"),
        ({"program": "raise KeyError('k')"}, "the program exited with status 1: KeyError: 'k'"),
        ({"program": "while True:\n    pass"}, "the program timed out"),
        ({"program": "x = 1"}, "the program printed nothing"),
        ({"program": "print(1, 2)"}, "the program printed more than one word: '1 2'"),
    ],
)
def test_dataset_errors_name_file_and_line(tmp_path, row, message):
    path = write(tmp_path, [{"program": "print(1)"}, row])
    with pytest.raises(DatasetError) as caught:
        load_programs(path, timeout_s=0.5)
    assert str(caught.value) == f"{path}:2: {message}"
