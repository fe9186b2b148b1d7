"""The engine behind the ``legible-hf`` provider (``_local.py``): one worker thread that serves generation
and choice requests for one transformers model with continuous batching, prefix reuse and closed answer
spaces scored from log-probs (the provider's docstring says what each does and why).

Kept apart from the provider so that registering the provider (Inspect loads legible's entry point for
every eval) does not import transformers.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import queue
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from inspect_ai.model import Logprob, StopReason, TopLogprob
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

from legible.audit._local import MAX_BATCH, PREFIX_CACHE_MB, PROVIDER

KV_DTYPE = torch.float32  # keys and values, whatever the weights' dtype
GROUP_TOKENS = 8192  # rows x columns of one group prefill (its buffers: that many tokens' keys and values)
IDLE_SECONDS = 10.0  # the worker thread ends (and drops its caches) after this long without work
MEMO_SIZE = 4096


# ---------------------------------------------------------------------------------------------- the KV cache
class _Slab(DynamicLayer):
    """One layer's keys and values in preallocated buffers ``[rows, heads, columns, dim]``: a step writes its
    columns in place, where transformers' DynamicLayer concatenates (copies) the whole cache every token."""

    def __init__(self, kbuf: torch.Tensor, vbuf: torch.Tensor, rows: int, length: int) -> None:
        super().__init__()
        self.kbuf, self.vbuf, self.rows, self.length = kbuf, vbuf, rows, length
        self.is_initialized = True
        self.keys, self.values = kbuf[:rows, :, :length], vbuf[:rows, :, :length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        n, q = self.length, key_states.shape[-2]
        self.kbuf[: self.rows, :, n : n + q] = key_states
        self.vbuf[: self.rows, :, n : n + q] = value_states
        self.length = n + q
        self.keys, self.values = self.kbuf[: self.rows, :, : self.length], self.vbuf[: self.rows, :, : self.length]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length


KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [1, heads, tokens, dim]


def _kv_bytes(kv: KV) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)


class PrefixCache:
    """Keys and values of token sequences the model has read, to be reused by requests that start the same
    way. Least recently used entries go first once ``max_bytes`` is reached; a sequence that extends a
    stored one replaces it, and one that a stored sequence already extends is not stored."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[int, tuple[torch.Tensor, KV, int]] = OrderedDict()
        self.bytes = 0
        self._next = 0
        self.hits = self.reused_tokens = 0

    def lookup(self, ids: torch.Tensor) -> tuple[int, KV | None]:
        """The longest stored prefix of ``ids``: (its length, its keys and values), or (0, None)."""
        best, best_key = 0, None
        for key, (tokens, _, _) in self.entries.items():
            n = min(len(tokens), len(ids))
            if n <= best:
                continue
            diff = (tokens[:n] != ids[:n]).nonzero()
            common = int(diff[0]) if len(diff) else n
            if common > best:
                best, best_key = common, key
        if best_key is None:
            return 0, None
        self.entries.move_to_end(best_key)
        self.hits += 1
        self.reused_tokens += best
        return best, self.entries[best_key][1]

    def add(self, ids: torch.Tensor, kv: KV) -> None:
        if self.max_bytes <= 0 or len(ids) == 0:
            return
        for key, (tokens, _, size) in list(self.entries.items()):
            if len(tokens) >= len(ids) and torch.equal(tokens[: len(ids)], ids):
                self.entries.move_to_end(key)
                return  # already covered
            if len(tokens) < len(ids) and torch.equal(ids[: len(tokens)], tokens):
                del self.entries[key]  # the new entry extends it
                self.bytes -= size
        size = _kv_bytes(kv)
        if size > self.max_bytes:
            return
        self.entries[self._next] = (ids.clone(), kv, size)
        self._next += 1
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, _, old) = self.entries.popitem(last=False)
            self.bytes -= old

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


# ---------------------------------------------------------------------------------------------- requests
@dataclass
class Request:
    """One generation (or one choice among options), as token ids."""

    ids: list[int]  # the rendered chat, prefill included
    max_new: int
    temperature: float = 0.0  # 0: greedy
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop_seqs: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    choices: tuple[tuple[int, ...], ...] | None = None  # token ids of each option of a closed answer space
    choice_texts: tuple[str, ...] | None = None

    def memo_key(self) -> tuple | None:
        if self.temperature > 0:
            return None
        return (tuple(self.ids), self.max_new, self.stop_seqs, self.logprobs, self.top_logprobs, self.choices)


@dataclass
class Result:
    tokens: list[int]
    text: str
    stop_reason: StopReason
    logprobs: list[Logprob] | None
    input_tokens: int
    reused_tokens: int  # prompt tokens whose keys and values came from the prefix cache
    seconds: float


@dataclass
class _Row:
    request: Request
    future: concurrent.futures.Future
    start_time: float
    reused: int
    generated: list[int] = field(default_factory=list)
    logprobs: list[Logprob] = field(default_factory=list)
    fed: list[int] = field(default_factory=list)  # the tokens whose keys and values the batch holds
    start: int = 0  # the row's first column in the batch (left padding before it)
    generator: torch.Generator | None = None


class _Batch:
    """The rows being decoded: keys and values in per-layer buffers ``[row capacity, heads, column capacity,
    dim]``, rows left-padded so every row writes its next token at column ``n``. A row joins by copying its
    prefix into a free row, and leaves by moving the last row into its place: neither copies the others."""

    def __init__(self) -> None:
        self.rows: list[_Row] = []
        self.kbufs: list[torch.Tensor] = []
        self.vbufs: list[torch.Tensor] = []
        self.mask = torch.zeros(0, 0, dtype=torch.long)
        self.n = 0

    def __len__(self) -> int:
        return len(self.rows)

    def _alloc(self, like: KV, rows: int, cols: int, shift: int = 0, trim: int = 0) -> None:
        """New buffers of ``rows`` x ``cols``, holding the current rows' columns ``[trim, n)`` moved right by
        ``shift`` (a longer row is joining) or left by ``trim`` (columns no row uses any more)."""
        kbufs, vbufs = [], []
        b, n = len(self.rows), self.n
        for i, (k, v) in enumerate(like):
            shape = (rows, k.shape[1], cols, k.shape[3])
            kb, vb = (
                torch.zeros(shape, dtype=k.dtype, device=k.device),
                torch.zeros(shape, dtype=v.dtype, device=v.device),
            )
            if b and self.kbufs:
                kb[:b, :, shift : shift + n - trim] = self.kbufs[i][:b, :, trim:n]
                vb[:b, :, shift : shift + n - trim] = self.vbufs[i][:b, :, trim:n]
            kbufs.append(kb)
            vbufs.append(vb)
        mask = torch.zeros(rows, cols, dtype=torch.long, device=self.mask.device)
        if b and self.mask.numel():
            mask[:b, shift : shift + n - trim] = self.mask[:b, trim:n]
        self.kbufs, self.vbufs, self.mask = kbufs, vbufs, mask
        self.n = n + shift - trim
        for r in self.rows:
            r.start += shift - trim

    def _like(self) -> KV:
        return list(zip(self.kbufs, self.vbufs))

    def join(self, row: _Row, kv: KV, headroom: int) -> None:
        length = kv[0][0].shape[2]
        if not self.rows:
            self.n = 0
        rows_cap = self.kbufs[0].shape[0] if self.kbufs else 0
        cols_cap = self.kbufs[0].shape[2] if self.kbufs else 0
        shift = max(0, length - self.n)
        need_rows = len(self.rows) + 1
        need_cols = self.n + shift + headroom
        if not self.kbufs or need_rows > rows_cap or need_cols > cols_cap or shift:
            # columns left of every row's start are dropped, as far as the joining row leaves room
            trim = 0 if shift else min(min((r.start for r in self.rows), default=0), self.n - length)
            self._alloc(
                kv if not self.kbufs else self._like(),
                max(need_rows, 2 * rows_cap if need_rows > rows_cap else rows_cap, 4),
                max(need_cols - trim, cols_cap),
                shift,
                trim,
            )
        i, n = len(self.rows), self.n
        for (kb, vb), (k, v) in zip(self._like(), kv):
            kb[i, :, n - length : n] = k[0]
            vb[i, :, n - length : n] = v[0]
        self.mask[i].zero_()
        self.mask[i, n - length : n] = 1
        row.start = n - length
        self.rows.append(row)

    def ensure_columns(self, extra: int) -> None:
        cols_cap = self.kbufs[0].shape[2]
        if self.n + 1 <= cols_cap:
            return
        trim = min(r.start for r in self.rows)
        self._alloc(self._like(), self.kbufs[0].shape[0], max(cols_cap, self.n - trim + extra), 0, trim)

    def step(self, model, tokens: list[int]) -> torch.Tensor:
        """One decode step of every row (``tokens`` are fed at column n): the next-token logits [rows, vocab]."""
        b, n = len(self.rows), self.n
        self.mask[:b, n] = 1
        ids = torch.tensor(tokens, dtype=torch.long, device=self.mask.device).view(b, 1)
        pos = torch.tensor([n - r.start for r in self.rows], dtype=torch.long, device=self.mask.device).view(b, 1)
        layers = [_Slab(kb, vb, b, n) for kb, vb in self._like()]
        out = model(
            input_ids=ids, attention_mask=self.mask[:b, : n + 1], position_ids=pos, cache=Cache(layers=layers),
            use_cache=True,
        )  # fmt: skip
        self.n = n + 1
        return out.logits[:, -1, :].float()

    def row_kv(self, i: int) -> KV:
        r, n = self.rows[i], self.n
        return [
            (kb[i : i + 1, :, r.start : n].clone(), vb[i : i + 1, :, r.start : n].clone()) for kb, vb in self._like()
        ]

    def remove(self, i: int) -> None:
        last = len(self.rows) - 1
        if i != last:
            for kb, vb in self._like():
                kb[i, :, : self.n] = kb[last, :, : self.n]
                vb[i, :, : self.n] = vb[last, :, : self.n]
            self.mask[i, : self.n] = self.mask[last, : self.n]
            self.rows[i] = self.rows[last]
        self.rows.pop()
        if not self.rows:  # free the memory between bursts
            self.kbufs, self.vbufs, self.mask, self.n = [], [], torch.zeros(0, 0, dtype=torch.long), 0


# ---------------------------------------------------------------------------------------------- the engine
def _sdpa_matching_dtypes(module, query, key, value, attention_mask, **kwargs):
    """SDPA with the query cast to the keys' dtype (the cache keeps float32 keys and values under bfloat16
    weights: bfloat16 attention for one query token is several times slower on a CPU) and the output cast
    back."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    dtype = query.dtype
    out, weights = sdpa_attention_forward(module, query.to(key.dtype), key, value, attention_mask, **kwargs)
    return out.to(dtype), weights


class _Float32Head(torch.nn.Module):
    """The output layer in float32 over a bfloat16 model: answer log-probabilities keep their precision."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight.detach().float(), requires_grad=False)
        self.bias = None if bias is None else torch.nn.Parameter(bias.detach().float(), requires_grad=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(hidden.float(), self.weight, self.bias)


ATTENTION = "legible_sdpa"


@functools.lru_cache(maxsize=2)
def load_lm(path: str, dtype: str = "float32", device: str = "cpu"):
    """(tokenizer, model) for a transformers directory, loaded once per process (the two most recent).

    ``dtype="bfloat16"``: weights in bfloat16 (matrix products about twice as fast where the CPU has
    bfloat16 instructions), the output layer, the keys and values and attention in float32."""
    from transformers import AttentionInterface, AutoModelForCausalLM, AutoTokenizer
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"{PROVIDER}/{path}: dtype={dtype!r}; expected float32 or bfloat16")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if dtype == "float32":
        return tokenizer, AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device).eval()
    AttentionInterface.register(ATTENTION, _sdpa_matching_dtypes)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation=ATTENTION)
    head = model.get_output_embeddings()
    if isinstance(head, torch.nn.Linear):
        model.set_output_embeddings(_Float32Head(head.weight, head.bias))
        model.config.tie_word_embeddings = False
    return tokenizer, model.to(device).eval()


_STOP = object()  # put on an engine's queue by ``close``: the worker ends
_ENGINES: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_engines() -> None:
    # A daemon worker still inside torch when the interpreter finalises aborts the process ("terminate
    # called without an active exception", exit 134), so every live worker is ended before that.
    for engine in list(_ENGINES):
        engine.close()


class Engine:
    """Serves requests for one model from a worker thread (see the module docstring)."""

    def __init__(
        self,
        tokenizer,
        model,
        *,
        max_batch: int = MAX_BATCH,
        prefix_cache_mb: float = PREFIX_CACHE_MB,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.tokenizer, self.model = tokenizer, model
        self.device = next(model.parameters()).device
        self.max_batch = max(1, int(max_batch))
        self.prefix = PrefixCache(int(float(prefix_cache_mb) * 2**20))
        self.idle_seconds = idle_seconds
        self.eos_ids = self._eos_ids()
        self.max_length = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
        self._queue: queue.Queue[tuple[Request, concurrent.futures.Future]] = queue.Queue()
        self._memo: OrderedDict[tuple, concurrent.futures.Future] = OrderedDict()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._waiting: list[_Row] = []
        self.batch = _Batch()
        _ENGINES.add(self)
        # What the engine did, for measurement and tests.
        self.stats = {
            "requests": 0,
            "memo_hits": 0,
            "steps": 0,
            "row_steps": 0,
            "largest_batch": 0,
            "prefill_tokens": 0,
            "prefill_passes": 0,
            "choices": 0,
            "reused_tokens": 0,
            "prefill_seconds": 0.0,
            "decode_seconds": 0.0,
            "cpu_seconds": 0.0,  # the worker thread's CPU time (wall time also counts other processes' turns)
        }
        self._check_cache()

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.tokenizer):
            eos = getattr(source, "eos_token_id", None)
            if isinstance(eos, int):
                ids.add(eos)
            elif isinstance(eos, (list, tuple)):
                ids.update(int(e) for e in eos)
        return ids

    @torch.inference_mode()
    def _check_cache(self) -> None:
        """Refuse models whose cache is not plain keys and values per layer (sliding windows, recurrent
        states): the batch's buffers would mis-serve them."""
        cache = DynamicCache(config=self.model.config)
        self.model(input_ids=torch.tensor([[0, 0]], device=self.device), cache=cache, use_cache=True)
        # (heads, dim, dtype) of each layer's keys and values: the shape of the buffers a group prefill fills
        self._layer_shapes = [(layer.keys.shape[1], layer.keys.shape[3], KV_DTYPE) for layer in cache.layers]
        if not cache.layers or any(type(layer) is not DynamicLayer for layer in cache.layers):
            kinds = sorted({type(layer).__name__ for layer in cache.layers})
            raise ValueError(
                f"{PROVIDER}: {type(self.model).__name__} keeps a {', '.join(kinds) or 'no'} cache, which this "
                "provider does not batch; use Inspect's hf/ provider for it"
            )

    # ------------------------------------------------------------------ the caller's side
    def submit(self, request: Request) -> concurrent.futures.Future:
        """A future of the request's Result. Identical greedy requests share one future."""
        key = request.memo_key()
        with self._lock:
            self.stats["requests"] += 1
            if key is not None and key in self._memo:
                self._memo.move_to_end(key)
                self.stats["memo_hits"] += 1
                return self._memo[key]
            future: concurrent.futures.Future = concurrent.futures.Future()
            if key is not None:
                self._memo[key] = future
                while len(self._memo) > MEMO_SIZE:
                    self._memo.popitem(last=False)
                future.add_done_callback(lambda f, key=key: self._forget_failed(key, f))
            self._queue.put((request, future))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="legible-hf-engine", daemon=True)
                self._thread.start()
        return future

    def _forget_failed(self, key: tuple, future: concurrent.futures.Future) -> None:
        if future.cancelled() or future.exception() is not None:
            with self._lock:
                if self._memo.get(key) is future:
                    del self._memo[key]

    def close(self, timeout: float = 30.0) -> None:
        """End the worker thread once what it is serving is done (a later request starts a new one)."""
        with self._lock:
            thread = self._thread
            if thread is None or not thread.is_alive():
                return
            self._queue.put(_STOP)  # type: ignore[arg-type]
        thread.join(timeout)

    def clear(self) -> None:
        """Drop the remembered results and the prefix cache."""
        with self._lock:
            self._memo.clear()
        self.prefix.clear()

    # ------------------------------------------------------------------ the worker
    def _run(self) -> None:
        stopping = False
        with torch.inference_mode():
            while True:
                busy = bool(self.batch.rows or self._waiting)
                if stopping and not busy:
                    with self._lock:
                        if self._queue.empty():
                            self._thread = None
                            self.prefix.clear()
                            return
                try:
                    item = None if busy else self._queue.get(timeout=self.idle_seconds)
                except queue.Empty:
                    with self._lock:  # nothing came: end the thread, unless a request slipped in just now
                        if self._queue.empty():
                            self._thread = None
                            self.prefix.clear()
                            return
                    continue
                items = [item] if item is not None else []
                while True:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if any(i is _STOP for i in items):
                    stopping, items = True, [i for i in items if i is not _STOP]
                cpu = time.thread_time()
                try:
                    self._iterate(items)
                except Exception as e:  # a bug, not a bad request: fail what is pending rather than hang it
                    pending = [f for _, f in items] + [r.future for r in self._waiting + self.batch.rows]
                    for future in pending:
                        if not future.done():
                            future.set_exception(e)
                    self._waiting, self.batch = [], _Batch()
                self.stats["cpu_seconds"] += time.thread_time() - cpu

    def _iterate(self, items: list[tuple[Request, concurrent.futures.Future]]) -> None:
        """One round of the worker: admit what arrived, read the new prompts, then one decoding step."""
        choices: list[tuple[Request, concurrent.futures.Future]] = []
        for request, future in items:
            self._admit(request, future, choices)
        joining = []
        while self._waiting and len(self.batch) + len(joining) < self.max_batch:
            joining.append(self._waiting.pop(0))
        if choices or joining:
            self._serve(choices, joining)
        if self.batch.rows:
            self._decode()

    def _admit(self, request: Request, future: concurrent.futures.Future, choices: list) -> None:
        if not future.set_running_or_notify_cancel():
            return
        if request.choices is not None:
            choices.append((request, future))
            return
        row = _Row(request, future, time.monotonic(), reused=0)
        if request.temperature > 0:
            row.generator = torch.Generator(device=self.device)
            row.generator.manual_seed(request.seed if request.seed is not None else secrets.randbits(63))
        self._waiting.append(row)

    def _serve(self, choices: list[tuple[Request, concurrent.futures.Future]], joining: list[_Row]) -> None:
        """Read the new requests' prompts (together, see ``_prefill_many``), then answer the choices and
        start the generations (which join the decoding batch)."""
        rows = []
        for row in joining:
            if self.max_length is not None:
                row.request.max_new = max(0, min(row.request.max_new, self.max_length - len(row.request.ids)))
            if row.request.max_new <= 0:
                self._finish(row, "max_tokens")
            else:
                rows.append(row)
        jobs = [request.ids for request, _ in choices] + [row.request.ids for row in rows]
        results = self._prefill_many(jobs)
        for (request, future), result in zip(choices, results):
            try:
                if isinstance(result, BaseException):
                    raise result
                future.set_result(self._choose(request, *result))
            except Exception as e:  # handed to the request, which raises it in its own sample
                future.set_exception(e)
        for row, result in zip(rows, results[len(choices) :]):
            try:
                if isinstance(result, BaseException):
                    raise result
                self._start(row, *result)
            except Exception as e:
                if not row.future.done():
                    row.future.set_exception(e)

    def _prefill_many(self, jobs: list[list[int]]) -> list[tuple[KV, torch.Tensor, int] | BaseException]:
        """Keys and values of each token list and the logits after it, reusing the longest cached prefix of
        each. Jobs that need about as many new tokens go through the model together: a forward pass of a few
        tokens costs about as much as reading the weights once, so one pass for many short jobs (forced
        answers after a truncated CoT) is several times cheaper than one each."""
        start = time.monotonic()
        looked = []
        for ids in jobs:
            t = torch.tensor(ids, dtype=torch.long)
            reused, cached = self.prefix.lookup(t)
            reused = min(reused, len(ids) - 1) if cached is not None else 0  # the last token is always fed
            looked.append((t, reused, cached))
        results: list = [None] * len(jobs)
        order = sorted(range(len(jobs)), key=lambda i: len(jobs[i]) - looked[i][1])
        group: list[int] = []

        def flush() -> None:
            if group:
                try:
                    for i, result in zip(group, self._prefill_group([looked[i] for i in group])):
                        results[i] = result
                except Exception as e:
                    for i in group:
                        results[i] = e
                group.clear()

        for i in order:
            new = len(jobs[i]) - looked[i][1]
            if group:
                smallest = len(jobs[group[0]]) - looked[group[0]][1]
                width = max(len(jobs[j]) for j in group + [i])
                # a group recomputes up to its largest new part for every row, and must not reach before a
                # row's first token; its buffers hold rows x longest row
                if (
                    new > 1.5 * smallest + 8
                    or new > min(len(jobs[j]) for j in group)
                    or (len(group) + 1) * width > GROUP_TOKENS
                ):
                    flush()
            group.append(i)
        flush()
        self.stats["prefill_seconds"] += time.monotonic() - start
        return results

    def _prefill_group(self, rows: list[tuple[torch.Tensor, int, KV | None]]) -> list[tuple[KV, torch.Tensor, int]]:
        """One forward pass over rows right-aligned in a padded batch: each row feeds its last ``q`` tokens
        (``q``: the most any row needs) on top of its cached prefix before them."""
        g = len(rows)
        q = max(len(t) - reused for t, reused, _ in rows)
        width = max(len(t) for t, _, _ in rows)
        if g == 1 and rows[0][1] == 0:  # nothing cached: a plain causal pass
            t = rows[0][0]
            cache = DynamicCache(config=self.model.config)
            out = self.model(input_ids=t[None].to(self.device), cache=cache, use_cache=True, logits_to_keep=1)
            self.stats["prefill_tokens"] += len(t)
            self.stats["prefill_passes"] += 1
            kv = [(layer.keys.to(KV_DTYPE), layer.values.to(KV_DTYPE)) for layer in cache.layers]
            return [(kv, out.logits[0, -1].float(), 0)]
        kbufs = [torch.zeros((g, h, width, d), dtype=dt, device=self.device) for h, d, dt in self._layer_shapes]
        vbufs = [torch.zeros_like(kb) for kb in kbufs]
        mask = torch.zeros((g, width), dtype=torch.long, device=self.device)
        ids = torch.zeros((g, q), dtype=torch.long)
        pos = torch.zeros((g, q), dtype=torch.long)
        for i, (t, _, cached) in enumerate(rows):
            length = len(t)
            kept = length - q  # cached tokens this row keeps (its part of the pass starts after them)
            if kept > 0:
                for (kb, vb), (k, v) in zip(zip(kbufs, vbufs), cached):
                    kb[i, :, width - length : width - q] = k[0, :, :kept]
                    vb[i, :, width - length : width - q] = v[0, :, :kept]
            mask[i, width - length :] = 1
            ids[i] = t[kept:]
            pos[i] = torch.arange(kept, length)
        layers = [_Slab(kb, vb, g, width - q) for kb, vb in zip(kbufs, vbufs)]
        out = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask,
            position_ids=pos.to(self.device),
            cache=Cache(layers=layers),
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats["prefill_tokens"] += g * q
        self.stats["prefill_passes"] += 1
        results = []
        for i, (t, _, _) in enumerate(rows):
            first = width - len(t)
            kv = [(kb[i : i + 1, :, first:], vb[i : i + 1, :, first:]) for kb, vb in zip(kbufs, vbufs)]
            kept = len(t) - q
            self.stats["reused_tokens"] += kept
            results.append((kv, out.logits[i, -1].float(), kept))
        return results

    def _choose(self, request: Request, kv: KV, logits: torch.Tensor, reused: int) -> Result:
        """The likeliest option of a closed answer space, from the logits after the prompt (plus one forward
        pass per option that is more than a token long)."""
        start = time.monotonic()
        self.stats["choices"] += 1
        first = torch.log_softmax(logits, -1)
        scores = []
        for option in request.choices or ():
            score = float(first[option[0]])
            if len(option) > 1:
                length = len(request.ids)
                layers = []
                for k, v in kv:
                    shape = (1, k.shape[1], length + len(option) - 1, k.shape[3])
                    kb, vb = (
                        torch.zeros(shape, dtype=k.dtype, device=k.device),
                        torch.zeros(shape, dtype=v.dtype, device=v.device),
                    )
                    kb[:, :, :length], vb[:, :, :length] = k[:, :, :length], v[:, :, :length]
                    layers.append(_Slab(kb, vb, 1, length))
                rest = torch.tensor(option[:-1], dtype=torch.long, device=self.device)[None]
                out = self.model(
                    input_ids=rest,
                    attention_mask=torch.ones((1, length + len(option) - 1), dtype=torch.long, device=self.device),
                    position_ids=torch.arange(length, length + len(option) - 1, device=self.device)[None],
                    cache=Cache(layers=layers),
                    use_cache=True,
                )
                lp = torch.log_softmax(out.logits[0].float(), -1)
                score += sum(float(lp[i, tok]) for i, tok in enumerate(option[1:]))
            scores.append(score)
        best = max(range(len(scores)), key=scores.__getitem__)
        texts = request.choice_texts or tuple(self.tokenizer.decode(list(o)) for o in request.choices or ())
        logprobs = None
        if request.logprobs:
            ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
            alts = [TopLogprob(token=texts[i], logprob=scores[i], bytes=list(texts[i].encode())) for i in ranked]
            logprobs = [
                Logprob(token=texts[best], logprob=scores[best], bytes=list(texts[best].encode()), top_logprobs=alts)
            ]
        return Result(
            tokens=list((request.choices or ())[best]),
            text=texts[best],
            stop_reason="stop",
            logprobs=logprobs,
            input_tokens=len(request.ids),
            reused_tokens=reused,
            seconds=time.monotonic() - start,
        )

    def _start(self, row: _Row, kv: KV, logits: torch.Tensor, reused: int) -> None:
        """A generation's first token (from its prompt's logits); then it joins the decoding batch."""
        row.reused, row.fed = reused, list(row.request.ids)
        if self._take(row, logits):
            self.prefix.add(torch.tensor(row.fed, dtype=torch.long), [(k.clone(), v.clone()) for k, v in kv])
            return
        headroom = max(r.request.max_new - len(r.generated) for r in [*self.batch.rows, row]) + 1
        self.batch.join(row, kv, headroom)
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(self.batch))

    def _take(self, row: _Row, logits: torch.Tensor) -> bool:
        """Pick the row's next token from ``logits``; True when the row is finished (and answered)."""
        request = row.request
        if request.temperature > 0:
            token = self._sample(logits, request, row.generator)
        else:
            token = int(logits.argmax())
        if request.logprobs:
            lp = torch.log_softmax(logits, -1)
            k = max(1, min(request.top_logprobs or 1, lp.shape[-1]))
            values, indices = lp.topk(k)
            alts = [
                TopLogprob(token=(s := self.tokenizer.decode([i])), logprob=v, bytes=list(s.encode()))
                for v, i in zip(values.tolist(), indices.tolist())
            ]
            text = self.tokenizer.decode([token])
            row.logprobs.append(
                Logprob(token=text, logprob=float(lp[token]), bytes=list(text.encode()), top_logprobs=alts)
            )
        if token in self.eos_ids:
            self._finish(row, "stop")
            return True
        row.generated.append(token)
        if request.stop_seqs:
            text = self.tokenizer.decode(row.generated, skip_special_tokens=True)
            if any(s in text for s in request.stop_seqs):
                self._finish(row, "stop")
                return True
        if len(row.generated) >= request.max_new:
            self._finish(row, "max_tokens")
            return True
        return False

    @staticmethod
    def _sample(logits: torch.Tensor, request: Request, generator: torch.Generator | None) -> int:
        logits = logits / request.temperature
        if request.top_k:
            kth = logits.topk(min(request.top_k, logits.shape[-1])).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, -1)
        if request.top_p is not None and request.top_p < 1:
            sorted_p, order = probs.sort(descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > request.top_p
            sorted_p[drop] = 0
            probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
        return int(torch.multinomial(probs, 1, generator=generator))

    def _finish(self, row: _Row, reason: StopReason) -> None:
        request = row.request
        text = self.tokenizer.decode(row.generated, skip_special_tokens=True)
        cut = min((text.find(s) for s in request.stop_seqs if s in text), default=-1)
        if cut >= 0:
            text = text[:cut]
        if not row.future.done():
            row.future.set_result(
                Result(
                    tokens=list(row.generated),
                    text=text,
                    stop_reason=reason,
                    logprobs=row.logprobs if request.logprobs else None,
                    input_tokens=len(request.ids),
                    reused_tokens=row.reused,
                    seconds=time.monotonic() - row.start_time,
                )
            )

    def _decode(self) -> None:
        batch, start = self.batch, time.monotonic()
        try:
            batch.ensure_columns(max(r.request.max_new - len(r.generated) for r in batch.rows) + 1)
            tokens = [r.generated[-1] for r in batch.rows]
            logits = batch.step(self.model, tokens)
        except Exception as e:  # a failed step fails the rows in it, not the engine
            for r in batch.rows:
                if not r.future.done():
                    r.future.set_exception(e)
            self.batch = _Batch()
            return
        self.stats["steps"] += 1
        self.stats["row_steps"] += len(batch.rows)
        self.stats["decode_seconds"] += time.monotonic() - start
        finished = []
        for i, row in enumerate(batch.rows):
            row.fed.append(row.generated[-1])
            if self._take(row, logits[i]):
                finished.append(i)
        for i in reversed(finished):
            self.prefix.add(torch.tensor(batch.rows[i].fed, dtype=torch.long), batch.row_kv(i))
            batch.remove(i)
