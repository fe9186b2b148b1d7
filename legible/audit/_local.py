"""A fast Inspect AI model provider for local transformers models: ``legible-hf/<dir or short name>``.

Why: the battery asks a local model many questions that share most of their text (the prompt and the
model's own CoT, then a truncation, a paraphrase, a corrupted step of it) and most of them need one
forward pass, not a generation (which answer option is likeliest after this CoT?). Inspect's own ``hf``
provider generates every request from scratch, waits for a quiet queue before it starts a batch, and
decodes every row of a batch to the longest one's budget. This provider serves the same Inspect API
and does the work once:

- **Continuous batching.** One worker thread decodes every running generation as one padded batch; a
  request that arrives joins the batch at the next step, and a row that finishes leaves it at once.
- **Prefix reuse.** The keys and values of finished sequences (the prompt and the CoT the model wrote)
  are kept (``prefix_cache_mb``); a request that starts with the same tokens reuses them and computes
  only what differs (a forced answer after a truncated CoT costs the few tokens of the answer cue).
- **Closed answer spaces from log-probs.** A request whose ``GenerateConfig.extra_body`` holds
  ``{"guided_choice": [" A", " B", ...]}`` (vLLM's name for the same thing) is answered by one forward
  pass: the completion is the likeliest option, and with ``logprobs`` its one position lists every
  option with its log-probability (the sum over the option's tokens) as ``top_logprobs``.
- **Identical greedy requests are computed once** (the battery's tasks all ask for the same CoT).

Conventions: the chat template renders the messages (``role: content`` lines without one); a final
assistant message is a prefill that the model continues; the completion is the new text only.
``temperature`` unset or 0 is greedy (transformers' own default); above 0 samples (with ``top_p``,
``top_k`` and ``seed``). ``stop_seqs`` end a generation (the stop text is not returned); so does the
tokenizer's end-of-turn token. Tools are not supported.

Model args: ``device`` (default cpu), ``dtype`` (``float32``, ``bfloat16``, or ``auto``, the default:
bfloat16 weights where the processor multiplies bfloat16 natively (AVX512-BF16 or AMX on a CPU, a GPU
that supports it), about 1.5 to 2 times faster there; the output layer, keys, values and attention stay
float32, so answer log-probabilities keep their precision; elsewhere float32), ``max_batch`` (rows decoded together,
default 64), ``prefix_cache_mb`` (default 1024; 0 turns reuse off), ``threads`` (torch threads for the
process; default ``auto``: the cores the load average leaves free, at most torch's own setting, because
two threads on two cores with another busy process run several times slower than one).

Supports decoder-only models whose cache is plain per-layer keys and values (Llama, Qwen2, GPT-2,
SmolLM2, Mistral without a sliding window); others are refused with a pointer to ``hf/``.
The engine (``_engine.py``) loads with the first model, so registering the provider imports no transformers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprobs,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

if TYPE_CHECKING:
    from legible.audit._engine import Request, Result

PROVIDER = "legible-hf"
MAX_BATCH = 64
PREFIX_CACHE_MB = 1024
DEFAULT_MAX_TOKENS = 512


# ---------------------------------------------------------------------------------------------- the provider
def _chat_text(tokenizer, messages: list[ChatMessage]) -> str:
    """The chat as the model reads it; a final assistant message is a prefill the model continues."""
    prefill = messages[-1].text if messages and messages[-1].role == "assistant" else None
    turns = messages[:-1] if prefill is not None else messages
    if any(m.role == "tool" for m in turns):
        raise ValueError(f"{PROVIDER}: tool messages are not supported")
    dicts = [{"role": m.role, "content": m.text} for m in turns]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True)
    else:
        text = "".join(f"{d['role']}: {d['content']}\n" for d in dicts) + "assistant: "
    return text + (prefill or "")


def resolve_local_path(name: str) -> Path:
    """The transformers directory that ``name`` (a short name from ``legible models`` or a path) names."""
    from legible.policy import LOCAL_MODELS, prepare_model

    path = prepare_model(name) if name in LOCAL_MODELS else Path(name).expanduser()
    if not (path / "config.json").exists():
        raise FileNotFoundError(
            f"{PROVIDER}/{name}: not a transformers model directory (no config.json) and not a model "
            "`legible models` knows"
        )
    return path


def resolve_inspect_model(model: str, on_status=None) -> str:
    """The Inspect model for ``model`` (in the audit, ``legible ask`` and ``legible stego``): a short name from
    ``legible models`` (``smollm2-135m``) becomes ``legible-hf/smollm2-135m`` (legible's fast local provider),
    prepared once; ``hf/smollm2-135m`` becomes ``hf/<its directory>`` (Inspect's own provider, as asked);
    anything else is returned as given. Here, not beside ``run_audit``: importing that module registers the
    audit's progress hook, and Inspect then prints its hook banner to stdout (``legible ask --json``)."""
    from legible.policy import LOCAL_MODELS, prepare_model, resolve_model

    if model in LOCAL_MODELS:
        prepare_model(model, on_status=on_status)
        return f"legible-hf/{model}"
    provider, _, name = model.partition("/")
    if provider == "legible-hf" and name in LOCAL_MODELS:
        prepare_model(name, on_status=on_status)
    if provider == "hf":  # the directory for Inspect's own provider, as every other hf/ path is resolved
        return resolve_model(model, on_status=on_status)
    return model


def free_threads() -> int:
    """Torch threads for a CPU that others may be using: the cores the 1-minute load average leaves free
    (at least one), at most torch's current setting."""
    import os

    import torch

    cores = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0])
    except OSError:  # no load average on this platform
        busy = 0
    return max(1, min(torch.get_num_threads(), cores - busy))


def fast_dtype(device: str = "cpu") -> str:
    """bfloat16 where the processor multiplies it natively, else float32."""
    import torch

    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"
    if device == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        if any(getattr(torch.cpu, name, lambda: False)() for name in checks):
            return "bfloat16"
    return "float32"


def _as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{PROVIDER}: {name}={value!r}; expected an integer") from None


@modelapi(name=PROVIDER)
class LocalLMAPI(ModelAPI):
    """``legible-hf/<dir or short name>``: a local transformers model served fast (see the module docstring)."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        device: str = "cpu",
        dtype: str = "auto",
        max_batch: int | str = MAX_BATCH,
        prefix_cache_mb: float | str = PREFIX_CACHE_MB,
        threads: int | str = "auto",
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        if model_args:
            raise ValueError(
                f"{PROVIDER}/{model_name}: unknown model args {', '.join(sorted(model_args))}; "
                "expected device, dtype, max_batch, prefix_cache_mb, threads"
            )
        import torch

        from legible.audit._engine import Engine, load_lm

        torch.set_num_threads(free_threads() if threads == "auto" else max(1, _as_int(threads, "threads")))
        self.path = resolve_local_path(model_name)
        self.dtype = fast_dtype(device) if dtype == "auto" else dtype
        tokenizer, model = load_lm(str(self.path), self.dtype, device)
        self.tokenizer = tokenizer
        self.engine = Engine(
            tokenizer, model, max_batch=_as_int(max_batch, "max_batch"), prefix_cache_mb=float(prefix_cache_mb)
        )

    def encode(self, messages: list[ChatMessage]) -> list[int]:
        return self.tokenizer(_chat_text(self.tokenizer, messages), add_special_tokens=False).input_ids

    def request(self, input: list[ChatMessage], config: GenerateConfig) -> Request:
        from legible.audit._engine import Request

        ids = self.encode(input)
        if not ids:
            raise ValueError(f"{PROVIDER}: empty prompt")
        options = (config.extra_body or {}).get("guided_choice")
        choices = texts = None
        if options:
            texts = tuple(str(o) for o in options)
            choices = tuple(tuple(self.tokenizer(t, add_special_tokens=False).input_ids) for t in texts)
            if not all(choices):
                raise ValueError(f"{PROVIDER}: guided_choice options must not be empty")
        temperature = float(config.temperature or 0.0)
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        return Request(
            ids=ids,
            max_new=max(0, config.max_tokens if config.max_tokens is not None else DEFAULT_MAX_TOKENS),
            temperature=temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            seed=config.seed,
            stop_seqs=tuple(config.stop_seqs or ()),
            logprobs=bool(config.logprobs),
            top_logprobs=config.top_logprobs or 0,
            choices=choices,
            choice_texts=texts,
        )

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        if tools:
            raise ValueError(f"{PROVIDER}: tools are not supported")
        future = self.engine.submit(self.request(input, config))
        result = await _wait(future)
        choice = ChatCompletionChoice(
            message=ChatMessageAssistant(content=result.text, model=self.model_name, source="generate"),
            stop_reason=result.stop_reason,
            logprobs=Logprobs(content=result.logprobs) if result.logprobs is not None else None,
        )
        n_in, n_out = result.input_tokens, len(result.tokens)
        return ModelOutput(
            model=self.model_name,
            choices=[choice],
            usage=ModelUsage(
                input_tokens=n_in,
                output_tokens=n_out,
                total_tokens=n_in + n_out,
                input_tokens_cache_read=result.reused_tokens,
            ),
            time=result.seconds,
        )

    def max_connections(self) -> int:
        # Requests are batched: more in flight means fuller batches.
        return max(self.engine.max_batch, 32)

    def max_tokens(self) -> int | None:
        return DEFAULT_MAX_TOKENS


async def _wait(future: concurrent.futures.Future) -> Result:
    try:
        import sniffio

        backend = sniffio.current_async_library()
    except Exception:  # pragma: no cover - sniffio comes with anyio
        backend = "asyncio"
    if backend == "asyncio":
        return await asyncio.wrap_future(future)
    return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)
