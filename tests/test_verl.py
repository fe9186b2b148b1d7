"""The verl backend: ``compute_score`` on every text task, the Shoggoth/Face/paraphraser episode against a
scripted rollout server (the Face's tokens masked, the answer read from the paraphrase), the parquet
dataset helper, and, where verl is installed, the same pieces inside verl's own classes.

Everything is CPU-only and offline; no model runs. The tokenizer is the tiny byte-level BPE of
``conftest_models.build_tiny_lm``. verl's pins (transformers < 5.11, ray, tensordict) conflict with
legible's, so the shared venv has no verl: the tests marked ``verl_only`` skip there and run in a venv
that has it (docs/verl.md, "Tests").
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import random
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest_models import build_tiny_lm

import legible.train.verl as lv
import legible.train.verl._launch as lv_launch
from legible.config import ConfigError, RunConfig, load_config
from legible.paraphrase import Paraphraser, register_paraphraser
from legible.tasks import Problem, TextGameTask, make_task
from legible.tasks._program import program_prompt

REPO = Path(__file__).resolve().parents[1]
HAS_VERL = importlib.util.find_spec("verl") is not None
verl_only = pytest.mark.skipif(not HAS_VERL, reason="verl is not installed (docs/verl.md, 'Tests')")

POLICY_TEXT = "We add 40 and 2, so the total is 42.\nAnswer: 42\n"
COT = "We add 40 and 2, so the total is 42."
PARAPHRASE = "Forty plus two. The result is 99."
KEYS = {"score", "acc", "finished", "cot_words", "penalty_ramp", "pred", "drift_english_score", "drift_odd_token_rate"}


class Replace(Paraphraser):
    """Rewrites every CoT to PARAPHRASE, whose last number (99) differs from the CoT's (42): an answer of
    99 can only have been read from the paraphrase."""

    name = "test_replace"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        self.calls.append((cot, context))
        return PARAPHRASE


register_paraphraser("test_replace")(lambda task: Replace())


class ScriptedServer:
    """Stands in for verl's rollout server: a request whose text ends with the answer marker (the
    answerer's) gets the last number it reads after the generation prompt, then more text (a server
    without stop strings writes on); any other request gets ``policy_text``. Records every call."""

    def __init__(self, tok, policy_text: str = POLICY_TEXT, logprob: float = -0.25) -> None:
        self.tok, self.policy_text, self.logprob = tok, policy_text, logprob
        self.calls: list[dict] = []

    def reply(self, text: str) -> str:
        if text.endswith("Answer:"):
            numbers = re.findall(r"\d+", text.split("assistant: ")[-1])
            return f" {numbers[-1] if numbers else 'none'}\nThat is all."
        return self.policy_text

    async def __call__(self, ids: list[int], params: dict) -> lv.Sampled:
        text = self.tok.decode(ids)
        self.calls.append({"text": text, "params": dict(params)})
        new = (self.tok(self.reply(text), add_special_tokens=False).input_ids + [self.tok.eos_token_id])[
            : params["max_tokens"]
        ]
        logprobs = [self.logprob] * len(new) if params.get("logprobs") else None
        return lv.Sampled(new, logprobs, {"global_steps": 5, "min_global_steps": 4, "max_global_steps": 5})


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(build_tiny_lm(tmp_path_factory.mktemp("tiny_lm")))


def gsm_problem(answer: str = "42", steps: int = 2) -> Problem:
    return Problem("Tom has 40 apples and gets 2 more. How many now?", answer, steps, metadata={"id": "t1"})


def run_config(condition="monitor+paraphrase", **extra) -> RunConfig:
    data = {"backend": "trl", "model": "x", "task": {"name": "gsm8k"}, "condition": condition}
    return RunConfig.model_validate(data | {"monitor_words": ["total"], "paraphraser": "test_replace"} | extra)


def write_config(tmp_path: Path, name: str = "legible.yaml", **fields) -> Path:
    data = {"backend": "verl", "task": {"name": "gsm8k"}, "monitor_words": ["total"], "paraphraser": "test_replace"}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data | fields))
    return path


def prompt_ids(tok, problem: Problem) -> list[int]:
    messages = [{"role": "user", "content": problem.prompt}]
    return tok(
        tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), add_special_tokens=False
    ).input_ids


def score(data_source, solution, ground_truth, extra_info=None, **kwargs) -> dict:
    return asyncio.run(lv.compute_score(data_source, solution, ground_truth, extra_info, **kwargs))


def row_info(problem: Problem, **extra) -> dict:
    return {"index": 0, "problem": lv.problem_to_json(problem)} | extra


# ---------------------------------------------------------------------------------------- compute_score


@pytest.fixture
def monitor_cfg(tmp_path):
    return str(write_config(tmp_path, condition="monitor"))


def test_gsm8k_right_wrong_missing_and_monitored(monitor_cfg):
    info = row_info(gsm_problem())
    right = score("legible/gsm8k", "We add 40 and 2 to get 42.\nAnswer: 42", "42", info, legible_config=monitor_cfg)
    assert set(right) == KEYS | {"term_outcome", "term_monitor"}
    assert (right["acc"], right["term_outcome"], right["term_monitor"], right["score"]) == (1.0, 1.0, 0.0, 1.0)
    assert (right["finished"], right["pred"], right["penalty_ramp"]) == (1.0, "42", 1.0)  # no step known: no ramp

    hit = score("legible/gsm8k", f"{COT}\nAnswer: $42.", "42", info, legible_config=monitor_cfg)
    assert hit["acc"] == 1.0 and hit["term_monitor"] == -0.5  # one banned word over two steps
    assert hit["score"] == pytest.approx(1.0 - 0.3 * 0.5)

    wrong = score("legible/gsm8k", "We add 40 and 2.\nAnswer: 41", "42", info, legible_config=monitor_cfg)
    assert (wrong["acc"], wrong["score"], wrong["pred"]) == (0.0, 0.0, "41")

    missing = score("legible/gsm8k", "I think it is 42", "42", info, legible_config=monitor_cfg)
    assert (missing["acc"], missing["finished"], missing["pred"], missing["cot_words"]) == (0.0, 0.0, "", 5.0)
    assert set(missing) == set(right)  # the keys never depend on the episode: verl stacks them per batch


def test_multiple_choice_program_and_text_game(monitor_cfg):
    mc = make_task("multiple_choice").problems[0]  # "... photosynthesis?" (B) Carbon dioxide
    info = row_info(mc)
    assert score("legible/multiple_choice", "Plants use CO2.\nAnswer: (B)", "B", info)["acc"] == 1.0
    assert score("legible/multiple_choice", "Plants breathe.\nAnswer: A", "B", info)["acc"] == 0.0

    program = Problem(program_prompt("x = 3\nprint(x + 4)\n"), "7", 2, metadata={"program": "x = 3\nprint(x + 4)"})
    info = row_info(program)
    assert score("legible/program_output", "x is 3, plus 4.\nAnswer: `7`", "7", info)["acc"] == 1.0
    assert score("legible/program_output", "x is 3.\nAnswer: 8", "7", info)["acc"] == 0.0

    game_task = TextGameTask()
    game = game_task.sample(random.Random(3))
    info = row_info(game)
    won = score("legible/text_game", f"I plan the route.\nAnswer: {game.answer}", game.answer, info)
    lost = score("legible/text_game", "I wait.\nAnswer: look", game.answer, info)
    assert won["acc"] == game_task.score(game, game.answer) > lost["acc"]
    named = f"From the {game.states[0]} I go on.\nAnswer: look"
    assert score("legible/text_game", named, game.answer, info, legible_config=monitor_cfg)["term_monitor"] == 0.0


def test_monitor_words_default_to_the_task_state_words(tmp_path):
    # no monitor_words: the text game's monitor looks for its room names (the task's state words)
    cfg = tmp_path / "game.yaml"
    cfg.write_text(yaml.safe_dump({"backend": "verl", "task": {"name": "text_game"}, "condition": "monitor"}))
    game = TextGameTask().sample(random.Random(3))
    out = score("legible/text_game", f"From the {game.states[0]} I go on.\nAnswer: look", game.answer,
                row_info(game), legible_config=str(cfg))  # fmt: skip
    assert out["term_monitor"] == -min(1.0, 1 / game.steps)


def test_data_sources_and_rows_without_the_problem():
    assert lv.task_name_for("legible/text_game") == lv.task_name_for("text_game") == "text_game"
    # verl's own GSM8K files: data_source openai/gsm8k, the number as ground truth, no legible problem
    out = score("openai/gsm8k", "She has 72.\nAnswer: $72.", "72", {"split": "train", "index": 3})
    assert (out["acc"], out["pred"]) == (1.0, "72")
    assert score("legible/multiple_choice", "So C.\nAnswer: (c)", "C", {})["acc"] == 1.0
    with pytest.raises(ValueError, match="no legible task"):
        score("lighteval/MATH", "Answer: 1", "1", {})
    with pytest.raises(ValueError, match="text_game rows need"):
        score("legible/text_game", "Answer: look", "go_north", {})


def test_agent_loop_record_is_scored_and_required(tmp_path):
    cfg = str(write_config(tmp_path, condition="monitor+paraphrase", rl={"ramp_steps": 10}))
    fields = {"cot": COT, "answer": "42", "finished": True, "paraphrase": PARAPHRASE,
              "original_answer": None, "paraphrased_answer": "42", "global_steps": 5}  # fmt: skip
    # the completion text says 41, but the Face's answer (from the record) is what counts
    out = score(
        "legible/gsm8k", f"{COT}\nAnswer: 41", "42", row_info(gsm_problem(), legible=fields), legible_config=cfg
    )
    assert set(out) == KEYS | {"term_outcome", "term_monitor", "paraphrased_acc"}
    assert (out["acc"], out["paraphrased_acc"], out["penalty_ramp"], out["term_monitor"]) == (1.0, 1.0, 0.5, -0.5)
    assert out["score"] == pytest.approx(1.0 - 0.3 * 0.5 * 0.5)
    with pytest.raises(ValueError, match="legible_shoggoth_face"):  # no record: the condition cannot be scored
        score("legible/gsm8k", f"{COT}\nAnswer: 42", "42", row_info(gsm_problem()), legible_config=cfg)


def test_config_sources(tmp_path, monkeypatch):
    outcome = write_config(tmp_path, "outcome.yaml", condition="outcome")
    monitored = write_config(tmp_path, "monitor.yaml", condition="monitor")
    monkeypatch.setenv(lv.CONFIG_ENV, str(outcome))
    info = row_info(gsm_problem())
    assert "term_monitor" not in score("legible/gsm8k", "Answer: 42", "42", info)
    assert "term_monitor" in score("legible/gsm8k", "Answer: 42", "42", info, legible_config=str(monitored))
    monkeypatch.delenv(lv.CONFIG_ENV)
    cfg = lv.load_legible_config(None)
    assert cfg.condition.name == "outcome" and cfg.backend == "verl"
    # the example shipped for verl loads, and both plug-ins read the same condition from it
    example = lv.load_legible_config(REPO / "configs/verl/legible-gsm8k.yaml")
    assert example.condition.name == "monitor+paraphrase" and example.task.name == "gsm8k"
    assert example.backend == "verl" and load_config(REPO / "configs/verl/legible-gsm8k.yaml").backend == "verl"
    organism = tmp_path / "organism.yaml"
    organism.write_text("backend: organism\n")
    with pytest.raises(ConfigError, match="backend: verl"):
        lv.load_legible_config(organism)
    with pytest.raises(ConfigError, match="every node"):
        lv.load_legible_config(tmp_path / "absent.yaml")


# ------------------------------------------------------------------------------------------- episode


def test_face_answers_from_the_paraphrase_and_is_masked(tok):
    cfg = run_config("monitor+paraphrase")
    para = Replace()
    loop = lv.ShoggothFaceLoop(cfg, tok, para, response_length=512)
    server = ScriptedServer(tok)
    problem = gsm_problem()
    ids = prompt_ids(tok, problem)
    ep = asyncio.run(loop.play(ids, problem, {"temperature": 1.0, "logprobs": True}, server))

    assert len(server.calls) == 2  # the policy, then the answerer (the policy's weights: the same server)
    face_text = server.calls[1]["text"]
    assert face_text == tok.decode(ids) + PARAPHRASE + "\nAnswer:"  # the prompt, the paraphrase, the marker
    assert "42" not in face_text.split("assistant: ")[-1]  # the original CoT never reached the answerer
    assert para.calls == [(COT, problem.prompt)]
    assert ep.fields == {"cot": COT, "answer": "99", "finished": True, "paraphrase": PARAPHRASE,
                         "original_answer": None, "paraphrased_answer": "99", "view": "paraphrased"}  # fmt: skip

    k = ep.response_mask.index(0)  # the policy's tokens, up to the marker, then only the answerer's
    assert ep.response_mask == [1] * k + [0] * (len(ep.response_mask) - k)
    policy_sample = tok(POLICY_TEXT, add_special_tokens=False).input_ids
    assert ep.response_ids[:k] == policy_sample[:k]
    assert tok.decode(ep.response_ids[:k]).endswith("Answer:") and not tok.decode(ep.response_ids[: k - 1]).endswith(
        "Answer:"
    )
    assert tok.decode(ep.response_ids[k:]) == " 99\n<eos>"  # its line, then an end it did not sample
    assert ep.response_logprobs == [-0.25] * k + [0.0] * (len(ep.response_ids) - k)
    assert server.calls[0]["params"]["max_tokens"] == cfg.trl.max_cot_tokens
    assert server.calls[1]["params"]["max_tokens"] == cfg.trl.max_answer_tokens
    assert not server.calls[1]["params"]["logprobs"] and "stop" not in server.calls[0]["params"]
    assert (ep.server_fields["min_global_steps"], ep.server_fields["max_global_steps"]) == (4, 5)

    # the record goes to compute_score through extra_info: the Face's 99 is what is scored
    info = row_info(gsm_problem("99"), legible=ep.fields)
    assert score("legible/gsm8k", tok.decode(ep.response_ids), "99", info)["acc"] == 1.0


def test_separate_face_and_stop_strings(tok):
    cfg = run_config("monitor+face")
    loop = lv.ShoggothFaceLoop(cfg, tok, Replace(), response_length=64, stop_strings=True)
    policy, face = ScriptedServer(tok), ScriptedServer(tok)
    problem = gsm_problem()
    ep = asyncio.run(loop.play(prompt_ids(tok, problem), problem, {"temperature": 0.7}, policy, face))
    assert len(policy.calls) == len(face.calls) == 1
    assert policy.calls[0]["params"]["stop"] == ["Answer:", "answer:"]
    assert face.calls[0]["params"]["stop"] == ["\n"] and face.calls[0]["params"]["temperature"] == 0.7
    assert policy.calls[0]["params"]["max_tokens"] == 64 - cfg.trl.max_answer_tokens - 1  # room for the answer
    assert ep.fields["answer"] == "99" and ep.response_logprobs is None  # this server gave no log-probs

    client = SimpleNamespace(calls=[])

    async def create(**kwargs):
        client.calls.append(kwargs)
        return SimpleNamespace(choices=[SimpleNamespace(text=" 7\n")])

    client.completions = SimpleNamespace(create=create)
    openai_face = lv.OpenAIFace("http://face:8001/v1", "face", tok, client=client)
    out = asyncio.run(openai_face([5, 6, 7], {"max_tokens": 16, "temperature": 0.0, "stop": ["\n"]}))
    assert out.token_ids == tok(" 7\n", add_special_tokens=False).input_ids
    assert client.calls[0] == {"model": "face", "prompt": [5, 6, 7], "max_tokens": 16, "temperature": 0.0,
                               "top_p": 1.0, "stop": ["\n"]}  # fmt: skip


def test_policy_answers_itself_and_sensitivity_views(tok):
    cfg = run_config("monitor+sensitivity")
    loop = lv.ShoggothFaceLoop(cfg, tok, Replace(), response_length=512)
    server = ScriptedServer(tok, POLICY_TEXT + "Some more words that are never trained on.")
    problem = gsm_problem()
    ep = asyncio.run(loop.play(prompt_ids(tok, problem), problem, {"logprobs": True}, server))
    assert len(server.calls) == 2  # the policy (CoT and answer), and the answerer on the paraphrase only
    assert server.calls[1]["text"].endswith(PARAPHRASE + "\nAnswer:")
    assert (ep.fields["answer"], ep.fields["original_answer"], ep.fields["paraphrased_answer"]) == ("42", "42", "99")
    assert ep.response_mask[-1] == 0 and set(ep.response_mask[:-1]) == {1}  # its own tokens, and an unsampled end
    assert tok.decode(ep.response_ids) == POLICY_TEXT + "<eos>"  # cut after the answer's line
    out = score("legible/gsm8k", tok.decode(ep.response_ids, skip_special_tokens=True), "42",
                row_info(problem, legible=ep.fields), legible_config=None)  # fmt: skip
    assert out["acc"] == 1.0


def test_unfinished_cot_and_small_budget(tok):
    cfg = run_config("monitor+paraphrase")
    para = Replace()
    loop = lv.ShoggothFaceLoop(cfg, tok, para, response_length=256)
    server = ScriptedServer(tok, "We add 40 and 2 and keep thinking")
    problem = gsm_problem()
    ep = asyncio.run(loop.play(prompt_ids(tok, problem), problem, {}, server))
    assert len(server.calls) == 1 and para.calls == []  # no marker: no paraphrase, no answerer
    assert (ep.fields["finished"], ep.fields["answer"], ep.fields["paraphrase"]) == (False, None, None)
    assert set(ep.response_mask) == {1}
    with pytest.raises(ValueError, match="response_length"):
        lv.ShoggothFaceLoop(cfg, tok, para, response_length=cfg.trl.max_answer_tokens + 1)


def test_prefix_through(tok):
    ids = tok("ab Answer: 3\nmore", add_special_tokens=False).input_ids
    n = lv.prefix_through(tok, ids, re.compile(r"Answer:"))
    assert tok.decode(ids[:n]).endswith("Answer:") and not tok.decode(ids[: n - 1]).endswith("Answer:")
    assert (
        lv.prefix_through(tok, ids, re.compile("absent")) is None and lv.prefix_through(tok, [], re.compile("")) is None
    )


# ------------------------------------------------------------------------------------------- dataset


def test_prepare_writes_verl_rows(tmp_path, monitor_cfg):
    import pandas as pd

    paths = lv.prepare("gsm8k", tmp_path / "data", config=monitor_cfg, val=5, seed=1, agent_name=lv.AGENT_NAME)
    train, val = (pd.read_parquet(paths[s]) for s in ("train", "val"))
    assert (len(train), len(val)) == (25, 5)  # the shipped sample's 30 problems
    assert set(train.columns) == {"data_source", "prompt", "reward_model", "extra_info", "agent_name"}
    row = train.iloc[0]
    assert row["data_source"] == "legible/gsm8k" and row["agent_name"] == lv.AGENT_NAME
    (message,) = list(row["prompt"])
    assert message["role"] == "user" and message["content"].endswith(
        "then write 'Answer:' followed by the final answer."
    )
    problem = lv.problem_from_json(row["extra_info"]["problem"])
    assert row["reward_model"]["ground_truth"] == problem.answer and message["content"].startswith(problem.prompt)
    assert (row["extra_info"]["split"], int(row["extra_info"]["index"])) == ("train", 0)
    assert not {p["content"] for p in train["prompt"].map(lambda m: m[0])} & {
        p["content"] for p in val["prompt"].map(lambda m: m[0])
    }
    # a prepared row scores like verl will score it: extra_info as read back from the parquet file
    right = score(row["data_source"], f"Done.\nAnswer: {problem.answer}", row["reward_model"]["ground_truth"],
                  dict(row["extra_info"]))  # fmt: skip
    assert right["acc"] == 1.0


def test_prepare_generated_task_and_cli(tmp_path, capsys):
    assert lv.main(["prepare", "--task", "text_game", "--out", str(tmp_path / "tg"), "--train", "3", "--val", "2"]) == 0
    assert "train:" in capsys.readouterr().out
    import pandas as pd

    val = pd.read_parquet(tmp_path / "tg" / "val.parquet")
    game = lv.problem_from_json(val.iloc[1]["extra_info"]["problem"])
    assert game.metadata["seed"] and TextGameTask().score(game, game.answer) > 0
    assert lv.main(["prepare", "--task", "gsm8k", "--out", str(tmp_path / "gsm")]) == 0  # default split: a tenth
    out = capsys.readouterr().out
    assert "train: " in out and "(27 rows)" in out and "(3 rows)" in out
    missing = str(tmp_path / "no.jsonl")
    assert lv.main(["prepare", "--task", "gsm8k", "--out", str(tmp_path / "x"), "--path", missing]) == 2
    assert "no such file" in capsys.readouterr().err


def test_prepare_takes_the_configs_flip_counts(tmp_path):
    import pandas as pd

    cfg = tmp_path / "coin.yaml"
    cfg.write_text(yaml.safe_dump({"backend": "verl", "model": "/m", "task": {"name": "coin_flip_text", "min_steps": 5,
                                   "max_steps": 6}, "condition": "monitor", "monitor_words": ["heads"]}))  # fmt: skip
    paths = lv.prepare("coin_flip_text", tmp_path / "d", config=cfg, train=20, val=4)
    rows = pd.read_parquet(paths["train"])
    flips = {lv.problem_from_json(p["problem"]).steps for p in rows["extra_info"]}
    assert flips <= {5, 6} and flips  # the config's 5..6 flips, not the task's default 1..3
    default = pd.read_parquet(lv.prepare("coin_flip_text", tmp_path / "e", train=20, val=4)["train"])
    assert {lv.problem_from_json(p["problem"]).steps for p in default["extra_info"]} <= {1, 2, 3}


def test_problem_json_round_trip():
    game = TextGameTask().sample(random.Random(0))
    assert lv.problem_from_json(lv.problem_to_json(game)) == Problem(
        game.prompt, game.answer, game.steps, game.states, json.loads(json.dumps(game.metadata))
    )


@pytest.mark.skipif(HAS_VERL, reason="verl is installed")
def test_agent_loop_class_needs_verl():
    with pytest.raises(ImportError, match="needs verl"):
        lv.ShoggothFaceAgentLoop  # noqa: B018  (the lookup is the test)


# ------------------------------------------------------------------------------ legible train (verl)


def verl_run_config(tmp_path: Path, **fields) -> Path:
    data = {"backend": "verl", "model": "/models/qwen", "task": {"name": "gsm8k"}, "condition": "monitor+paraphrase",
            "monitor_words": ["total"], "rl": {"steps": 7, "prompts": 16, "group_size": 4, "lr": 2e-6}}  # fmt: skip
    path = tmp_path / "verl.yaml"
    path.write_text(yaml.safe_dump(data | fields))
    return path


def launch_args(script: Path) -> list[str]:
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    args = shlex.split(text.split("set -euo pipefail", 1)[1].replace("\\\n", " "))  # one command
    assert args[:3] == ["python", "-m", "verl.trainer.main_ppo"] and args[-1] == "$@"
    return args[3:-1]


def test_legible_train_with_backend_verl_writes_the_run_directory(tmp_path, monkeypatch):
    """The same YAML as a trl run with backend: verl: legible train writes verl's data, the agent loop's
    entry and launch.sh, and says it cannot run them here (no GPU; here, no verl either)."""
    from typer.testing import CliRunner

    from legible.cli import app

    monkeypatch.setattr(lv_launch, "_local_gpus", lambda: 0)
    monkeypatch.delenv("NNODES", raising=False)
    monkeypatch.setenv("GPUS_PER_NODE", "4")
    config, out = verl_run_config(tmp_path), tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(out), "--", "trainer.val_before_train=false"])
    assert result.exit_code == 0, result.output
    assert "written, not run: " + ("there is no GPU" if HAS_VERL else "verl is not installed") in result.output
    import pandas as pd

    train, val = pd.read_parquet(out / "data/train.parquet"), pd.read_parquet(out / "data/val.parquet")
    assert len(train) + len(val) == 30 and set(train.data_source) == {"legible/gsm8k"}
    args = dict(a.split("=", 1) for a in launch_args(out / "launch.sh"))
    expected = {
        "actor_rollout_ref.model.path": "/models/qwen",
        "data.train_batch_size": "16",
        "actor_rollout_ref.actor.ppo_mini_batch_size": "16",
        "actor_rollout_ref.rollout.n": "4",
        "actor_rollout_ref.actor.optim.lr": "2e-06",
        "trainer.total_training_steps": "7",
        "trainer.nnodes": "1",
        "trainer.n_gpus_per_node": "4",
        "trainer.resume_mode": "disable",
        "data.train_files": str((out / "data/train.parquet").resolve()),
        "+reward.custom_reward_function.reward_kwargs.legible_config": str((out / "config.yaml").resolve()),
        "actor_rollout_ref.rollout.agent.agent_loop_config_path": str((out / "agent_loop.yaml").resolve()),
        "trainer.val_before_train": "false",  # what followed -- on the command line
    }
    assert {k: args.get(k) for k in expected} == expected
    # the config the reward and the agent loop read on every node is the run's own
    saved = lv.load_legible_config(out / "config.yaml")
    assert saved.backend == "verl" and saved.condition.name == "monitor+paraphrase" and saved.rl.group_size == 4
    (entry,) = yaml.safe_load((out / "agent_loop.yaml").read_text())
    assert entry["name"] == lv.AGENT_NAME and entry["legible_config"] == str((out / "config.yaml").resolve())
    again = CliRunner().invoke(app, ["train", str(config), "--out", str(out)])
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = CliRunner().invoke(app, ["train", str(config), "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "trainer.resume_mode=auto" in launch_args(out / "launch.sh")


def test_legible_train_runs_launch_sh_where_verl_and_a_gpu_are(tmp_path, monkeypatch):
    """With verl and a GPU present, legible train runs launch.sh and returns its exit code; here a
    stand-in ``python`` on PATH records the command verl would have received."""
    from typer.testing import CliRunner

    from legible.cli import app

    monkeypatch.setattr(lv_launch, "_verl_installed", lambda: True)
    monkeypatch.setattr(lv_launch, "_local_gpus", lambda: 2)
    monkeypatch.delenv("GPUS_PER_NODE", raising=False)
    monkeypatch.delenv("NNODES", raising=False)
    bin_dir, record = tmp_path / "bin", tmp_path / "argv.txt"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\nexit 3\n')
    (bin_dir / "python").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(verl_run_config(tmp_path)), "--out", str(out), "--", "x.y=1"])
    assert result.exit_code == 3, result.output  # verl's exit code is legible train's
    argv = record.read_text().splitlines()
    assert argv[:2] == ["-m", "verl.trainer.main_ppo"] and argv[2:] == launch_args(out / "launch.sh")
    assert "trainer.n_gpus_per_node=2" in argv and argv[-1] == "x.y=1"


BAD_VERL_RUNS = {
    "no model": ({"model": None}, {}, "model"),
    "face without a server": ({"condition": "monitor+face"}, {}, "LEGIBLE_FACE_URL"),
    "verl overrides on trl": ({"backend": "trl"}, {"extra": ["a=b"]}, "verl overrides"),
    "bad node count": ({}, {"env": {"NNODES": "two"}}, "$NNODES"),
}


@pytest.mark.parametrize("case", sorted(BAD_VERL_RUNS))
def test_legible_train_verl_bad_input_is_one_line(tmp_path, monkeypatch, case):
    from typer.testing import CliRunner

    from legible.cli import app

    monkeypatch.delenv(lv.FACE_URL_ENV, raising=False)
    fields, how, needle = BAD_VERL_RUNS[case]
    for name, value in how.get("env", {}).items():
        monkeypatch.setenv(name, value)
    config = verl_run_config(tmp_path, **{k: v for k, v in fields.items() if v is not None})
    if fields.get("model", "") is None:
        config.write_text("\n".join(line for line in config.read_text().splitlines() if not line.startswith("model")))
    args = ["train", str(config), "--out", str(tmp_path / "run")] + ["--", *how.get("extra", [])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("legible: error:")]
    assert len(errors) == 1 and needle in errors[0], result.output
    assert str(config) in errors[0] or needle.startswith("$")  # a field of the config, or the environment
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()  # checked before writing


def test_face_server_goes_into_the_agent_loop_entry(tmp_path, monkeypatch):
    monkeypatch.setenv(lv.FACE_URL_ENV, "http://face:8001/v1")
    cfg = load_config(verl_run_config(tmp_path, condition="monitor+face"))
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump()))
    lv.write_launch(cfg, out)
    (entry,) = yaml.safe_load((out / "agent_loop.yaml").read_text())
    assert entry["face_base_url"] == "http://face:8001/v1" and entry["face_model"] == "/models/qwen"


# --------------------------------------------------------------------------------------- with verl


def launch_overrides() -> list[str]:
    """The hydra overrides ``legible train`` writes for the shipped verl example on 2 nodes x 8 GPUs."""
    cfg = lv.load_legible_config(REPO / "configs/verl/legible-gsm8k.yaml")
    return lv.trainer_overrides(cfg, "/runs/legible", nnodes=2, gpus_per_node=8)


@verl_only
def test_launch_overrides_compose_and_validate_against_verl():
    import verl
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env
    from verl.trainer.main_ppo import validate_config
    from verl.trainer.ppo.utils import need_critic, need_reference_policy

    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer/config"), version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=launch_overrides())
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    assert cfg.reward.custom_reward_function.reward_kwargs.legible_config == "/runs/legible/config.yaml"
    assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == lv.AGENT_NAME
    # as main_ppo merges it for ray.init: verl's defaults plus legible's config path for every worker
    runtime_env = OmegaConf.merge(get_ppo_ray_runtime_env(cfg), cfg.ray_kwargs.ray_init.runtime_env)
    assert (
        runtime_env.env_vars.LEGIBLE_CONFIG == "/runs/legible/config.yaml"
        and "TOKENIZERS_PARALLELISM" in runtime_env.env_vars
    )
    example = lv.load_legible_config(REPO / "configs/verl/legible-gsm8k.yaml")
    assert cfg.actor_rollout_ref.rollout.response_length - 16 - 1 >= example.trl.max_cot_tokens
    # the settings every backend reads from rl:, as verl reads them
    assert cfg.data.train_batch_size == example.rl.prompts and cfg.actor_rollout_ref.rollout.n == example.rl.group_size
    assert cfg.actor_rollout_ref.actor.optim.lr == example.rl.lr
    assert cfg.trainer.total_training_steps == example.rl.steps
    assert cfg.actor_rollout_ref.model.path == example.model and cfg.trainer.nnodes == 2


@verl_only
def test_agent_loop_and_reward_inside_verl(tok, tmp_path, monkeypatch):
    """A prepared row read back by verl's RLHFDataset; the agent loop as verl builds it (hydra, from
    configs/verl/agent_loop.yaml) with a scripted server in place of vLLM; then verl's own post-processing
    and reward path: AgentLoopWorker pads the output and sends it to the naive reward manager, which calls
    compute_score through get_custom_reward_fn; and the v1 trainer's storage of the output."""
    import hydra
    import torch
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import (
        AgentLoopBase,
        AgentLoopOutput,
        AgentLoopWorker,
        DictConfigWrap,
        ToolListWrap,
        _agent_loop_registry,
    )
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict
    from verl.workers.rollout.replica import TokenOutput

    assert issubclass(lv.ShoggothFaceAgentLoop, AgentLoopBase)
    assert _agent_loop_registry[lv.AGENT_NAME] == {"_target_": "legible.train.verl.ShoggothFaceAgentLoop"}
    cfg_path = write_config(tmp_path, condition="monitor+paraphrase", rl={"ramp_steps": 10})
    monkeypatch.setenv(lv.CONFIG_ENV, str(cfg_path))  # what the launch script's runtime_env does
    scripted = ScriptedServer(tok)

    class ServerManager:  # verl's LLMServerClient.generate signature
        async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs) -> TokenOutput:
            out = await scripted(prompt_ids, sampling_params)
            return TokenOutput(token_ids=out.token_ids, log_probs=out.log_probs, extra_fields=out.extra_fields)

    rollout = {"prompt_length": 128, "response_length": 96, "name": "vllm"}
    trainer_cfg = OmegaConf.create({"actor_rollout_ref": {"rollout": rollout}})
    # a row as verl reads it: prepare writes the parquet file, verl's RLHFDataset reads it back
    source = tmp_path / "one.jsonl"
    worked = "Tom has 40 apples.\nHe gets 2 more.\n#### 99"  # two steps; 99 is what the Face will read
    source.write_text(json.dumps({"question": "Tom has 40 apples and gets 2 more. How many now?", "answer": worked}))
    paths = lv.prepare("gsm8k", tmp_path / "data", config=cfg_path, path=str(source), val=0)
    dataset = RLHFDataset([str(paths["train"])], tok, OmegaConf.create({"cache_dir": str(tmp_path / "cache")}))
    item = dataset[0]
    assert item["data_source"] == "legible/gsm8k" and item["raw_prompt"][0]["role"] == "user"
    # the sample's fields as the v1 trainer hands them to the agent loop (the tensor stays in the batch)
    kwargs = {k: v for k, v in item.items() if k != "dummy_tensor"} | {"uid": "u0", "global_steps": 5}
    reward_fn = {"path": "pkg://legible.train.verl", "name": "compute_score"}
    reward_fn["reward_kwargs"] = {"legible_config": str(cfg_path)}
    reward_cfg = OmegaConf.create({"reward": {"custom_reward_function": reward_fn}})

    async def episode():
        (entry,) = OmegaConf.load(REPO / "configs/verl/agent_loop.yaml")
        loop = hydra.utils.instantiate(
            entry,
            trainer_config=DictConfigWrap(trainer_cfg),
            server_manager=ServerManager(),
            tokenizer=tok,
            processor=None,
            hf_model_type=None,
            dataset_cls=None,
            data_config=DictConfigWrap(OmegaConf.create({})),
            tools=ToolListWrap([]),
        )
        out = await loop.run({"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True}, priority=0, **kwargs)
        manager = NaiveRewardManager(reward_cfg, tok, get_custom_reward_fn(reward_cfg))
        handle = SimpleNamespace(compute_score=SimpleNamespace(remote=manager.run_single))  # a RewardLoopWorker
        worker = AgentLoopWorker.__new__(AgentLoopWorker)  # the parts of it _agent_loop_postprocess uses
        worker.rollout_config = trainer_cfg.actor_rollout_ref.rollout
        worker.tokenizer, worker.processor, worker.mm_processor_kwargs = tok, None, {}
        worker.reward_loop_worker_handles, worker.distillation_enabled = [handle], False
        padded = [await worker._agent_loop_postprocess(out.model_copy(deep=True), False, **kwargs) for _ in range(2)]
        return out, worker._postprocess(padded)

    out, batch = asyncio.run(episode())
    assert isinstance(out, AgentLoopOutput) and len(scripted.calls) == 2
    assert scripted.calls[1]["text"].endswith(PARAPHRASE + "\nAnswer:")
    k = out.response_mask.index(0)
    assert out.response_mask == [1] * k + [0] * (len(out.response_ids) - k)
    assert out.extra_fields["legible"]["answer"] == "99" and out.extra_fields["legible"]["global_steps"] == 5
    assert out.extra_fields["min_global_steps"] == 4 and len(out.response_logprobs) == len(out.response_ids)
    # verl's v1 trainer (the default) stores each output as AgentLoopWorkerTQ does: as_dict, the sample's
    # fields, then one TensorDict for the batch
    fields = [out.as_dict() | kwargs for _ in range(2)]
    stored = list_of_dict_to_tensordict([f | {"loss_mask": f["response_mask"]} for f in fields])
    assert stored["loss_mask"][1].tolist() == out.response_mask
    assert stored["extra_fields"][1]["legible"]["paraphrase"] == PARAPHRASE

    n = len(out.response_ids)
    assert batch.batch["response_mask"][0].tolist() == out.response_mask + [0] * (96 - n)
    expected = 1.0 - 0.3 * 0.5 * 0.5  # right answer (from the paraphrase), one banned word in 2 steps, ramp 5/10
    assert batch.batch["rm_scores"][0, n - 1].item() == pytest.approx(expected)
    assert torch.count_nonzero(batch.batch["rm_scores"][0]) == 1
    assert batch.non_tensor_batch["acc"].tolist() == [1.0, 1.0]
    assert batch.non_tensor_batch["paraphrased_acc"].tolist() == [1.0, 1.0]
    assert set(batch.meta_info["reward_extra_keys"]) >= {"score", "acc", "term_outcome", "term_monitor", "pred"}


def test_compute_score_reports_the_cots_drift(monkeypatch):
    from legible.train.verl import compute_score

    monkeypatch.delenv(lv.CONFIG_ENV, raising=False)  # verl's own code may have exported one

    english = asyncio.run(compute_score("legible/gsm8k", "We add 2 and 3 to get 5.\nAnswer: 5", "5", {"problem": None}))
    soup = asyncio.run(compute_score("legible/gsm8k", "xq zzkw \u200bvv qqrt jjk.\nAnswer: 5", "5", {"problem": None}))
    assert english["drift_english_score"] > soup["drift_english_score"]
    assert soup["drift_odd_token_rate"] > english["drift_odd_token_rate"] == 0.0


def test_run_training_dispatches_backend_verl(tmp_path, monkeypatch):
    """The Python API takes every backend: run_training with backend: verl writes the run directory and
    returns launch's exit code, with hydra overrides passed through."""
    from legible.config import load_config
    from legible.train import run_training

    monkeypatch.setattr(lv_launch, "_local_gpus", lambda: 0)
    monkeypatch.delenv("NNODES", raising=False)
    cfg, out = load_config(verl_run_config(tmp_path)), tmp_path / "run"
    result = run_training(cfg, out, extra=["trainer.val_before_train=false"])
    assert result == {"backend": "verl", "exit_code": 0}
    assert "trainer.val_before_train=false" in launch_args(out / "launch.sh")
