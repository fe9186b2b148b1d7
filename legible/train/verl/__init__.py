"""GRPO with the CoT defences on a cluster, through verl (Ray; FSDP or Megatron training; vLLM or SGLang
rollout servers).

Why verl: a model that does not fit the one-GPU TRL path (``legible.train.trl``) needs multi-node
training and rollout, which verl does. What legible adds is what it adds to TRL, at verl's two plug-in
points, with the same reward terms (``legible.reward``) and the same episode logic:

* ``compute_score``: verl's custom reward function (``reward.custom_reward_function.path=
  pkg://legible.train.verl``). It returns a dict: ``score`` (the weighted sum verl trains on) and, for
  verl's logs and rollout dumps, ``acc``, each term's unweighted value (``term_<name>``) and a few
  episode facts. ``data_source`` names the legible task (``legible/gsm8k``, ``legible/multiple_choice``,
  ``legible/program_output``, ``legible/text_game``; ``openai/gsm8k``, verl's own GSM8K files, too).
* ``ShoggothFaceAgentLoop``: a verl agent loop (``AgentLoopBase``), registered as
  ``legible_shoggoth_face`` through ``configs/verl/agent_loop.yaml``. Per episode: the policy (the
  Shoggoth) writes the CoT up to the answer marker; the paraphraser rewrites it; the answerer (the policy's
  own weights through verl's rollout server, or a separate Face behind an OpenAI-compatible server) writes
  the answer from the paraphrase. The response verl trains on is the policy's CoT tokens (``response_mask``
  1) followed by the answerer's tokens (``response_mask`` 0: in the sequence, out of the policy loss, as
  TRL's ``env_mask`` in ``legible.train.trl``); the CoT, paraphrase and each view's answer travel to
  ``compute_score`` in the output's ``extra_fields["legible"]`` (verl merges ``extra_fields`` into the
  reward's ``extra_info``). The episode itself is ``ShoggothFaceLoop``, free of verl, so it is tested
  against a scripted server without verl installed.
* ``prepare`` (``python -m legible.train.verl prepare --task gsm8k --out data/gsm8k``): legible problems as
  verl's parquet rows (``prompt`` chat list, ``data_source``, ``reward_model.ground_truth``,
  ``extra_info`` with the whole problem as JSON, which the text game's and multiple choice's scoring need).

Which terms and weights: one legible run config (YAML, ``backend: verl``) is the single source for the
reward and the agent loop, so they cannot disagree on the condition. It is named by
``reward.custom_reward_function.reward_kwargs.legible_config`` for the reward and by ``legible_config`` in
the agent loop's YAML entry, either falling back to ``$LEGIBLE_CONFIG``; with neither, the condition is
``outcome``. ``extra_info`` never sets weights: a dataset row should not choose the objective. Reward
terms, monitor, paraphraser, answer marker and budgets are read from the config's ``condition``,
``monitor_words``, ``paraphraser`` and ``trl`` sections (the text backends share them). Penalty terms ramp
in over ``rl.ramp_steps`` verl steps, as in the other backends.

What TRL does and this does not: the answerer is never trained on its own answers (``trl.train_answerer``
has no counterpart: verl's rollout servers only generate); a separate Face is frozen; the sensitivity term
uses the 0/1 disagreement of the two answers, not answer distributions; per-step drift metrics are not
computed (the per-episode values are in verl's rollout dumps, ``trainer.rollout_data_dir``).

verl is imported only when ``ShoggothFaceAgentLoop`` is first looked up (module ``__getattr__``), so the
reward, the episode and the dataset helper work and are tested without verl (its pins conflict with
legible's transformers).

The package, one job a file: ``_config`` (the run config a worker reads, the shared names), ``_rows`` (a
verl row's fields to legible's task and problem), ``_reward`` (``compute_score``), ``_episode`` (the
episode, free of verl), ``_face`` (the Face server's client), ``_agent_loop`` (the verl agent loop),
``_data`` (``prepare``), ``_launch`` (``legible train``'s run directory and launch), ``_cli``
(``python -m legible.train.verl``).
"""

from __future__ import annotations

from typing import Any

from legible.train.verl._agent_loop import agent_loop_class
from legible.train.verl._cli import main
from legible.train.verl._config import AGENT_NAME, CONFIG_ENV, load_legible_config
from legible.train.verl._data import prepare, verl_row
from legible.train.verl._episode import LoopEpisode, Sampled, ShoggothFaceLoop, prefix_through
from legible.train.verl._face import OpenAIFace
from legible.train.verl._launch import FACE_URL_ENV, train_verl, trainer_overrides, write_launch
from legible.train.verl._reward import compute_score
from legible.train.verl._rows import (
    DATA_SOURCE_PREFIX,
    problem_from_json,
    problem_from_row,
    problem_to_json,
    task_name_for,
)

__all__ = [
    "AGENT_NAME",
    "CONFIG_ENV",
    "DATA_SOURCE_PREFIX",
    "FACE_URL_ENV",
    "LoopEpisode",
    "OpenAIFace",
    "Sampled",
    "ShoggothFaceLoop",
    "compute_score",
    "load_legible_config",
    "main",
    "prefix_through",
    "prepare",
    "problem_from_json",
    "problem_from_row",
    "problem_to_json",
    "task_name_for",
    "train_verl",
    "trainer_overrides",
    "verl_row",
    "write_launch",
]


# ShoggothFaceAgentLoop is left out of __all__: a star import would build it, importing verl.


def __getattr__(name: str) -> Any:
    # The verl subclass is built on first lookup (hydra's _target_ and pickle resolve
    # legible.train.verl.ShoggothFaceAgentLoop with getattr), so importing this package for compute_score or
    # prepare never imports verl.
    if name == "ShoggothFaceAgentLoop":
        return agent_loop_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
