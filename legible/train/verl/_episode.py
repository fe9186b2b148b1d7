"""The Shoggoth/Face/paraphraser episode over abstract ``generate`` calls, free of verl: the policy writes
the CoT, the paraphraser rewrites it, the answerer answers from each view; the response verl trains on is the
policy's tokens (mask 1) then the answerer's (mask 0). ``_agent_loop`` runs it with verl's rollout server."""

from __future__ import annotations

import asyncio
import functools
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from legible.config import RunConfig, TRLSettings
from legible.paraphrase import Paraphraser
from legible.tasks import Problem, split_completion
from legible.train._text import LINE_END, first_word, marker_pattern

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


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
