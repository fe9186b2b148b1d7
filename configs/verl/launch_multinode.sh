#!/usr/bin/env bash
# legible on verl 0.9.1, several nodes under Ray. Written and checked without a GPU: the overrides that
# `legible train` writes into the run's launch.sh compose against verl 0.9.1's ppo_trainer config
# (tests/test_verl.py), but nothing here has trained; see docs/verl.md for what was and was not run.
#
# Every node: the same image with verl[vllm]==0.9.1 and legible (docs/verl.md, "Install"), the model, and
# the run directory ($OUT_DIR) on a shared filesystem: the reward and the agent loop on every node read
# its config.yaml.
#
#   node 0:          bash configs/verl/launch_multinode.sh head
#   nodes 1..N-1:    HEAD_ADDR=<node 0 ip>:6379 bash configs/verl/launch_multinode.sh worker
#   node 0:          NNODES=2 bash configs/verl/launch_multinode.sh train [more hydra overrides]
#   every node:      ray stop      (afterwards)
set -euo pipefail

REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LEGIBLE_CONFIG=${LEGIBLE_CONFIG:-$REPO/configs/verl/legible-gsm8k.yaml}
OUT_DIR=${OUT_DIR:-$REPO/runs/verl-$(basename "$LEGIBLE_CONFIG" .yaml)}
NNODES=${NNODES:-2}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
HEAD_ADDR=${HEAD_ADDR:-}
export NNODES GPUS_PER_NODE

case "${1:-}" in
  head)
    ray start --head --port=6379 --num-gpus="$GPUS_PER_NODE" --dashboard-host=0.0.0.0
    ;;
  worker)
    [ -n "$HEAD_ADDR" ] || { echo "set HEAD_ADDR=<head ip>:6379" >&2; exit 2; }
    ray start --address="$HEAD_ADDR" --num-gpus="$GPUS_PER_NODE"
    ;;
  train)
    shift
    # Writes $OUT_DIR (config.yaml, data/, agent_loop.yaml, launch.sh) and runs launch.sh, whose
    # main_ppo joins the cluster `ray start` made on this node. After a kill: RESUME=1 ... train.
    legible train "$LEGIBLE_CONFIG" --out "$OUT_DIR" ${RESUME:+--resume} -- "$@"
    ;;
  *)
    echo "usage: $0 head | worker | train [hydra overrides]" >&2
    exit 2
    ;;
esac
