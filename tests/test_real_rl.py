"""RL on a real model: the English coin flip through TRL and verl, the closed answer space read from
log-probs (``read_answers``: one forward, a forced answer where the CoT ended without the marker), the
relaxed evaluation bounds of the text backends, the run report's monitor flags beside the level, and, with
SmolLM2-135M-Instruct (``slow``), one step of ``configs/trl-smollm2-cpu.yaml`` and of the GPU experiment's
script on the CPU.

The fast tests use the tiny random GPT-2 of ``conftest_models.build_tiny_lm``; the slow ones the session's
SmolLM2 directory (``conftest.smollm2``), passed as the model so that no test prepares into the user's cache.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import random
import sys
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("trl")

from conftest_models import build_tiny_lm  # noqa: E402

from legible.config import ConfigError, RunConfig, load_config  # noqa: E402
from legible.tasks import CoinFlipText  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-coin"))


def coin_config(model: Path | str, condition: str = "monitor+paraphrase", **extra) -> RunConfig:
    base = {
        "backend": "trl",
        "model": str(model),
        "task": {"name": "coin_flip_text", "min_steps": 1, "max_steps": 2},
        "condition": condition,
        "rl": {"steps": 1, "prompts": 2, "group_size": 4, "checkpoint_every": 1, "eval_every": 100, "ramp_steps": 0,
               "eval_problems": 2},
        "trl": {"max_cot_tokens": 8, "max_answer_tokens": 4, "dataset_size": 16},
        "eval": {"problems": 4},
    }  # fmt: skip
    for key, value in extra.items():
        base[key] = base[key] | value if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return RunConfig.model_validate(base)


# ------------------------------------------------------------------------------------ evaluation bounds


def test_text_backends_evaluate_on_a_handful_the_organism_keeps_its_bounds(tmp_path):
    cfg = coin_config("m")
    assert (cfg.eval.problems, cfg.rl.eval_problems) == (4, 2)
    RunConfig.model_validate({"backend": "verl", "task": {"name": "coin_flip_text"}, "eval": {"problems": 4},
                              "rl": {"eval_problems": 1}})  # fmt: skip
    organism = {"eval": {"problems": 10}, "rl": {"eval_problems": 2}}
    for name, fields in (("eval.problems", {"eval": {"problems": 10}}), ("rl.eval_problems", {"rl": organism["rl"]})):
        path = tmp_path / "organism.yaml"
        path.write_text(yaml.safe_dump(fields))
        with pytest.raises(ConfigError) as info:
            load_config(path)
        msg = str(info.value)
        assert msg.startswith(f"{path}: {name}:") and "organism" in msg and "\n" not in msg, msg
    assert load_config(REPO / "configs" / "monitor.yaml").eval.problems >= 30  # the shipped organism configs
    with pytest.raises(ConfigError, match="eval.problems"):  # fewer than a handful is refused everywhere
        load_config(_write(tmp_path / "three.yaml", {"backend": "trl", "model": "m", "task": {"name": "gsm8k"},
                                                     "condition": "outcome", "eval": {"problems": 3}}))  # fmt: skip


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_smollm2_configs_validate():
    for name in ("trl-smollm2-cpu.yaml", "trl-smollm2-gpu.yaml"):
        cfg = load_config(REPO / "configs" / name)
        assert cfg.backend == "trl" and cfg.model == "smollm2-135m" and cfg.task.name == "coin_flip_text"
        assert cfg.trl.lora is not None and cfg.build_monitor(cfg.task.build()).score("Heads then tails") == 2


# ------------------------------------------------------------------------------------ reading answers


def test_read_answers_is_the_teacher_forced_distribution_in_one_forward(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from legible.train.trl import answer_distribution, answer_spellings
    from legible.train.trl._generate import read_answers

    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny).eval()
    spellings = answer_spellings(tok, ("heads", "tails"))
    assert any(len(v) > 1 for variants in spellings for v in variants)  # multi-token spellings are read too
    rows = [tok(t).input_ids for t in ("We have coins.\nAnswer:", "x\nAnswer:", "The total is 4 heads, so\nAnswer:")]
    expected = answer_distribution(model, tok.pad_token_id, rows, spellings)
    word_logp, spelling_logp = read_answers(model, tok.pad_token_id, rows, spellings, chunk=2)
    expected = torch.tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(word_logp.softmax(-1).double(), expected, atol=1e-5, rtol=0)
    for r in range(len(rows)):  # a word's mass is the sum of its spellings'
        for w in range(2):
            assert math.log(sum(math.exp(x) for x in spelling_logp[r][w])) == pytest.approx(word_logp[r, w].item(),
                                                                                         abs=1e-4)  # fmt: skip
    # the same from a PromptCache: each distinct prompt run once, the rows continuing from copies of it
    from legible.train.trl._generate import PromptCache

    prompts = [tok("user: a coin").input_ids, tok("user: We have 4 heads and more").input_ids]
    tails = [tok(t).input_ids for t in (" It shows\nAnswer:", " x\nAnswer:", " So the total is\nAnswer:")]
    which = [1, 0, 1]
    cache = PromptCache(model, tok.pad_token_id, [prompts[0], prompts[1], prompts[0], prompts[1]])
    full = [prompts[cache.index[r]] + t for r, t in zip(which, tails)]
    shared, _ = read_answers(model, tok.pad_token_id, tails, spellings, chunk=2, prompts=cache, which=which)
    alone, _ = read_answers(model, tok.pad_token_id, full, spellings)
    torch.testing.assert_close(shared, alone, atol=1e-4, rtol=0)
    # with grad, the gradient reaches the weights through the reading at the answer position
    word_logp, _ = read_answers(model, tok.pad_token_id, rows, spellings, grad=True)
    word_logp.log_softmax(-1)[:, 0].sum().backward()
    assert model.lm_head.weight.grad is not None and model.lm_head.weight.grad.abs().sum() > 0


def test_readable_spellings_drop_what_cannot_tell_words_apart(tiny):
    from transformers import AutoTokenizer

    from legible.train.trl._rollout import readable_spellings

    tok = AutoTokenizer.from_pretrained(tiny)
    assert readable_spellings(tok, ()) is None
    spellings = readable_spellings(tok, ("heads", "tails"))
    assert spellings is not None and all(spellings)
    assert readable_spellings(tok, ("same", "same")) is None  # every spelling shared: nothing to read


def test_rollout_reads_every_answer_and_forces_the_unfinished(tiny, tmp_path):
    """A random model never writes the marker: every CoT is unfinished, and every episode still gets an
    answer (heads or tails) read at the appended marker, with the answerer's distribution; the appended marker
    and answer carry no policy gradient, and the shared weights took their reading step."""
    from legible.train.trl import build_run

    run = build_run(coin_config(tiny, "monitor+paraphrase"), tmp_path / "run")
    run.trainer.train()
    ep = run.rollout.last
    n = len(ep.problems)
    assert n == 8 and not any(ep.finished) and all(a in ("heads", "tails") for a in ep.answers)
    assert all(p is not None and sum(p) == pytest.approx(1.0) for p in ep.extras["answer_probs_paraphrased"])
    assert all(p is not None for p in ep.extras["paraphrase"])
    marker = run.rollout._encode_view("")
    for ids, mask, cot_len in zip(ep.completion_ids, ep.env_mask, (sum(m) for m in ep.env_mask)):
        theirs = ids[cot_len:]
        assert mask == [1] * cot_len + [0] * len(theirs) and theirs[: len(marker)] == marker
    assert {"answerer_grad_norm", "answerer_accuracy"} <= set(ep.stats)
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["finished_rate"] == 0.0 and 0.0 <= row["accuracy"] <= 1.0 and row["drift_level"] in (1, 2, 3, 4)


def test_monitor_condition_reads_the_policy_and_evaluation_is_greedy(tiny, tmp_path):
    from legible.train.trl import build_run, evaluate_run

    run = build_run(coin_config(tiny, "monitor"), tmp_path / "run")
    run.trainer.train()
    ep = run.rollout.last
    assert all(a in ("heads", "tails") for a in ep.answers) and ep.extras["answer_probs"][0] is not None
    assert "answerer_accuracy" in ep.stats  # the policy's own reading trained in the same pass
    first = evaluate_run(run, problems=run.eval_problems(4, 1))
    again = evaluate_run(run, problems=run.eval_problems(4, 1))
    assert first["accuracy"] == again["accuracy"] and first["problems"] == 4  # greedy: the same answers


# ------------------------------------------------------------------------------------ verl


def test_verl_scores_and_prepares_coin_flip_text(tmp_path):
    import pandas as pd

    import legible.train.verl as lv

    task = CoinFlipText()
    problem = task.problem("heads", ["diff", "same"])  # tails
    info = {"index": 0, "problem": lv.problem_to_json(problem)}
    fields = {"backend": "verl", "task": {"name": "coin_flip_text"}, "condition": "monitor"}
    cfg = _write(tmp_path / "verl.yaml", fields)

    def score(solution, ground_truth="tails", extra=info):
        return asyncio.run(lv.compute_score("legible/coin_flip_text", solution, ground_truth, extra,
                                            legible_config=str(cfg)))  # fmt: skip

    right = score("Heads, then the other side: tails, then the same.\nAnswer: **Tails**")
    assert right["acc"] == 1.0 and right["term_monitor"] == -1.0  # 3 banned words over 2 flips, capped
    assert score("It flips once and stays.\nAnswer: heads")["acc"] == 0.0
    assert score("Answer: Tails.", "Tails", {})["acc"] == 1.0  # a row of another project: no legible problem
    assert lv.task_name_for("coin_flip_text") == "coin_flip_text"
    paths = lv.prepare("coin_flip_text", tmp_path / "data", config=str(cfg), train=20, val=4, seed=0)
    train = pd.read_parquet(paths["train"])
    row = train.iloc[0]
    assert len(train) == 20 and row["data_source"] == "legible/coin_flip_text"
    p = lv.problem_from_json(row["extra_info"]["problem"])
    assert row["reward_model"]["ground_truth"] == p.answer in ("heads", "tails") and 1 <= p.steps <= 3
    assert row["prompt"][0]["content"].startswith("The coin starts on ")


# ------------------------------------------------------------------------------------ the run report


def test_run_report_shows_monitor_flags_beside_the_level(tmp_path):
    """An untrained model that writes the banned words in plain English: level 1, flags beside it."""
    from legible.report import write_run_report

    run = tmp_path / "run"
    run.mkdir()
    rows = [
        {"phase": "rl", "kind": "train", "step": s, "accuracy": 0.5, "banned_rate": b, "drift_level": 1,
         "drift_legible_score": 0.9, "drift_english_score": 0.9, "drift_odd_token_rate": 0.0,
         "drift_monitor_flag_rate": f, "seconds": 10.0 * s}
        for s, b, f in ((1, 1.2, 0.9), (2, 0.8, 0.6))
    ]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "config.yaml").write_text(yaml.safe_dump(coin_config("m").model_dump()))
    (run / "eval.json").write_text(json.dumps({"accuracy": 0.5, "drift_level": 1, "drift_monitor_flag_rate": 0.75,
                                               "drift_legible_score": 0.92, "banned_rate": 1.0}))  # fmt: skip
    md, _ = write_run_report(run)
    text = md.read_text()
    assert "task coin_flip_text (N from 1 to 2)" in text
    assert "Level 1 (legible English, faithful)" in text and "monitor flags on 60% of CoTs (frequent" in text
    assert "| step 1 | 1 | 0.900 | 0.000 | 0.900 | 1.200 |" in text
    assert "| step 2 | 1 | 0.900 | 0.000 | 0.600 | 0.800 |" in text
    assert "| final evaluation | 1 | 0.920 | n/a | 0.750 | 1.000 |" in text
    assert "never place it" in text


# ------------------------------------------------------------------------------------ SmolLM2 (slow)


@pytest.mark.slow
def test_smollm2_cpu_config_one_step(smollm2, tmp_path):
    """configs/trl-smollm2-cpu.yaml for one step on SmolLM2 (shrunk: 1 prompt x 2 samples, a 12-token CoT),
    condition monitor+face: the run directory, drift metrics and the report with the level and the flags."""
    from legible.train import run_training

    over = {"model": str(smollm2), "condition": "monitor+face",
            "rl": {"steps": 1, "prompts": 1, "group_size": 2, "checkpoint_every": 1, "eval_every": 1000,
                   "eval_problems": 1, "ramp_steps": 0, "lr": 2e-4, "temperature": 1.0, "kl_coef": 0.0},
            "eval": {"problems": 4}}  # fmt: skip
    cfg = load_config(REPO / "configs" / "trl-smollm2-cpu.yaml", over)
    cfg = cfg.model_copy(update={"trl": cfg.trl.model_copy(update={"max_cot_tokens": 12, "dataset_size": 8})})
    final = run_training(cfg, tmp_path / "run", show_progress=False)
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["kind"] == "train" and 0.0 <= row["accuracy"] <= 1.0 and row["drift_level"] in (1, 2, 3, 4)
    assert row["drift_english_score"] is not None and "drift_monitor_flag_rate" in row and "answerer_accuracy" in row
    assert final["condition"] == "monitor+face" and final["problems"] == 4
    assert (tmp_path / "run" / "face" / "model.safetensors").exists()
    report = (tmp_path / "run" / "report.md").read_text()
    assert "monitor flag rate" in report and "hierarchy of legibility: Level" in report


@pytest.mark.slow
def test_gpu_experiment_script_runs_one_step_on_the_cpu(smollm2, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_skaf", REPO / "scripts" / "gpu_skaf.py")
    gpu_skaf = importlib.util.module_from_spec(spec)
    sys.modules["gpu_skaf"] = gpu_skaf
    spec.loader.exec_module(gpu_skaf)
    sets = [f"model={smollm2}", "rl.steps=1", "rl.prompts=1", "rl.group_size=2", "rl.eval_every=1000",
            "rl.eval_problems=1", "rl.checkpoint_every=1", "eval.problems=4", "trl.max_cot_tokens=8",
            "trl.micro_batch=null", "trl.dataset_size=8"]  # fmt: skip
    args = [str(REPO / "configs" / "trl-smollm2-gpu.yaml"), "--out", str(tmp_path / "skaf"), "--no-progress",
            "--conditions", "monitor+paraphrase", *[x for s in sets for x in ("--set", s)]]  # fmt: skip
    assert gpu_skaf.main(args) == 0
    out = capsys.readouterr().out
    assert "on CPU (no GPU)" in out and "too few to tell" in out
    run = tmp_path / "skaf" / "monitor_paraphrase"
    assert (run / "report.html").exists() and (run / "eval.json").exists()
    summary = json.loads((tmp_path / "skaf" / "summary.json").read_text())
    assert summary[0]["condition"] == "monitor+paraphrase" and summary[0]["steps"] == 1
    assert "| monitor+paraphrase | 1 |" in (tmp_path / "skaf" / "summary.md").read_text()
    with pytest.raises(SystemExit, match="rl.steps"):
        gpu_skaf.main([*args[:3], "--set", "rl.steps=-1"])


def test_coin_flip_text_problems_are_varied():
    rng = random.Random(0)
    task = CoinFlipText()
    prompts = {task.sample(rng).prompt for _ in range(2000)}
    assert len(prompts) == 2 * (2 + 4 + 8)  # every start side and flip sequence of 1 to 3 flips
