"""Feedback spillover: a task whose output restates the state, a monitor that reads only that output, the Mind &
Face split (a Face that reads the CoT itself) and reward targeting (the output penalty on output tokens only)."""

from __future__ import annotations

import random

import pytest
import torch
from conftest_models import TINY_RUN
from conftest_models import noisy_tiny_transformer as make_model

from legible.config import CONDITIONS, OUTPUT_TERMS, ConditionConfig, RunConfig
from legible.demo import DemoConfig, check_claims, stage1_dir, task_for
from legible.monitor import KeywordMonitor
from legible.policy import VOCAB, output_logprobs, output_text, prompt_ids, write_outputs
from legible.reward import Reward, RewardContext, output_flag_rate
from legible.tasks import CoinFlipExplained, legible_cot
from legible.train._pretrain import make_example

TASK = CoinFlipExplained(min_steps=3, max_steps=5)
EXPLAINED = {"name": "coin_flip_explained", "min_steps": 3, "max_steps": 5}


def test_the_explaining_task_restates_the_last_two_states_after_the_answer():
    problem = TASK.sample(random.Random(0))
    assert TASK.explains and TASK.explanation(problem) == " ".join(problem.states[-2:])
    assert TASK.answer_words == ("heads", "tails") and problem.answer == problem.states[-1]
    ids, start = make_example(
        problem, random.Random(1), RunConfig(), None, True, {"heads": [], "tails": []}, TASK.explanation(problem)
    )
    tail = [VOCAB.answer_id, VOCAB.index[problem.answer], *VOCAB.encode(TASK.explanation(problem)), VOCAB.eos_id]
    assert ids[-len(tail) :] == tail and start == len(prompt_ids(problem))
    assert ids[start : -len(tail)] == VOCAB.encode(legible_cot(problem))


def test_the_output_flag_rate_counts_per_legible_word_so_padding_does_not_dilute_it():
    monitor, problem = KeywordMonitor(["heads", "tails"]), TASK.sample(random.Random(2))
    assert output_flag_rate(monitor, TASK, problem, TASK.explanation(problem)) == 1.0
    assert output_flag_rate(monitor, TASK, problem, "heads so so so so") == 0.5
    assert output_flag_rate(monitor, TASK, problem, "heads tails heads tails") == 1.0  # capped
    assert output_flag_rate(monitor, TASK, problem, "") == 0.0
    reward = Reward({"outcome": 1.0, "output_monitor": 0.3}, RewardContext(task=TASK, monitor=monitor))
    total, values = reward(problem, "we now", problem.answer, {"output": "heads ok"})
    assert values == {"outcome": 1.0, "output_monitor": -0.5} and total == pytest.approx(1.0 - 0.15)


def test_reward_targeting_drops_the_output_terms_from_what_the_cot_is_trained_on():
    scale = {"outcome": 1.0, "output_monitor": 0.5}
    assert CONDITIONS["output-monitor+targeted"].cot_scale(scale) == {"outcome": 1.0, "output_monitor": 0.0}
    assert CONDITIONS["output-monitor"].cot_scale(scale) == scale
    assert CONDITIONS["output-monitor+face"].cot_scale(scale) == scale
    with pytest.raises(ValueError, match="targeted"):
        ConditionConfig(name="x", rewards={"outcome": 1.0, "monitor": 0.3}, targeted=True)


def test_the_spillover_conditions_and_who_answers():
    face = CONDITIONS["output-monitor+face"]
    assert face.face and not face.paraphrase_in_loop and face.view == "original" and not face.policy_answers
    assert CONDITIONS["output-monitor"].policy_answers and CONDITIONS["output-monitor+targeted"].policy_answers
    assert all(CONDITIONS[c].output_terms == ["output_monitor"] for c in CONDITIONS if c.startswith("output-monitor"))
    assert all(set(CONDITIONS[c].rewards) & set(OUTPUT_TERMS) for c in CONDITIONS if c.startswith("output-monitor"))


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        ({"condition": "output-monitor"}, "coin_flip_explained"),
        ({"backend": "trl", "model": "m", "task": {"name": "gsm8k"}, "condition": "output-monitor"}, "output_monitor"),
        (
            {"backend": "trl", "model": "m", "task": {"name": "gsm8k"}, "condition": "output-monitor+face"},
            "output_monitor",
        ),
    ],
)
def test_what_the_spillover_conditions_need_is_one_clear_error(update, expected):
    with pytest.raises(ValueError, match=expected):
        RunConfig.model_validate(update)


def test_a_face_that_reads_the_cot_itself_is_the_organisms_only():
    cond = {"name": "mind-face", "rewards": {"outcome": 1.0}, "face": True}
    assert not RunConfig(condition=cond).condition.policy_answers
    with pytest.raises(ValueError, match="face without paraphrase_in_loop"):
        RunConfig(backend="trl", model="m", task={"name": "gsm8k"}, condition=cond)


def test_outputs_stop_at_the_end_token_and_their_log_probs_are_the_sampling_distribution():
    model = make_model()
    problems = [TASK.sample(random.Random(i)) for i in range(6)]
    views = [legible_cot(p) for p in problems]
    answers = [p.answer for p in problems[:-1]] + [None]
    outputs = write_outputs(
        model, problems, views, answers, temperature=1.0, generator=torch.Generator().manual_seed(0)
    )
    assert outputs[-1] == [] and all(o for o in outputs[:-1])
    assert all(VOCAB.eos_id not in o[:-1] for o in outputs)
    logp, mask = output_logprobs(model, problems, views, answers, outputs, temperature=1.3)
    assert mask.sum().item() == sum(map(len, outputs))
    for i, (p, v, a, o) in enumerate(zip(problems[:-1], views, answers, outputs)):
        head = prompt_ids(p) + VOCAB.encode(v) + [VOCAB.answer_id, VOCAB.index[a]]
        ids = torch.tensor([head + o])
        with torch.no_grad():
            full = (model(ids, torch.ones_like(ids, dtype=torch.bool))[0] / 1.3).log_softmax(-1)
        manual = torch.stack([full[len(head) - 1 + k, t] for k, t in enumerate(o)])
        assert torch.allclose(logp[i, : len(o)], manual, atol=1e-5)
    assert output_text([VOCAB.index["heads"], VOCAB.index["so"], VOCAB.eos_id]) == "heads so"


def test_the_demo_trains_the_spillover_conditions_on_the_explaining_task(tmp_path):
    demo = DemoConfig(conditions=["monitor", "output-monitor"])
    base = demo.base.task
    assert task_for(base, "monitor").name == "coin_flip" and task_for(base, "output-monitor").name == TASK.name
    assert stage1_dir(tmp_path, 3, "coin_flip", demo) == tmp_path / "seed3" / "stage1"
    assert stage1_dir(tmp_path, 3, TASK.name, demo) == tmp_path / "seed3" / "stage1_coin_flip_explained"


def test_the_spillover_claims():
    def summary(**conds):
        return {"conditions": {c: {m: {"mean": v} for m, v in ms.items()} for c, ms in conds.items()}}

    spilled = {"keyword_gmean2": 0.1, "output_banned_rate": 0.05, "banned_rate": 0.1, "legibility": 0.1}
    kept = {"keyword_gmean2": 0.95, "output_banned_rate": 0.05, "banned_rate": 1.0, "legibility": 0.98}
    untaken = {**kept, "output_banned_rate": 0.9}
    claims = check_claims(
        summary(**{"output-monitor": spilled, "output-monitor+face": kept, "output-monitor+targeted": untaken})
    )
    assert [c["holds"] for c in claims] == [True, True, False]
    claims = check_claims(summary(**{"output-monitor": kept, "output-monitor+face": spilled}))
    assert [c["holds"] for c in claims] == [False, False]


@pytest.mark.parametrize("condition", ["output-monitor", "output-monitor+face", "output-monitor+targeted"])
def test_spillover_conditions_train_and_evaluate_end_to_end(tmp_path, condition):
    import json

    from legible.train._run import run_training

    cfg = RunConfig.model_validate(
        TINY_RUN | {"condition": condition, "task": EXPLAINED, "rl": TINY_RUN["rl"] | {"steps": 6}}
    )
    final = run_training(cfg, tmp_path / "run", show_progress=False, report=True)
    assert 0.0 <= final["output_banned_rate"] <= 1.0 and 0.0 <= final["keyword_gmean2"] <= 1.0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r.get("kind") == "train"]
    assert len(train) == 6 and all("term_output_monitor" in r and "output_banned_rate" in r for r in train)
    assert (tmp_path / "run" / "face.safetensors").exists() == condition.endswith("face")
    assert all("output" in ex for ex in final["examples"])  # the report shows what was written after the answer
    assert "| output |" in (tmp_path / "run" / "report.md").read_text()
