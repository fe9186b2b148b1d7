"""``legible train`` with ``backend: verl``: the run directory (verl's parquet files, the agent loop's entry,
``launch.sh`` with the whole ``main_ppo`` command) and, where verl and a GPU are, the launch."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

import yaml

from legible.config import ConfigError, ConfigFieldError, RunConfig
from legible.policy import resolve_model
from legible.train.verl._config import AGENT_NAME, CONFIG_ENV
from legible.train.verl._data import prepare

FACE_URL_ENV = "LEGIBLE_FACE_URL"


def trainer_overrides(
    cfg: RunConfig, out: str | os.PathLike[str], *, nnodes: int = 1, gpus_per_node: int = 1, resume: bool = False
) -> list[str]:
    """verl's hydra overrides (``python -m verl.trainer.main_ppo OVERRIDES``) that train ``cfg``, for a run
    directory ``out`` that holds ``config.yaml``, ``agent_loop.yaml`` and ``data/`` (``write_launch``).

    legible's reward and agent loop are plugged in, and the settings every backend reads from ``rl`` map onto
    verl's: prompts per step, group size, learning rate, KL to the initial model (k3, as the organism's),
    entropy bonus, temperature, steps, checkpoint and evaluation intervals. One update per batch (the PPO
    mini-batch is the whole batch), as in the other backends. Anything else is verl's own setting: append
    hydra overrides to change it (``legible train CONFIG -- key=value``)."""
    rl, t = cfg.rl, cfg.trl
    out = Path(out).resolve()
    config = out / "config.yaml"
    micro = t.micro_batch or 8
    return [
        "algorithm.adv_estimator=grpo",
        f"algorithm.norm_adv_by_std_in_grpo={str(rl.scale_advantages).lower()}",
        "algorithm.use_kl_in_reward=false",
        f"data.train_files={out / 'data' / 'train.parquet'}",
        f"data.val_files={out / 'data' / 'val.parquet'}",
        f"data.train_batch_size={rl.prompts}",
        "data.max_prompt_length=1024",
        # the CoT budget, the marker's line and the answer's budget must fit (see ShoggothFaceLoop)
        f"data.max_response_length={t.max_cot_tokens + t.max_answer_tokens + 2}",
        "data.filter_overlong_prompts=true",
        f"actor_rollout_ref.model.path={resolve_model(cfg.model)}",
        "actor_rollout_ref.model.use_remove_padding=true",
        f"actor_rollout_ref.model.enable_gradient_checkpointing={str(t.gradient_checkpointing).lower()}",
        f"actor_rollout_ref.actor.optim.lr={rl.lr}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={rl.prompts}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={micro}",
        f"actor_rollout_ref.actor.use_kl_loss={str(rl.kl_coef > 0).lower()}",
        f"actor_rollout_ref.actor.kl_loss_coef={rl.kl_coef}",
        "actor_rollout_ref.actor.kl_loss_type=low_var_kl",
        f"actor_rollout_ref.actor.entropy_coeff={rl.entropy_coef}",
        "actor_rollout_ref.rollout.name=vllm",
        f"actor_rollout_ref.rollout.n={rl.group_size}",
        f"actor_rollout_ref.rollout.temperature={rl.temperature}",
        "actor_rollout_ref.rollout.gpu_memory_utilization=0.6",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={micro}",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={out / 'agent_loop.yaml'}",
        f"actor_rollout_ref.rollout.agent.default_agent_loop={AGENT_NAME}",
        f"actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu={micro}",
        "reward.custom_reward_function.path=pkg://legible.train.verl",
        "reward.custom_reward_function.name=compute_score",
        f"+reward.custom_reward_function.reward_kwargs.legible_config={config}",
        f"+ray_kwargs.ray_init.runtime_env.env_vars.{CONFIG_ENV}={config}",
        f"trainer.nnodes={nnodes}",
        f"trainer.n_gpus_per_node={gpus_per_node}",
        "trainer.logger=[console]",
        "trainer.project_name=legible",
        f"trainer.experiment_name={out.name}",
        f"trainer.total_training_steps={rl.steps}",
        f"trainer.save_freq={rl.checkpoint_every}",
        f"trainer.test_freq={rl.eval_every}",
        f"trainer.rollout_data_dir={out / 'rollouts'}",
        f"trainer.default_local_dir={out / 'checkpoints'}",
        f"trainer.resume_mode={'auto' if resume else 'disable'}",
    ]


def write_launch(
    cfg: RunConfig,
    out: str | os.PathLike[str],
    *,
    nnodes: int = 1,
    gpus_per_node: int = 1,
    resume: bool = False,
    extra: Sequence[str] = (),
) -> Path:
    """Make ``out`` a verl run directory: the verl parquet files of ``cfg``'s task (``data/``), the agent loop's
    entry (``agent_loop.yaml``) and ``launch.sh``, the whole ``main_ppo`` command. ``out/config.yaml`` must
    already hold ``cfg`` (``legible.train._run.prepare_run_dir`` writes it). Returns the script's path."""
    out = Path(out).resolve()
    face_url = _check_launchable(cfg)
    loop = {"name": AGENT_NAME, "_target_": "legible.train.verl.ShoggothFaceAgentLoop",
            "legible_config": str(out / "config.yaml")}  # fmt: skip
    if face_url:
        loop |= {"face_base_url": face_url, "face_model": cfg.trl.face_model or cfg.model}
    (out / "agent_loop.yaml").write_text(yaml.safe_dump([loop], sort_keys=False))
    if not (out / "data" / "train.parquet").exists():
        prepare(cfg.task.name, out / "data", config=out / "config.yaml", seed=cfg.seed)
    overrides = trainer_overrides(cfg, out, nnodes=nnodes, gpus_per_node=gpus_per_node, resume=resume)
    body = " \\\n  ".join(shlex.quote(a) for a in [*overrides, *extra])
    script = out / "launch.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f"# Written by legible train: {cfg.condition.name} on {cfg.task.name}, {nnodes} node(s) x {gpus_per_node} "
        "GPU(s).\n# Needs verl[vllm]==0.9.1 and legible in one environment (docs/verl.md). On several nodes, start "
        "Ray on each\n# first (configs/verl/launch_multinode.sh head / worker) and run this on the head node.\n"
        "# More hydra overrides may follow: bash launch.sh key=value ...\n"
        "set -euo pipefail\n"
        f'python -m verl.trainer.main_ppo \\\n  {body} \\\n  "$@"\n'
    )
    script.chmod(0o755)
    return script


def train_verl(cfg: RunConfig, out: str | os.PathLike[str], *, resume: bool = False, extra: Sequence[str] = ()) -> int:
    """``legible train`` with ``backend: verl``: write the run directory (``write_launch``), then run
    ``launch.sh`` where verl and a GPU are present. Elsewhere, say so and stop: what was written is what a
    GPU machine runs. The cluster's shape comes from ``$NNODES`` and ``$GPUS_PER_NODE`` (default: this
    machine's GPUs). Returns the exit code."""
    import subprocess

    from legible.train._run import prepare_run_dir

    _check_launchable(cfg)  # before the run directory is written
    gpus = _local_gpus()
    nnodes, per_node = _count_env("NNODES", 1), _count_env("GPUS_PER_NODE", max(gpus, 1))
    prepare_run_dir(cfg, Path(out), resume)
    script = write_launch(cfg, out, nnodes=nnodes, gpus_per_node=per_node, resume=resume, extra=extra)
    installed = _verl_installed()
    if not installed or gpus == 0:
        missing = "there is no GPU" if installed else "verl is not installed"
        print(f"{script}: written, not run: {missing} here. On a GPU machine with verl: bash {script}")
        return 0
    print(f"running {script}")
    return subprocess.run(["bash", str(script)], check=False).returncode


def _check_launchable(cfg: RunConfig) -> str | None:
    """What a launch needs beyond a valid config: a model, and for a Face a server. Returns its URL."""
    if not isinstance(cfg.model, str):
        raise ConfigFieldError("model: backend verl needs a model path or id to launch (actor_rollout_ref.model.path)")
    if not cfg.condition.face:
        return None
    url = os.environ.get(FACE_URL_ENV)
    if not url:
        raise ConfigFieldError(
            f"condition: {cfg.condition.name}: verl's Face answers through a server: serve a copy of the "
            f"model (vllm serve) and set {FACE_URL_ENV}=http://HOST:PORT/v1 (docs/verl.md)"
        )
    return url


def _count_env(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"${name}: {value!r} is not a positive whole number")
    return int(value)


def _verl_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("verl") is not None


def _local_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0
