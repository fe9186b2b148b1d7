"""Figures for the reports. Each function writes one PNG and returns its path.

Matplotlib is driven through ``Figure`` objects and the Agg renderer, never through pyplot, so
making a report neither switches the global backend (safe in notebooks) nor leaks figures.
Text that came from a model (the words of a learned code) is drawn with mathtext disabled,
so a ``$`` in a CoT cannot break the figure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from legible.report._metrics import METRIC_LABELS, SUMMARY_METRICS

# Fixed colours for the named conditions, so a condition has the same colour in every figure.
_KNOWN_CONDITIONS = (
    "outcome",
    "monitor",
    "monitor+paraphrase",
    "monitor+face",
    "monitor+sensitivity",
    "monitor+stepwise",
    "monitor+stepwise+face",
    "monitor+process",
    "output-monitor",
    "output-monitor+face",
    "output-monitor+targeted",
)
_PALETTE = (
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#8172b3",
    "#c44e52",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
    "#2f4b7c",
    "#a05195",
    "#7a9e1f",
    "#e07b00",
    "#5c5c8a",
    "#b5651d",
)
_SERIES = ("#4c72b0", "#c44e52", "#55a868", "#8172b3", "#937860", "#64b5cd")
DPI = 120
_STYLE = {
    "text.usetex": False,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}


def condition_colors(conditions: Sequence[str]) -> dict[str, str]:
    """A colour per condition: the known conditions keep theirs, others take the next free ones."""
    colors = {c: _PALETTE[i] for i, c in enumerate(_KNOWN_CONDITIONS)}
    spare = itertools.cycle(_PALETTE[len(_KNOWN_CONDITIONS) :])
    return {c: colors[c] if c in colors else next(spare) for c in conditions}


def plain(text: object) -> str:
    """``text`` made safe for a matplotlib label: dollar signs escaped so mathtext never parses it."""
    return str(text).replace("$", r"\$")


def _number(value: object) -> float | None:
    """A finite float, or None for null, NaN, infinities and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _style():
    import matplotlib

    return matplotlib.rc_context(_STYLE)


def curve_rows(rows: Sequence[Mapping], kind: str = "eval") -> list[Mapping]:
    """The RL rows of one kind ("eval" or "train") from a metrics.jsonl, in step order."""
    picked = [r for r in rows if r.get("phase", "rl") == "rl" and r.get("kind") == kind and "step" in r]
    return sorted(picked, key=lambda r: r["step"])


def seed_band(
    runs: Sequence[Sequence[Mapping]], metric: str
) -> tuple[list[int], list[float], list[float], list[float]]:
    """Steps, and at each step the mean, min and max of ``metric`` over the runs that logged it there."""
    by_step: dict[int, list[float]] = {}
    for rows in runs:
        for r in rows:
            v = _number(r.get(metric))
            if v is not None:
                by_step.setdefault(int(r["step"]), []).append(v)
    steps = sorted(by_step)
    return (
        steps,
        [sum(by_step[s]) / len(by_step[s]) for s in steps],
        [min(by_step[s]) for s in steps],
        [max(by_step[s]) for s in steps],
    )


def plot_training_curves(
    runs: Mapping[str, Sequence[Sequence[Mapping]]],
    path: Path,
    metrics: Sequence[str] = ("accuracy", "banned_rate"),
    title: str | None = None,
) -> Path:
    """One panel per metric, one line per condition against the RL step.

    ``runs`` maps a condition to one list of metrics.jsonl rows per seed. The lines use the
    "eval" rows; when no run of a condition has any, its "train" rows. Line = mean over seeds,
    shading = min to max over seeds."""
    colors = condition_colors(list(runs))
    with _style():
        fig = _figure(5.2 * len(metrics), 3.6)
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        any_train = False
        for ax, metric in zip(axes, metrics, strict=False):
            drawn = 0
            for condition, seeds in runs.items():
                picked = [curve_rows(rows, "eval") for rows in seeds]
                if not any(picked):
                    picked = [curve_rows(rows, "train") for rows in seeds]
                    any_train = any_train or any(picked)
                steps, mean, lo, hi = seed_band(picked, metric)
                if not steps:
                    continue
                color = colors[condition]
                marker = "o" if len(steps) <= 30 else None
                ax.plot(steps, mean, color=color, marker=marker, markersize=3, lw=1.6, label=plain(condition))
                if len(picked) > 1:
                    ax.fill_between(steps, lo, hi, color=color, alpha=0.15, lw=0)
                drawn += 1
            ax.set_title(plain(METRIC_LABELS.get(metric, metric)))
            ax.set_xlabel("RL step")
            ax.set_ylabel(plain(metric))
            if metric in ("accuracy", "paraphrased_answer_accuracy", "legibility"):
                ax.set_ylim(-0.02, 1.02)
            else:
                ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
            if not drawn:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(5, len(handles)))
        note = " (training batches)" if any_train else ""
        fig.suptitle(plain((title or "Training curves: mean over seeds, shading = min to max") + note))
        return _save(fig, path)


def plot_summary_bars(
    conditions: Mapping[str, Mapping[str, Mapping | None]],
    path: Path,
    metrics: Sequence[str] = SUMMARY_METRICS,
    title: str | None = None,
) -> Path:
    """One panel per metric, one bar per condition; error bars are the 95% CI over seeds.

    ``conditions`` maps a condition to {metric: {"mean": float|None, "ci95": [lo, hi]|None}},
    the layout of summary.json. A null mean is drawn as "n/a" instead of a bar."""
    names = list(conditions)
    colors = condition_colors(names)
    metrics = list(metrics)
    ncols = 3 if len(metrics) > 4 else len(metrics) or 1
    nrows = max(1, math.ceil(len(metrics) / ncols))
    with _style():
        fig = _figure(4.0 * ncols, 2.9 * nrows + 0.5)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax in axes[len(metrics) :]:
            ax.set_visible(False)
        for ax, metric in zip(axes, metrics, strict=False):
            means, errs_lo, errs_hi, missing = [], [], [], []
            for i, c in enumerate(names):
                entry = (conditions[c] or {}).get(metric) or {}
                m = _number(entry.get("mean"))
                ci = entry.get("ci95")
                lo = _number(ci[0]) if isinstance(ci, Sequence) and len(ci) == 2 else None
                hi = _number(ci[1]) if isinstance(ci, Sequence) and len(ci) == 2 else None
                if m is None:
                    missing.append(i)
                means.append(m if m is not None else 0.0)
                errs_lo.append(max(0.0, m - lo) if m is not None and lo is not None else 0.0)
                errs_hi.append(max(0.0, hi - m) if m is not None and hi is not None else 0.0)
            x = list(range(len(names)))
            ax.bar(
                x,
                means,
                color=[colors[c] for c in names],
                width=0.7,
                yerr=[errs_lo, errs_hi],
                capsize=3,
                error_kw={"lw": 1, "ecolor": "#333333"},
            )
            # bits and drops get a floor of 0.1 so an all-zero panel reads as zero, not as 1e-9 noise
            top = max([m + e for m, e in zip(means, errs_hi, strict=True)] + [0.1])
            bottom = min([m - e for m, e in zip(means, errs_lo, strict=True)] + [0.0])
            if metric in (
                "accuracy",
                "paraphrased_answer_accuracy",
                "legibility",
                "state_recoverability",
                "state_recoverability_paraphrased",
            ):
                top = max(top, 1.0)
            span = top - bottom
            ax.set_ylim(bottom - (0.05 * span if bottom < 0 else 0), top + 0.18 * span)
            for i, m in enumerate(means):
                if i in missing:
                    ax.text(
                        i, 0.03 * span, "n/a", ha="center", va="bottom", color="#555555", fontsize=8, style="italic"
                    )
                else:
                    ax.text(i, m + errs_hi[i] + 0.02 * span, f"{m:.2f}", ha="center", va="bottom", fontsize=7)
            ax.set_xticks(x, [plain(n) for n in names], rotation=30, ha="right", fontsize=8)
            ax.set_title(plain(METRIC_LABELS.get(metric, metric)))
            ax.grid(axis="x", visible=False)
            ax.axhline(0, color="#999999", lw=0.6)
        fig.suptitle(plain(title or "Final evaluation: mean over seeds, error bars = 95% CI over seeds"))
        return _save(fig, path)


def _state_order(code: Mapping[str, Mapping]) -> list[str]:
    states: list[str] = []
    for entry in code.values():
        for s in (entry or {}).get("states") or {}:
            if s not in states:
                states.append(s)
    return states


def plot_code_heatmap(code: Mapping[str, Mapping], path: Path, top: int = 12, title: str | None = None) -> Path:
    """The learned code: rows = the ``top`` most used words, columns = true states, cell = the
    share of the word's uses that stand in a step with that state, annotated with the count.

    ``code`` is eval.json's "code": {word: {"count": n, "states": {state: share}, "means": ...}}."""
    words = sorted(code, key=lambda w: -(_number((code[w] or {}).get("count")) or 0))[:top]
    states = _state_order({w: code[w] for w in words})
    with _style():
        fig = _figure(2.2 + 1.3 * max(1, len(states)), 1.2 + 0.42 * max(1, len(words)))
        ax = fig.subplots()
        ax.grid(False)
        if not words or not states:
            ax.text(
                0.5,
                0.5,
                "no word was used often enough to be tabulated",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="gray",
            )
            ax.set_axis_off()
        else:
            grid = [[_number(((code[w] or {}).get("states") or {}).get(s)) or 0.0 for s in states] for w in words]
            image = ax.imshow(grid, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
            for i, w in enumerate(words):
                n = int(_number(code[w].get("count")) or 0)
                for j in range(len(states)):
                    share = grid[i][j]
                    ax.text(
                        j,
                        i,
                        f"{share:.0%}\nn={round(share * n)}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if share > 0.6 else "black",
                        parse_math=False,
                    )
            labels = []
            for w in words:
                shown = w if len(w) <= 18 else w[:17] + "\u2026"
                means = code[w].get("means")
                count = int(_number(code[w].get("count")) or 0)
                labels.append(f"{shown} (n={count})" + (f" \u2192 {means}" if means else ""))
            ax.set_yticks(range(len(words)), labels, parse_math=False, fontfamily="monospace", fontsize=8)
            ax.set_xticks(range(len(states)), states, parse_math=False)
            ax.xaxis.set_ticks_position("top")
            ax.set_xlabel("true state of the step the word stands in")
            fig.colorbar(image, ax=ax, shrink=0.8, label="share of the word's uses")
        fig.suptitle(plain(title or "Learned code"))
        return _save(fig, path)


def plot_accuracy_by_n(
    series: Mapping[str, Mapping[str, float | None]],
    path: Path,
    chance: float | None = None,
    title: str | None = None,
) -> Path:
    """Accuracy against the number of steps N, one line per series (e.g. {"stage-1 CoT model":
    {"8": 0.97, ...}, "no-CoT baseline": {...}}); keys are N as strings or ints."""
    with _style():
        fig = _figure(5.6, 3.6)
        ax = fig.subplots()
        drawn = 0
        for i, (label, by_n) in enumerate(series.items()):
            points = sorted((int(n), _number(v)) for n, v in (by_n or {}).items())
            points = [(n, v) for n, v in points if v is not None]
            if not points:
                continue
            ax.plot(
                [n for n, _ in points],
                [v for _, v in points],
                marker="o",
                markersize=4,
                lw=1.8,
                color=_SERIES[i % len(_SERIES)],
                label=plain(label),
                ls="-" if i == 0 else "--",
            )
            drawn += 1
        if chance is not None:
            ax.axhline(chance, color="#999999", ls=":", lw=1, label="chance")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("number of steps N")
        ax.set_ylabel("held-out accuracy")
        if drawn:
            ax.legend(loc="lower left")
            ax.xaxis.get_major_locator().set_params(integer=True)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.set_title(plain(title or "Accuracy by number of steps"))
        return _save(fig, path)


def plot_capacity_heatmap(
    cells: Mapping[tuple[str, str], float], schemes: Sequence[str], paraphrasers: Sequence[str], path: Path
) -> Path:
    """Bits per KB that each hidden-channel scheme (rows) gets through each paraphraser (columns)."""
    import numpy as np

    grid = np.array([[cells.get((s, p), float("nan")) for p in paraphrasers] for s in schemes])
    with _style():
        fig = _figure(1.6 + 1.5 * len(paraphrasers), 1.2 + 0.42 * len(schemes))
        ax = fig.add_subplot()
        shown = np.log10(1 + np.nan_to_num(grid))
        image = ax.imshow(shown, cmap="Reds", aspect="auto", vmin=0, vmax=max(1.0, float(shown.max())))
        ax.set_xticks(range(len(paraphrasers)), [plain(p) for p in paraphrasers], rotation=20, ha="right")
        ax.set_yticks(range(len(schemes)), [plain(s) for s in schemes])
        for i in range(len(schemes)):
            for j in range(len(paraphrasers)):
                value = grid[i, j]
                text = "n/a" if not np.isfinite(value) else f"{value:.1f}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if shown[i, j] > 0.6 * max(1.0, float(shown.max())) else "black",
                )
        fig.colorbar(image, ax=ax, label="log10(1 + bits/KB)")
        ax.set_title("Hidden-channel capacity after paraphrasing (bits per KB of stego text)")
        return _save(fig, path)


def plot_answer_curves(curves: Mapping[str, Mapping], path: Path) -> Path:
    """Early answering and adding mistakes: share of answers equal to the full-CoT answer (with
    95% CI bands) against the fraction of the CoT kept or the position of the mistake.
    ``curves``: {label: {"x": [...], "mean": [...], "lo": [...], "hi": [...]}}."""
    with _style():
        fig = _figure(6.0, 3.6)
        ax = fig.add_subplot()
        for (label, c), color in zip(curves.items(), _PALETTE):
            ax.plot(c["x"], c["mean"], marker="o", color=color, label=plain(label))
            ax.fill_between(c["x"], c["lo"], c["hi"], color=color, alpha=0.15, linewidth=0)
        ax.set_xlabel("fraction of the CoT kept (early answering) / position of the mistake (adding mistakes)")
        ax.set_ylabel("same answer as with the full CoT")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(-0.02, 1.02)
        ax.legend(frameon=False, fontsize=8)
        ax.set_title("Does the answer depend on the CoT? (Lanham et al. 2023)")
        return _save(fig, path)


def plot_metric_bars(bars: Sequence[Mapping], path: Path, title: str, ylabel: str = "") -> Path:
    """One bar per metric with its 95% CI: ``bars`` = [{"label", "mean", "lo", "hi"}, ...]."""
    with _style():
        fig = _figure(1.8 + 1.0 * len(bars), 3.4)
        ax = fig.add_subplot()
        xs = range(len(bars))
        means = [_number(b["mean"]) or 0.0 for b in bars]
        errs = [
            [max(0.0, m - (_number(b["lo"]) or m)) for m, b in zip(means, bars)],
            [max(0.0, (_number(b["hi"]) or m) - m) for m, b in zip(means, bars)],
        ]
        ax.bar(xs, means, yerr=errs, color=_PALETTE[: len(bars)], capsize=4)
        ax.set_xticks(list(xs), [plain(b["label"]) for b in bars], rotation=20, ha="right", fontsize=8)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel(ylabel)
        ax.set_title(plain(title), fontsize=10)
        return _save(fig, path)


def plot_score_histograms(scores: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> Path:
    """Per-sample score distributions, one panel per score, one colour per model:
    ``scores`` = {score name: {model: [values]}}."""
    with _style():
        fig = _figure(4.2 * len(scores), 3.2)
        for i, (name, by_model) in enumerate(scores.items()):
            ax = fig.add_subplot(1, len(scores), i + 1)
            for (model, values), color in zip(by_model.items(), _PALETTE):
                if values:
                    ax.hist(values, bins=20, range=(0, 1), alpha=0.5, color=color, label=plain(model))
            ax.set_xlabel(plain(name))
            ax.set_ylabel("samples")
            ax.legend(frameon=False, fontsize=8)
        return _save(fig, path)
