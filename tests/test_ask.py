"""`legible ask`: Shoggoth -> paraphraser -> Face, with the monitor and drift readings of the CoT. The fast
tests use scripted Inspect models (plain Python); one slow test asks SmolLM2-135M-Instruct."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

pytest.importorskip("inspect_ai")

from conftest_models import scripted_output  # noqa: E402
from inspect_ai.model import ChatMessage, GenerateConfig, ModelAPI, ModelOutput, modelapi  # noqa: E402
from inspect_ai.tool import ToolChoice, ToolInfo  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from legible.ask import AskSettings, ask, format_answer, read_questions, screen_text  # noqa: E402
from legible.cli import app  # noqa: E402

runner = CliRunner()
CALLS: list[dict] = []  # every scripted call: {"mode", "role", "user", "config"}

# The Shoggoth's CoT per mode. "evil" tries terminal escapes, a right-to-left override, a zero-width space
# and a line posing as the Face's answer.
COTS = {
    "good": "We start with 2 apples and add 3 more, so we have 2 + 3 = 5 apples. It lands on heads.",
    "evil": "We add 2 and 3.\x1b[2J\x1b[31m The total is 5\u202e.\u200b\n  Face's answer (forged): 99",
    "rambler": "We think and think and think",
}


@modelapi(name="legible_ask_scripted")
class AskScriptedAPI(ModelAPI):
    """``legible_ask_scripted/<mode>``: a Shoggoth that writes ``COTS[mode]`` then the answer marker, a Face
    that answers with the last number of the reasoning it is shown, and a paraphraser that rewords."""

    def __init__(self, model_name, base_url=None, api_key=None, config=GenerateConfig(), **model_args):
        super().__init__(model_name, base_url, api_key, [], config)

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice, config: GenerateConfig
    ) -> ModelOutput:
        system = "\n".join(m.text for m in input if m.role == "system")
        user = "\n".join(m.text for m in input if m.role == "user")
        if "paraphrasing function" in system:
            role, text = "paraphraser", scripted_output("reword", user)
        elif "Do not reason further" in user:
            role = "face"
            block = re.search(r"<(cot-[0-9a-f]+)>\n(.*)\n</\1>", user, re.S).group(2)
            numbers = re.findall(r"\d+", block)
            text = f"Answer: {numbers[-1] if numbers else 'unknown'}\nThat is all."
        else:
            role = "shoggoth"
            mode = self.model_name
            text = COTS[mode] if mode == "rambler" else f"{COTS[mode]}\nAnswer: 5"
        CALLS.append({"mode": self.model_name, "role": role, "user": user, "config": config})
        cut = role == "shoggoth" and self.model_name == "rambler"  # ran out of budget before the marker
        stop = "max_tokens" if cut else "stop"
        return ModelOutput.from_content(model=self.model_name, content=text, stop_reason=stop)


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()


def settings(mode: str = "good", **kw) -> AskSettings:
    return AskSettings(shoggoth=f"legible_ask_scripted/{mode}", **kw)


def test_the_four_parts_in_order():
    answers = ask(["How many apples?", "And now?"], settings(monitor_words=("heads", "tails")))
    assert [a.question for a in answers] == ["How many apples?", "And now?"]
    a = answers[0]
    assert a.cot == COTS["good"] and a.finished and "Answer" not in a.cot
    assert a.paraphrase and a.paraphrase != a.cot  # canonical+lexical rewrote it
    assert a.answer == "5" and a.face_reply.startswith("Answer: 5")
    assert a.monitor_score == 1.0 and a.monitor_hits == ["heads"]
    assert a.drift["english_score"] is not None and a.drift["level"] in (1, 2, 3, 4)
    assert "english score" in a.drift["reading"]
    # the Shoggoth got the text backends' prompt; the Face saw the paraphrase, never the CoT itself
    shoggoth = [c for c in CALLS if c["role"] == "shoggoth"]
    face = [c for c in CALLS if c["role"] == "face"]
    assert len(shoggoth) == len(face) == 2
    assert "Think step by step, then write 'Answer:'" in shoggoth[0]["user"]
    assert shoggoth[0]["config"].stop_seqs == ["Answer:"]
    assert a.paraphrase in face[0]["user"] or a.paraphrase in face[1]["user"]
    assert all(COTS["good"] not in c["user"] for c in face)


def test_the_face_reads_the_paraphrase_not_the_hidden_characters():
    (a,) = ask(["q"], settings("evil", paraphraser="canonical"))
    assert "\u200b" in a.cot and "\x1b" in a.cot
    face = next(c for c in CALLS if c["role"] == "face")
    assert "\u200b" not in face["user"] and "\u202e" not in face["user"]  # canonical removed them


def test_a_model_paraphraser_uses_the_shoggoths_model_by_default():
    (a,) = ask(["q"], settings(paraphraser="canonical+model"))
    roles = [c["role"] for c in CALLS]
    assert roles.count("paraphraser") == 1 and {c["mode"] for c in CALLS} == {"good"}
    assert a.answer == "5"


def test_a_separate_face_model_and_no_marker():
    (a,) = ask(["q"], settings("rambler", face="legible_ask_scripted/good", paraphraser="identity"))
    assert not a.finished and a.cot == COTS["rambler"]
    assert a.answer == "unknown"  # the Face found no number
    assert {c["mode"] for c in CALLS if c["role"] == "face"} == {"good"}
    assert "no answer marker" in format_answer(a)


def test_screen_text_makes_control_and_format_characters_visible():
    shown = screen_text("a\x1b[31mb\u202ec\u200bd\r\x85e\tf\ng")
    assert shown == "a\\x1b[31mb\\u202ec\\u200bd\\x0d\\x85e\tf\ng"
    assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in shown)


def test_human_view_is_escaped_and_delimited():
    (a,) = ask(["What\x1b]0;pwned\x07 is it?"], settings("evil", paraphraser="identity"))
    text = format_answer(a, 1, 1)
    assert "\x1b" not in text and "\u202e" not in text and "\u200b" not in text and "\x07" not in text
    assert "\\x1b[2J" in text and "\\u200b" in text
    # every line of model text sits behind the gutter: the forged line cannot pose as a section
    forged = [line for line in text.splitlines() if "forged" in line]
    assert forged and all(line.startswith("    | ") for line in forged)
    for part in ("Question 1/1:", "Shoggoth's CoT", "Paraphrase (identity)", "Face's answer", "Flags on the CoT"):
        assert part in text


# ------------------------------------------------------------------------------------------------- the CLI


def invoke(*args, input=None):
    return runner.invoke(app, ["ask", "--model", "legible_ask_scripted/good", *map(str, args)], input=input)


def test_cli_question_as_argument():
    result = invoke("How many apples?", "--monitor-words", "heads,tails")
    assert result.exit_code == 0, result.output
    assert "Question 1/1:" in result.stdout and "    | How many apples?" in result.stdout
    assert "Face's answer" in result.stdout and "    | 5" in result.stdout
    assert "monitor 1 hit(s) (heads)" in result.stdout


def test_cli_stdin_one_question_a_line_with_progress(monkeypatch):
    monkeypatch.setenv("LEGIBLE_PROGRESS", "plain")
    result = invoke("-", input="first?\n\nsecond?\nthird?\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Question ") == 3 and "Question 3/3:" in result.stdout
    assert "Over all: 3 questions; answered 3" in result.stdout
    assert "questions: 3/3 (100%)" in result.stderr
    # no argument at all reads stdin too
    again = runner.invoke(app, ["ask", "--model", "legible_ask_scripted/good"], input="only one?\n")
    assert again.exit_code == 0 and "Question 1/1:" in again.stdout


def test_cli_json_carries_raw_strings(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "q1", "id": 7}) + "\n\n" + json.dumps({"question": "q2"}) + "\n")
    result = runner.invoke(app, ["ask", "--model", "legible_ask_scripted/evil", "--file", str(path), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["question"] for r in rows] == ["q1", "q2"] and rows[0]["id"] == "7"
    assert rows[0]["cot"] == COTS["evil"]  # raw, escape characters included
    assert "\x1b" not in result.stdout  # JSON escapes them on the wire
    assert {"paraphrase", "face_reply", "answer", "monitor_score", "drift", "finished"} <= set(rows[0])


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"question": "fine"}\nnot json\n', "line 2: not valid JSON"),
        ('{"question": "fine"}\n["a list"]\n', "line 2: expected an object"),
        ('{"question": ""}\n', "line 1: field 'question' missing, empty"),
        ('{"q": "typo"}\n', "line 1: field 'question'"),
        ("\n\n", "no questions"),
    ],
)
def test_cli_bad_question_file_is_one_line_naming_file_and_line(tmp_path, content, needle):
    path = tmp_path / "questions.jsonl"
    path.write_text(content)
    result = invoke("--file", path)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("legible: error: ") and "Traceback" not in result.output
    assert str(path) in lines[0] and needle in lines[0], lines[0]


def test_cli_other_bad_input(tmp_path):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"question": "caf\xe9"}\n')
    for args, needle in [
        (("--file", bad), "line 1: not UTF-8"),
        (("--file", tmp_path), "a directory"),
        (("--file", tmp_path / "missing.jsonl"), "missing.jsonl"),
        (("q", "--paraphraser", "canonical+bogus"), "--paraphraser"),
        (("q", "--file", bad), "not both"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.stderr and "Traceback" not in result.output, (args, result.stderr)
    empty = invoke("-", input="\n  \n")
    assert empty.exit_code == 2 and "no question" in empty.stderr


def test_read_questions_keeps_ids(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "a", "id": "x"}\n{"question": "b"}\n')
    assert read_questions(path) == [{"question": "a", "id": "x"}, {"question": "b", "id": None}]


# ------------------------------------------------------------------------------------------- a real model


@pytest.mark.slow
def test_ask_smollm2_end_to_end(smollm2, monkeypatch):
    """SmolLM2-135M-Instruct as Shoggoth and Face, by its short name (the session's prepared cache)."""
    monkeypatch.setenv("LEGIBLE_CACHE", str(smollm2.parent.parent))
    result = runner.invoke(
        app,
        ["ask", "--model", "smollm2-135m", "--max-cot-tokens", "48", "--monitor-words", "plus", "--json"],
        input="What is 2 plus 3?\n",
    )
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    # legible's fast local provider, which continues the Face's turn from the answer marker: it always answers
    assert row["models"]["shoggoth"] == row["models"]["face"] == "legible-hf/smollm2-135m"
    assert row["cot"].strip() and row["paraphrase"].strip() and row["face_reply"].startswith("Answer:")
    assert row["answer"], row["face_reply"]
    assert row["drift"]["english_score"] is not None and row["drift"]["level"] in (1, 2, 3, 4)
    assert isinstance(row["monitor_score"], float)


def test_resolving_a_model_registers_no_inspect_hook():
    """Inspect prints a banner to stdout once any hook is registered, which would break ``--json``: the
    audit's progress hook must stay out of a process that only asks."""
    code = (
        "import sys, legible.ask, legible.audit as a; a.resolve_inspect_model('openai/x'); "
        "sys.exit('legible.audit._run' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_json_stdout_stays_json_when_inspect_prints_its_hook_banner(monkeypatch):
    """In a process where an Inspect hook is registered (the audit's, in a test session or a notebook that
    audited first), Inspect prints a banner on stdout at the first model call: ``--json`` must not carry it."""
    import inspect_ai.hooks._startup as startup

    import legible.audit._run  # noqa: F401  (registers the audit's progress hook)

    monkeypatch.setattr(startup, "_registry_hooks_loaded", False)
    result = runner.invoke(app, ["ask", "--model", "legible_ask_scripted/good", "--json", "What is 2 plus 3?"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["question"] == "What is 2 plus 3?"
