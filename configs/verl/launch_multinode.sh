#!/usr/bin/env bash
# legible on verl 0.9.1, several nodes under Ray: GRPO with legible's reward (compute_score) and its
# Shoggoth/Face/paraphraser agent loop. Written and checked without a GPU: the overrides below compose
# against verl 0.9.1's ppo_trainer config (tests/test_verl.py), but this script has never trained; see
# docs/verl.md for what was and was not run.
#
# Every node: the same image with verl[vllm]==0.9.1 and legible (docs/verl.md, "Install"), the model, and
# this repository and $LEGIBLE_CONFIG at the same paths (a shared filesystem).
#
#   node 0:          bash configs/verl/launch_multinode.sh head
#   nodes 1..N-1:    HEAD_ADDR=<node 0 ip>:6379 bash configs/verl/launch_multinode.sh worker
#   node 0:          bash configs/verl/launch_multinode.sh prepare
#   node 0:          NNODES=2 bash configs/verl/launch_multinode.sh train [more hydra overrides]
#   every node:      ray stop      (afterwards)
set -euo pipefail

REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LEGIBLE_CONFIG=${LEGIBLE_CONFIG:-$REPO/configs/verl/legible-gsm8k.yaml}
TASK=${TASK:-gsm8k}
MODEL=${MODEL:-Qwen/Qwen2.5-1.5B-Instruct}   # a Hugging Face id, or a local directory every node has
DATA_DIR=${DATA_DIR:-$REPO/data/verl-$TASK}
OUT_DIR=${OUT_DIR:-$REPO/runs/verl-$TASK}
NNODES=${NNODES:-2}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
HEAD_ADDR=${HEAD_ADDR:-}
export LEGIBLE_CONFIG

case "${1:-}" in
  head)
    ray start --head --port=6379 --num-gpus="$GPUS_PER_NODE" --dashboard-host=0.0.0.0
    ;;
  worker)
    [ -n "$HEAD_ADDR" ] || { echo "set HEAD_ADDR=<head ip>:6379" >&2; exit 2; }
    ray start --address="$HEAD_ADDR" --num-gpus="$GPUS_PER_NODE"
    ;;
  prepare)
    python -m legible.train.verl prepare --task "$TASK" --config "$LEGIBLE_CONFIG" --out "$DATA_DIR"
    ;;
  train)
    shift
    # main_ppo's ray.init() joins the cluster `ray start` made on this node. Reward workers and agent-loop
    # workers run on every node: the legible config reaches them as a reward_kwargs entry and as
    # $LEGIBLE_CONFIG in the job's runtime_env.
    # BEGIN OVERRIDES (tests/test_verl.py composes these against verl's config)
    python -m verl.trainer.main_ppo \
      algorithm.adv_estimator=grpo \
      algorithm.use_kl_in_reward=false \
      data.train_files="$DATA_DIR/train.parquet" \
      data.val_files="$DATA_DIR/val.parquet" \
      data.train_batch_size=256 \
      data.max_prompt_length=512 \
      data.max_response_length=512 \
      data.filter_overlong_prompts=true \
      actor_rollout_ref.model.path="$MODEL" \
      actor_rollout_ref.model.use_remove_padding=true \
      actor_rollout_ref.model.enable_gradient_checkpointing=true \
      actor_rollout_ref.actor.optim.lr=1e-6 \
      actor_rollout_ref.actor.ppo_mini_batch_size=64 \
      actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8 \
      actor_rollout_ref.actor.use_kl_loss=false \
      actor_rollout_ref.actor.entropy_coeff=0 \
      actor_rollout_ref.rollout.name=vllm \
      actor_rollout_ref.rollout.n=8 \
      actor_rollout_ref.rollout.tensor_model_parallel_size=2 \
      actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
      actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=16 \
      actor_rollout_ref.rollout.agent.agent_loop_config_path="$REPO/configs/verl/agent_loop.yaml" \
      actor_rollout_ref.rollout.agent.default_agent_loop=legible_shoggoth_face \
      actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=16 \
      reward.custom_reward_function.path=pkg://legible.train.verl \
      reward.custom_reward_function.name=compute_score \
      +reward.custom_reward_function.reward_kwargs.legible_config="$LEGIBLE_CONFIG" \
      +ray_kwargs.ray_init.runtime_env.env_vars.LEGIBLE_CONFIG="$LEGIBLE_CONFIG" \
      trainer.nnodes="$NNODES" \
      trainer.n_gpus_per_node="$GPUS_PER_NODE" \
      trainer.logger='["console"]' \
      trainer.project_name=legible \
      trainer.experiment_name="$TASK-$(basename "$LEGIBLE_CONFIG" .yaml)" \
      trainer.total_training_steps=200 \
      trainer.save_freq=25 \
      trainer.test_freq=25 \
      trainer.rollout_data_dir="$OUT_DIR/rollouts" \
      trainer.default_local_dir="$OUT_DIR/checkpoints" \
      "$@"
    # END OVERRIDES
    ;;
  *)
    echo "usage: $0 head | worker | prepare | train [hydra overrides]" >&2
    exit 2
    ;;
esac
