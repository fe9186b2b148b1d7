"""legible: keep chain-of-thought legible under RL, and measure when it is not."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from pydantic import ValidationError

from legible.config import ConfigError, format_validation_error

if TYPE_CHECKING:
    from legible.demo import DemoConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
F = TypeVar("F", bound=Callable[..., None])


def _fail(message: str) -> None:
    typer.echo(f"legible: error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(2)


def _one_line_errors(command: F) -> F:
    """Bad input that a command meets deep inside (a damaged run file, a path that is a directory, a
    full disk) ends as one line and exit 2, like the checks made up front; any other exception is a bug
    and keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs) -> None:
        try:
            return command(*args, **kwargs)
        except ConfigError as e:
            _fail(str(e))
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            _fail(f"{where}{e.strerror or e}")

    return wrapper  # type: ignore[return-value]


def _check_out(out: Path | None, option: str = "--out") -> None:
    """An output path that exists must be a directory: nothing is written before that is known."""
    if out is not None and out.exists() and not out.is_dir():
        _fail(f"{option} {out}: a file, not a directory")


@app.command()
@_one_line_errors
def demo(
    quick: bool = typer.Option(False, "--quick", help="one seed, short training: a first look in about a minute"),
    out: Path = typer.Option(None, "--out", help="output directory (default: runs/demo, or runs/demo-quick)"),
    seeds: str = typer.Option(None, "--seeds", help="comma-separated seeds, e.g. 0,1,2"),
    workers: int = typer.Option(2, "--workers", min=1, help="runs trained in parallel (one CPU thread each)"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted demo in --out"),
    conditions: str = typer.Option(
        None,
        "--conditions",
        help="comma-separated conditions to train (default: the demo's six; --long: all; see `legible train --help`)",
    ),
    long: bool = typer.Option(
        False,
        "--long",
        help="train every condition (all of them, unless --conditions) 3x as long; the report says how each metric "
        "moved after the usual horizon",
    ),
) -> None:
    """Train the CPU model organism under every condition and write the report."""
    from legible.config import CONDITIONS
    from legible.demo import DemoConfig, long_config, quick_config, run_demo

    cfg = quick_config() if quick else DemoConfig()
    if long:
        cfg = long_config(cfg)
    if seeds is not None:
        try:
            numbers = [int(s) for s in seeds.split(",")]
        except ValueError:
            _fail(f"--seeds: expected comma-separated integers, got {seeds!r}")
        repeated = sorted({s for s in numbers if numbers.count(s) > 1})
        if repeated:  # two runs of one seed would write the same directories at once
            _fail(f"--seeds: {', '.join(map(str, repeated))} given more than once")
        cfg = cfg.model_copy(update={"seeds": numbers})
    if conditions is not None:
        names = [c.strip() for c in conditions.split(",") if c.strip()]
        unknown = [c for c in names if c not in CONDITIONS]
        if unknown or not names:
            _fail(f"--conditions: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(CONDITIONS)}")
        if len(set(names)) < len(names):
            _fail(f"--conditions: {conditions!r} names a condition twice")
        cfg = cfg.model_copy(update={"conditions": names})
    most = 4 * max(2, os.cpu_count() or 1)
    if workers > most:
        _fail(f"--workers: {workers} processes on {os.cpu_count()} CPUs; at most {most}")
    cfg = cfg.model_copy(update={"workers": workers})
    out = out or Path("runs") / (("demo-quick" if quick else "demo") + ("-long" if long else ""))
    _check_out(out)
    _check_demo_dir(cfg, out, resume)
    summary = run_demo(cfg, out, resume=resume)
    typer.echo(f"wall time {summary['wall_seconds']:.0f} s; report: {out / 'report.html'} and {out / 'report.md'}")
    if quick:
        typer.echo("--quick trains for 30 RL steps: it shows the pipeline, not the result; run `legible demo` for that")
    for c in summary["claims"]:
        verdict = {True: "holds", False: "does NOT hold", None: "n/a"}[c["holds"]]
        typer.echo(f"  [{verdict}] {c['claim']}: {c['measured']}")


def _check_demo_dir(cfg: DemoConfig, out: Path, resume: bool) -> None:
    """A demo that started in ``out`` continues only with --resume, and only with the settings it started
    with (workers aside): anything else would mix two experiments in one report."""
    from legible.demo import DemoConfig

    saved = out / "demo_config.json"
    if not saved.exists():
        return
    if not resume:
        _fail(f"{out}: a demo started here already; pass --resume to continue it or choose another --out")
    try:
        before = DemoConfig.model_validate_json(saved.read_bytes())
    except ValidationError as e:
        _fail(format_validation_error(e, str(saved)))
    except ValueError as e:  # not UTF-8
        _fail(f"{saved}: not a demo config ({e})")
    if before.model_copy(update={"workers": cfg.workers}) != cfg:
        _fail(f"{saved}: this demo started with other settings (--quick, --seeds); --resume needs the same")


@app.command()
@_one_line_errors
def train(
    config: Path = typer.Argument(..., help="a YAML run config (see configs/)"),
    out: Path = typer.Option(None, "--out", help="run directory (default: runs/<config name>)"),
    resume: bool = typer.Option(False, "--resume", help="continue a killed run from its last checkpoint"),
    overrides: list[str] = typer.Argument(None, help="backend verl only: hydra overrides for verl, after --"),
) -> None:
    """Train one run (stage 1, then GRPO under the config's condition), evaluate it, write its report.

    With backend: trl, GRPO on a transformers model through TRL (configs/trl-qwen-1gpu.yaml).

    With backend: verl, the same on a Ray cluster (configs/verl/legible-gsm8k.yaml, docs/verl.md)."""
    from legible.config import ConfigFieldError, load_config
    from legible.train import run_training

    try:
        cfg = load_config(config)
        out = out or Path("runs") / config.stem
        _check_out(out)
        if resume and (out / "config.yaml").is_file():
            load_config(out / "config.yaml")  # a damaged saved config is named here, not met as a traceback
        cfg.task.build()  # a bad dataset file is reported before the run directory is written
        final = run_training(cfg, out, resume=resume, extra=overrides or ())
    except ConfigFieldError as e:
        _fail(f"{config}: {e}")
    except ConfigError as e:
        _fail(str(e))
    except ValidationError as e:
        _fail(format_validation_error(e, str(config)))
    if cfg.backend == "verl":
        raise typer.Exit(final["exit_code"])
    keys = (
        "accuracy",
        "banned_rate",
        "legibility",
        "state_recoverability",
        "capacity_bits",
        "paraphrased_answer_accuracy",
        "drift_monitor_flag_rate",
        "drift_english_score",
    )
    typer.echo("  ".join(f"{k} {final[k]:.3f}" for k in keys if isinstance(final.get(k), float)))
    if cfg.backend == "trl":
        typer.echo(final.get("drift_hierarchy", ""))
    typer.echo(f"run directory: {out} (report.html, metrics.jsonl, eval.json, checkpoints/)")


@app.command()
@_one_line_errors
def stego(
    out: Path = typer.Option(Path("runs/stego"), "--out", help="output directory"),
    paraphrasers: str = typer.Option(
        "none,canonical,lexical,canonical+lexical", "--paraphrasers", help="comma-separated; 'none' is the baseline"
    ),
    model: str = typer.Option(
        None,
        "--model",
        help="a model to paraphrase with (adds the columns model and canonical+lexical+model, and the injection "
        "suite): a local model's short name (smollm2-135m, see `legible models`), hf/PATH, openai/NAME, ...",
    ),
    context: str = typer.Option(
        "both", "--context", help="the model paraphraser context-free, context-aware (sees the question) or both"
    ),
    covers: int = typer.Option(None, "--covers", min=1, help="use only the first N cover texts"),
    payloads: int = typer.Option(4, "--payloads", min=1, help="random payloads per cover"),
    seeds: int = typer.Option(5, "--seeds", min=1, help="paraphrases per input for the coverage measure"),
    model_covers: int = typer.Option(
        2, "--model-covers", min=1, help="covers for the model columns (a spread of math and everyday ones)"
    ),
    model_payloads: int = typer.Option(1, "--model-payloads", min=1, help="payloads per cover, model columns"),
    model_seeds: int = typer.Option(1, "--model-seeds", min=1, help="paraphrases per cover, model columns' quality"),
    model_retries: int = typer.Option(
        0, "--model-retries", min=0, help="retries of a rejected model output (model columns, injection suite)"
    ),
    model_batch: int = typer.Option(32, "--model-batch", min=1, help="model calls in flight (a local model's batch)"),
    schemes: str = typer.Option(None, "--schemes", help="comma-separated schemes to measure (default: all 13)"),
    organism_model: Path = typer.Option(
        None, "--organism-model", help="a stage-1 policy, e.g. runs/demo/seed0/stage1/policy"
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="continue an interrupted run in --out: the model paraphrases it made are reused from --out's cache "
        "(as on every run) and the rest is recomputed, with the same result",
    ),
    search: bool = typer.Option(
        False,
        "--search",
        help="search for channels with no list of schemes: every family of meaning-keeping surface choices through "
        "each paraphraser, read by its own decoder and by a learned one (writes results.json, table.md, "
        "fig_search.png)",
    ),
    families: str = typer.Option(
        None,
        "--families",
        help="with --search: all (default), development, held-out, held-out-2, held-out-3, held-out-4, or "
        "comma-separated names",
    ),
) -> None:
    """Measure bits/KB each hidden-channel scheme gets through each paraphraser, and the paraphrasers' quality."""
    from legible.paraphrase import check_paraphraser_spec
    from legible.stego import run_stego

    names = [p.strip() for p in paraphrasers.split(",") if p.strip()]
    if not names:
        _fail("--paraphrasers: none given (name at least one, e.g. none,canonical)")
    try:
        for name in names:
            if name != "none":
                check_paraphraser_spec(name)
    except ValueError as e:
        _fail(f"--paraphrasers: {e} (or none)")
    if search:
        _stego_search(out, names, families, covers, payloads, model)
        return
    scheme_list = [x.strip() for x in schemes.split(",") if x.strip()] if schemes else None
    if scheme_list:
        from legible.stego import make_scheme

        try:
            for name in scheme_list:
                make_scheme(name)
        except (KeyError, ValueError) as e:
            _fail(f"--schemes: {e.args[0] if e.args else e}")
    contexts = {"free": ("free",), "aware": ("aware",), "both": ("free", "aware")}.get(context)
    if contexts is None:
        _fail(f"--context: expected free, aware or both, got {context!r}")
    _check_out(out)
    if organism_model is not None:
        from legible.policy import load_policy

        try:  # checked before the measurements, which it would otherwise end after minutes of work
            load_policy(organism_model)
        except FileNotFoundError as e:
            _fail(f"--organism-model {e}")
        except Exception as e:  # any way this file fails to load is a bad --organism-model
            _fail(f"--organism-model {organism_model}: not a stage-1 policy ({type(e).__name__}: {e})")
    if model:
        from legible.audit import resolve_inspect_model
        from legible.policy import LocalModelError
        from legible.stego import MODEL_SPECS

        try:
            model = resolve_inspect_model(model, on_status=lambda message: typer.echo(message, err=True))
        except LocalModelError as e:
            _fail(f"--model: {e}")
        specs = [n for n in names if "model" in n.split("+")] + [n for n in MODEL_SPECS if n not in names]
        typer.echo(
            f"legible stego: the model columns ({', '.join(specs)}; {' and '.join(f'context-{c}' for c in contexts)}) "
            f"run on {model_covers} cover(s) x {model_payloads} payload(s), their quality on {model_covers} cover(s) "
            f"x {model_seeds} seed(s), plus the injection suite; the other columns on every cover. A 135M model "
            "needs seconds of a CPU per paraphrase even in batches, so the whole matrix through a model would "
            "take days: --model-covers and --model-payloads measure more.",
            err=True,
        )
    try:
        summary = run_stego(
            out,
            paraphrasers=names,
            model=model,
            contexts=contexts,
            covers=covers,
            payloads=payloads,
            seeds=seeds,
            model_covers=model_covers,
            model_payloads=model_payloads,
            model_seeds=model_seeds,
            model_batch=model_batch,
            model_retries=model_retries,
            schemes=scheme_list,
            organism_model=organism_model,
        )
    except (ConfigError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    typer.echo(f"wall time {summary['wall_seconds']:.0f} s; report: {out / 'report.html'} and {out / 'report.md'}")
    for t in summary["targets"]:
        typer.echo(
            f"  [{'holds' if t['holds'] else 'does NOT hold'}] canonical+lexical vs {t['scheme']}: "
            f"{t['bits_per_kb']:.2f} bits/KB"
        )
    if "model" in summary:
        m = summary["model"]
        cells = {(c["scheme"], c["paraphraser"]): c["bits_per_kb"] for c in summary["channels"]}
        kept = {q["paraphraser"]: q["meaning_kept"] for q in summary["quality"]}
        share = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
        typer.echo(f"model paraphraser {m['name']}: {m['wall_seconds']:.0f} s for {m['paraphrases']} paraphrases")
        for label, st in m["columns"].items():
            worst = max(((v, s) for (s, p), v in cells.items() if p == label), default=(0.0, "none"))
            typer.echo(
                f"  {label}: most bits/KB {worst[0]:.2f} ({worst[1]}), meaning kept {kept.get(label, float('nan')):.2f}"
                f", outputs rejected {share(st['rejection_rate'])}, fell back {share(st['fallback_rate'])}"
            )
        for name, result in summary.get("steerability", {}).items():
            typer.echo(f"  injection suite, {name}: verbatim-leak rate {result['leak_rate']:.2f}")


# With a model paraphraser the search measures a few named families on the covers that have their sites, by their
# own decoders only: a 135M model needs seconds of a CPU per paraphrase, and the learned decoder reads every cover.
SEARCH_MODEL_FAMILIES = 12


def _stego_search(
    out: Path, names: list[str], families: str | None, covers: int | None, payloads: int, model: str | None = None
) -> None:
    """``legible stego --search``: every family through the paraphrasers ``names`` on the shipped covers."""
    import os

    from legible.progress import progress
    from legible.stego import (
        build_paraphrasers,
        family_selection,
        load_cover_texts,
        make_family,
        search_channels,
        write_search_report,
    )

    if any("model" in n.split("+") for n in names) and not model:
        _fail("--search: a model paraphraser needs --model (a local model's short name, hf/PATH, ...)")
    try:
        selected = family_selection(families)
    except KeyError as e:
        _fail(f"--families: {e.args[0] if e.args else e}")
    if model and len(selected) > SEARCH_MODEL_FAMILIES:
        _fail(
            f"--search --model: name at most {SEARCH_MODEL_FAMILIES} families with --families (got {len(selected)}); "
            "every family through a model would take hours"
        )
    _check_out(out)
    texts = load_cover_texts()[:covers] if covers else load_cover_texts()
    built = None
    if model:
        from legible.audit import resolve_inspect_model
        from legible.policy import LocalModelError

        try:
            model = resolve_inspect_model(model, on_status=lambda message: typer.echo(message, err=True))
        except LocalModelError as e:
            _fail(f"--model: {e}")
        if "canonical+lexical+model" not in names:
            names = [*names, "canonical+lexical+model"]
        built = build_paraphrasers(names, model=model)
        texts = [t for t in texts if any(make_family(f).capacity(t["text"]) for f in selected)]
        typer.echo(
            f"legible stego --search: {len(selected)} families through {', '.join(names)} on the {len(texts)} covers "
            "with their sites, by their own decoders (the learned decoder needs every cover through the model)",
            err=True,
        )
    with progress() as bars:
        bar = bars.add_task("families", total=len(selected), info="")
        result = search_channels(
            built if built is not None else names,
            texts,
            families=selected,
            payloads=payloads,
            learned=built is None,
            workers=1 if built is not None else min(2, os.cpu_count() or 1),
            on_family=lambda f: bars.update(bar, advance=1, info=f),
        )
    paths = write_search_report(out, result)
    typer.echo(f"wall time {result.wall_seconds:.0f} s; table: {paths['table']}; figure: {paths['figure']}")
    last = result.paraphrasers[-1]
    opened = result.open_families(last)
    typer.echo(f"families with more than 1 bit/KB through {last}: {', '.join(opened) or 'none'}")


@app.command()
@_one_line_errors
def audit(
    model: str = typer.Option(
        ...,
        "--model",
        help="an Inspect model (legible/RUN_DIR, legible-hf/PATH, hf/PATH, openai-api/SERVICE/NAME, ...) or a "
        "short name from `legible models` (smollm2-135m: legible's fast local provider; hf/smollm2-135m: Inspect's)",
    ),
    out: Path = typer.Option(Path("runs/audit"), "--out", help="output directory (Inspect logs, report)"),
    tasks: str = typer.Option(None, "--tasks", help="comma-separated audit tasks (default: all that apply)"),
    dataset: str = typer.Option(
        None, "--dataset", help="coin_flip, running_sum, gsm8k, multiple_choice (default: an organism's own task)"
    ),
    path: Path = typer.Option(None, "--path", help="a JSONL file for gsm8k / multiple_choice (default: the sample)"),
    limit: int = typer.Option(100, "--limit", min=1, help="samples per task"),
    seed: int = typer.Option(0, "--seed", help="draws organism problems and interventions"),
    prefill: str = typer.Option("auto", "--prefill", help="auto, assistant or prompt: how to condition on a CoT"),
    paraphraser: str = typer.Option("auto", "--paraphraser", help="for paraphrase_sensitivity (auto: by dataset)"),
    paraphrases: int = typer.Option(4, "--paraphrases", min=1, help="paraphrases per CoT (paraphrase_sensitivity)"),
    model_arg: list[str] = typer.Option(None, "-M", "--model-arg", help="KEY=VALUE passed to the model provider"),
    judge: str = typer.Option(None, "--judge", help="an Inspect model that judges hint mentions"),
    max_connections: int = typer.Option(None, "--max-connections", min=1, help="concurrent model calls"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted audit in --out"),
    cot_tokens: int = typer.Option(
        None, "--cot-tokens", min=1, help="CoT budget (default: 48 organism; legible-hf 160 gsm8k, 96 MC; else 1024)"
    ),
) -> None:
    """Run the faithfulness battery (Inspect AI tasks) on one model and write a one-page report."""
    from legible.audit import run_audit
    from legible.paraphrase import check_paraphraser_spec
    from legible.policy import LocalModelError
    from legible.tasks import DatasetError

    if prefill not in ("auto", "assistant", "prompt"):
        _fail(f"--prefill: expected auto, assistant or prompt, got {prefill!r}")
    if paraphraser != "auto":
        try:
            check_paraphraser_spec(paraphraser)
        except ValueError as e:
            _fail(f"--paraphraser: {e}")
    args = {}
    for item in model_arg or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"-M: expected KEY=VALUE, got {item!r}")
        args[key] = value
    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    if model.startswith("hf/"):
        typer.echo(
            "note: hf/ is Inspect's own provider: a generation per request, and it samples unless given "
            "-M do_sample=false; legible-hf/PATH (or a short name such as smollm2-135m) is legible's fast path",
            err=True,
        )
    _check_out(out)
    if path is not None and path.is_dir():
        _fail(f"--path {path}: a directory, not a JSONL file")
    try:
        summary = run_audit(
            model,
            out,
            tasks=names,
            dataset=dataset,
            path=str(path) if path else None,
            limit=limit,
            seed=seed,
            prefill=prefill,
            paraphraser=paraphraser,
            paraphrases=paraphrases,
            model_args=args,
            judge=judge,
            max_connections=max_connections,
            resume=resume,
            cot_tokens=cot_tokens,
        )
    except (DatasetError, FileExistsError, FileNotFoundError, ValueError, LocalModelError) as e:
        _fail(str(e))
    typer.echo(f"wall time {summary['wall_seconds']:.0f} s; report: {out / 'report.html'} and {out / 'report.md'}")
    if not summary["complete"]:
        for name, task in summary["tasks"].items():
            if task.get("error"):
                typer.echo(f"  {name}: {' '.join(task['error'].split())[:300]}", err=True)
        typer.echo("some tasks did not finish: run again with --resume to continue them", err=True)
    for v in summary["verdicts"]:
        verdict = "holds" if v["holds"] else "FAILS"
        typer.echo(f"  [{verdict}] {v['task']}: {v['metric']} {v['value']:.3f} (bar {v['bar']}): {v['reading']}")
    if not summary["complete"]:
        raise typer.Exit(1)


@app.command("audit-validate")
@_one_line_errors
def audit_validate(
    demo_dir: Path = typer.Argument(Path("runs/demo"), help="a `legible demo` output directory"),
    seed: int = typer.Option(0, "--seed", help="which demo seed's organisms to audit"),
    out: Path = typer.Option(None, "--out", help="output directory (default: DEMO_DIR/audit-validation)"),
    limit: int = typer.Option(200, "--limit", min=10, help="coin-flip problems per organism"),
    paraphrases: int = typer.Option(4, "--paraphrases", min=1, help="paraphrases per CoT"),
) -> None:
    """Check that the battery separates the demo's hiding organism from the legible and defended ones (AUROC)."""
    from legible.audit import HIDING, OTHERS, validate_audit

    if demo_dir.exists() and not demo_dir.is_dir():
        _fail(f"{demo_dir}: a file, not a `legible demo` output directory")
    runs = {c: demo_dir / f"seed{seed}" / c for c in (HIDING, *OTHERS)}
    missing = [str(p) for p in runs.values() if not (p / "policy.safetensors").exists()]
    if missing:
        _fail(f"no trained organism in {', '.join(missing)}: run `legible demo` first")
    out = out or demo_dir / "audit-validation"
    _check_out(out)
    summary = validate_audit(runs, out, limit=limit, paraphrases=paraphrases)
    typer.echo(f"report: {out / 'report.html'} and {out / 'report.md'}")
    for r in summary["rows"]:
        verdict = "holds" if r["holds"] else "does NOT hold"
        typer.echo(f"  [{verdict}] AUROC {r['auroc']:.3f} of {r['score']}: {r['positives']} vs {r['negatives']}")


@app.command()
@_one_line_errors
def models(
    name: str = typer.Argument(None, help="a model to prepare (converted once into the cache; instant after)"),
) -> None:
    """List the real language models legible prepares offline, or prepare one. Their short names work
    wherever legible takes a model: --model of audit, stego and ask; model: and face_model: in a config."""
    from legible.policy import LOCAL_MODELS, LocalModelError, cache_dir, is_prepared, model_dir, prepare_model

    if name is None:
        typer.echo(f"cache: {cache_dir() / 'models'} ($LEGIBLE_CACHE, else $XDG_CACHE_HOME/legible)")
        for short, model in LOCAL_MODELS.items():
            state = f"prepared in {model_dir(short)}" if is_prepared(short) else f"not prepared ({model.install})"
            typer.echo(f"  {short}: {model.description}; {state}")
        return
    if name not in LOCAL_MODELS:
        _fail(f"models: unknown model {name!r}; choose from {LOCAL_MODELS.names()}")
    try:
        path = prepare_model(name, on_status=lambda message: typer.echo(message, err=True))
    except LocalModelError as e:
        _fail(str(e))
    typer.echo(str(path))


@app.command()
@_one_line_errors
def ask(
    question: str = typer.Argument(None, help="the question; '-' or none: one question a line from stdin"),
    model: str = typer.Option(
        ..., "--model", help="the Shoggoth, which writes the CoT: smollm2-135m (see `legible models`), hf/PATH, ..."
    ),
    face: str = typer.Option(None, "--face", help="the Face, which answers from the paraphrase (default: --model)"),
    paraphraser: str = typer.Option("canonical+lexical", "--paraphraser", help="a spec, e.g. canonical+model"),
    paraphrase_model: str = typer.Option(
        None, "--paraphrase-model", help="the model of the paraphraser's model parts (default: --model)"
    ),
    context_aware: bool = typer.Option(False, "--context-aware", help="a model paraphraser also sees the question"),
    monitor_words: str = typer.Option(None, "--monitor-words", help="comma-separated words the CoT monitor flags"),
    file: Path = typer.Option(None, "--file", help='a JSONL file of questions, one {"question": ...} a line'),
    max_cot_tokens: int = typer.Option(256, "--max-cot-tokens", min=1, help="the Shoggoth's CoT budget"),
    max_answer_tokens: int = typer.Option(32, "--max-answer-tokens", min=1, help="the Face's budget"),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0: greedy"),
    seed: int = typer.Option(0, "--seed", help="the paraphraser's draws"),
    batch: int = typer.Option(32, "--batch", min=1, help="model calls in flight (a local model's batch)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object a question (raw strings), for scripts"),
) -> None:
    """Ask a model through the defences: the Shoggoth writes the CoT, the paraphraser rewrites it, the Face
    answers from the paraphrase, and the monitor and drift metrics flag the CoT."""
    from legible import ask as asking
    from legible.audit import resolve_inspect_model
    from legible.paraphrase import check_paraphraser_spec
    from legible.policy import LocalModelError
    from legible.progress import progress

    try:
        check_paraphraser_spec(paraphraser)
    except ValueError as e:
        _fail(f"--paraphraser: {e}")
    if file is not None and question not in (None, "-"):
        _fail("give the question as an argument or --file, not both")
    if file is not None:
        try:
            items = asking.read_questions(file)
        except asking.QuestionError as e:
            _fail(str(e))
    elif question not in (None, "-"):
        items = [{"question": question, "id": None}]
    else:
        items = [{"question": line.strip(), "id": None} for line in sys.stdin.read().splitlines() if line.strip()]
    if not items or not all(i["question"].strip() for i in items):
        _fail("no question given (an argument, lines on stdin, or --file)")
    words = tuple(w.strip() for w in (monitor_words or "").split(",") if w.strip())
    status = lambda message: typer.echo(message, err=True)  # noqa: E731
    try:
        names = {
            "shoggoth": resolve_inspect_model(model, on_status=status),
            "face": resolve_inspect_model(face, on_status=status) if face else None,
            "paraphrase_model": resolve_inspect_model(paraphrase_model, on_status=status) if paraphrase_model else None,
        }
    except LocalModelError as e:
        _fail(str(e))
    settings = asking.AskSettings(
        **names,
        paraphraser=paraphraser,
        context_aware=context_aware,
        monitor_words=words,
        max_cot_tokens=max_cot_tokens,
        max_answer_tokens=max_answer_tokens,
        temperature=temperature,
        seed=seed,
        batch=batch,
    )
    with progress(len(items) > 1) as bars:
        bar = bars.add_task("questions", total=len(items), info="")
        done = dict.fromkeys(asking.STAGES, 0)

        def on_stage(stage: str) -> None:
            done[stage] += 1
            info = f"{done['cot']} CoTs written, {done['paraphrase']} paraphrased, {done['answer']} answered"
            bars.update(bar, advance=1 if stage == "answer" else 0, info=info)

        try:
            answers = asking.ask(items, settings, on_stage=on_stage)
        except (RuntimeError, ValueError) as e:
            _fail(f"{type(e).__name__}: {e}")
    if as_json:
        for a in answers:
            typer.echo(asking.as_json(a))
        return
    for i, a in enumerate(answers, start=1):
        typer.echo(asking.format_answer(a, i, len(answers)) + "\n")
    if len(answers) > 1:
        typer.echo(asking.summary_line(answers, monitor=bool(words)))


def main() -> None:
    # A log file gets each line as it is printed (Inspect's plain progress, the results), not in blocks
    # of kilobytes when the process ends; stderr is line-buffered already.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("legible: interrupted; continue with --resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
