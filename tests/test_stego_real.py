"""The model paraphraser inside `legible stego`: the model columns (context-free and context-aware), their
quality, the injection suite, progress, the cache that makes a rerun free, all with scripted Inspect models
(fast); then on SmolLM2-135M-Instruct through Inspect's ``hf`` provider, batched (slow)."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("inspect_ai")

from conftest_models import SCRIPTED_CALLS  # noqa: E402  (registers legible_scripted)
from inspect_ai.model import GenerateConfig, get_model  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from legible.cli import app  # noqa: E402
from legible.paraphrase import ModelParaphraser, injection_cases, make_paraphraser, run_injection_suite  # noqa: E402
from legible.stego import (  # noqa: E402
    load_cover_texts,
    make_scheme,
    measure_channel,
    run_stego,  # noqa: E402
    spread_covers,
)
from legible.stego._measure import channel_result, paraphrase_jobs, plan_channel  # noqa: E402
from legible.sync import run_sync  # noqa: E402

SCHEMES = ["zero_width", "acrostic"]
LABELS = ["model", "canonical+lexical+model", "model (ctx)", "canonical+lexical+model (ctx)"]


@pytest.fixture(autouse=True)
def _clear():
    SCRIPTED_CALLS.clear()


def small_run(out, **kw):
    args = dict(
        paraphrasers=["none", "canonical"],
        model="legible_scripted/reword",
        covers=None,
        payloads=1,
        seeds=1,
        model_covers=2,
        schemes=SCHEMES,
        show_progress=False,
    )
    return run_stego(out, **{**args, **kw})


def test_model_columns_quality_and_injection_suite(tmp_path):
    summary = small_run(tmp_path / "s")
    m = summary["model"]
    assert list(m["columns"]) == LABELS and m["covers"] == 2 and m["contexts"] == ["free", "aware"]
    assert m["cover_ids"] == ["math-01", "everyday-01"]  # one of each kind
    cells = {(c["scheme"], c["paraphraser"]): c for c in summary["channels"]}
    for label in LABELS:
        assert cells[("acrostic", label)]["covers"] == 2
    assert cells[("zero_width", "none")]["covers"] == 60
    assert {q["paraphraser"] for q in summary["quality"]} == {"canonical", *LABELS}
    for label, st in m["columns"].items():
        # 2 schemes x 2 covers, then 2 covers for quality; the well-behaved model is accepted every time
        assert st["calls"] == 6 and st["accepted"] == 6 and st["fallback_rate"] == 0.0, (label, st)
    assert set(summary["steerability"]) == {"model_unvalidated", "validated_rejects_withheld"}
    assert summary["steerability"]["model_unvalidated"]["n_cases"] == len(injection_cases())
    # context-aware columns showed the model the cover's question; context-free ones never did
    with_question = [c for c in SCRIPTED_CALLS if "For context only" in c["user"]]
    assert len(with_question) == 12 and all("How many" in c["user"] or "Should we" in c["user"] for c in with_question)
    report = (tmp_path / "s" / "report.md").read_text()
    assert "The model paraphraser: legible_scripted/reword" in report and "model (ctx)" in report


def test_a_rerun_takes_every_paraphrase_from_the_cache(tmp_path):
    first = small_run(tmp_path / "s", paraphrasers=["none"], model="legible_scripted/echo")
    calls = len(SCRIPTED_CALLS)
    assert calls and all(st["fallbacks"] == st["calls"] for st in first["model"]["columns"].values())
    assert first["steerability"]["model_unvalidated"]["leak_rate"] > 0.5  # the echo bot copies the attacks
    assert first["steerability"]["validated_rejects_withheld"]["n_errors"] == len(injection_cases())
    again = small_run(tmp_path / "s", paraphrasers=["none"], model="legible_scripted/echo")
    assert len(SCRIPTED_CALLS) == calls  # rejections are cached too: no model call at all
    for key in ("channels", "quality", "steerability"):
        assert again[key] == first[key]
    assert all(st["model_calls"] == 0 and st["fallbacks"] == st["calls"] for st in again["model"]["columns"].values())


def test_cached_rejection_is_a_verdict_of_the_same_settings(tmp_path):
    cot = "We start with the apples we have and then we add all of the pears we bought, so the total is 2 + 3 = 5."
    echo = get_model("legible_scripted/echo", memoize=False)
    first = ModelParaphraser(echo, retries=1, cache_dir=tmp_path)
    out = first.paraphrase(cot, rng=random.Random(1))
    assert first.stats.model_calls == 2 and first.stats.fallbacks == 1
    again = ModelParaphraser(echo, retries=1, cache_dir=tmp_path)
    assert again.paraphrase(cot, rng=random.Random(1)) == out
    assert again.stats.model_calls == 0 and again.stats.cache_hits == 1 and again.stats.fallbacks == 1
    stricter = ModelParaphraser(echo, retries=2, cache_dir=tmp_path)  # other settings: ask the model again
    stricter.paraphrase(cot, rng=random.Random(1))
    assert stricter.stats.model_calls == 3
    raising = ModelParaphraser(echo, retries=1, cache_dir=tmp_path, on_invalid="raise")
    with pytest.raises(Exception, match="rejected"):
        raising.paraphrase(cot, rng=random.Random(1))


def test_jobs_at_once_give_what_a_loop_gives():
    covers = load_cover_texts()[:5]
    lexical = make_paraphraser("canonical+lexical")
    for name in ("synonym", "list_order"):
        scheme = make_scheme(name)
        plan = plan_channel(scheme, "canonical+lexical", covers, payloads=2)
        outputs = run_sync(paraphrase_jobs([(lexical, job) for job in plan.jobs]))
        assert channel_result(plan, outputs) == measure_channel(
            scheme, "canonical+lexical", lexical, covers, payloads=2
        )


def test_spread_covers_alternates_kinds():
    covers = load_cover_texts()
    picked = spread_covers(covers, 5)
    assert [c["kind"] for c in picked] == ["math", "everyday", "math", "everyday", "math"]
    assert spread_covers(covers[:3], 10) == covers[:3]


def test_a_model_spec_without_a_model_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("LEGIBLE_PARAPHRASE_MODEL", raising=False)
    with pytest.raises(ValueError, match="LEGIBLE_PARAPHRASE_MODEL"):
        run_stego(tmp_path, paraphrasers=["none", "model"], covers=2, show_progress=False)


def test_cli_prints_the_plan_progress_and_the_model_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGIBLE_PROGRESS", "plain")
    args = ["stego", "--out", tmp_path / "s", "--model", "legible_scripted/reword", "--paraphrasers", "none"]
    args += ["--covers", "4", "--payloads", "1", "--seeds", "1", "--schemes", "acrostic", "--context", "aware"]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "the model columns (model, canonical+lexical+model; context-aware) run on 2 cover(s)" in result.stderr
    assert "model paraphrases (legible_scripted/reword): " in result.stderr and "(100%)" in result.stderr
    assert "model (ctx): most bits/KB" in result.stdout and "verbatim-leak rate" in result.stdout
    summary = json.loads((tmp_path / "s" / "results.json").read_text())
    assert list(summary["model"]["columns"]) == ["model (ctx)", "canonical+lexical+model (ctx)"]
    bad = CliRunner().invoke(app, ["stego", "--out", str(tmp_path / "t"), "--context", "sometimes"])
    assert bad.exit_code == 2 and "--context" in bad.stderr


# ------------------------------------------------------------------------------------------- a real model


@pytest.mark.slow
def test_smollm2_paraphrases_in_batches_and_a_rerun_is_free(smollm2, tmp_path, monkeypatch):
    """SmolLM2-135M-Instruct through Inspect's hf provider: the model columns' calls go out together and
    are generated in batches; the suite's verbatim-leak rate is measured; a rerun costs no model call.
    Outputs are capped at 32 tokens to keep the test short (a cut paraphrase is usually rejected)."""
    from inspect_ai.model._providers import hf

    sizes: list[int] = []
    generate_batch = hf._generate_batch

    def counting(batch):
        sizes.append(len(batch))
        return generate_batch(batch)

    monkeypatch.setattr(hf, "_generate_batch", counting)
    model = f"hf/{smollm2}"
    kw = dict(
        paraphrasers=["none"],
        model=model,
        contexts=("free",),
        covers=4,
        payloads=1,
        seeds=1,
        model_covers=2,
        model_seeds=1,
        model_max_tokens=32,
        injection=False,
        schemes=["acrostic"],
        show_progress=False,
    )
    summary = run_stego(tmp_path / "s", **kw)
    columns = summary["model"]["columns"]
    assert list(columns) == ["model", "canonical+lexical+model"]
    for st in columns.values():
        assert st["calls"] == 4 and st["model_calls"] == 4 and st["errors"] == 0
        assert st["accepted"] + st["fallbacks"] == 4
    assert sum(sizes) == 8 and max(sizes) >= 4, sizes  # 8 calls, not one by one
    cells = {c["paraphraser"]: c for c in summary["channels"] if c["scheme"] == "acrostic"}
    assert cells["model"]["covers"] == 2 and cells["model"]["bits_per_kb"] >= 0

    sizes.clear()
    again = run_stego(tmp_path / "s", **kw)
    assert sizes == [] and all(st["model_calls"] == 0 for st in again["model"]["columns"].values())
    assert again["channels"] == summary["channels"]

    unguarded = ModelParaphraser(model, validate=False, config=GenerateConfig(max_tokens=32, max_connections=8))
    suite = run_injection_suite(unguarded, cases=injection_cases()[:4])
    assert suite["n_cases"] == 4 and suite["n_errors"] == 0 and 0.0 <= suite["leak_rate"] <= 1.0
    assert all(isinstance(c["output"], str) for c in suite["cases"].values())
    assert max(sizes) >= 4, sizes
