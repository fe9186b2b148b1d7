"""The tiny transformer's forward, rewritten for speed, against the plain attention it replaced.

The reference below is the earlier code written out: an explicit (T, keys) causal mask with a
padding query seeing itself, masked_fill, RoPE on the two halves apart, matmuls throughout. The
model's forward must give the same logits and gradients with left padding, through a KV cache
(in-place buffers and concatenated), one token per call and several.
"""

from __future__ import annotations

import pytest
import torch

from legible.policy._tiny import KVCache, TinyConfig, TinyTransformer, rotary_table, sample

CFG = TinyConfig(vocab_size=37)
PAD = 0


def reference_logits(model: TinyTransformer, idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits (B, T, V) of left-padded rows, without a cache, by the pre-change attention math."""
    B, T = idx.shape
    H = model.cfg.n_head
    D = model.cfg.n_embd // H
    pos = (mask.long().cumsum(1) - 1).clamp(min=0)
    at = torch.arange(T)
    causal, itself = at <= at.unsqueeze(1), at == at.unsqueeze(1)
    blocked = ~(causal & (mask.unsqueeze(1) | itself)).unsqueeze(1)  # (B, 1, T, T)
    cos, sin = rotary_table(T, D)
    cos, sin = cos[pos].unsqueeze(2), sin[pos].unsqueeze(2)  # (B, T, 1, D/2)

    def rotate(x):
        x1, x2 = x[..., : D // 2], x[..., D // 2 :]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    x = model.tok_emb(idx)
    for block in model.blocks:
        q, k, v = block.attn.qkv(block.ln1(x)).view(B, T, 3, H, D).unbind(2)
        q, k, v = rotate(q).transpose(1, 2), rotate(k).transpose(1, 2), v.transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) * (D**-0.5)
        y = scores.masked_fill(blocked, float("-inf")).softmax(-1) @ v
        x = x + block.attn.proj(y.transpose(1, 2).reshape(B, T, -1))
        x = x + block.mlp(block.ln2(x))
    return model.head(model.ln_f(x))


def make_model(seed: int = 0) -> TinyTransformer:
    torch.manual_seed(seed)
    model = TinyTransformer(CFG)
    with torch.no_grad():  # larger than the initial weights, so attention is far from uniform
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model


def left_padded(rows: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(1, CFG.vocab_size, (rows, width), generator=g)
    lengths = torch.randint(1, width + 1, (rows,), generator=g)
    lengths[0] = width
    mask = torch.arange(width) >= (width - lengths).unsqueeze(1)
    return idx.masked_fill(~mask, PAD), mask


def test_forward_matches_reference_with_left_padding_and_gradients():
    model, ref = make_model(1), make_model(1)
    idx, mask = left_padded(24, 19, seed=2)
    out, expected = model(idx, mask), reference_logits(ref, idx, mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    for (name, p), p_ref in zip(model.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad, atol=1e-5, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("capacity", [None, 8, 64])
@pytest.mark.parametrize("chunks", [(7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), (7, 6, 4, 1, 2, 5), (20, 10)])
def test_cached_continuation_matches_reference(capacity, chunks):
    """A prompt, then continuations of one token per call (a decode step) or several, with rows
    that add padding on the way (finished rows while sampling): every position as in one pass.
    Lengths 7 to 30 cover attention spans on both sides of torch's small-matmul cutoff."""
    model = make_model(4)
    idx, mask = left_padded(16, sum(chunks), seed=5)
    mask[3, 12:15] = False  # a row that pads in the middle, as a finished row does
    idx = idx.masked_fill(~mask, PAD)
    expected = reference_logits(model, idx, mask)
    with torch.no_grad():
        cache, parts, at = KVCache(CFG.n_layer, capacity), [], 0
        for n in chunks:
            parts.append(model(idx[:, at : at + n], mask[:, at : at + n], cache))
            at += n
    torch.testing.assert_close(torch.cat(parts, 1), expected, atol=1e-5, rtol=0)


def test_continuation_from_selected_cache_with_gradients():
    """As in training (``continuation_logits``): a prompt pass for the distinct prompts, each row
    continuing from a copy of its prompt's cache; logits and gradients as in one pass per row."""
    model, ref = make_model(6), make_model(6)
    prompts, prompt_mask = left_padded(4, 9, seed=7)
    rows = torch.tensor([0, 0, 1, 2, 3, 3, 1, 2])
    g = torch.Generator().manual_seed(8)
    cont = torch.randint(1, CFG.vocab_size, (len(rows), 6), generator=g)
    cont_mask = torch.arange(6) < torch.randint(1, 7, (len(rows),), generator=g).unsqueeze(1)
    cont = cont.masked_fill(~cont_mask, PAD)
    cache = KVCache(CFG.n_layer)
    first = model(prompts, prompt_mask, cache)[:, -1:].index_select(0, rows)
    out = torch.cat([first, model(cont, cont_mask, cache.select(rows))], 1)
    full_idx, full_mask = torch.cat([prompts[rows], cont], 1), torch.cat([prompt_mask[rows], cont_mask], 1)
    expected = reference_logits(ref, full_idx, full_mask)[:, prompts.shape[1] - 1 :]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    weights = (
        torch.randn(out.shape, generator=g) * torch.cat([torch.ones(len(rows), 1), cont_mask.float()], 1)[..., None]
    )
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    # The shared prompt's gradient is summed over its copies, in another order than over whole
    # rows: float32 rounding of gradients up to ~100 (the code before this rewrite: the same).
    for (name, p), p_ref in zip(model.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad, atol=3e-4, rtol=1e-3, msg=lambda m, name=name: f"{name}: {m}")


def test_sampling_past_the_rope_table_then_training():
    """The RoPE table grown inside ``sample`` (inference mode) still serves a pass with gradients."""
    model = make_model(9)
    n = model.rope_rows.shape[0] + 10
    sample(model, [[1] * n], max_new_tokens=2, stop_id=2, pad_id=PAD, generator=torch.Generator().manual_seed(0))
    assert model.rope_rows.shape[0] >= n + 2
    idx = torch.ones(1, n, dtype=torch.long)
    model(idx, torch.ones(1, n, dtype=torch.bool)).sum().backward()
    assert model.tok_emb.weight.grad is not None


def test_logits_at_chosen_columns_match_the_whole_pass_with_gradients():
    """``at``: the last layer computes only the columns asked for (an answer pass reads one per row); the
    logits and gradients are those of the whole pass at those columns, padding queries included."""
    model, ref = make_model(10), make_model(10)
    idx, mask = left_padded(12, 15, seed=11)
    g = torch.Generator().manual_seed(12)
    at = torch.randint(0, 15, (12, 3), generator=g)
    at[:, 0] = 14  # the last column, as answer and prompt passes read it
    out = model(idx, mask, at=at)
    expected = reference_logits(ref, idx, mask).gather(1, at.unsqueeze(-1).expand(-1, -1, CFG.vocab_size))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    weights = torch.randn(out.shape, generator=g)
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    for (name, p), p_ref in zip(model.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad, atol=1e-5, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


def test_logits_at_columns_of_a_cached_continuation():
    """``at`` on a continuation of a cache (right-padded, as ``continuation_logits`` runs it): the keys and
    values of every position still reach the cache, so a later call sees the whole row."""
    model = make_model(13)
    idx, mask = left_padded(8, 20, seed=14)
    expected = reference_logits(model, idx, mask)
    with torch.no_grad():
        cache = KVCache(CFG.n_layer)
        first = model(idx[:, :9], mask[:, :9], cache, at=torch.full((8, 1), 8))
        middle = model(idx[:, 9:15], mask[:, 9:15], cache, at=torch.tensor([[5], [2]] * 4))
        rest = model(idx[:, 15:], mask[:, 15:], cache)
    torch.testing.assert_close(first[:, 0], expected[:, 8], atol=1e-5, rtol=0)
    torch.testing.assert_close(middle[:, 0], expected[torch.arange(8), torch.tensor([14, 11] * 4)], atol=1e-5, rtol=0)
    torch.testing.assert_close(rest, expected[:, 15:], atol=1e-5, rtol=0)
