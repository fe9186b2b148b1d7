"""An Inspect AI model provider that serves an organism checkpoint: ``legible/<path>``.

Why: the audit battery talks to models through Inspect's model API, so serving the organism the
same way lets one battery audit both the organism (whose hidden states we know) and real models
(``hf/...``, ``openai/...``), and lets ``inspect eval`` run organism tasks unchanged::

    inspect eval legible/<task> --model legible/runs/demo/seed0/monitor
    inspect eval legible/<task> --model legible/runs/demo/seed0/monitor+face -M weights=face
    get_model("legible/runs/demo/seed0/monitor", config=GenerateConfig(temperature=0))

The model name is a path: a run or stage-1 directory (holding ``policy.safetensors``), or a model
file prefix such as ``.../policy`` or ``.../face``. The model arg ``weights`` ("policy" or "face")
picks the file inside a directory. It is not called ``role``: ``get_model`` takes ``role`` (and so
``-M role=...``) for itself and never passes it on to the provider.

Conventions (the organism knows only its 37 words, so a chat has to be mapped onto them):

- The prompt is the text of the last user message, organism words separated by whitespace; system
  messages and tools are ignored. A word outside the vocabulary raises ValueError naming it.
- A last assistant message is a *prefill*: the model continues after it. This is how an audit
  conditions the answer on an edited CoT.
- The completion is only the new text, words joined by single spaces, with one leading space when
  it continues a prefill that does not end in whitespace, so ``prefill + completion`` reads as one
  text. ``<eos>`` ends generation and is not written.
- The word after the answer marker is drawn from the task's answer words when the checkpoint sits
  in a run directory with a ``config.yaml`` (``answer_words="auto"``), because that is how the
  organism answers in training and evaluation; ``-M answer_words=none`` frees it, and
  ``-M answer_words=heads,tails`` sets it.
- Generation stops after the answer marker plus one word (``... answer heads``; stop_reason
  "stop"), or after ``config.max_tokens`` new tokens or ``2 * len(prompt words) + 4`` new tokens,
  whichever is fewer (stop_reason "max_tokens"). A prefill that already holds a marker followed by
  a word is complete: nothing is generated.
- ``temperature=None`` means 1.0, the distribution the organism is trained and evaluated at;
  0 is greedy. With ``config.seed`` the sample depends only on the request and the seed. top_p,
  top_k, stop_seqs and num_choices are ignored.
- Logprobs are those of the untempered distribution (log_softmax of the logits with ``<pad>``
  excluded, as the sampler excludes it; for a restricted answer word, over the answer words), for
  every generated token, with ``top_logprobs`` alternatives (up to the whole vocabulary; none when
  top_logprobs is unset).

Concurrent requests are gathered into one batched call of the policy's own sampler (see
``_Batcher``); ``-M batch=false`` serves them one at a time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import torch
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    StopReason,
    TopLogprob,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo
from safetensors import SafetensorError

from legible.policy import VOCAB, TinyTransformer, draw, left_pad, load_policy, sample

WEIGHTS = ("policy", "face")
DEFAULT_TEMPERATURE = 1.0
MAX_BATCH = 256


def resolve_checkpoint(path: str | Path, weights: str = "policy") -> Path:
    """The model file prefix (``DIR/policy``, ``DIR/face``, or ``path`` itself) that ``path`` names.

    Raises FileNotFoundError or ValueError with one line naming the path and what was expected."""
    if weights not in WEIGHTS:
        raise ValueError(f"legible/{path}: weights={weights!r}; expected one of {', '.join(WEIGHTS)}")
    p = Path(path).expanduser()
    if p.is_dir():
        prefix = p / weights
        if not prefix.with_name(f"{weights}.safetensors").exists():
            if weights == "face":
                raise FileNotFoundError(
                    f"legible/{path}: no face.safetensors in this directory (only runs of a condition with "
                    "face: true have a Face); expected a run directory of such a condition"
                )
            raise FileNotFoundError(
                f"legible/{path}: no policy.safetensors in this directory; expected a run directory, a "
                "stage-1 directory, or a model file prefix such as RUN/policy"
            )
        return prefix
    # A file prefix already names its weights: refuse a weights= that disagrees rather than ignore it.
    stem = p.name.removesuffix(".safetensors").removesuffix(".json")
    if weights != "policy" and stem != weights:
        raise ValueError(f"legible/{path}: weights={weights!r} applies to a run directory, not a model file")
    if not (p.parent / f"{stem}.safetensors").exists() or not (p.parent / f"{stem}.json").exists():
        raise FileNotFoundError(
            f"legible/{path}: not found; expected a run directory holding policy.safetensors, or a model "
            f"file prefix with {stem}.safetensors and {stem}.json beside it"
        )
    return p.parent / stem


def encode_words(text: str, what: str) -> list[int]:
    """Token ids of organism words; ValueError naming the first unknown word."""
    try:
        ids = VOCAB.encode(text)
    except ValueError as e:
        raise ValueError(f"{e} (in the {what}); the organism reads only: {' '.join(VOCAB.words[1:])}") from None
    if VOCAB.pad_id in ids:
        # Padding is told apart by position, not id: a <pad> in the text would be read as a token.
        raise ValueError(f"word '<pad>' cannot appear in the {what}")
    return ids


def split_chat(messages: list[ChatMessage]) -> tuple[str, str]:
    """(prompt text, prefill text): the last user message, and a trailing assistant message."""
    prefill = messages[-1].text if messages and messages[-1].role == "assistant" else ""
    users = [m for m in messages if m.role == "user"]
    if not users:
        raise ValueError("the organism needs a user message holding its prompt")
    return users[-1].text, prefill


def resolve_answer_words(checkpoint: Path, answer_words: str | list[str] | tuple[str, ...] | None) -> list[int] | None:
    """Token ids the answer word is restricted to, or None for the whole vocabulary.

    "auto" reads the task from the ``config.yaml`` a training run writes beside its models: an RL'd
    organism answers through a softmax over the task's answer words only, so its unrestricted
    distribution after the marker is untrained and may put its mass on any word. Without a
    config.yaml (a bare stage-1 directory, a copied model file) the answer is unrestricted."""
    if answer_words is None or answer_words in ("", "none"):
        return None
    if answer_words == "auto":
        saved = checkpoint.parent / "config.yaml"
        if not saved.exists():
            return None
        import yaml

        from legible.config import TaskConfig

        try:
            task = TaskConfig.model_validate((yaml.safe_load(saved.read_text()) or {}).get("task", {})).build()
        except (ValueError, AttributeError, yaml.YAMLError) as e:
            raise ValueError(f"{saved}: cannot read the task for answer_words=auto ({e}); pass answer_words") from None
        answer_words = task.answer_words
    words = answer_words.replace(",", " ").split() if isinstance(answer_words, str) else list(answer_words)
    unknown = [w for w in words if w not in VOCAB.index or w == "<pad>"]
    if unknown or not words:
        raise ValueError(f"answer_words={answer_words!r}: expected organism words such as heads,tails or none")
    return VOCAB.ids(words)


@dataclass
class Request:
    """One generation: token ids in, new token ids (and their logprobs) out."""

    prompt: list[int]  # <bos> and the prompt words
    prefill: list[int]
    budget: int  # most new tokens
    temperature: float
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    # Filled in by generate_batch.
    tokens: list[int] = field(default_factory=list)
    stop_reason: StopReason = "unknown"
    token_logprobs: list[Logprob] | None = None
    answer_at: int | None = None  # index in tokens of the answer word
    done: bool = False
    error: BaseException | None = None


def _complete(prefill: list[int]) -> bool:
    """Whether ``prefill`` already holds the answer marker followed by a word."""
    return VOCAB.answer_id in prefill[:-1]


def _group_key(r: Request) -> tuple:
    # Greedy rows and unseeded sampled rows share a batch; a seeded sampled row runs alone with its
    # own generator, because the sampler draws one shared random stream for a whole batch and the
    # sample would otherwise depend on what else was in the batch.
    if r.temperature == 0:
        return ("greedy",)
    if r.seed is None:
        return ("sample", r.temperature)
    return ("seeded", id(r))


def answer_logits(logits: torch.Tensor, answer_ids: list[int] | None) -> torch.Tensor:
    """The logits the answer word is drawn from: only ``answer_ids`` when given, as the organism
    answers in training and evaluation (a softmax over the task's answer words); never <pad>."""
    logits = logits.clone()
    if answer_ids is not None:
        keep = torch.zeros(logits.shape[-1], dtype=torch.bool)
        keep[answer_ids] = True
        logits[..., ~keep] = float("-inf")
    logits[..., VOCAB.pad_id] = float("-inf")
    return logits


@torch.no_grad()
def generate_batch(model: TinyTransformer, requests: list[Request], answer_ids: list[int] | None = None) -> None:
    """Fill in every request's tokens, stop reason and logprobs, batching the compatible ones."""
    groups: dict[tuple, list[Request]] = {}
    for r in requests:
        groups.setdefault(_group_key(r), []).append(r)
    for group in groups.values():
        try:
            _generate_group(model, group, answer_ids)
        except Exception as e:  # handed to each waiting request, which raises it in its own sample
            for r in group:
                r.error = e
        for r in group:
            r.done = True


def _generate_group(model: TinyTransformer, group: list[Request], answer_ids: list[int] | None) -> None:
    temperature = group[0].temperature
    generator = torch.Generator().manual_seed(group[0].seed) if group[0].seed is not None else None
    for r in group:
        r.tokens, r.answer_at = [], None
        r.stop_reason = "stop" if _complete(r.prefill) else "max_tokens"
    # Phase 1: the CoT, up to and including the answer marker (the policy's sampler stops there).
    writing = [r for r in group if r.stop_reason != "stop" and r.budget > 0 and r.prefill[-1:] != [VOCAB.answer_id]]
    if writing:
        new = sample(
            model,
            [r.prompt + r.prefill for r in writing],
            max_new_tokens=max(r.budget for r in writing),
            stop_id=VOCAB.answer_id,
            pad_id=VOCAB.pad_id,
            temperature=temperature,
            generator=generator,
        )
        for r, toks in zip(writing, new):
            # Rows share the longest budget; tokens past a row's own budget never happened for it.
            r.tokens = toks[: r.budget]
            if VOCAB.eos_id in r.tokens:
                r.tokens, r.stop_reason = r.tokens[: r.tokens.index(VOCAB.eos_id)], "stop"
    # Phase 2: the one answer word after the marker, from the answer distribution.
    answering = [
        r
        for r in group
        if r.stop_reason != "stop" and (r.prefill + r.tokens)[-1:] == [VOCAB.answer_id] and len(r.tokens) < r.budget
    ]
    if answering:
        ids, mask = left_pad([r.prompt + r.prefill + r.tokens for r in answering], VOCAB.pad_id)
        logits = answer_logits(model(ids, mask)[:, -1, :], answer_ids)
        if temperature == 0:
            picks = logits.argmax(-1)
        else:
            picks = draw(torch.softmax(logits / temperature, dim=-1), generator)
        for r, tok in zip(answering, picks.tolist()):
            r.stop_reason = "stop"
            if tok != VOCAB.eos_id:
                r.answer_at = len(r.tokens)
                r.tokens = r.tokens + [tok]
    _fill_logprobs(model, [r for r in group if r.logprobs], answer_ids)


def _fill_logprobs(model: TinyTransformer, requests: list[Request], answer_ids: list[int] | None) -> None:
    """One forward pass over prompt + prefill + new tokens: the distribution before each new token
    (for the answer word, the answer distribution it was drawn from)."""
    for r in requests:
        r.token_logprobs = []
    requests = [r for r in requests if r.tokens]
    if not requests:
        return
    rows = [r.prompt + r.prefill + r.tokens for r in requests]
    ids, mask = left_pad(rows, VOCAB.pad_id)
    logits = model(ids, mask)
    width = ids.shape[1]
    for r, row_logits in zip(requests, logits):
        n = len(r.tokens)
        before = row_logits[width - n - 1 : width - 1].clone()  # position t predicts token t + 1
        before[:, VOCAB.pad_id] = float("-inf")
        if r.answer_at is not None:
            before[r.answer_at] = answer_logits(before[r.answer_at], answer_ids)
        before = before.log_softmax(-1)
        k = min(r.top_logprobs, len(VOCAB) - 1)
        top_v, top_i = before.topk(k, dim=-1)
        for tok, dist, tv, ti in zip(r.tokens, before, top_v.tolist(), top_i.tolist()):
            word = VOCAB.words[tok]
            # -inf alternatives (outside the answer words) are not alternatives.
            alts = [
                TopLogprob(token=VOCAB.words[i], logprob=v, bytes=list(VOCAB.words[i].encode()))
                for v, i in zip(tv, ti)
                if v != float("-inf")
            ]
            r.token_logprobs.append(
                Logprob(token=word, logprob=float(dist[tok]), bytes=list(word.encode()), top_logprobs=alts)
            )


class _Batcher:
    """Gathers requests that arrive while the model is busy into the next batch.

    Each request waits in its own worker thread: it queues itself, then takes the run lock; whoever
    holds the lock generates everything queued (up to ``max_batch``), so requests that arrived
    during one batch share the next, and a request someone else already served just returns. Plain
    threads, not asyncio locks, because one model object outlives the event loops of several
    ``eval`` calls.
    """

    def __init__(self, model: TinyTransformer, max_batch: int, answer_ids: list[int] | None) -> None:
        self.model, self.max_batch, self.answer_ids = model, max_batch, answer_ids
        self._queue: list[Request] = []
        self._queue_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self.batch_sizes: list[int] = []  # for measurement

    def serve(self, request: Request) -> Request:
        with self._queue_lock:
            self._queue.append(request)
        with self._run_lock:
            # A batch is the oldest max_batch requests, so it may leave this one for the next.
            while not request.done:
                with self._queue_lock:
                    batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                self.batch_sizes.append(len(batch))
                generate_batch(self.model, batch, self.answer_ids)
        if request.error is not None:
            raise request.error
        return request


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)


@modelapi(name="legible")
class OrganismAPI(ModelAPI):
    """``legible/<path>``: an organism checkpoint served through Inspect (see the module docstring).

    Model args: ``weights`` ("policy" or "face"); ``answer_words`` ("auto", "none", or words such as
    "heads,tails"); ``batch`` (default true); ``max_batch`` (default 256).
    """

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        weights: str = "policy",
        answer_words: str | list[str] | None = "auto",
        batch: bool | str = True,
        max_batch: int = MAX_BATCH,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        if model_args:
            raise ValueError(
                f"legible/{model_name}: unknown model args {', '.join(sorted(model_args))}; "
                "expected weights, answer_words, batch, max_batch"
            )
        self.checkpoint = resolve_checkpoint(model_name, weights)
        try:
            self.model = load_policy(self.checkpoint).eval()
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as e:
            raise ValueError(f"legible/{model_name}: cannot load {self.checkpoint}: {e}") from None
        self.answer_ids = resolve_answer_words(self.checkpoint, answer_words)
        self.batcher = _Batcher(self.model, int(max_batch) if _as_bool(batch) else 1, self.answer_ids)

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        prompt_text, prefill_text = split_chat(input)
        prompt = [VOCAB.bos_id, *encode_words(prompt_text, "prompt")]
        prefill = encode_words(prefill_text, "assistant prefill")
        temperature = DEFAULT_TEMPERATURE if config.temperature is None else float(config.temperature)
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        budget = 2 * (len(prompt) - 1) + 4
        if config.max_tokens is not None:
            budget = min(budget, max(0, config.max_tokens))
        request = Request(
            prompt=prompt,
            prefill=prefill,
            budget=budget,
            temperature=temperature,
            seed=config.seed,
            logprobs=bool(config.logprobs),
            top_logprobs=config.top_logprobs or 0,
        )
        start = time.monotonic()
        # In a worker thread so the event loop keeps running the other samples, which queue up
        # behind this batch and form the next one.
        await anyio.to_thread.run_sync(self.batcher.serve, request)
        text = " ".join(VOCAB.words[t] for t in request.tokens)
        if text and prefill_text and not prefill_text[-1].isspace():
            text = " " + text
        choice = ChatCompletionChoice(
            message=ChatMessageAssistant(content=text, model=self.model_name, source="generate"),
            stop_reason=request.stop_reason,
            logprobs=Logprobs(content=request.token_logprobs) if request.token_logprobs is not None else None,
        )
        n_in, n_out = len(prompt) + len(prefill), len(request.tokens)
        return ModelOutput(
            model=self.model_name,
            choices=[choice],
            usage=ModelUsage(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out),
            time=time.monotonic() - start,
        )

    def max_connections(self) -> int:
        # Requests are cheap and batched: more in flight means bigger batches.
        return 64

    def max_tokens(self) -> int | None:
        # None leaves the stop rule's own budget (2 * prompt words + 4) in charge.
        return None
