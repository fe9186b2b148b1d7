"""GRPO with the CoT defences on a cluster, through verl (Ray; FSDP or Megatron training; vLLM or SGLang
rollout servers).

Why verl: a model that does not fit the one-GPU TRL path (``legible.train.trl``) needs multi-node
training and rollout, which verl does. What legible adds is what it adds to TRL, at verl's two plug-in
points, with the same reward terms (``legible.train.text_reward``) and the same episode logic:

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
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import random
import re
import shlex
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from legible.config import (
    TEXT_BACKENDS,
    TEXT_TASKS,
    ConfigError,
    ConfigFieldError,
    RunConfig,
    TRLSettings,
    load_config,
)
from legible.monitor.drift import english_score, odd_token_rate
from legible.paraphrase import Paraphraser, make_paraphraser
from legible.reward import Episode, Reward
from legible.tasks import DatasetError, Problem, Task, make_task, normalize_number, split_completion
from legible.train._text import LINE_END, build_prompt, first_word, marker_pattern

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

AGENT_NAME = "legible_shoggoth_face"
CONFIG_ENV = "LEGIBLE_CONFIG"
DATA_SOURCE_PREFIX = "legible/"
# data_source values other projects use for the same tasks: verl's examples write GSM8K as openai/gsm8k
_DATA_SOURCE_ALIASES = {"openai/gsm8k": "gsm8k"}

__all__ = [
    "AGENT_NAME",
    "CONFIG_ENV",
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


# ------------------------------------------------------------------------------------------- config


def load_legible_config(path: str | os.PathLike[str] | None = None) -> RunConfig:
    """The run config the reward and the agent loop share: ``path``, else ``$LEGIBLE_CONFIG``, else the
    ``outcome`` condition with every other field at its default."""
    return _load_config(_config_path(path))


def _config_path(path: str | os.PathLike[str] | None) -> str | None:
    path = path or os.environ.get(CONFIG_ENV) or None
    return str(Path(path).expanduser()) if path else None


@functools.lru_cache(maxsize=8)  # Ray's reward and agent-loop workers live for the run: read the file once
def _load_config(path: str | None) -> RunConfig:
    if path is None:
        log.warning("no legible config (reward_kwargs legible_config or $%s): condition outcome", CONFIG_ENV)
        return RunConfig.model_validate({"backend": "verl", "condition": "outcome"})
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        # A Ray worker on another node reads it: the usual cause is a path only the launching node has.
        raise ConfigError(f"{path}: no such config file on this node (use a path every node sees)") from None
    except yaml.YAMLError:
        data = None  # load_config reports the line
    missing_backend = isinstance(data, dict) and "backend" not in data
    cfg = load_config(path, {"backend": "verl"} if missing_backend else None)
    if cfg.backend not in TEXT_BACKENDS:  # a trl config has every field verl reads
        raise ConfigError(f"{path}: backend: {cfg.backend} is the organism's; write backend: verl")
    return cfg


# ------------------------------------------------------------------------------------------ problems


def task_name_for(data_source: str) -> str:
    """The legible task a verl ``data_source`` names: ``legible/<task>``, ``<task>`` or a known alias."""
    source = str(data_source)
    name = _DATA_SOURCE_ALIASES.get(source, source.removeprefix(DATA_SOURCE_PREFIX))
    if name not in TEXT_TASKS:
        raise ValueError(
            f"data_source {source!r} is no legible task; use {DATA_SOURCE_PREFIX}<task> with a task among {TEXT_TASKS}"
        )
    return name


def problem_to_json(problem: Problem) -> str:
    """The whole problem as one JSON string: a parquet column of it keeps one type whatever the task's
    metadata holds (a text game's seed and world arguments, a question's choice labels)."""
    data = {
        "prompt": problem.prompt,
        "answer": problem.answer,
        "steps": problem.steps,
        "states": list(problem.states),
        "metadata": problem.metadata,
    }
    return json.dumps(data, default=str)


def problem_from_json(data: str | dict) -> Problem:
    d = json.loads(data) if isinstance(data, str) else dict(data)
    return Problem(d["prompt"], d["answer"], int(d.get("steps", 1)), tuple(d.get("states", ())), d.get("metadata", {}))


def problem_from_row(task: Task, ground_truth: Any, extra_info: dict | None, prompt: str = "") -> Problem:
    """The problem of a verl row: ``extra_info["problem"]`` when ``prepare`` wrote it, else one rebuilt
    from ``ground_truth`` (enough for GSM8K and multiple choice; a text game needs its seed)."""
    info = extra_info or {}
    if info.get("problem"):
        return problem_from_json(info["problem"])
    if task.name == "text_game":
        raise ValueError("text_game rows need extra_info['problem'] (the game's seed): write them with prepare")
    answer = str(ground_truth).strip()
    metadata: dict[str, Any] = {}
    if task.name == "gsm8k":
        answer = normalize_number(answer) or answer  # verl's GSM8K files hold the number as written
    elif task.name == "multiple_choice":
        from legible.tasks.datasets import LETTERS

        metadata["labels"] = list(LETTERS)  # the row does not say how many choices: accept any letter
    return Problem(prompt or str(info.get("question", "")), answer, metadata=metadata)


# ---------------------------------------------------------------------------------------------- reward


@dataclass
class _Scorer:
    cfg: RunConfig
    task: Task
    reward: Reward


@functools.lru_cache(maxsize=32)
def _scorer(config_path: str | None, task_name: str) -> _Scorer:
    """The reward for one (config, task), built once per reward worker (a judge model is a client)."""
    cfg = _load_config(config_path)
    task = make_task(task_name)  # scoring reads the problem, not the task's pool: no dataset path needed
    return _Scorer(cfg, task, cfg.build_reward(task))


def _episode(scorer: _Scorer, problem: Problem, solution_str: str, info: dict) -> Episode:
    """The episode to score: the agent loop's record when it ran (CoT and answer as it split them, and
    the answers from each view), else the completion parsed with the one parser."""
    loop = info.get("legible")
    if isinstance(loop, dict):
        extras = {k: loop.get(k) for k in ("paraphrase", "original_answer", "paraphrased_answer")}
        extras["finished"] = bool(loop.get("finished"))
        return Episode(problem, loop.get("cot") or "", loop.get("answer"), extras)
    if scorer.cfg.condition.needs_loop:
        raise ValueError(
            f"condition {scorer.cfg.condition.name!r} scores answers produced from a paraphrase, but this "
            f"completion did not come from legible's agent loop: set actor_rollout_ref.rollout.agent."
            f"default_agent_loop={AGENT_NAME} with agent_loop_config_path=configs/verl/agent_loop.yaml"
        )
    marker = scorer.cfg.trl.answer_marker
    finished = bool(marker_pattern(marker).search(solution_str))
    episode = Episode.from_completion(problem, solution_str, marker, finished=finished)
    episode.extras["original_answer"] = episode.answer
    return episode


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    *,
    legible_config: str | None = None,
    **_: Any,
) -> dict[str, float | str]:
    """verl's reward function. ``legible_config`` comes from ``reward_kwargs`` (else ``$LEGIBLE_CONFIG``).

    Returns ``score`` (the weighted, ramped sum of the condition's terms), ``acc`` (the counted answer's
    task score), ``term_<name>`` (each term unweighted), ``finished`` (the CoT reached the answer marker),
    ``cot_words``, ``penalty_ramp``, ``pred`` (the answer in the task's normal form, for verl's majority
    vote), and ``paraphrased_acc`` when the condition produces an answer from the paraphrase. The keys
    depend only on the config, never on the episode: verl stacks them across a batch. ``drift_english_score``
    and ``drift_odd_token_rate`` are the CoT's drift readings (``legible.monitor.drift``). ``async`` because
    judge terms call a model; verl awaits coroutine reward functions."""
    scorer = _scorer(_config_path(legible_config), task_name_for(data_source))
    info = dict(extra_info or {})
    problem = problem_from_row(scorer.task, ground_truth, info)
    episode = _episode(scorer, problem, str(solution_str), info)
    loop = info.get("legible") if isinstance(info.get("legible"), dict) else {}
    # the agent loop's step (the trainer's, or the weights' version); verl's own single-turn loop passes the
    # rollout server's weights version, which verl merges into extra_info too
    step = loop.get("global_steps", info.get("global_steps"))
    ramp, scale = scorer.cfg.penalty_ramp(step), scorer.cfg.reward_scale(step)
    totals, values = await scorer.reward.score_async([episode], scale)
    task = scorer.task
    result: dict[str, float | str] = {
        "score": float(totals[0]),
        "acc": float(task.score(problem, episode.answer)),
        **{f"term_{name}": float(v[0]) for name, v in values.items()},
        "finished": float(bool(episode.extras.get("finished"))),
        "cot_words": float(len(episode.cot.split())),
        "penalty_ramp": ramp,
        "pred": task.answer_key(problem, episode.answer) or "",
        # drift, per episode: verl averages every key over the batch into its step metrics, which makes
        # these the step's drift readings (empty CoTs read 0)
        "drift_english_score": float(english_score(episode.cot) or 0.0),
        "drift_odd_token_rate": float(odd_token_rate(episode.cot) or 0.0),
    }
    if "paraphrased" in scorer.cfg.condition.views:
        result["paraphrased_acc"] = float(task.score(problem, episode.extras.get("paraphrased_answer")))
    return result


# --------------------------------------------------------------------------------------------- episode


@dataclass
class Sampled:
    """One generation call's result: the sampled token ids, their log-probs when the server gives them,
    and the server's extra fields (verl's carry the weights' version, ``min/max_global_steps``)."""

    token_ids: list[int]
    log_probs: list[float] | None = None
    extra_fields: dict[str, Any] = field(default_factory=dict)


Generate = Callable[[list[int], dict[str, Any]], Awaitable[Sampled]]


@dataclass
class LoopEpisode:
    """What one episode hands to verl: the response (policy tokens, then the answerer's), its mask and
    log-probs (0 where the policy did not sample), the record ``compute_score`` reads, the policy server's
    extra fields, and the seconds spent generating."""

    response_ids: list[int]
    response_mask: list[int]
    response_logprobs: list[float] | None
    fields: dict[str, Any]
    server_fields: dict[str, Any]
    generate_seconds: float


def prefix_through(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int], pattern: re.Pattern[str]) -> int | None:
    """The fewest leading tokens whose text matches ``pattern`` (None: not even all of them). The TRL
    backend stops generation at the same place; a server that cannot stop on a pattern generates on, and
    the rest is cut here. Binary search: a longer prefix's text extends a shorter one's."""
    decode = functools.partial(tokenizer.decode, skip_special_tokens=True)
    if not ids or not pattern.search(decode(list(ids))):
        return None
    lo, hi = 1, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if pattern.search(decode(list(ids[:mid]))):
            hi = mid
        else:
            lo = mid + 1
    return lo


class ShoggothFaceLoop:
    """One Shoggoth/Face/paraphraser episode over abstract ``generate`` calls; ``ShoggothFaceAgentLoop``
    runs it with verl's rollout server. The same steps as ``ShoggothFaceRollout.play`` in
    ``legible.train.trl``, for one row: the policy writes the CoT (and its answer, when no paraphrase is in
    the loop); every finished CoT is paraphrased; the answerer answers from each view the reward needs;
    the response is the policy's tokens (mask 1) then the counted view's answer tokens (mask 0)."""

    def __init__(
        self,
        cfg: RunConfig,
        tokenizer: PreTrainedTokenizerBase,
        paraphraser: Paraphraser,
        *,
        response_length: int,
        stop_strings: bool = False,
    ) -> None:
        self.cfg, self.tokenizer, self.paraphraser = cfg, tokenizer, paraphraser
        self.settings: TRLSettings = cfg.trl
        s = self.settings
        self.plan = cfg.condition  # who answers, from which view
        self.marker = marker_pattern(s.answer_marker)
        self.eos = tokenizer.eos_token_id
        # vLLM's stop strings need its tokenizer (rollout.skip_tokenizer_init=False), so they are opt-in;
        # without them the server writes on and prefix_through cuts, at a few wasted tokens per episode.
        self.stop_strings = stop_strings
        if self.plan.policy_answers:
            self.stop = re.compile(self.marker.pattern + r"[ \t]*\S[^\n]*\n", re.I)  # the answer's line ends it
            self.budget = min(s.max_cot_tokens + s.max_answer_tokens, response_length - 1)
        else:
            self.stop = self.marker
            self.budget = min(s.max_cot_tokens, response_length - s.max_answer_tokens - 1)
        if self.budget < 1:
            raise ValueError(
                f"rollout.response_length {response_length} leaves no room for a CoT: it needs more than "
                f"trl.max_answer_tokens + 1 = {s.max_answer_tokens + 1} tokens"
            )

    async def play(
        self,
        prompt_ids: Sequence[int],
        problem: Problem,
        sampling_params: dict[str, Any],
        policy: Generate,
        face: Generate | None = None,
        rng: random.Random | None = None,
    ) -> LoopEpisode:
        """One episode. ``face`` None: the policy's own weights answer (the same server, a separate call)."""
        s, tok, plan = self.settings, self.tokenizer, self.plan
        rng = rng or random.Random()
        clock = [0.0]
        server_fields: dict[str, Any] = {}

        async def timed(generate: Generate, ids: list[int], params: dict[str, Any], policy_weights: bool) -> Sampled:
            start = time.perf_counter()
            out = await generate(ids, params)
            clock[0] += time.perf_counter() - start
            if policy_weights:
                _merge_server_fields(server_fields, out.extra_fields)
            return out

        # 1. the policy writes its CoT up to the answer marker (and its answer's line, when it answers)
        params = dict(sampling_params, max_tokens=self.budget)
        if self.stop_strings and not plan.policy_answers:
            params |= {"stop": [s.answer_marker, s.answer_marker.lower()], "include_stop_str_in_output": True}
        out = await timed(policy, list(prompt_ids), params, True)
        sampled = list(out.token_ids)
        cut = prefix_through(tok, sampled, self.stop)
        own = sampled[:cut] if cut is not None else sampled
        text = tok.decode(own, skip_special_tokens=True)
        finished = bool(self.marker.search(text))
        cot, own_answer = split_completion(text, s.answer_marker)

        # 2. the paraphraser rewrites every finished CoT (also where no answer is read from it: it is logged)
        paraphrase = await self._paraphrase(cot, problem.prompt, rng) if finished else None

        # 3. the answerer reads each view the reward needs, concurrently
        answers: dict[str, str | None] = {}
        tokens: dict[str, list[int]] = {}
        asked = []
        for v in sorted(plan.views):
            if v == "original" and plan.policy_answers:
                answers[v] = own_answer if finished else None
            elif not finished:
                answers[v], tokens[v] = None, []
            else:
                asked.append(v)
        if asked:
            fparams = dict(sampling_params, max_tokens=s.max_answer_tokens, logprobs=False)
            if self.stop_strings:
                fparams |= {"stop": ["\n"], "include_stop_str_in_output": True}
            rows = [list(prompt_ids) + self._encode_view(cot if v == "original" else paraphrase) for v in asked]
            outs = await asyncio.gather(*(timed(face or policy, row, fparams, face is None) for row in rows))
            for v, fo in zip(asked, outs):
                ids = list(fo.token_ids)
                end = prefix_through(tok, ids, LINE_END)
                tokens[v] = ids[:end] if end is not None else ids
                answers[v] = first_word(tok.decode(tokens[v], skip_special_tokens=True))

        # 4. the response verl trains on: the policy's tokens (mask 1), then the answerer's (mask 0)
        response, mask = list(own), [1] * len(own)
        if plan.policy_answers and cut is not None and self.eos is not None:
            response, mask = response + [self.eos], mask + [0]  # stopped at the answer's line: end it, unsampled
        theirs = [] if plan.policy_answers else list(tokens.get(plan.view, []))
        if theirs and self.eos is not None and theirs[-1] != self.eos:
            theirs.append(self.eos)
        response += theirs
        mask += [0] * len(theirs)
        logprobs = None
        if out.log_probs is not None:
            logprobs = [float(x) for x in out.log_probs[: len(own)]]
            logprobs += [0.0] * (len(response) - len(logprobs))

        fields = {
            "cot": cot,
            "answer": answers[plan.view],
            "finished": finished,
            "paraphrase": paraphrase,
            "original_answer": answers.get("original"),
            "paraphrased_answer": answers.get("paraphrased"),
            "view": plan.view,
        }
        return LoopEpisode(response, mask, logprobs, fields, server_fields, clock[0])

    def _encode_view(self, cot: str) -> list[int]:
        """What the answerer reads after the prompt: a CoT (or its paraphrase), then the answer marker (as
        ``ShoggothFaceRollout._encode_view``)."""
        return list(self.tokenizer(f"{cot}\n{self.settings.answer_marker}", add_special_tokens=False).input_ids)

    async def _paraphrase(self, cot: str, context: str, rng: random.Random) -> str:
        # A model paraphraser's calls share the worker's event loop; a plain one runs in a worker thread, off
        # the loop every episode of this worker shares.
        return await self.paraphraser.paraphrase_async(cot, context, rng)


def _merge_server_fields(into: dict[str, Any], new: dict[str, Any]) -> None:
    """Several calls to the policy's server: the weights' version spans the earliest to the latest call
    (verl's off-policy staleness check reads ``min_global_steps`` and ``max_global_steps``)."""
    for key, value in (new or {}).items():
        old = into.get(key)
        if key == "min_global_steps" and old is not None and value is not None:
            into[key] = min(old, value)
        elif key == "max_global_steps" and old is not None and value is not None:
            into[key] = max(old, value)
        elif key not in into or value is not None:
            into[key] = value


class OpenAIFace:
    """A separate, frozen Face behind an OpenAI-compatible completions endpoint (``vllm serve <face>``),
    for conditions with ``face: true``. It reads the policy's token ids as its prompt, so it must share the
    policy's tokenizer (a copy of the policy's initial checkpoint does); its text answer is encoded with the
    policy's tokenizer to sit, masked, in the response."""

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer: PreTrainedTokenizerBase,
        *,
        api_key: str = "EMPTY",
        client: Any = None,
    ) -> None:
        if client is None:
            from openai import AsyncOpenAI

            client = AsyncOpenAI(base_url=base_url, api_key=api_key)
        self.client, self.model, self.tokenizer = client, model, tokenizer

    async def __call__(self, prompt_ids: list[int], params: dict[str, Any]) -> Sampled:
        reply = await self.client.completions.create(
            model=self.model,
            prompt=prompt_ids,
            max_tokens=params["max_tokens"],
            temperature=params.get("temperature", 1.0),
            top_p=params.get("top_p", 1.0),
            stop=params.get("stop"),
        )
        text = reply.choices[0].text
        return Sampled(list(self.tokenizer(text, add_special_tokens=False).input_ids))


# ------------------------------------------------------------------------------------ verl agent loop


@dataclass
class _LoopResources:
    loop: ShoggothFaceLoop
    task: Task
    seeds: random.Random  # draws each episode's paraphraser seed: episodes run concurrently


_RESOURCES: dict[tuple, _LoopResources] = {}
_AGENT_LOOP_CLASS: type | None = None


def _resources(
    config_path: str | None, task_name: str, tokenizer: Any, response_length: int, stop_strings: bool
) -> _LoopResources:
    """verl builds an agent loop object per sample; the paraphraser and task are built once per worker."""
    key = (config_path, task_name, id(tokenizer), response_length, stop_strings)
    if key not in _RESOURCES:
        cfg = _load_config(config_path)
        task = make_task(task_name)
        paraphraser = make_paraphraser(cfg.paraphraser, task)
        loop = ShoggothFaceLoop(cfg, tokenizer, paraphraser, response_length=response_length, stop_strings=stop_strings)
        _RESOURCES[key] = _LoopResources(loop, task, random.Random(cfg.seed + 1))
    return _RESOURCES[key]


_FACES: dict[tuple, OpenAIFace] = {}


def _face(base_url: str, model: str, api_key: str, tokenizer: Any) -> OpenAIFace:
    """One client per worker and Face server (an HTTP connection pool), not one per sample."""
    key = (base_url, model, api_key, id(tokenizer))
    if key not in _FACES:
        _FACES[key] = OpenAIFace(base_url, model, tokenizer, api_key=api_key)
    return _FACES[key]


def _build_agent_loop_class() -> type:
    try:
        from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
    except ImportError as e:
        raise ImportError(
            "legible.train.verl.ShoggothFaceAgentLoop needs verl 0.9 (pip install verl==0.9.1, with its vllm or "
            f"sglang extra, in the training image): {e}"
        ) from e

    class ShoggothFaceAgentLoop(AgentLoopBase):
        """verl's agent loop for legible's episode (see the module docstring). Extra keys of its entry in
        the agent-loop YAML arrive as keyword arguments: ``legible_config`` (else ``$LEGIBLE_CONFIG``),
        ``face_base_url`` and ``face_model`` (the Face server, for ``face: true``), ``face_api_key``, and
        ``stop_strings`` (pass the answer marker to vLLM as a stop string; needs
        ``rollout.skip_tokenizer_init=False``)."""

        def __init__(
            self,
            *args: Any,
            legible_config: str | None = None,
            face_base_url: str | None = None,
            face_model: str | None = None,
            face_api_key: str = "EMPTY",
            stop_strings: bool = False,
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.config_path = _config_path(legible_config)
            self.cfg = _load_config(self.config_path)
            self.response_length = int(self.rollout_config.response_length)
            self.stop_strings = bool(stop_strings)
            cond = self.cfg.condition
            if cond.face and not (face_base_url and face_model):
                raise ValueError(
                    f"condition {cond.name!r} has a separate Face: give face_base_url and face_model in the "
                    "agent loop's YAML entry (an OpenAI-compatible server, e.g. vllm serve <face checkpoint>)"
                )
            if not cond.face and face_base_url:
                raise ValueError(f"face_base_url: condition {cond.name!r} has no Face (face: false)")
            self.face = _face(face_base_url, face_model, face_api_key, self.tokenizer) if cond.face else None

        async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
            messages = list(kwargs["raw_prompt"])
            prompt_ids = await self.ct_build_initial_tokens(messages)
            task_name = task_name_for(kwargs.get("data_source", DATA_SOURCE_PREFIX + self.cfg.task.name))
            res = _resources(self.config_path, task_name, self.tokenizer, self.response_length, self.stop_strings)
            ground_truth = (kwargs.get("reward_model") or {}).get("ground_truth", "")
            problem = problem_from_row(res.task, ground_truth, kwargs.get("extra_info"), str(messages[-1]["content"]))
            request_id = uuid.uuid4().hex  # one per episode: the answerer's call lands on the policy's server
            priority = int(kwargs.get("priority", 0))

            async def policy(ids: list[int], params: dict[str, Any]) -> Sampled:
                out = await self.server_manager.generate(
                    request_id=request_id, prompt_ids=ids, sampling_params=params, priority=priority
                )
                return Sampled(list(out.token_ids), list(out.log_probs) if out.log_probs else None, out.extra_fields)

            rng = random.Random(res.seeds.getrandbits(64))
            ep = await res.loop.play(prompt_ids, problem, sampling_params, policy, self.face, rng)
            # the trainer's step (verl's v1 trainer passes it) or the rollout weights' version: for the ramp
            step = kwargs.get("global_steps", ep.server_fields.get("max_global_steps"))
            extra = {**ep.server_fields, "legible": {**ep.fields, "global_steps": _plain(step)}}
            extra |= {"turn_scores": [], "tool_rewards": []}  # the schema verl's own agent loops keep
            n = self.response_length
            logprobs = ep.response_logprobs[:n] if ep.response_logprobs is not None else None
            return AgentLoopOutput(
                prompt_ids=prompt_ids,
                response_ids=ep.response_ids[:n],
                response_mask=ep.response_mask[:n],
                response_logprobs=logprobs,
                num_turns=2,
                metrics={"generate_sequences": ep.generate_seconds},
                extra_fields=extra,
            )

    # register() names the class by module and qualified name: those hydra's _target_ and pickle resolve
    ShoggothFaceAgentLoop.__module__ = "legible.train.verl"
    ShoggothFaceAgentLoop.__qualname__ = "ShoggothFaceAgentLoop"
    return register(AGENT_NAME)(ShoggothFaceAgentLoop)


def _plain(value: Any) -> Any:
    """A number from verl's batch (a numpy scalar or 0-d array) as a Python number."""
    return value.item() if hasattr(value, "item") else value


def __getattr__(name: str) -> Any:
    # The verl subclass is built on first lookup (hydra's _target_ resolves it with getattr), so importing
    # this module for compute_score or prepare never imports verl.
    global _AGENT_LOOP_CLASS
    if name == "ShoggothFaceAgentLoop":
        if _AGENT_LOOP_CLASS is None:
            _AGENT_LOOP_CLASS = _build_agent_loop_class()
        return _AGENT_LOOP_CLASS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -------------------------------------------------------------------------------------------- dataset


def verl_row(
    problem: Problem, task: Task, settings: TRLSettings, split: str, index: int, agent_name: str | None = None
) -> dict:
    """One verl dataset row: the chat prompt (with the instruction that names the answer marker), the
    data source, the ground truth, and the whole problem in ``extra_info`` for scoring."""
    row = {
        "data_source": DATA_SOURCE_PREFIX + task.name,
        "prompt": build_prompt(problem, settings, chat=True),
        "reward_model": {"style": "rule", "ground_truth": problem.answer},
        "extra_info": {"split": split, "index": index, "problem": problem_to_json(problem)},
    }
    if agent_name:
        row["agent_name"] = agent_name
    return row


def prepare(
    task_name: str,
    out: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | None = None,
    train: int | None = None,
    val: int | None = None,
    seed: int = 0,
    path: str | None = None,
    agent_name: str | None = None,
) -> dict[str, Path]:
    """Write ``train.parquet`` and ``val.parquet`` (none when ``val`` is 0) under ``out``; returns their paths.

    A task read from a file (GSM8K, multiple choice, programs from a JSONL file) is shuffled with ``seed``
    and split: ``val`` problems (default: a tenth, at most 64), then the rest (at most ``train``). A
    generated task (programs, text games) draws ``train`` problems (default 1024) with ``seed`` and ``val``
    (default 64) more with ``seed + 1``, none whose prompt is in the training set. Prompts carry the
    config's instruction (``trl.instruction``)."""
    import pandas as pd

    if task_name not in TEXT_TASKS:
        raise ValueError(f"task {task_name!r}: verl trains on the text tasks {TEXT_TASKS}")
    if (val is not None and val < 0) or (train is not None and train < 1):
        raise ValueError("need train >= 1 and val >= 0")
    cfg = load_legible_config(config)
    if path is None and cfg.task.name == task_name:
        path = cfg.task.path
    task = make_task(task_name, **({"path": path} if path is not None else {}))
    pool = getattr(task, "problems", None)
    if pool:
        val = min(64, max(1, len(pool) // 10)) if val is None else val
        order = list(pool)
        random.Random(seed).shuffle(order)
        val_set, train_set = order[:val], order[val:]
        train_set = train_set[:train] if train else train_set
        if not train_set:
            raise ValueError(f"{task_name}: {len(pool)} problems leave none for training after {val} for validation")
    else:
        val = 64 if val is None else val
        rng = random.Random(seed)
        train_set = [task.sample(rng) for _ in range(train or 1024)]
        seen = {p.prompt for p in train_set}
        vrng, val_set = random.Random(seed + 1), []
        for _ in range(20 * val):
            if len(val_set) == val:
                break
            p = task.sample(vrng)
            if p.prompt not in seen:
                seen.add(p.prompt)
                val_set.append(p)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, problems in (("train", train_set), ("val", val_set)):
        if not problems:
            continue
        rows = [verl_row(p, task, cfg.trl, split, i, agent_name) for i, p in enumerate(problems)]
        paths[split] = out / f"{split}.parquet"
        pd.DataFrame(rows).to_parquet(paths[split], index=False)
    return paths


# -------------------------------------------------------------------------------------- legible train

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
        f"actor_rollout_ref.model.path={cfg.model}",
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
    already hold ``cfg`` (``legible.train.run.prepare_run_dir`` writes it). Returns the script's path."""
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

    from legible.train.run import prepare_run_dir

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


# ------------------------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m legible.train.verl", description="legible's verl backend")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="write a legible task as verl parquet files (train.parquet, val.parquet)")
    p.add_argument("--task", required=True, choices=TEXT_TASKS)
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--config", help=f"a legible run config (instruction, answer marker, task path); else ${CONFIG_ENV}")
    p.add_argument("--path", help="the task's JSONL file (default: the config's task.path, or the shipped sample)")
    p.add_argument("--train", type=int, help="training problems (default: all of a file; 1024 generated)")
    p.add_argument("--val", type=int, help="validation problems (default: a tenth of a file, at most 64; 64 generated)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--agent-name", help=f"write an agent_name column (e.g. {AGENT_NAME}); default: none, so "
                   "rollout.agent.default_agent_loop decides")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        paths = prepare(
            args.task,
            args.out,
            config=args.config,
            train=args.train,
            val=args.val,
            seed=args.seed,
            path=args.path,
            agent_name=args.agent_name,
        )
    except (ConfigError, DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import pyarrow.parquet as pq

    for split, where in paths.items():
        print(f"{split}: {where} ({pq.ParquetFile(where).metadata.num_rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
