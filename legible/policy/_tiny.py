"""The organism's policy: a small decoder-only transformer, nanoGPT-style, in one file.

Batches are left-padded: every row carries a boolean ``mask`` of real tokens, positions are
counted over real tokens only, and attention never looks at padding. That lets prompts of
different lengths share one batch and one KV cache during sampling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TinyConfig:
    vocab_size: int
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


class KVCache:
    """Keys and values of every layer for the tokens seen so far, plus which of them are real.

    With a ``capacity`` (sampling, no gradients) the buffers are allocated once and written in
    place, doubled if a call runs past it: growing them with ``torch.cat`` copied the whole
    cache on every sampled token, the largest single cost of sampling. Without one, each call
    concatenates, which autograd can follow: the training pass runs a prompt once for its whole
    group and continues every sample from a copy of its cache (``select``)."""

    def __init__(self, n_layer: int, capacity: int | None = None) -> None:
        self.capacity = capacity
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer
        self.mask_buffer: torch.Tensor | None = None  # (B, capacity or length) bool: real tokens
        self.length = 0
        self.next_pos: torch.Tensor | None = None  # (B,) position of the next real token

    def extend(self, mask: torch.Tensor) -> torch.Tensor:
        """Make room for ``mask.shape[1]`` more tokens; return the mask of every key (B, length)."""
        B, T = mask.shape
        start, end = self.length, self.length + T
        self.length = end
        if self.capacity is None:
            self.mask_buffer = mask if self.mask_buffer is None else torch.cat([self.mask_buffer, mask], 1)
            return self.mask_buffer
        if self.mask_buffer is None:
            self.capacity = max(self.capacity, end)
            self.mask_buffer = torch.zeros(B, self.capacity, dtype=torch.bool, device=mask.device)
        elif end > self.capacity:
            self.capacity = max(2 * self.capacity, end)
            self.mask_buffer = _grown(self.mask_buffer, self.capacity, dim=1)
            self.keys = [None if k is None else _grown(k, self.capacity, dim=2) for k in self.keys]
            self.values = [None if v is None else _grown(v, self.capacity, dim=2) for v in self.values]
        self.mask_buffer[:, start:end] = mask
        return self.mask_buffer[:, :end]

    def store(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add this call's keys and values (B, H, T, D) of ``layer`` (``extend`` has made room for
        them: they are the last T of ``length``); return all of them so far."""
        if self.capacity is None:
            if self.keys[layer] is not None:
                k, v = torch.cat([self.keys[layer], k], 2), torch.cat([self.values[layer], v], 2)
            self.keys[layer], self.values[layer] = k, v
            return k, v
        if self.keys[layer] is None:
            B, H, _, D = k.shape
            self.keys[layer] = k.new_empty(B, H, self.capacity, D)
            self.values[layer] = v.new_empty(B, H, self.capacity, D)
        keys, values = self.keys[layer], self.values[layer]
        start = self.length - k.shape[2]
        keys[:, :, start : self.length] = k
        values[:, :, start : self.length] = v
        return keys[:, :, : self.length], values[:, :, : self.length]

    def select(self, rows: torch.Tensor) -> KVCache:
        """A cache whose row i is a copy of row ``rows[i]`` of this one."""
        out = KVCache(len(self.keys), self.capacity)
        out.keys = [None if k is None else _rows(k, rows) for k in self.keys]
        out.values = [None if v is None else _rows(v, rows) for v in self.values]
        out.mask_buffer = None if self.mask_buffer is None else self.mask_buffer.index_select(0, rows)
        out.next_pos = None if self.next_pos is None else self.next_pos.index_select(0, rows)
        out.length = self.length
        return out


def _rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``x.index_select(0, rows)`` as an embedding lookup: the gradient that reaches a cache
    from ``torch.cat`` is a strided slice, which index_select's backward scattered 3x slower."""
    return F.embedding(rows, x.reshape(x.shape[0], -1)).view(len(rows), *x.shape[1:])


def _grown(buffer: torch.Tensor, capacity: int, dim: int) -> torch.Tensor:
    shape = list(buffer.shape)
    shape[dim] = capacity
    out = buffer.new_zeros(shape)
    out.narrow(dim, 0, buffer.shape[dim]).copy_(buffer)
    return out


def rotary_table(n_pos: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (n_pos, head_dim/2) of the rotary position embedding (RoPE) for positions 0..n_pos-1.

    Relative positions matter here: step k of a CoT must read input k, a fixed distance back."""
    half = head_dim // 2
    freqs = 1.0 / (10000 ** (torch.arange(half, dtype=torch.float32) / half))
    angles = torch.arange(n_pos, dtype=torch.float32).unsqueeze(-1) * freqs
    return angles.cos(), angles.sin()


def rope_rows(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Per position, the ``cos`` and ``sin`` arguments of ``rotate`` side by side: (n_pos, 2 * head_dim)."""
    return torch.cat([cos, cos, -sin, sin], dim=1)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Apply RoPE to ``x`` (..., D), with ``cos`` = [cos, cos] and ``sin`` = [-sin, sin] broadcastable
    to (..., D): the same sums as rotating the two halves apart, in fewer ops."""
    return x * cos + x.roll(x.shape[-1] // 2, -1) * sin


class SelfAttention(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple,
        bias: torch.Tensor,
        cache: KVCache | None,
        layer: int,
        at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        qkv = self.qkv(x).view(B, T, 3 * H, D)
        qk = rotate(qkv[:, :, : 2 * H], *rope)  # queries and keys in one pass
        q, k, v = qk[:, :, :H].transpose(1, 2), qk[:, :, H:].transpose(1, 2), qkv[:, :, 2 * H :].transpose(1, 2)
        if cache is not None:
            k, v = cache.store(layer, k, v)
        if at is not None:  # queries at those columns only; keys and values everywhere
            q = q.gather(2, at[:, None, :, None].expand(B, H, -1, D))
            bias = bias.gather(2, at[:, None, :, None].expand(B, 1, -1, bias.shape[-1]))
            T = at.shape[1]
        # Written out rather than F.scaled_dot_product_attention: at these sizes (head dim 16,
        # one query per decode step) the fused kernel was slower, still so on torch 2.13.
        probs = torch.add(bias, q @ k.transpose(-2, -1), alpha=D**-0.5).softmax(-1)
        if T == 1 and k.shape[2] * D < 400:
            # torch runs batched matmuls of under 400 multiply-adds each with a scalar loop; a
            # decode step's (1, L) x (L, D) products are that small for short rows, and a
            # broadcast product and sum was 3x faster for them.
            y = (probs.transpose(-2, -1) * v).sum(2, keepdim=True)
        else:
            y = probs @ v
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(), nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        )

    def forward(self, x, rope, bias, cache, layer, at=None):
        y = self.attn(self.ln1(x), rope, bias, cache, layer, at)
        if at is not None:
            x = x.gather(1, at.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = x + y
        return x + self.mlp(self.ln2(x))


class TinyTransformer(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        # No weight tying: with input and output embeddings shared, the state words (which are
        # both inputs and targets) stayed at chance for hundreds of steps on coin flip.
        # Not parameters and not saved: a cache of cos/sin, so checkpoints do not change.
        self.register_buffer("rope_rows", rope_rows(*rotary_table(256, cfg.n_embd // cfg.n_head)), persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, mask: torch.Tensor, cache: KVCache | None = None, at: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (B, T, V) for ``idx`` (B, T); ``mask`` marks real tokens (False = padding).

        With a ``cache``, ``idx`` continues the cached tokens and the cache is extended. With ``at`` (B, K),
        only the logits after those columns of each row: (B, K, V). Every layer still computes keys and
        values at every position, but the last one attends from, and runs its MLP and the head at, those
        columns only: an answer pass reads one column of forty.
        """
        B, T = idx.shape
        past = 0 if cache is None else cache.length
        start = None if cache is None else cache.next_pos
        seen = mask.long().cumsum(1)  # real tokens of this call up to each position
        pos = (seen - 1 if start is None else start.unsqueeze(1) + seen - 1).clamp(min=0)
        key_mask = mask if cache is None else cache.extend(mask)
        if cache is not None:
            cache.next_pos = seen[:, -1] if start is None else start + seen[:, -1]
        # Causal attention to real keys, as an additive bias shared by the layers. A padding
        # query may see no key at all; let it see itself so softmax stays finite.
        allowed = key_mask.unsqueeze(1).expand(B, T, past + T).tril(past)
        allowed.diagonal(past, 1, 2).fill_(True)
        bias = torch.where(allowed, 0.0, float("-inf")).unsqueeze(1)  # (B, 1, T, past + T)
        # Positions count real tokens only, so none reaches past + T: no need to read pos.max().
        D = self.cfg.n_embd // self.cfg.n_head
        rows = F.embedding(pos, self.rope_table(past + T)).unsqueeze(2)  # (B, T, 1, 2D)
        rope = rows[..., :D], rows[..., D:]
        x = self.tok_emb(idx)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x, rope, bias, cache, i, at if i == last else None)
        return self.head(self.ln_f(x))

    def rope_table(self, n_pos: int) -> torch.Tensor:
        """``rope_rows`` for at least ``n_pos`` positions, computed once and grown when needed."""
        if n_pos > self.rope_rows.shape[0]:
            # Not inference tensors even when grown inside ``sample``: training reads them too.
            with torch.inference_mode(False):
                grown = rotary_table(max(n_pos, 2 * self.rope_rows.shape[0]), self.cfg.n_embd // self.cfg.n_head)
                self.rope_rows = rope_rows(*grown).to(self.rope_rows.device)
        return self.rope_rows


def draw(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One sample per row of ``probs`` (B, V) by inverse CDF: the same distribution as
    torch.multinomial, about 8x faster for small batches of short rows."""
    u = torch.rand(probs.shape[0], 1, generator=generator, dtype=probs.dtype)
    return (probs.cumsum(-1) < u * probs.sum(-1, keepdim=True)).sum(-1).clamp(max=probs.shape[-1] - 1)


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token lists into a left-padded (ids, mask) pair."""
    width = max(len(r) for r in rows)
    # one tensor from padded lists: filling row by row cost two small copies per row
    ids = torch.tensor([[pad_id] * (width - len(r)) + list(r) for r in rows], dtype=torch.long).view(len(rows), width)
    return ids, torch.arange(width) >= torch.tensor([width - len(r) for r in rows]).unsqueeze(1)


def right_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token lists into a right-padded (ids, mask) pair: continuations of a cache."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.tensor([list(r) + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long).view(len(rows), width)
    return ids, torch.arange(width) < torch.tensor([len(r) for r in rows]).unsqueeze(1)


def last_column(ids: torch.Tensor) -> torch.Tensor:
    """``at`` for a left-padded batch's last column, after which every row continues: (B, 1)."""
    return torch.full((ids.shape[0], 1), ids.shape[1] - 1, dtype=torch.long)


def shared_prompts(prompts: list[list[int]]) -> tuple[list[list[int]], torch.Tensor]:
    """The distinct prompts, and for each row the index of its prompt among them: a GRPO group
    (one problem, G samples) runs its prompt once."""
    distinct: dict[tuple[int, ...], int] = {}
    copy_of = torch.tensor([distinct.setdefault(tuple(p), len(distinct)) for p in prompts])
    return [list(p) for p in distinct], copy_of


@torch.inference_mode()  # cheaper than no_grad per op, and sampled tokens never need gradients
def sample(
    model: TinyTransformer,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    stop_id: int,
    pad_id: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    feed: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    after_stop: bool = False,
) -> list[list[int]] | tuple[list[list[int]], torch.Tensor]:
    """Sample continuations of ``prompts`` until ``stop_id`` (kept) or ``max_new_tokens``.

    ``temperature=0`` is greedy. ``use_cache=False`` recomputes the whole prefix each step; it
    exists to check and to benchmark the cache against. ``feed(tokens, t)`` gives what the model
    reads back in place of the tokens it drew at step t (step-wise paraphrasing; it must keep
    ``pad_id``); the tokens returned are the ones drawn. With ``after_stop``, also the logits (B, V)
    the model gives after each row's stop token (zeros for a row that never wrote one): the
    distribution of whatever follows it, at the cost of one more step for the rows that stop last.
    """
    B = len(prompts)
    cache = None
    if use_cache:
        distinct, copy_of = shared_prompts(prompts)
        ids, mask = left_pad(distinct, pad_id)
        cache = KVCache(model.cfg.n_layer, ids.shape[1] + max_new_tokens + 1)
        logits = model(ids, mask, cache, at=last_column(ids))[:, 0].index_select(0, copy_of)
        cache = cache.select(copy_of)
    else:
        ids, mask = left_pad(prompts, pad_id)
        logits = model(ids, mask, at=last_column(ids))[:, 0]

    def read(nxt: torch.Tensor, t: int) -> torch.Tensor:
        """The logits after the model reads the tokens drawn at step t."""
        nonlocal ids, mask
        real = (nxt != pad_id).unsqueeze(1)
        if feed is not None:
            nxt = feed(nxt, t)
        if cache is not None:
            return model(nxt.unsqueeze(1), real, cache)[:, -1, :]
        ids = torch.cat([ids, nxt.unsqueeze(1)], 1)
        mask = torch.cat([mask, real], 1)
        return model(ids, mask)[:, -1, :]

    out = torch.full((B, max_new_tokens), pad_id, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    after = torch.zeros(B, logits.shape[-1]) if after_stop else None
    t = 0
    for t in range(max_new_tokens):
        if after is not None and t > 0:
            stopped = out[:, t - 1] == stop_id
            after[stopped] = logits[stopped]
        logits[:, pad_id] = float("-inf")  # padding is never a real token
        if temperature == 0:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits if temperature == 1 else logits / temperature, dim=-1)
            nxt = draw(probs, generator)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        out[:, t] = nxt
        done = done | (nxt == stop_id)
        if bool(done.all()) or t + 1 == max_new_tokens:
            break
        logits = read(nxt, t)
    if after is not None and max_new_tokens > 0:
        stopped = out[:, t] == stop_id  # the rows that stopped at the last step read their stop token now
        if bool(stopped.any()):
            after[stopped] = read(out[:, t], t)[stopped]
    rows = []
    for r in out.tolist():
        row = []
        for tok in r:
            if tok == pad_id:
                break
            row.append(tok)
            if tok == stop_id:
                break
        rows.append(row)
    return (rows, after) if after is not None else rows
