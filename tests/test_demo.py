"""`legible demo --quick` end to end, the summary's schema, and the claims logic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from legible.demo import DEMO_CONDITIONS as CONDITIONS
from legible.demo import SUMMARY_METRICS, check_claims
from legible.stats import mean_ci


@pytest.mark.slow
def test_quick_demo_writes_summary_report_and_runs(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "legible.cli", "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["wall_seconds"] > 0 and summary["seeds"] == [0] and summary["quick"] is True
    assert set(summary["conditions"]) == set(CONDITIONS)
    for metrics in summary["conditions"].values():
        for name in SUMMARY_METRICS:
            assert set(metrics[name]) >= {"mean", "ci95"}
        assert 0.0 <= metrics["accuracy"]["mean"] <= 1.0
    assert summary["no_cot"]["accuracy_by_n"] and summary["stage1"]["accuracy"] > 0.5
    assert len(summary["claims"]) == 9  # seven for the first five conditions, two for monitor+stepwise
    for name in ("report.html", "report.md", "fig_summary.png", "fig_training_curves.png"):
        assert (out / name).stat().st_size > 1000, name
    for cond in CONDITIONS:
        run = out / "seed0" / cond
        assert (run / "eval.json").exists() and (run / "policy.safetensors").exists()
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert any(r.get("kind") == "eval" for r in rows) and rows[-1]["phase"] == "final"
    assert (out / "seed0" / "monitor+face" / "face.safetensors").exists()
    again = subprocess.run(
        [sys.executable, "-m", "legible.cli", "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 2 and "--resume" in again.stderr


def test_mean_ci_uses_the_t_interval():
    ci = mean_ci([0.0, 1.0, 2.0])
    assert ci["mean"] == 1.0
    assert ci["ci95"] == pytest.approx([1 - 4.303 / 3**0.5, 1 + 4.303 / 3**0.5])
    assert mean_ci([0.5])["ci95"] is None and mean_ci([None, None])["mean"] is None


def _summary(**overrides):
    good = {
        "outcome": {"legibility": 0.98},
        "monitor": {
            "banned_rate": 0.02,
            "accuracy": 0.99,
            "state_recoverability": 0.99,
            "capacity_bits": 0.9,
            "paraphrased_answer_accuracy": 0.5,
        },
        "monitor+paraphrase": {
            "capacity_bits_paraphrased": 0.0,
            "state_recoverability_paraphrased": 0.97,
            "legibility": 0.99,
        },
        "monitor+face": {"capacity_bits_paraphrased": 0.01, "state_recoverability_paraphrased": 0.5, "legibility": 0.3},
        "monitor+sensitivity": {"capacity_bits": 0.0, "state_recoverability_paraphrased": 0.9, "legibility": 0.95},
    }
    for cond, values in overrides.items():
        good[cond] = {**good[cond], **values}
    return {"conditions": {c: {m: {"mean": v} for m, v in ms.items()} for c, ms in good.items()}}


def test_claims_hold_on_a_good_summary_and_fail_where_they_should():
    assert [c["holds"] for c in check_claims(_summary())] == [True] * 7
    bad = check_claims(_summary(monitor={"accuracy": 0.6}, **{"monitor+sensitivity": {"capacity_bits": 0.4}}))
    verdicts = {c["claim"]: c["holds"] for c in bad}
    assert verdicts["A CoT monitor teaches the model to hide the state from it, at no loss of accuracy"] is False
    assert [v for k, v in verdicts.items() if k.startswith("monitor+sensitivity")] == [False]
    leaky_face = check_claims(
        _summary(**{"monitor+face": {"state_recoverability_paraphrased": 0.9, "legibility": 0.3}})
    )
    assert [c["holds"] for c in leaky_face if c["claim"].startswith("monitor+face")] == [False]


def test_long_config_triples_training_and_the_report_reads_both_horizons(tmp_path):
    import json

    from legible.demo import _horizon, long_config, quick_config

    demo = long_config(quick_config().model_copy(update={"seeds": [0, 1], "conditions": ["monitor"]}))
    assert demo.base.rl.steps == 90 and demo.short_horizon == 30
    assert demo.base.rl.ramp_steps == quick_config().base.rl.ramp_steps  # the ramp is not stretched
    for seed, (short, end) in enumerate([(0.9, 0.2), (0.7, 0.0)]):
        run = tmp_path / f"seed{seed}" / "monitor"
        run.mkdir(parents=True)
        rows = [
            {"phase": "rl", "step": 20, "kind": "eval", "legibility": 1.0},
            {"phase": "rl", "step": 30, "kind": "eval", "legibility": short},
            {"phase": "rl", "step": 40, "kind": "train", "legibility": 0.5},
            {"phase": "rl", "step": 90, "kind": "eval", "legibility": end},
        ]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    horizon = _horizon(demo, tmp_path)
    assert horizon["short_step"] == 30 and horizon["end_step"] == 90
    assert horizon["conditions"]["monitor"]["legibility"] == pytest.approx({"short": 0.8, "end": 0.1})
    assert horizon["conditions"]["monitor"]["accuracy"] == {"short": None, "end": None}
