"""The audit on local transformers models: the ``legible-hf`` provider's engine (continuous batching,
prefix reuse, closed answer spaces from log-probs) checked against plain full forward passes on a tiny
random GPT-2, the whole battery through it with unparsable answers, progress lines in a log, and every
task on a real model (SmolLM2-135M-Instruct, the session fixture ``smollm2``; marked slow).

Nothing here asserts on wall-clock time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai")

import torch  # noqa: E402
from conftest_models import build_tiny_lm  # noqa: E402
from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, GenerateConfig, get_model  # noqa: E402

from legible.audit._engine import Engine, PrefixCache, Request, _Row, load_lm  # noqa: E402
from legible.audit._local import (
    LocalLMAPI,  # noqa: E402, F401  (registers the "legible-hf" provider)
    resolve_inspect_model,  # noqa: E402
)
from legible.audit._run import run_audit  # noqa: E402

PHRASES = ["We have 3 apples", "We have 12 pens and add", "The total is", "So the answer is 4", "We add 7 more"]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    """The tests' tiny GPT-2 with its random weights scaled up, so that logits clearly differ between tokens
    (at init they are close to uniform, and a float rounding could flip a greedy choice)."""
    from transformers import GPT2LMHeadModel

    path = build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))
    model = GPT2LMHeadModel.from_pretrained(path)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.25)
    model.save_pretrained(path)
    return path


@pytest.fixture()
def engine(tiny_lm) -> Engine:
    tokenizer, model = load_lm(str(tiny_lm))
    return Engine(tokenizer, model, max_batch=6)


def encode(engine: Engine, text: str) -> list[int]:
    return engine.tokenizer(text, add_special_tokens=False).input_ids


def reference(engine: Engine, ids: list[int], budget: int) -> tuple[list[int], list[float]]:
    """Greedy decoding written out with full forward passes and no cache, and each token's logprob."""
    ids, tokens, logprobs = list(ids), [], []
    with torch.no_grad():
        for _ in range(budget):
            lp = torch.log_softmax(engine.model(torch.tensor([ids])).logits[0, -1].float(), -1)
            token = int(lp.argmax())
            logprobs.append(float(lp[token]))
            if token in engine.eos_ids:
                break
            tokens.append(token)
            ids.append(token)
    return tokens, logprobs


# ---------------------------------------------------------------- the engine


def test_rows_joining_and_leaving_a_running_batch_decode_exactly_as_alone(engine):
    """Rows of different lengths join while others decode (a longer row shifts the batch right, the batch
    grows past its row capacity) and leave when done; each row's tokens and logprobs are those of
    greedy decoding with full forward passes."""
    requests = [
        Request(ids=encode(engine, " ".join(PHRASES[: 1 + i % 5]) + f" {i}"), max_new=3 + 2 * i, logprobs=True)
        for i in range(9)
    ]
    rows = [_Row(r, concurrent.futures.Future(), time.monotonic(), reused=0) for r in requests]
    waves = [rows[:2], rows[2:3], [], rows[3:8], [], rows[8:]]  # joiners per decode step
    with torch.inference_mode():
        for wave in waves:
            engine._serve([], wave)
            if engine.batch.rows:
                engine._decode()
        while engine.batch.rows:
            engine._decode()
    for request, row in zip(requests, rows):
        result = row.future.result()
        tokens, logprobs = reference(engine, request.ids, request.max_new)
        assert result.tokens == tokens
        assert [lp.logprob for lp in result.logprobs] == pytest.approx(logprobs[: len(result.logprobs)], abs=1e-4)
    assert engine.stats["largest_batch"] > 4 and engine.stats["row_steps"] < sum(r.max_new for r in requests)


def test_concurrent_requests_through_the_worker_match_the_reference_and_share_identical_ones(engine):
    requests = [Request(ids=encode(engine, f"{p} and {i}"), max_new=4 + i) for i, p in enumerate(PHRASES * 2)]
    futures = [engine.submit(r) for r in requests]
    again = engine.submit(Request(ids=list(requests[0].ids), max_new=requests[0].max_new))
    results = [f.result(timeout=60) for f in futures]
    for request, result in zip(requests, results):
        assert result.tokens == reference(engine, request.ids, request.max_new)[0]
    assert again.result(timeout=60) is results[0] and engine.stats["memo_hits"] == 1


def test_close_serves_what_was_submitted_then_ends_the_worker(engine):
    futures = [engine.submit(Request(ids=encode(engine, p), max_new=6)) for p in PHRASES]
    engine.close()
    assert all(f.done() and len(f.result().tokens) >= 1 for f in futures)
    assert engine._thread is None
    assert len(engine.submit(Request(ids=encode(engine, PHRASES[0]), max_new=7)).result(timeout=60).tokens) >= 1


def test_a_process_that_exits_with_a_live_worker_exits_cleanly(tiny_lm):
    """The worker idles for 10 s after its last request; the process must not abort when it ends first."""
    code = (
        "from legible.audit._engine import Engine, Request, load_lm\n"
        f"tok, model = load_lm({str(tiny_lm)!r})\n"
        "engine = Engine(tok, model)\n"
        "engine.submit(Request(ids=tok('a b', add_special_tokens=False).input_ids, max_new=3)).result(60)\n"
        "print('served')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "served" in done.stdout, done.stderr[-2000:]


def test_a_request_that_extends_a_finished_one_reuses_its_keys_and_values(engine, tiny_lm):
    first = Request(ids=encode(engine, "We have 12 pens and add 3 more, so"), max_new=12)
    done = engine.submit(first).result(timeout=60)
    follow = first.ids + done.tokens[:8] + encode(engine, " total")
    result = engine.submit(Request(ids=follow, max_new=5, logprobs=True)).result(timeout=60)
    assert result.reused_tokens >= len(first.ids)  # the prompt and the CoT written so far were not read again
    tokens, logprobs = reference(engine, follow, 5)
    assert result.tokens == tokens
    assert [lp.logprob for lp in result.logprobs] == pytest.approx(logprobs[: len(result.logprobs)], abs=1e-4)
    # and the same without any reuse
    tokenizer, model = load_lm(str(tiny_lm))
    cold = Engine(tokenizer, model, prefix_cache_mb=0)
    assert cold.submit(Request(ids=follow, max_new=5)).result(timeout=60).tokens == tokens


def test_choices_are_scored_from_log_probs_in_one_grouped_pass(engine):
    """Many forced answers at once (different prompts, some sharing a cached prefix) go through the model in
    few passes; each option's log-probability equals the one from a plain forward pass, multi-token ones
    included (the sum over their tokens)."""
    options = (" 1", " 2", " 3", " 12 pens")
    choices = tuple(tuple(encode(engine, o)) for o in options)
    assert len(choices[-1]) > 1
    engine.submit(Request(ids=encode(engine, "We have 3 apples and add 4 more"), max_new=6)).result(timeout=60)
    prompts = [encode(engine, f"{p}. The answer is") for p in PHRASES] + [
        encode(engine, "We have 3 apples and add 4 more, so the total is")
    ]
    passes = engine.stats["prefill_passes"]
    futures = [
        engine.submit(Request(ids=p, max_new=1, choices=choices, choice_texts=options, logprobs=True)) for p in prompts
    ]
    results = [f.result(timeout=60) for f in futures]
    assert engine.stats["prefill_passes"] - passes < len(prompts)
    for ids, result in zip(prompts, results):
        ranked = {a.token: a.logprob for a in result.logprobs[0].top_logprobs}
        assert set(ranked) == set(options)
        with torch.no_grad():
            for text, option in zip(options, choices):
                lp = torch.log_softmax(engine.model(torch.tensor([ids + list(option)])).logits[0].float(), -1)
                expected = sum(float(lp[len(ids) - 1 + i, t]) for i, t in enumerate(option))
                assert ranked[text] == pytest.approx(expected, abs=1e-4)
        assert result.text == max(ranked, key=ranked.get)


def test_stop_sequences_end_a_generation_and_are_not_returned(engine):
    ids = encode(engine, "We have 3 apples")
    tokens, _ = reference(engine, ids, 12)
    text = engine.tokenizer.decode(tokens)
    stop = text.strip()[2:4] if len(text.strip()) >= 4 else None
    if not stop or stop.isspace():
        pytest.skip("the tiny model's continuation has nothing to stop at")
    result = engine.submit(Request(ids=ids, max_new=12, stop_seqs=(stop,))).result(timeout=60)
    assert result.stop_reason == "stop" and stop not in result.text and text.startswith(result.text)


def test_sampling_with_a_seed_repeats_and_differs_from_greedy(engine):
    ids = encode(engine, "We have 12 pens and add")
    a = engine.submit(Request(ids=ids, max_new=10, temperature=1.5, seed=3)).result(timeout=60)
    b = engine.submit(Request(ids=ids, max_new=10, temperature=1.5, seed=3)).result(timeout=60)
    c = engine.submit(Request(ids=ids, max_new=10, temperature=1.5, seed=4)).result(timeout=60)
    assert a.tokens == b.tokens and a is not b  # sampled requests are never shared
    assert a.tokens != c.tokens or a.tokens != reference(engine, ids, 10)[0]


def test_the_prefix_cache_keeps_within_its_budget_and_drops_what_a_longer_entry_covers():
    cache = PrefixCache(max_bytes=100)
    kv = lambda n: [(torch.zeros(1, 1, n, 1), torch.zeros(1, 1, n, 1))]  # noqa: E731  (8 bytes a token)
    cache.add(torch.tensor([1, 2, 3]), kv(3))
    cache.add(torch.tensor([1, 2, 3, 4, 5]), kv(5))  # extends the first: replaces it
    assert len(cache.entries) == 1
    assert cache.lookup(torch.tensor([1, 2, 3, 9]))[0] == 3
    cache.add(torch.tensor([7, 8, 9, 10, 11, 12, 13, 14, 15]), kv(9))  # over budget: the oldest goes
    assert cache.bytes <= cache.max_bytes and cache.lookup(torch.tensor([1, 2]))[0] == 0


# ---------------------------------------------------------------- the provider


def test_the_provider_continues_prefills_and_answers_guided_choices(tiny_lm):
    model = get_model(f"legible-hf/{tiny_lm}", memoize=False)
    api = model.api
    user = ChatMessageUser(content="We have 3 apples and add 4 more.")
    out = asyncio.run(model.generate([user], config=GenerateConfig(temperature=0, max_tokens=6)))
    ids = api.encode([user])
    assert out.completion == api.tokenizer.decode(reference(api.engine, ids, 6)[0], skip_special_tokens=True)
    prefill = ChatMessageAssistant(content="So the total is")
    out = asyncio.run(
        model.generate(
            [user, prefill],
            config=GenerateConfig(max_tokens=1, logprobs=True, extra_body={"guided_choice": [" 7", " 8"]}),
        )
    )
    assert out.completion in (" 7", " 8") and len(out.choices[0].logprobs.content[0].top_logprobs) == 2
    text = api.tokenizer.decode(api.encode([user, prefill]))
    assert text.endswith("assistant: So the total is")  # the prefill is the start of the model's own turn


def test_bad_model_names_and_arguments_are_one_line_errors(tmp_path, tiny_lm):
    with pytest.raises(FileNotFoundError, match="not a transformers model directory"):
        get_model(f"legible-hf/{tmp_path}", memoize=False)
    with pytest.raises(ValueError, match="unknown model args nope"):
        get_model(f"legible-hf/{tiny_lm}", memoize=False, nope=1)
    with pytest.raises(ValueError, match="max_batch="):
        get_model(f"legible-hf/{tiny_lm}", memoize=False, max_batch="many")


def test_audit_model_names_resolve_to_the_fast_provider_or_stay_as_given():
    assert resolve_inspect_model("x/y") == "x/y"
    assert resolve_inspect_model("openai-api/vllm/m") == "openai-api/vllm/m"
    assert resolve_inspect_model("hf/some/dir") == "hf/some/dir"


# ---------------------------------------------------------------- the battery through it


@pytest.mark.parametrize("dataset", ["multiple_choice", "gsm8k"])
def test_the_battery_on_a_random_model_counts_unparsable_answers_and_shows_progress(
    tiny_lm, tmp_path, dataset, monkeypatch, capfd
):
    """A random model writes gibberish: its answers cannot be parsed (except where the closed answer space
    is scored), and that is an outcome of every task, in the summary and in the report; the log gets plain
    progress lines with the task, the samples done and the rate."""
    monkeypatch.setenv("LEGIBLE_PROGRESS", "plain")
    monkeypatch.setenv("LEGIBLE_PROGRESS_SECONDS", "0")
    out = tmp_path / "audit"
    summary = run_audit(f"legible-hf/{tiny_lm}", out, dataset=dataset, limit=2, cot_tokens=24)
    tasks = summary["tasks"]
    assert summary["complete"] and all(t["status"] == "success" and t["samples"] == 2 for t in tasks.values())
    assert all(t["prefill"] == "assistant" for t in tasks.values())
    if dataset == "gsm8k":  # an open answer: the gibberish after "Answer:" is no number
        assert tasks["early_answering"]["unparsable"]["mean"] > 0
        assert tasks["early_answering"]["answer_forced"]["mean"] == 1.0
    else:  # choice letters: every forced answer is one of them
        assert tasks["early_answering"]["unparsable"]["mean"] == 0
        assert tasks["paraphrase_sensitivity"]["distribution"] == "logprobs"
    json.dumps(summary)
    assert "unparsable answers" in (out / "report.md").read_text()
    err = capfd.readouterr().err
    assert f"early_answering ({dataset}): 2/2 (100%)" in err and "/s" in err


# ---------------------------------------------------------------- a real model


@pytest.mark.slow
def test_every_task_runs_on_smollm2(smollm2, tmp_path, monkeypatch):
    """SmolLM2-135M-Instruct through `legible audit`'s path: every task of both text batteries, two samples
    each, a short CoT budget. The real model's answers are letters and numbers (or unparsable: an outcome)."""
    monkeypatch.setenv("LEGIBLE_CACHE", str(smollm2.parent.parent))
    assert resolve_inspect_model("smollm2-135m") == "legible-hf/smollm2-135m"
    assert resolve_inspect_model("hf/smollm2-135m") == f"hf/{smollm2}"
    for dataset, n_tasks in (("multiple_choice", 5), ("gsm8k", 4)):
        out = tmp_path / dataset
        summary = run_audit("smollm2-135m", out, dataset=dataset, limit=2, cot_tokens=48, show_progress=False)
        tasks = summary["tasks"]
        assert summary["complete"] and len(tasks) == n_tasks, {k: t.get("error") for k, t in tasks.items()}
        assert all(t["status"] == "success" and t["samples"] == 2 for t in tasks.values())
        assert all(t["prefill"] == "assistant" for t in tasks.values())
        if dataset == "multiple_choice":
            assert tasks["paraphrase_sensitivity"]["distribution"] == "logprobs"
            assert 0 <= tasks["paraphrase_sensitivity"]["js_bits"]["mean"] <= 1
        assert (out / "report.html").exists() and summary["verdicts"]
    engine = get_model("legible-hf/smollm2-135m").api.engine
    assert engine.stats["memo_hits"] > 0 and engine.stats["reused_tokens"] > 0
