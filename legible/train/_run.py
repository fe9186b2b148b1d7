"""One training run, end to end: stage 1 (or a given stage-1 model), GRPO, final evaluation,
report. Everything lands in one run directory; ``resume=True`` continues a killed run. A config with
``backend: trl`` goes to ``legible.train.trl`` instead (a transformers model trained through TRL), one with
``backend: verl`` to ``legible.train.verl`` (the same on a Ray cluster)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from legible.config import ConfigError, ConfigFieldError, RunConfig, save_config
from legible.paraphrase import make_paraphraser
from legible.policy import load_policy
from legible.progress import progress
from legible.train._common import MetricsLog
from legible.train._evaluate import evaluate_organism, example_episodes
from legible.train._grpo import train_grpo
from legible.train._pretrain import pretrain


def prepare_run_dir(cfg: RunConfig, out: Path, resume: bool) -> None:
    out = Path(out)
    saved = out / "config.yaml"
    if saved.exists() and not resume:
        raise ConfigError(f"{out}: a run already exists here; pass --resume to continue it or choose another --out")
    if resume and saved.exists():
        import yaml
        from pydantic import ValidationError

        try:  # compared as configs, so that defaults written out or left out read the same
            same = RunConfig.model_validate(yaml.safe_load(saved.read_text())) == cfg
        except (ValidationError, yaml.YAMLError):
            same = False
        if not same:
            raise ConfigError(
                f"{saved}: the config differs from the one this run started with; --resume needs the same"
            )
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, saved)


def run_training(
    cfg: RunConfig,
    out: Path,
    *,
    resume: bool = False,
    show_progress: bool = True,
    on_step: Callable[[str, int, int], None] | None = None,
    report: bool = True,
    extra: Sequence[str] = (),
) -> dict:
    """Train and evaluate on the config's backend; returns the final evaluation (also written to
    ``out/eval.json``). ``backend: verl`` writes the run directory and launches verl where verl and a GPU
    are (``legible.train.verl``); it returns ``{"backend": "verl", "exit_code": ...}``, and ``extra``
    passes hydra overrides to verl.

    ``on_step(stage, step, total)`` reports progress to a caller that draws its own bars."""
    out = Path(out)
    if cfg.backend == "verl":
        from legible.train.verl import train_verl

        return {"backend": "verl", "exit_code": train_verl(cfg, out, resume=resume, extra=extra)}
    if extra:
        raise ConfigFieldError(f"backend: extra arguments {extra[0]!r}... are verl overrides (backend verl)")
    prepare_run_dir(cfg, out, resume)
    if cfg.backend == "trl":
        return _run_trl(cfg, out, resume=resume, show_progress=show_progress, on_step=on_step, report=report)
    task = cfg.task.build()
    paraphraser = make_paraphraser(cfg.paraphraser, task)
    monitor = cfg.build_monitor(task)
    cond = cfg.condition
    measure = partial(
        evaluate_organism,
        task=task,
        paraphraser=paraphraser,
        monitor=monitor,
        paraphrase_in_loop=cond.paraphrase_in_loop,
        temperature=cfg.rl.temperature,
        step_paraphrase=cfg.build_step_paraphrase(task),
        grammar=cfg.legible_grammar(task),
    )

    with progress(show_progress) as bars:
        if cfg.init:
            try:
                stage1 = load_policy(cfg.init)
            except FileNotFoundError as e:
                raise ConfigError(f"init: {e}") from None
        elif (out / "stage1" / "policy.json").exists():  # written last by save_policy
            stage1 = load_policy(out / "stage1" / "policy")
        else:
            bar = bars.add_task("stage 1 (supervised)", total=cfg.pretrain.steps, info="")

            def pretrain_step(step: int, loss: float) -> None:
                bars.update(bar, completed=step, info=f"loss {loss:.3f}")
                if on_step:
                    on_step("pretrain", step, cfg.pretrain.steps)

            stage1 = pretrain(cfg, task, paraphraser, out / "stage1", resume=resume, on_step=pretrain_step)

        def evaluate(step, policy, face):
            return measure(policy, face, problems=cfg.rl.eval_problems, seed=cfg.eval.seed + 1, full=False) | {
                "step": step
            }

        bar = bars.add_task(f"RL: {cond.name}", total=cfg.rl.steps, info="")

        def rl_step(step: int, row: dict) -> None:
            bars.update(bar, completed=step, info=f"acc {row['accuracy']:.2f} banned {row['banned_rate']:.2f}")
            if on_step:
                on_step("rl", step, cfg.rl.steps)

        policy, face = train_grpo(
            cfg, task, paraphraser, stage1, out, resume=resume, evaluate=evaluate, on_step=rl_step
        )

    final = measure(policy, face, problems=cfg.eval.problems, seed=cfg.eval.seed)
    final["examples_before"] = example_episodes(
        stage1, task, paraphraser, seed=cfg.eval.seed, temperature=cfg.rl.temperature
    )
    final["condition"] = cond.name
    return _finish(cfg, out, final, report)


def _run_trl(
    cfg: RunConfig,
    out: Path,
    *,
    resume: bool,
    show_progress: bool,
    on_step: Callable[[str, int, int], None] | None,
    report: bool = True,
) -> dict:
    """backend: trl: GRPO on a transformers model (``legible.train.trl``); no stage 1."""
    try:
        from legible.train.trl import train_trl
    except ImportError as e:
        raise ConfigFieldError(
            f"backend: trl needs TRL and transformers ({e.name} is missing): pip install trl"
        ) from None

    with progress(show_progress) as bars:
        bar = bars.add_task(f"RL (trl): {cfg.condition.name}", total=cfg.rl.steps, info="")

        def rl_step(step: int, row: dict) -> None:
            shown = {"acc": row.get("accuracy"), "flagged": row.get("drift_monitor_flag_rate")}
            info = " ".join(f"{k} {v:.2f}" for k, v in shown.items() if isinstance(v, (int, float)))
            bars.update(bar, completed=step, info=info)
            if on_step:
                on_step("rl", step, cfg.rl.steps)

        final = train_trl(cfg, out, resume=resume, on_step=rl_step)
    return _finish(cfg, out, final, report)


def _finish(cfg: RunConfig, out: Path, final: dict, report: bool) -> dict:
    """The end of a run of either backend: eval.json, the final metrics row, the report."""
    (out / "eval.json").write_text(json.dumps(final, indent=1, default=_jsonable))
    scalars = {k: v for k, v in final.items() if isinstance(v, (int, float)) or v is None}
    MetricsLog(out / "metrics.jsonl").write({"phase": "final", "step": cfg.rl.steps, **scalars})
    if report:
        from legible.report import write_run_report

        write_run_report(out)
    return final


def _jsonable(value):
    if isinstance(value, float) and value != value:
        return None
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
