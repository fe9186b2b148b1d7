"""Bad input x every command: a missing file, an empty one, non-UTF-8 bytes, malformed YAML or JSONL,
unknown or invalid fields (all named at once), wrong types, a directory where a file belongs (or a file
where a directory belongs), an oversized input. Each gives one line naming the file and the field or
line, exit 2, no traceback, and leaves what was written before as it was.

Everything runs in-process through typer's CliRunner and fails before any training starts, so the whole
matrix takes seconds. The README's "What was tried" table lists it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from legible.cli import app

runner = CliRunner()

TINY = {
    "seed": 1,
    "task": {"min_steps": 4, "max_steps": 6},
    "model": {"n_layer": 1, "n_head": 2, "n_embd": 16},
    "pretrain": {"steps": 2, "batch_size": 8, "checkpoint_every": 1},
    "rl": {"steps": 2, "prompts": 2, "group_size": 2, "eval_every": 1, "eval_problems": 8, "checkpoint_every": 1},
    "condition": "monitor",
    "eval": {"problems": 30},
}


def invoke(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *needles: str) -> str:
    """Exit 2, no exception but the exit, and exactly one stderr line, ``legible: error: ...``, holding
    every needle."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("legible: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------ train: the config file

BACKENDS = {"organism": "", "trl": "backend: trl\nmodel: some/model\n", "verl": "backend: verl\nmodel: some/model\n"}
TEXT_TASK = "task: {name: gsm8k}\ncondition: outcome\n"


def config_case(case: str, backend: str, tmp_path: Path) -> tuple[Path, list[str]]:
    """The config file of one bad-input class for one backend, and what its error must name."""
    head = BACKENDS[backend] + (TEXT_TASK if backend != "organism" else "")
    path = tmp_path / "cfg.yaml"
    if case == "missing":
        return tmp_path / "nope.yaml", ["nope.yaml", "no such config file"]
    if case == "directory":
        (tmp_path / "configs").mkdir()
        return tmp_path / "configs", ["configs", "a directory"]
    content, needles = {
        "empty": (b"", ["empty config"]),
        "comments only": (b"# seed: 1\n", ["empty config"]),
        "not UTF-8": (head.encode() + b"seed: 1\n# caf\xe9\n", [f"line {head.count(chr(10)) + 2}: not UTF-8"]),
        "malformed YAML": (head.encode() + b"rl: {steps: 3\n", ["not valid YAML"]),
        "not a mapping": (b"- seed: 1\n", ["a YAML mapping"]),
        "unknown and invalid fields": (
            head.encode() + b"rl: {stepz: 3, lr: -1}\neval: {problems: 3}\nbogus: 1\n",
            ["rl.stepz: unknown field (did you mean steps?)", "rl.lr", "eval.problems", "bogus: unknown field"],
        ),
        "wrong types": (head.encode() + b"seed: [1]\nrl: {steps: many}\n", ["seed:", "rl.steps:", "'many'"]),
        "oversized": (head.encode() + b"seed: 1\n" + b"#" * (1 << 20) + b"\n", ["larger than 1024 KiB"]),
        "nested too deeply": (b"seed: " + b"[" * 20000 + b"]" * 20000 + b"\n", ["nested too deeply"]),
    }[case]
    path.write_bytes(content)
    return path, ["cfg.yaml", *needles]


CONFIG_CASES = [
    "missing",
    "empty",
    "comments only",
    "not UTF-8",
    "malformed YAML",
    "not a mapping",
    "unknown and invalid fields",
    "wrong types",
    "directory",
    "oversized",
    "nested too deeply",
]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("case", CONFIG_CASES)
def test_train_bad_config(tmp_path, case, backend):
    path, needles = config_case(case, backend, tmp_path)
    out = tmp_path / "run"
    one_line_error(invoke("train", path, "--out", out), *needles)
    assert not out.exists()  # nothing is written before the config is known to be good


def test_every_bad_field_is_named_at_once(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("rl: {steps: x}\ntask: {name: chess}\npretrain: {lr: 0}\n")
    line = one_line_error(invoke("train", path))
    assert line.startswith("legible: error: ") and "(and" not in line
    named = [part.split(":")[0].strip() for part in line.removeprefix(f"legible: error: {path}: ").split("; ")]
    assert named == ["task.name", "pretrain.lr", "rl.steps"], line


# -------------------------------------------------------------- train: trl and verl dataset files

JSONL_CASES = {
    "missing": (None, "no such file"),
    "empty": (b"", "no problems in the file"),
    "not UTF-8": (b'{"question": "q?", "answer": "#### 3"}\n\xff\xfe\n', ":2: not UTF-8"),
    "malformed JSONL": (b'{"question": "q?", "answer": "#### 3"}\n{"question": \n', ":2: not valid JSON"),
    "wrong types": (b'{"question": 5, "answer": "#### 3"}\n', ":1: field 'question'"),
    "not an object": (b'["q?", 3]\n', ":1: expected a JSON object"),
    "directory": ("dir", "Is a directory"),
}


def jsonl_case(case: str, tmp_path: Path) -> Path:
    content, _ = JSONL_CASES[case]
    path = tmp_path / "data.jsonl"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("backend", ["trl", "verl"])
@pytest.mark.parametrize("case", sorted(JSONL_CASES))
def test_train_bad_dataset_file(tmp_path, case, backend):
    data = jsonl_case(case, tmp_path)
    config = tmp_path / "cfg.yaml"
    config.write_text(f"{BACKENDS[backend]}task: {{name: gsm8k, path: {data}}}\ncondition: outcome\n")
    out = tmp_path / "run"
    one_line_error(invoke("train", config, "--out", out), "cfg.yaml: task.path: ", "data.jsonl", JSONL_CASES[case][1])
    assert not out.exists()


# ------------------------------------------------------- train: a run directory met on --resume


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """A finished two-step run (no report): its config file and its directory."""
    from legible.config import RunConfig
    from legible.train._run import run_training

    root = tmp_path_factory.mktemp("tiny")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    run_training(RunConfig.model_validate(TINY), root / "run", show_progress=False, report=False)
    return config, root / "run"


def damaged_copy(tiny_run, tmp_path: Path, name: str, damage) -> tuple[Path, Path, dict]:
    config, run = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    path = copy / name
    path.write_bytes(damage(path.read_bytes()))
    return config, copy, snapshot(copy)


def middle(data: bytes, bad: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(lines[:2]) + bad + b"".join(lines[3:])


@pytest.mark.parametrize(
    ("name", "damage", "needles"),
    [
        ("metrics.jsonl", lambda d: middle(d, b"{broken\n"), ["metrics.jsonl:3: ", "not valid JSON"]),
        ("metrics.jsonl", lambda d: middle(d, b'{"step": "\xff"}\n'), ["metrics.jsonl:3: ", "not UTF-8"]),
        ("metrics.jsonl", lambda d: middle(d, b'{"phase": "rl", "kind": "train"}\n'), ["metrics.jsonl:3: ", "step"]),
        ("config.yaml", lambda d: d + b"# \xff\n", ["run/config.yaml", "not UTF-8"]),
        ("config.yaml", lambda d: b"", ["run/config.yaml", "empty config"]),
        ("config.yaml", lambda d: d.replace(b"seed: 1", b"seed: 2"), ["config.yaml", "--resume needs the same"]),
    ],
    ids=[
        "corrupt metrics line",
        "non-UTF-8 metrics line",
        "metrics row without step",
        "non-UTF-8 saved config",
        "empty saved config",
        "other config",
    ],  # fmt: skip
)
def test_train_resume_into_a_damaged_run_keeps_every_file(tiny_run, tmp_path, name, damage, needles):
    config, run, before = damaged_copy(tiny_run, tmp_path, name, damage)
    one_line_error(invoke("train", config, "--out", run, "--resume"), *needles)
    after = snapshot(run)
    assert {k: v for k, v in after.items() if k in before} == before  # stage 1 may be redone; nothing is lost


def test_train_into_an_existing_run_or_a_file(tiny_run, tmp_path):
    config, run = tiny_run
    before = snapshot(run)
    one_line_error(invoke("train", config, "--out", run), "a run already exists here", "--resume")
    assert snapshot(run) == before
    (tmp_path / "afile").write_text("keep me")
    one_line_error(invoke("train", config, "--out", tmp_path / "afile"), "--out", "afile", "not a directory")
    assert (tmp_path / "afile").read_text() == "keep me"


# --------------------------------------------------------------------------------------- demo


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--seeds", "0,one"], ["--seeds", "'0,one'"]),
        (["--seeds", ","], ["--seeds"]),
        (["--seeds", "1,2,1"], ["--seeds: 1 given more than once"]),
        (["--workers", "100000"], ["--workers: 100000"]),
        (["--conditions", "monitor,bogus"], ["--conditions: unknown bogus", "monitor+paraphrase"]),
        (["--conditions", "monitor,monitor"], ["--conditions", "names a condition twice"]),
    ],
    ids=["wrong type", "empty list", "repeated", "oversized", "unknown condition", "repeated condition"],
)
def test_demo_bad_options(tmp_path, args, needles):
    out = tmp_path / "demo"
    one_line_error(invoke("demo", "--quick", "--out", out, *args), *needles)
    assert not out.exists()


def test_demo_out_is_a_file_or_a_started_demo(tmp_path):
    from legible.demo import quick_config

    (tmp_path / "afile").write_text("keep me")
    one_line_error(invoke("demo", "--quick", "--out", tmp_path / "afile"), "afile", "not a directory")
    out = tmp_path / "demo"
    out.mkdir()
    saved = out / "demo_config.json"
    saved.write_text(quick_config().model_dump_json())
    (out / "seed0").mkdir()
    (out / "seed0" / "metrics.jsonl").write_text('{"phase": "pretrain", "step": 1}\n')
    before = snapshot(out)
    one_line_error(invoke("demo", "--quick", "--out", out), "a demo started here already", "--resume")
    one_line_error(invoke("demo", "--out", out, "--resume"), "demo_config.json", "other settings")
    one_line_error(invoke("demo", "--quick", "--seeds", "5", "--out", out, "--resume"), "other settings")
    assert snapshot(out) == before


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"", ["demo_config.json"]),
        (b'{"seeds": [0], \xff}', ["demo_config.json"]),
        (b'{"seeds": [0], "bogus": 1, "workers": "two"}', ["demo_config.json", "bogus: unknown field", "workers"]),
        (b"[1, 2]", ["demo_config.json"]),
    ],
    ids=["empty", "not UTF-8", "unknown and invalid fields", "wrong type"],
)
def test_demo_resume_with_a_damaged_demo_config(tmp_path, content, needles):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "demo_config.json").write_bytes(content)
    one_line_error(invoke("demo", "--quick", "--out", out, "--resume"), *needles)
    assert (out / "demo_config.json").read_bytes() == content


# -------------------------------------------------------------------------------------- audit

# Never contacted: every case fails on its input before a model is made.
NOWHERE = "openai-api/nowhere/model"


@pytest.mark.parametrize("case", sorted(JSONL_CASES))
def test_audit_bad_dataset_file(tmp_path, case):
    data = jsonl_case(case, tmp_path)
    out = tmp_path / "audit"
    expected = "a directory, not a JSONL file" if case == "directory" else JSONL_CASES[case][1]
    args = ["--dataset", "gsm8k", "--path", data, "--limit", 2, "--out", out]
    one_line_error(invoke("audit", "--model", NOWHERE, *args), "data.jsonl", expected)
    assert not (out / "logs").exists() or not any((out / "logs").iterdir())


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"", ["empty config"]),
        (b"seed: 1\n\xff\n", ["line 2: not UTF-8"]),
        (b"task: {name: coin_flip\n", ["not valid YAML"]),
        (b"task: {nme: coin_flip}\n", ["task.nme: unknown field (did you mean name?)"]),
    ],
    ids=["empty", "not UTF-8", "malformed YAML", "unknown field"],
)
def test_audit_an_organism_whose_run_config_is_damaged(tmp_path, content, needles):
    run = tmp_path / "organism"
    run.mkdir()
    (run / "config.yaml").write_bytes(content)
    one_line_error(invoke("audit", "--model", f"legible/{run}", "--out", tmp_path / "audit"), "config.yaml", *needles)


def test_audit_bad_options_and_outputs(tmp_path):
    (tmp_path / "afile").write_text("keep me")
    one_line_error(invoke("audit", "--model", NOWHERE, "--out", tmp_path / "afile"), "afile", "not a directory")
    one_line_error(invoke("audit", "--model", NOWHERE, "--tasks", "nope,early", "--out", tmp_path / "a"), "nope")
    result = invoke("audit", "--model", NOWHERE, "--limit", "many")  # typer's own usage error
    assert result.exit_code == 2 and "--limit" in result.output and "Traceback" not in result.output
    out = tmp_path / "done"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "a.eval").write_bytes(b"a finished audit")
    before = snapshot(out)
    one_line_error(invoke("audit", "--model", NOWHERE, "--out", out), "holds an audit already", "--resume")
    assert snapshot(out) == before


def test_audit_validate_bad_demo_dir(tmp_path):
    one_line_error(invoke("audit-validate", tmp_path / "nodemo"), "run `legible demo` first")
    (tmp_path / "afile").write_text("keep me")
    one_line_error(invoke("audit-validate", tmp_path / "afile"), "afile", "not a `legible demo` output directory")


# -------------------------------------------------------------------------------------- stego


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        (lambda d: d / "nope", ["nope.safetensors"]),
        (lambda d: (d / "pdir").mkdir() or d / "pdir", ["pdir"]),
        (lambda d: _policy_files(d, b"", b""), ["not a stage-1 policy"]),
        (lambda d: _policy_files(d, b"{}", b""), ["not a stage-1 policy", "vocab"]),
        (lambda d: _policy_files(d, b"\xff\xfe", b"x"), ["not a stage-1 policy", "utf-8"]),
        (lambda d: _policy_files(d, json.dumps({"vocab": [], "config": {}}).encode(), b"x"), ["not a stage-1 policy"]),
    ],
    ids=["missing", "directory", "empty", "missing fields", "not UTF-8", "wrong vocabulary"],
)
def test_stego_bad_organism_model(tmp_path, make, needles):
    path = make(tmp_path)
    out = tmp_path / "stego"
    one_line_error(invoke("stego", "--organism-model", path, "--out", out), "--organism-model", *needles)
    assert not out.exists()


def _policy_files(d: Path, meta: bytes, weights: bytes) -> Path:
    (d / "policy.json").write_bytes(meta)
    (d / "policy.safetensors").write_bytes(weights)
    return d / "policy"


def test_stego_bad_options(tmp_path):
    one_line_error(invoke("stego", "--paraphrasers", "none,bogus", "--out", tmp_path / "s"), "bogus")
    one_line_error(invoke("stego", "--paraphrasers", " , ", "--out", tmp_path / "s"), "--paraphrasers: none given")
    (tmp_path / "afile").write_text("keep me")
    one_line_error(invoke("stego", "--out", tmp_path / "afile"), "afile", "not a directory")
    result = invoke("stego", "--covers", "0", "--out", tmp_path / "s")
    assert result.exit_code == 2 and "--covers" in result.output
    assert not (tmp_path / "s").exists()
