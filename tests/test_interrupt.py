"""Interruption: a run killed with SIGKILL at a random point (a torn metrics line included), then
``--resume``, ends with the same result as an uninterrupted one, for ``train``, ``demo``, ``audit`` and
``stego``; and progress reaches a log file as plain lines while a command runs.

The kill points are drawn from a seeded generator (``LEGIBLE_KILL_SEED`` draws others): an event of the
run (a checkpoint, the n-th metrics row, the first progress line) plus a random delay, so that a kill
lands anywhere, also inside a write. The whole process group is killed, as a job scheduler or an OOM
kill of a batch job would, so that no demo worker survives its parent.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest_models import TINY_RUN
from safetensors.torch import load_file

from legible.config import ConfigError
from legible.progress import Progress, progress_mode
from legible.train._common import MetricsLog, read_metrics

SEED = int(os.environ.get("LEGIBLE_KILL_SEED", "11"))
TORN = '{"phase": "rl", "step": 9'  # a row cut off by a kill in the middle of its write


# ------------------------------------------------------------------------------ metrics files


def test_a_torn_last_line_is_dropped_on_resume_and_a_whole_one_kept(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"phase": "rl", "step": s, "x": s / 3} for s in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + TORN)
    assert read_metrics(path) == rows
    MetricsLog(path, resume_step=2)
    assert read_metrics(path) == rows[:3] and path.read_text().endswith("\n")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows).rstrip("\n"))  # cut just before the newline
    MetricsLog(path, resume_step=5)
    assert read_metrics(path) == rows and path.read_text().endswith("\n")


def test_a_damaged_line_in_the_middle_is_one_error_and_the_file_is_kept(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = json.dumps({"phase": "rl", "step": 1}) + "\n"
    for bad, what in (("{broken\n", "not valid JSON"), ("[1, 2]\n", "not an object"), ('{"phase": "rl"}\n', "step")):
        path.write_text(good + bad + good)
        before = path.read_bytes()
        with pytest.raises(ConfigError) as info:
            MetricsLog(path, resume_step=0)
        assert str(info.value).startswith(f"{path}:2: ") and what in str(info.value), str(info.value)
        assert "\n" not in str(info.value) and path.read_bytes() == before
    path.write_bytes(good.encode() + b"\xff\xfe\n" + good.encode())
    with pytest.raises(ConfigError, match=r"metrics.jsonl:2: .*not UTF-8"):
        read_metrics(path)


def test_appending_after_a_torn_line_starts_a_fresh_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"phase": "rl", "step": 1}) + "\n" + TORN)
    MetricsLog(path).write({"phase": "final", "step": 1})
    assert [r["phase"] for r in read_metrics(path)] == ["rl", "final"]
    path.write_text(TORN)
    MetricsLog(path).write({"phase": "final", "step": 1})
    assert read_metrics(path) == [{"phase": "final", "step": 1}]


# ----------------------------------------------------------------------------------- progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_progress_is_throttled_and_ends_with_each_tasks_last_line(monkeypatch):
    monkeypatch.delenv("LEGIBLE_PROGRESS", raising=False)
    log = io.StringIO()
    with Progress(stream=log, seconds=3600) as bars:
        assert bars.mode == "plain"
        a = bars.add_task("RL: monitor", total=4, info="")
        b = bars.add_task("stage 1", total=10, info="")
        for step in range(1, 5):
            bars.update(a, completed=step, info=f"acc {step / 4:.2f}")
        bars.update(b, advance=3)
    lines = log.getvalue().splitlines()
    # the first update, the last of the finished task, and where the unfinished one stood at the end
    assert len(lines) == 3, lines
    assert re.fullmatch(r"\[0:00:0\d\] RL: monitor: 1/4 \(25%\) acc 0.25", lines[0])
    assert "RL: monitor: 4/4 (100%)" in lines[1] and "/s" in lines[1] and lines[1].endswith("acc 1.00")
    assert "stage 1: 3/10 (30%)" in lines[2]


def test_plain_progress_every_change_when_not_throttled_and_nothing_twice():
    log = io.StringIO()
    bars = Progress(stream=log, seconds=0)
    if bars.mode != "plain":
        pytest.skip("LEGIBLE_PROGRESS is set")
    task = bars.add_task("scheme x paraphraser", total=3)
    for _ in range(3):
        bars.update(task, advance=1, info="zero_width / none")
    bars.update(task, completed=3)
    with bars:
        pass
    assert [line.split("] ", 1)[1].split(" (")[0] for line in log.getvalue().splitlines()] == [
        "scheme x paraphraser: 1/3",
        "scheme x paraphraser: 2/3",
        "scheme x paraphraser: 3/3",
    ]


def test_progress_modes(monkeypatch):
    monkeypatch.delenv("LEGIBLE_PROGRESS", raising=False)
    assert progress_mode(True, FakeTerminal()) == "rich"
    assert progress_mode(True, io.StringIO()) == "plain"
    assert progress_mode(False, FakeTerminal()) == "none"
    monkeypatch.setenv("LEGIBLE_PROGRESS", "plain")
    assert progress_mode(True, FakeTerminal()) == "plain"
    monkeypatch.setenv("LEGIBLE_PROGRESS", "none")
    assert progress_mode(True, io.StringIO()) == "none"
    monkeypatch.delenv("LEGIBLE_PROGRESS")
    terminal = FakeTerminal()
    with Progress(stream=terminal) as bars:
        bars.update(bars.add_task("RL: outcome", total=2, info=""), completed=2, info="acc 1.00")
    assert "RL: outcome" in terminal.getvalue()
    quiet = io.StringIO()
    with Progress(False, stream=quiet) as bars:
        bars.update(bars.add_task("x", total=1), completed=1)
    assert quiet.getvalue() == ""
    closed = io.StringIO()
    closed.close()
    with Progress(stream=closed, seconds=0) as bars:  # a closed log does not stop the run
        bars.update(bars.add_task("x", total=2), completed=1)


# ------------------------------------------------------------------------- kill -9, then resume


def legible_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "legible.cli", *args]


def run_logged(cmd: list[str], cwd: Path, log: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run with stdout and stderr going to a log file (not a terminal), as a batch job would."""
    with log.open("w") as f:
        return subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout, env=_env())


def _env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", LEGIBLE_PROGRESS_SECONDS="1")
    env.pop("LEGIBLE_PROGRESS", None)
    return env


def kill_when(cmd: list[str], cwd: Path, log: Path, reached, delay: float, timeout: float = 240) -> str:
    """Start ``cmd`` logging to ``log``; once ``reached()`` holds, wait ``delay`` seconds and SIGKILL its
    whole process group. Returns what the log held at the kill."""
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
    try:
        deadline = time.time() + timeout
        while not reached():
            assert proc.poll() is None, f"ended (exit {proc.returncode}) before the kill point:\n{log.read_text()}"
            assert time.time() < deadline, "the kill point was never reached"
            time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, "the run finished before the kill: nothing was interrupted"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return log.read_text()


def tear(*candidates: Path) -> None:
    """Leave a cut-off row at the end of the newest metrics file, as a kill inside a write does."""
    present = [p for p in candidates if p.exists()]
    if present:
        with max(present, key=lambda p: p.stat().st_mtime).open("a") as f:
            f.write(TORN)


def rows_of(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        for key in ("seconds", "train_seconds"):
            row.pop(key, None)
    return rows


def run_result(run: Path) -> dict:
    """What a run produced, minus wall-clock timings."""
    result = {"eval": json.loads((run / "eval.json").read_text()), "metrics": rows_of(run / "metrics.jsonl")}
    if (run / "stage1" / "metrics.jsonl").exists():
        result["stage1"] = rows_of(run / "stage1" / "metrics.jsonl")
    return result


def lines_in(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def checkpoint_step(directory: Path, stage: str) -> int:
    pattern = re.compile(rf"{stage}_step(\d+)")
    found = (pattern.fullmatch(p.name) for p in directory.glob(f"{stage}_step*"))
    return max((int(m.group(1)) for m in found if m), default=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, str]:
    """An uninterrupted tiny run: (its config, its directory, its log). The audit test audits it."""
    root = tmp_path_factory.mktemp("train")
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump(TINY_RUN))
    result = run_logged(legible_cmd("train", str(config), "--out", str(root / "whole")), root, root / "whole.log")
    log = (root / "whole.log").read_text()
    assert result.returncode == 0, log
    return config, root / "whole", log


@pytest.mark.slow
def test_train_killed_twice_at_random_points_resumes_to_the_uninterrupted_result(trained, tmp_path):
    config, whole, whole_log = trained
    assert re.search(r"RL: monitor\+face: 24/24 \(100%\)", whole_log), whole_log  # progress lines in the log
    rows = lines_in(whole / "metrics.jsonl")
    rng = random.Random(SEED)
    run = tmp_path / "run"

    def reached(point):
        kind, n = point
        if kind == "pretrain":
            stage1 = run / "stage1"
            return checkpoint_step(stage1 / "checkpoints", "pretrain") >= n or (stage1 / "stage1.json").exists()
        return lines_in(run / "metrics.jsonl") >= n

    # the first kill anywhere from stage 1 to the middle of RL, the second later in RL or its final evaluation
    first = rng.choice([("pretrain", 10), ("pretrain", 20)] + [("rl", n) for n in range(1, rows // 2)])
    second = ("rl", rng.randrange(rows // 2, rows))
    args = ["train", str(config), "--out", str(run)]
    for point, resume in ((first, []), (second, ["--resume"])):
        log = kill_when(legible_cmd(*args, *resume), tmp_path, tmp_path / "killed.log", lambda p=point: reached(p),
                        rng.uniform(0, 0.05))  # fmt: skip
        assert "stage 1" in log or "RL:" in log, f"no progress in the log while running (killed at {point}):\n{log}"
        tear(run / "metrics.jsonl", run / "stage1" / "metrics.jsonl")
    resumed = run_logged(legible_cmd(*args, "--resume"), tmp_path, tmp_path / "resumed.log")
    assert resumed.returncode == 0, (first, second, (tmp_path / "resumed.log").read_text())
    assert run_result(run) == run_result(whole), (first, second)
    for name in ("policy.safetensors", "face.safetensors"):
        a, b = (load_file(str(d / name)) for d in (run, whole))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    for name in ("report.html", "report.md", "config.yaml"):
        assert (run / name).exists(), name


DEMO_SCRIPT = """
import sys
from pathlib import Path

from legible.config import RunConfig
from legible.demo import DemoConfig, run_demo

if __name__ == "__main__":
    base = RunConfig.model_validate({run})
    demo = DemoConfig(seeds=[0], conditions=["outcome", "monitor"], workers=2, base=base)
    run_demo(demo, Path(sys.argv[1]), resume="--resume" in sys.argv)
"""


@pytest.mark.slow
def test_demo_killed_at_a_random_point_resumes_to_the_uninterrupted_result(tmp_path):
    tiny = TINY_RUN | {"rl": TINY_RUN["rl"] | {"steps": 16, "eval_every": 8, "checkpoint_every": 2}}
    tiny.pop("condition")
    script = tmp_path / "tiny_demo.py"
    script.write_text(DEMO_SCRIPT.replace("{run}", repr(tiny)))
    whole = run_logged([sys.executable, str(script), "whole"], tmp_path, tmp_path / "whole.log")
    whole_log = (tmp_path / "whole.log").read_text()
    assert whole.returncode == 0, whole_log
    assert re.search(r"monitor, seed 0: 16/16 \(100%\)", whole_log), whole_log

    rng = random.Random(SEED)
    out = tmp_path / "killed"
    cond, step = rng.choice(["outcome", "monitor"]), rng.randrange(2, 15, 2)

    def reached() -> bool:
        return checkpoint_step(out / "seed0" / cond / "checkpoints", "rl") >= step

    log = kill_when([sys.executable, str(script), "killed"], tmp_path, tmp_path / "killed.log", reached,
                    rng.uniform(0, 0.3))  # fmt: skip
    assert "stage 1, seed 0" in log, log
    assert not (out / "summary.json").exists()
    tear(out / "seed0" / cond / "metrics.jsonl")
    resumed = run_logged([sys.executable, str(script), "killed", "--resume"], tmp_path, tmp_path / "resumed.log")
    assert resumed.returncode == 0, (cond, step, (tmp_path / "resumed.log").read_text())

    def result(root: Path) -> dict:
        summary = json.loads((root / "summary.json").read_text())
        summary.pop("wall_seconds")
        runs = {c: run_result(root / "seed0" / c) for c in ("outcome", "monitor")}
        stage1 = {d: rows_of(root / d / "metrics.jsonl") for d in ("seed0/stage1", "no_cot")}
        return {"summary": summary, "runs": runs, "stage1": stage1}

    assert result(out) == result(tmp_path / "whole"), (cond, step)
    for name in ("report.html", "report.md", "fig_summary.png"):
        assert (out / name).exists(), name


def close(a, b, tol: float = 1e-6) -> bool:
    """Equal, floats within ``tol``: a resumed audit batches its samples differently, which moves the
    organism's probabilities in the last float bits."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=tol, abs=tol, nan_ok=True)
    return a == b


@pytest.mark.slow
def test_audit_killed_at_a_random_point_resumes_to_the_uninterrupted_result(trained, tmp_path):
    _, organism, _ = trained
    args = ["audit", "--model", f"legible/{organism}", "--limit", "16", "--tasks", "filler_tokens,load_bearing"]
    whole = run_logged(legible_cmd(*args, "--out", str(tmp_path / "whole")), tmp_path, tmp_path / "whole.log")
    whole_log = (tmp_path / "whole.log").read_text()
    assert whole.returncode == 0, whole_log
    # plain progress lines in a log, not a live display: each task's samples counted to the end
    assert "filler_tokens (coin_flip): 16/16 (100%)" in whole_log, whole_log
    assert "load_bearing (coin_flip): 16/16 (100%)" in whole_log, whole_log

    rng = random.Random(SEED)
    out = tmp_path / "killed"
    # anywhere from the first task's start to the report (a kill after summary.json is a point too)
    kill_when(legible_cmd(*args, "--out", str(out)), tmp_path, tmp_path / "killed.log",
              lambda: any((out / "logs").glob("*.eval")), rng.uniform(0, 1.0))  # fmt: skip
    again = run_logged(legible_cmd(*args, "--out", str(out)), tmp_path, tmp_path / "again.log")
    assert again.returncode == 2 and "--resume" in (tmp_path / "again.log").read_text()
    resumed = run_logged(legible_cmd(*args, "--out", str(out), "--resume"), tmp_path, tmp_path / "resumed.log")
    assert resumed.returncode == 0, (tmp_path / "resumed.log").read_text()

    def result(root: Path) -> dict:
        summary = json.loads((root / "summary.json").read_text())
        summary.pop("wall_seconds")
        return summary

    assert close(result(out), result(tmp_path / "whole")), (result(out), result(tmp_path / "whole"))
    assert (out / "report.html").exists()


@pytest.mark.slow
def test_stego_killed_at_a_random_point_resumes_to_the_uninterrupted_result(tmp_path):
    args = ["stego", "--covers", "6", "--payloads", "1", "--seeds", "2", "--paraphrasers", "none,canonical,lexical"]
    whole = run_logged(legible_cmd(*args, "--out", str(tmp_path / "whole")), tmp_path, tmp_path / "whole.log")
    whole_log = (tmp_path / "whole.log").read_text()
    assert whole.returncode == 0, whole_log
    assert "scheme x paraphraser: " in whole_log and "(100%)" in whole_log, whole_log

    rng = random.Random(SEED)
    out, killed_log = tmp_path / "killed", tmp_path / "killed.log"
    log = kill_when(legible_cmd(*args, "--out", str(out)), tmp_path, killed_log,
                    lambda: "scheme x paraphraser" in killed_log.read_text(), rng.uniform(0, 0.8))  # fmt: skip
    assert "scheme x paraphraser" in log
    resumed = run_logged(legible_cmd(*args, "--out", str(out), "--resume"), tmp_path, tmp_path / "resumed.log")
    assert resumed.returncode == 0, (tmp_path / "resumed.log").read_text()

    def result(root: Path) -> dict:
        summary = json.loads((root / "results.json").read_text())
        summary.pop("wall_seconds")
        return summary

    assert result(out) == result(tmp_path / "whole")
    for name in ("report.md", "report.html", "fig_capacity.png"):
        assert (out / name).exists(), name
