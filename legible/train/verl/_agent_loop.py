"""verl's agent-loop plug-in: ``ShoggothFaceAgentLoop`` (registered as ``legible_shoggoth_face``) runs
``ShoggothFaceLoop``'s episode with verl's rollout server and hands verl the response, its mask and the record
``compute_score`` reads. verl is imported only when the class is first built (``agent_loop_class``)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from legible.paraphrase import make_paraphraser
from legible.tasks import Task, make_task
from legible.train.verl._config import AGENT_NAME, _config_path, _load_config
from legible.train.verl._episode import Sampled, ShoggothFaceLoop
from legible.train.verl._face import OpenAIFace
from legible.train.verl._rows import DATA_SOURCE_PREFIX, problem_from_row, task_name_for


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
        """verl's agent loop for legible's episode (see ``legible.train.verl``'s docstring). Extra keys of
        its entry in the agent-loop YAML arrive as keyword arguments: ``legible_config`` (else
        ``$LEGIBLE_CONFIG``), ``face_base_url`` and ``face_model`` (the Face server, for ``face: true``),
        ``face_api_key``, and ``stop_strings`` (pass the answer marker to vLLM as a stop string; needs
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


def agent_loop_class() -> type:
    """The verl subclass, built (and registered with verl) on the first call: hydra's ``_target_`` and pickle
    reach it as ``legible.train.verl.ShoggothFaceAgentLoop`` through the package's ``__getattr__``."""
    global _AGENT_LOOP_CLASS
    if _AGENT_LOOP_CLASS is None:
        _AGENT_LOOP_CLASS = _build_agent_loop_class()
    return _AGENT_LOOP_CLASS
