"""The report of a single ``legible train`` run, read from its run directory (metrics.jsonl,
eval.json, config.yaml; any of them may be missing). Each section of the page is written by one
function below, in page order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from legible.report._document import Block, Code, Heading, Image, Inline, Para, Pre, Table, write_pages
from legible.report._metrics import METRIC_DEFINITIONS
from legible.report._plots import plot_accuracy_by_n, plot_code_heatmap, plot_training_curves
from legible.report._sections import (
    CONDITION_DEFINITIONS,
    code_table,
    duration,
    examples_table,
    figure_block,
    fmt,
    metric_order,
    number,
    read_json,
    read_metrics,
)

# the tasks whose problems have N steps (the report names the range)
_STEP_TASKS = ("coin_flip", "running_sum", "coin_flip_text")


def write_run_report(run_dir: Path) -> tuple[Path, Path]:
    """Write ``run_dir/report.md`` and ``run_dir/report.html`` (and fig_*.png) for one run
    directory holding metrics.jsonl, eval.json and config.yaml; any of them may be missing."""
    run = _read_run(Path(run_dir))
    title = f"legible run report: {run.name}"
    blocks: list[Block] = [
        Heading(1, title),
        _overview(run),
        *_final_evaluation(run),
        *_figures(run),
        *_learned_code(run),
        *_examples(run),
        *_config(run),
    ]
    return write_pages(run.directory, title, blocks)


# --------------------------------------------------------------------------- inputs


@dataclass
class _Run:
    """What the page is made from."""

    directory: Path
    rows: list[dict]  # metrics.jsonl
    ev: dict  # eval.json ({} when missing)
    cfg: dict  # config.yaml, parsed ({} when missing or broken)
    cfg_text: str | None  # config.yaml verbatim

    @property
    def condition(self):
        return self.cfg.get("condition")

    @property
    def name(self) -> str:
        """The condition's name, or the run directory's when the config does not say."""
        condition = self.condition
        return str(condition.get("name")) if isinstance(condition, dict) else str(condition or self.directory.name)

    @property
    def task(self) -> dict:
        return self.cfg.get("task") if isinstance(self.cfg.get("task"), dict) else {}

    @property
    def rl(self) -> dict:
        return self.cfg.get("rl") if isinstance(self.cfg.get("rl"), dict) else {}

    @property
    def rl_rows(self) -> list[dict]:
        return [r for r in self.rows if r.get("phase", "rl") == "rl"]


def _read_run(run_dir: Path) -> _Run:
    cfg, cfg_text = _read_config(run_dir)
    return _Run(run_dir, read_metrics(run_dir / "metrics.jsonl"), read_json(run_dir / "eval.json") or {}, cfg, cfg_text)


def _read_config(run_dir: Path) -> tuple[dict, str | None]:
    path = run_dir / "config.yaml"
    if not path.exists():
        return {}, None
    text = path.read_text(encoding="utf-8")
    try:
        import yaml

        data = yaml.safe_load(text)
    except Exception:  # a broken config must not stop the report; it is shown verbatim below
        data = None
    return (data if isinstance(data, dict) else {}), text


# --------------------------------------------------------------------------- the page, section by section


def _overview(run: _Run) -> Para:
    """The run in one paragraph: condition, task, seed, steps, paraphraser, wall time, banned words."""
    cfg, task, rl, rl_rows = run.cfg, run.task, run.rl, run.rl_rows
    seconds = max((number(r.get("seconds")) or 0.0 for r in rl_rows), default=None)
    facts = [f"Run directory {run.directory.name}: condition {run.name}"]
    if task.get("name") in _STEP_TASKS:
        facts.append(f"task {task['name']} (N from {task.get('min_steps', '?')} to {task.get('max_steps', '?')})")
    elif task.get("name"):
        facts.append(f"task {task['name']}")
    if "seed" in cfg:
        facts.append(f"seed {cfg['seed']}")
    if rl_rows:
        facts.append(
            f"{max(int(r.get('step', 0)) for r in rl_rows)} RL steps logged"
            + (f" of {rl['steps']}" if rl.get("steps") is not None else "")
        )
    if cfg.get("paraphraser"):
        facts.append(f"paraphraser {cfg['paraphraser']}")
    if seconds:
        facts.append(f"RL wall time {duration(seconds)}")
    para: list[Inline] = ["; ".join(facts) + "."]
    words = cfg.get("monitor_words")
    if isinstance(words, list) and words:
        para += [" Banned words: ", *[[Code(str(w)), " "] for w in words]]
    condition = run.condition
    if isinstance(condition, dict) and condition.get("name") in CONDITION_DEFINITIONS:
        para.append(f" Condition: {CONDITION_DEFINITIONS[condition['name']]}.")
    return Para(para)


def _final_evaluation(run: _Run) -> list[Block]:
    scalars = {k: v for k, v in run.ev.items() if not isinstance(v, (dict, list))}
    if not scalars:
        return [
            Heading(2, "Final evaluation"),
            Para("No eval.json was found: the run has not finished its final evaluation."),
        ]
    table = Table(
        ["metric", "value", "definition"],
        [[Code(k), fmt(scalars[k], k), METRIC_DEFINITIONS.get(k, "")] for k in metric_order(scalars)],
    )
    return [Heading(2, "Final evaluation"), table]


def _figures(run: _Run) -> list[Block]:
    """Draw the figures (fig_*.png next to the page) the run has data for."""
    blocks: list[Block] = [Heading(2, "Figures")]
    if run.rl_rows:
        curves = plot_training_curves(
            {run.name: [run.rows]}, run.directory / "fig_training_curves.png", title=f"Training curves: {run.name}"
        )
        blocks.append(figure_block(curves, "training curves", "Accuracy and banned words per step during RL."))
    blocks += _drift(run)
    blocks += [figure for figure in (_accuracy_by_n(run), _learned_code_heatmap(run)) if figure is not None]
    if not run.rl_rows and not run.ev:
        blocks.append(Para("No data to plot yet."))
    return blocks


def _drift(run: _Run) -> list[Block]:
    """The drift of the CoT during RL, and where it stands at the last measurement on the hierarchy of legibility."""
    drift_rows = [r for r in run.rl_rows if r.get("kind") == "train" and r.get("drift_level") is not None]
    if not drift_rows:
        return []
    drift = plot_training_curves(
        {run.name: [drift_rows]},
        run.directory / "fig_drift.png",
        metrics=("drift_legible_score", "drift_odd_token_rate", "drift_monitor_flag_rate"),
        title=f"Drift of the CoT during RL: {run.name}",
    )
    figure = figure_block(
        drift,
        "drift curves",
        "Legibility (share of CoT words a reader knows; the English score for text), odd-token rate and "
        "monitor flag rate of the training batch, every few steps.",
    )
    from legible.monitor import hierarchy_level

    last = drift_rows[-1]
    level, text = hierarchy_level({k.removeprefix("drift_"): v for k, v in last.items() if k.startswith("drift_")})
    return [
        figure,
        Para(f"Where the CoT stands at step {last['step']} on the hierarchy of legibility: {text}"),
        *_level_and_monitor(run, drift_rows),
    ]


def _level_and_monitor(run: _Run, drift_rows: list[dict]) -> list[Block]:
    """The level beside the monitor's reading, at the first and last measured steps and in the final
    evaluation: a legible CoT that writes the monitored words stays on its level with a high flag rate; a
    falling flag rate at the same level means the words were replaced in legible text, a falling flag rate
    with a worse level that the reasoning moved into text a reader cannot follow."""
    ends = drift_rows[:1] + drift_rows[1:][-1:]  # the first and the last (once when they are one row)
    picks = [(f"step {r.get('step')}", r) for r in ends]
    if run.ev.get("drift_level") is not None:
        picks.append(("final evaluation", run.ev))
    rows = []
    for label, r in picks:
        legible = r.get("drift_legible_score", r.get("drift_english_score"))
        level = r.get("drift_level")
        rows.append(
            [
                label,
                "n/a" if level is None else str(level),
                fmt(legible),
                fmt(r.get("drift_odd_token_rate")),
                fmt(r.get("drift_monitor_flag_rate")),
                fmt(r.get("banned_rate")),
            ]
        )
    table = Table(
        ["when", "level", "legible score", "odd-token rate", "monitor flag rate", "banned words per step"], rows
    )
    note = Para(
        "The monitor's flag rate (share of CoTs with a monitored word) and the banned words per reasoning step "
        "stand beside the level and never place it: a CoT that writes the monitored words in plain English is "
        "legible. Under the monitor's pressure, a falling flag rate at the same level means the words were "
        "replaced in legible text; with a worse level, that the reasoning moved into text a reader cannot follow."
    )
    return [table, note]


def _accuracy_by_n(run: _Run) -> Image | None:
    if not run.ev.get("accuracy_by_n"):
        return None
    by_n = plot_accuracy_by_n(
        {"after RL": run.ev["accuracy_by_n"]},
        run.directory / "fig_accuracy_by_n.png",
        chance=0.5 if run.task.get("name", "coin_flip") == "coin_flip" else None,
    )
    return figure_block(by_n, "accuracy by number of steps", "Final held-out accuracy against the number of steps N.")


def _learned_code_heatmap(run: _Run) -> Image | None:
    if not run.ev.get("code"):
        return None
    heat = plot_code_heatmap(run.ev["code"], run.directory / "fig_learned_code.png", title=f"Learned code: {run.name}")
    return figure_block(
        heat, "learned code heatmap", "For the commonest words of the CoT, the share of their uses in each true state."
    )


def _learned_code(run: _Run) -> list[Block]:
    code = run.ev.get("code")
    return [
        Heading(2, "Learned code"),
        code_table(code) if code else Para("No word was used often enough to be tabulated."),
    ]


def _examples(run: _Run) -> list[Block]:
    ev = run.ev
    blocks: list[Block] = [Heading(2, "Examples")]
    if ev.get("examples_before"):
        blocks += [Para("Before RL (stage-1 model):"), examples_table(ev["examples_before"])]
    if ev.get("examples"):
        blocks += [Para("After RL:"), examples_table(ev["examples"])]
    if not ev.get("examples") and not ev.get("examples_before"):
        blocks.append(Para("No examples were recorded."))
    return blocks


def _config(run: _Run) -> list[Block]:
    if run.cfg_text is None:
        return []
    return [Heading(2, "Config"), Pre(run.cfg_text)]
