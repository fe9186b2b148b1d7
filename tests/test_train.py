"""End to end: `legible train` writes a run directory, survives SIGKILL with --resume, and
turns bad input into one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest_models import TINY_RUN


def legible(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "legible.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def write_config(tmp_path: Path, data: dict, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def comparable(run: Path) -> tuple[list[dict], dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("seconds", None)
    return rows, json.loads((run / "eval.json").read_text())


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    config = write_config(tmp_path, TINY_RUN)
    whole = legible("train", str(config), "--out", str(tmp_path / "whole"), cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr

    killed_dir = tmp_path / "killed"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "legible.cli", "train", str(config), "--out", str(killed_dir)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while not list((killed_dir / "checkpoints").glob("rl_step*/state.json")):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / "eval.json").exists(), "the run was killed too late to test anything"

    resumed = legible("train", str(config), "--out", str(killed_dir), "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(killed_dir) == comparable(tmp_path / "whole")
    for name in ("policy.safetensors", "face.safetensors", "report.html", "report.md", "config.yaml"):
        assert (killed_dir / name).exists(), name


def test_existing_run_needs_resume(tmp_path):
    config = write_config(tmp_path, TINY_RUN | {"pretrain": {"steps": 0}, "rl": {"steps": 0, "eval_problems": 8}})
    first = legible("train", str(config), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = legible("train", str(config), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert again.returncode == 2
    assert "--resume" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"rl": {"lr": -1}}, "rl.lr"),
        ({"rl": {"stepz": 3}}, "rl.stepz"),
        ({"condition": "monitor+telepathy"}, "condition"),
        ({"paraphraser": "nonsense"}, "paraphraser"),
        ({"task": {"min_steps": 9, "max_steps": 3}}, "task"),
        ({"condition": {"name": "x", "rewards": {"vibes": 1.0}}}, "vibes"),
        ("rl: [unclosed", "line"),
    ],
)
def test_bad_config_is_one_line_error(tmp_path, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    result = legible("train", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bad.yaml" in lines[0] and expected in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_config_and_bad_options(tmp_path):
    missing = legible("train", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr and "Traceback" not in missing.stderr
    bad_seeds = legible("demo", "--quick", "--seeds", "zero", "--out", str(tmp_path / "d"), cwd=tmp_path)
    assert bad_seeds.returncode == 2 and "--seeds" in bad_seeds.stderr and "Traceback" not in bad_seeds.stderr
    unknown = legible("train", "--no-such-flag", cwd=tmp_path)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr


def test_running_sum_trains_end_to_end_in_process(tmp_path):
    """The second organism task goes through the same Task, paraphraser, monitor and trainer."""
    from legible.config import RunConfig
    from legible.train._run import run_training

    cfg = RunConfig.model_validate(
        TINY_RUN
        | {
            "task": {"name": "running_sum", "min_steps": 3, "max_steps": 5, "modulus": 3},
            "condition": "monitor+sensitivity",
        }
        | {"rl": TINY_RUN["rl"] | {"steps": 6}}
    )
    final = run_training(cfg, tmp_path / "run", show_progress=False, report=False)
    assert set(final["accuracy_by_n"]) <= {"3", "4", "5"}
    assert all(set(e["states"]) == {"0", "1", "2"} for e in final["code"].values())
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r.get("kind") == "train"]
    assert len(train_rows) == 6 and all("term_sensitivity" in r for r in train_rows)


@pytest.mark.parametrize("path", sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.yaml")))
def test_shipped_configs_validate(path):
    from legible.config import load_config

    assert load_config(path).condition.rewards


def test_custom_condition_with_paraphrase_outcome_trains(tmp_path):
    from legible.config import RunConfig
    from legible.train._run import run_training

    condition = {"name": "custom", "rewards": {"outcome": 1.0, "paraphrase_outcome": 0.5, "length": 0.01}}
    cfg = RunConfig.model_validate(TINY_RUN | {"condition": condition, "rl": TINY_RUN["rl"] | {"steps": 4}})
    run_training(cfg, tmp_path / "run", show_progress=False, report=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r.get("kind") == "train"]
    assert len(train_rows) == 4
    assert all(0.0 <= r["term_paraphrase_outcome"] <= 1.0 and r["term_length"] < 0 for r in train_rows)


def test_stage1_loss_reads_only_the_target_columns_and_equals_the_whole_pass():
    """``batch_loss`` runs the last layer only after the columns that predict a target; the loss is the
    token-averaged cross-entropy of the whole pass over each row's targets (the CoT and output of plain
    examples, the answer of paraphrased ones), and so is its gradient."""
    import random

    import torch

    from legible.config import RunConfig
    from legible.paraphrase import make_paraphraser
    from legible.policy import VOCAB, left_pad
    from legible.train._pretrain import batch_loss, build_model, make_example

    cfg = RunConfig()
    task = cfg.task.build()
    paraphraser = make_paraphraser(cfg.paraphraser, task)
    rng = random.Random(0)
    aliases = cfg.state_aliases(task.state_words)
    examples = [make_example(task.sample(rng), rng, cfg, paraphraser, True, aliases) for _ in range(16)]
    assert len({start for _, start in examples}) > 1 and len({len(row) for row, _ in examples}) > 1
    torch.manual_seed(0)
    model, ref = build_model(cfg, task), build_model(cfg, task)
    ref.load_state_dict(model.state_dict())

    ids, mask = left_pad([row for row, _ in examples], VOCAB.pad_id)
    logits = ref(ids, mask)
    total, count = 0.0, 0
    for i, (row, start) in enumerate(examples):
        first = ids.shape[1] - len(row) + start  # the column of the first target token
        for col in range(first, ids.shape[1]):
            total = total - logits[i, col - 1].log_softmax(-1)[ids[i, col]]
            count += 1
    expected = total / count
    loss = batch_loss(model, examples)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=0)
    loss.backward()
    expected.backward()
    for p, p_ref in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("condition", ["outcome", "monitor+face", "monitor+paraphrase", "output-monitor+targeted"])
def test_skipping_episodes_with_zero_advantage_gives_the_same_update(tmp_path, monkeypatch, condition):
    """The trainer runs with gradients only the episodes whose advantage is nonzero; the parameters after a
    few steps equal those of a run that trains on every episode (which is what the loss was before)."""
    import torch

    from legible.config import RunConfig
    from legible.demo import task_for
    from legible.paraphrase import make_paraphraser
    from legible.train import _grpo
    from legible.train._pretrain import build_model

    base = RunConfig.model_validate({**TINY_RUN, "rl": {**TINY_RUN["rl"], "steps": 3, "eval_every": 100}})
    task_config = task_for(base.task, condition).model_dump()
    cfg = RunConfig.model_validate({**TINY_RUN, **base.model_dump(), "condition": condition, "task": task_config})
    task = cfg.task.build()
    torch.manual_seed(0)
    stage1 = build_model(cfg, task).eval()
    skipped = []
    real_rows = _grpo.trained_rows

    def spy(adv, cot_adv, *, every):
        rows = real_rows(adv, cot_adv, every=every)
        skipped.append(len(adv) - len(rows))
        return rows

    def train(out):
        return _grpo.train_grpo(cfg, task, make_paraphraser(cfg.paraphraser, task), stage1, tmp_path / out)

    monkeypatch.setattr(_grpo, "trained_rows", spy)
    sparse = train("sparse")
    assert sum(skipped) > 0  # the run did skip episodes
    monkeypatch.setattr(_grpo, "trained_rows", lambda adv, cot_adv, *, every: list(range(len(adv))))
    dense = train("dense")
    for a, b in zip(sparse, dense, strict=True):
        if a is None:
            assert b is None
            continue
        for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
            torch.testing.assert_close(p, q, atol=1e-5, rtol=0, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("term", [{"kl_coef": 0.1}, {"entropy_coef": 0.01}])
def test_a_loss_term_that_reads_every_episode_trains_every_episode(tmp_path, term):
    """With the KL to stage 1 or the entropy bonus, no episode is skipped, and the KL is logged."""
    import torch

    from legible.config import RunConfig
    from legible.paraphrase import make_paraphraser
    from legible.train._grpo import train_grpo
    from legible.train._pretrain import build_model

    cfg = RunConfig.model_validate(
        {**TINY_RUN, "condition": "outcome", "rl": {**TINY_RUN["rl"], "steps": 3, "eval_every": 100, **term}}
    )
    task = cfg.task.build()
    torch.manual_seed(0)
    train_grpo(cfg, task, make_paraphraser(cfg.paraphraser, task), build_model(cfg, task).eval(), tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("kind") == "train"]
    assert len(rows) == 3 and all(r["trained_share"] == 1.0 for r in rows)
    if "kl_coef" in term:
        assert all(r["kl"] >= 0 for r in rows) and rows[-1]["kl"] > 0  # the policy moved away from stage 1
