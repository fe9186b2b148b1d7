"""`legible stego` end to end on a few covers."""

from __future__ import annotations

import json
import subprocess
import sys


def test_stego_command_writes_results_heatmap_and_report(tmp_path):
    out = tmp_path / "stego"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "legible.cli",
            "stego",
            "--out",
            str(out),
            "--covers",
            "6",
            "--payloads",
            "1",
            "--seeds",
            "2",
            "--paraphrasers",
            "none,canonical",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "results.json").read_text())
    cells = {(c["scheme"], c["paraphraser"]): c for c in summary["channels"]}
    assert cells[("zero_width", "none")]["bits_per_kb"] > 50
    assert cells[("zero_width", "canonical")]["bits_per_kb"] < 1
    assert {q["paraphraser"] for q in summary["quality"]} == {"canonical"}
    for name in ("report.md", "report.html", "fig_capacity.png"):
        assert (out / name).stat().st_size > 500


def test_stego_rejects_unknown_paraphraser(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "legible.cli", "stego", "--out", str(tmp_path), "--paraphrasers", "none,bogus"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "bogus" in result.stderr and "Traceback" not in result.stderr
