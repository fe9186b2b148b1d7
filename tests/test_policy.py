"""The tiny transformer: left padding, KV cache, sampling; and the rollout helpers."""

from __future__ import annotations

import random

import pytest
import torch
from conftest_models import noisy_tiny_transformer as make_model

from legible.policy._rollout import answer_logprobs, completion_logprobs, prompt_ids, write_cots
from legible.policy._tiny import KVCache, TinyTransformer, left_pad, right_pad, sample, shared_prompts
from legible.policy._vocab import VOCAB
from legible.tasks import CoinFlip

PAD = VOCAB.pad_id
CFG = make_model().cfg  # 2 layers, 4 heads, 32 wide


ROWS = [
    [VOCAB.bos_id, *VOCAB.encode("coin heads same diff diff same _ _")],
    [VOCAB.bos_id, *VOCAB.encode("coin tails diff")],
    [VOCAB.bos_id, *VOCAB.encode("sum 1 2 3 4 _")],
    [VOCAB.bos_id],
]


# ---------------------------------------------------------------- left_pad


def test_left_pad_places_tokens_on_the_right():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=PAD)
    assert ids.tolist() == [[5, 6, 7], [PAD, PAD, 8]]
    assert mask.tolist() == [[True, True, True], [False, False, True]]


def test_right_pad_and_shared_prompts():
    ids, mask = right_pad([[5, 6, 7], [8], []], pad_id=PAD)
    assert ids.tolist() == [[5, 6, 7], [8, PAD, PAD], [PAD, PAD, PAD]]
    assert mask.tolist() == [[True, True, True], [True, False, False], [False, False, False]]
    distinct, copy_of = shared_prompts([[1, 2], [3], [1, 2], [1, 2], [3]])
    assert distinct == [[1, 2], [3]] and copy_of.tolist() == [0, 1, 0, 0, 1]


# ---------------------------------------------------------------- forward and padding


def test_left_padding_does_not_change_logits_of_real_tokens():
    """A row's logits are the same alone and in a padded batch: positions count real tokens
    only and attention never reads padding."""
    model = make_model()
    ids, mask = left_pad(ROWS, PAD)
    batch = model(ids, mask)
    for i, row in enumerate(ROWS):
        alone = model(torch.tensor([row]), torch.ones(1, len(row), dtype=torch.bool))[0]
        torch.testing.assert_close(batch[i, mask[i]], alone, atol=1e-5, rtol=0)


def test_padding_token_values_do_not_leak():
    """Whatever sits in the padding slots, real positions give the same logits."""
    model = make_model()
    ids, mask = left_pad(ROWS, PAD)
    junk = ids.clone()
    junk[~mask] = VOCAB.index["heads"]
    torch.testing.assert_close(model(ids, mask)[mask], model(junk, mask)[mask], atol=1e-5, rtol=0)


# ---------------------------------------------------------------- KV cache


def test_kv_cache_token_by_token_matches_full_forward():
    model = make_model()
    ids, mask = left_pad(ROWS, PAD)
    full = model(ids, mask)
    cache = KVCache(CFG.n_layer)
    steps = [model(ids[:, t : t + 1], mask[:, t : t + 1], cache) for t in range(ids.shape[1])]
    cached = torch.cat(steps, dim=1)
    assert cache.length == ids.shape[1]
    assert cache.next_pos.tolist() == [len(r) for r in ROWS]
    torch.testing.assert_close(cached[mask], full[mask], atol=1e-5, rtol=0)


@pytest.mark.parametrize("capacity", [None, 1, 64])
def test_kv_cache_in_place_grown_and_concatenated_agree(capacity):
    """Preallocated buffers (too small: grown on the way; large enough), or concatenation: one result."""
    model = make_model(4)
    ids, mask = left_pad(ROWS, PAD)
    full = model(ids, mask)
    with torch.no_grad():
        cache = KVCache(CFG.n_layer, capacity)
        steps = [model(ids[:, :3], mask[:, :3], cache)]
        steps += [model(ids[:, t : t + 1], mask[:, t : t + 1], cache) for t in range(3, ids.shape[1])]
    assert cache.length == ids.shape[1] and (capacity is None or cache.capacity >= cache.length)
    torch.testing.assert_close(torch.cat(steps, 1)[mask], full[mask], atol=1e-5, rtol=0)


def test_rope_table_grows_for_long_rows():
    """Rows longer than the precomputed table (an audit's filler, say) get the same rotary angles."""
    from legible.policy._tiny import rope_rows, rotary_table

    model = make_model(7)
    n = model.rope_rows.shape[0] + 40
    row = [VOCAB.bos_id] + [VOCAB.index["same"]] * (n - 1)
    logits = model(torch.tensor([row]), torch.ones(1, n, dtype=torch.bool))
    assert model.rope_rows.shape[0] >= n and torch.isfinite(logits).all()
    cos, sin = rotary_table(n, CFG.n_embd // CFG.n_head)
    torch.testing.assert_close(model.rope_rows[:n], rope_rows(cos, sin), atol=0, rtol=0)
    assert "rope_rows" not in model.state_dict()  # a cache, not a weight: checkpoints are unchanged


def test_kv_cache_select_copies_rows():
    """Continuing from ``select``ed rows is continuing each source row: how a group shares its prompt."""
    model = make_model(5)
    prompts = [ROWS[0], ROWS[1]]
    ids, mask = left_pad(prompts, PAD)
    cache = KVCache(CFG.n_layer, 32)
    model(ids, mask, cache)
    rows = torch.tensor([1, 0, 1])
    more = torch.tensor([[VOCAB.index["heads"]], [VOCAB.index["tails"]], [VOCAB.index["same"]]])
    out = model(more, torch.ones(3, 1, dtype=torch.bool), cache.select(rows))[:, -1]
    for i, (src, tok) in enumerate(zip(rows.tolist(), more[:, 0].tolist(), strict=True)):
        row = prompts[src] + [tok]
        ref = model(torch.tensor([row]), torch.ones(1, len(row), dtype=torch.bool))[0, -1]
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)


def test_kv_cache_prompt_then_continuation_in_chunks():
    """Prompt in one call, then the rest in uneven chunks, including steps where some rows
    add a padding (finished) token."""
    model = make_model(1)
    ids, mask = left_pad(ROWS, PAD)
    full = model(ids, mask)
    cache = KVCache(CFG.n_layer)
    parts = [model(ids[:, :4], mask[:, :4], cache), model(ids[:, 4:7], mask[:, 4:7], cache)]
    parts += [model(ids[:, t : t + 1], mask[:, t : t + 1], cache) for t in range(7, ids.shape[1])]
    torch.testing.assert_close(torch.cat(parts, 1)[mask], full[mask], atol=1e-5, rtol=0)


def test_kv_cache_with_interleaved_padding_matches_compacted_rows():
    """Steps that append padding for a finished row (as ``sample`` does) must not shift that
    row's positions: the next real token sees the same context as without the padding."""
    model = make_model(2)
    prompts = [ROWS[0], ROWS[1]]
    ids, mask = left_pad(prompts, PAD)
    cache = KVCache(CFG.n_layer)
    model(ids, mask, cache)
    a, b = VOCAB.index["heads"], VOCAB.index["tails"]
    # row 0 writes a, then padding, then b; row 1 writes a, b, a
    steps = [([a, a], [True, True]), ([PAD, b], [False, True]), ([b, a], [True, True])]
    last = None
    for toks, m in steps:
        last = model(torch.tensor([toks]).T, torch.tensor([m]).T, cache)
    ref0 = model(torch.tensor([ROWS[0] + [a, b]]), torch.ones(1, len(ROWS[0]) + 2, dtype=torch.bool))
    ref1 = model(torch.tensor([ROWS[1] + [a, b, a]]), torch.ones(1, len(ROWS[1]) + 3, dtype=torch.bool))
    torch.testing.assert_close(last[0, -1], ref0[0, -1], atol=1e-5, rtol=0)
    torch.testing.assert_close(last[1, -1], ref1[0, -1], atol=1e-5, rtol=0)


# ---------------------------------------------------------------- sample


def _sample(model, prompts, *, seed=0, use_cache=True, temperature=1.0, max_new=20, stop=VOCAB.eos_id):
    gen = torch.Generator().manual_seed(seed)
    return sample(
        model,
        prompts,
        max_new_tokens=max_new,
        stop_id=stop,
        pad_id=PAD,
        temperature=temperature,
        generator=gen,
        use_cache=use_cache,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sample_cached_equals_uncached(seed):
    model = make_model(seed)
    with_cache = _sample(model, ROWS, seed=seed, use_cache=True)
    without = _sample(model, ROWS, seed=seed, use_cache=False)
    assert with_cache == without
    assert any(len(r) > 3 for r in with_cache)  # not a trivially short comparison


@pytest.mark.parametrize("seed", [0, 1])
def test_sample_with_shared_prompts_equals_uncached(seed):
    """Repeated prompts (a GRPO group) share one prefill; the samples are those of a plain pass."""
    model = make_model(seed)
    groups = [r for r in ROWS for _ in range(3)]
    shared = _sample(model, groups, seed=seed, use_cache=True)
    assert shared == _sample(model, groups, seed=seed, use_cache=False)
    assert len({tuple(r) for r in shared[:3]}) > 1  # the group's samples differ: each row drew its own


def test_sample_seeds_matter():
    model = make_model()
    assert _sample(model, ROWS, seed=0) != _sample(model, ROWS, seed=1)


def test_greedy_is_deterministic_and_matches_argmax():
    model = make_model()
    a = _sample(model, ROWS, temperature=0, seed=0)
    b = _sample(model, ROWS, temperature=0, seed=123, use_cache=False)
    assert a == b
    # the first greedy token is the argmax of the full forward's last logits (pad excluded)
    ids, mask = left_pad(ROWS, PAD)
    logits = model(ids, mask)[:, -1, :]
    logits[:, PAD] = float("-inf")
    assert [r[0] for r in a] == logits.argmax(-1).tolist()


def test_greedy_batched_equals_each_row_alone():
    model = make_model(3)
    batched = _sample(model, ROWS, temperature=0)
    alone = [_sample(model, [r], temperature=0)[0] for r in ROWS]
    assert batched == alone


def _force_token(model: TinyTransformer, token: int) -> None:
    """Make ``token`` the overwhelmingly most likely next token everywhere."""
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.head.weight.zero_()
        model.head.weight[token].fill_(1.0)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_padding_is_never_sampled_even_when_most_likely(temperature):
    model = make_model()
    _force_token(model, PAD)
    out = _sample(model, ROWS, temperature=temperature, max_new=10, stop=-1)
    assert all(len(r) == 10 for r in out)  # padding would have truncated the rows
    assert all(PAD not in r for r in out)


@pytest.mark.parametrize("use_cache", [True, False])
def test_stop_token_ends_row(use_cache):
    model = make_model()
    stop = VOCAB.index["tails"]
    _force_token(model, stop)
    assert _sample(model, ROWS, max_new=10, stop=stop, use_cache=use_cache) == [[stop]] * len(ROWS)


def test_generation_stops_once_every_row_has_stopped():
    """No forward passes past the step where the last row wrote the stop token."""
    model = make_model()
    stop = VOCAB.index["tails"]
    _force_token(model, stop)
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    assert _sample(model, ROWS, max_new=500, stop=stop) == [[stop]] * len(ROWS)
    assert len(calls) == 1


def test_stop_token_only_at_the_end_and_other_rows_continue():
    model = make_model(4)
    prompts = [ROWS[i % len(ROWS)] for i in range(16)]
    stop = VOCAB.index["so"]
    out = _sample(model, prompts, max_new=25, stop=stop, temperature=1.5)
    stopped = [r for r in out if r and r[-1] == stop]
    assert stopped, "expected some rows to stop early with this seed"
    assert any(len(r) == 25 and stop not in r for r in out), "expected some rows to run to the budget"
    for r in out:
        assert stop not in r[:-1]
        assert len(r) <= 25
        assert r[-1] == stop or len(r) == 25


def test_sample_respects_max_new_tokens():
    model = make_model()
    out = _sample(model, ROWS, max_new=3, stop=-1)
    assert [len(r) for r in out] == [3] * len(ROWS)


# ---------------------------------------------------------------- rollout helpers


def test_prompt_ids_start_with_bos():
    p = CoinFlip(min_steps=2, max_steps=3).sample(random.Random(0))
    assert prompt_ids(p) == [VOCAB.bos_id, *VOCAB.encode(p.prompt)]


def test_write_cots_splits_marker_and_text():
    task = CoinFlip(min_steps=3, max_steps=4)
    problems = [task.sample(random.Random(i)) for i in range(6)]
    model = make_model()
    tokens, cots, finished, read, _ = write_cots(
        model, problems, max_steps=4, temperature=1.0, generator=torch.Generator().manual_seed(0)
    )
    assert read == tokens  # no step paraphrase: the policy reads back its own tokens
    for t, c, f in zip(tokens, cots, finished, strict=True):
        assert f == (bool(t) and t[-1] == VOCAB.answer_id)
        assert c == VOCAB.decode(t[:-1] if f else t)
        assert len(t) <= 2 * 4 + 4


def test_completion_logprobs_match_a_manual_computation():
    task = CoinFlip(min_steps=2, max_steps=4)
    problems = [task.sample(random.Random(i)) for i in range(3)]
    tokens = [VOCAB.encode("heads tails answer"), VOCAB.encode("ok"), []]
    model = make_model()
    logp, comp, _, _ = completion_logprobs(model, problems, tokens)
    assert comp.sum(1).tolist() == [len(t) for t in tokens]
    for i, (p, t) in enumerate(zip(problems, tokens, strict=True)):
        row = prompt_ids(p) + t
        lp = model(torch.tensor([row]), torch.ones(1, len(row), dtype=torch.bool))[0].log_softmax(-1)
        expected = [lp[len(row) - len(t) - 1 + j, tok] for j, tok in enumerate(t)]
        got = logp[i][comp[i]]
        assert len(got) == len(expected)
        if expected:
            torch.testing.assert_close(got, torch.stack(expected), atol=1e-5, rtol=0)


def test_shared_prompt_pass_gives_the_gradients_of_whole_rows():
    """completion_logprobs runs each distinct problem's prompt once for its group; the log-probs,
    entropies, answer logits and parameter gradients equal those of running every row whole."""
    task = CoinFlip(min_steps=2, max_steps=4)
    problems = [p for p in (task.sample(random.Random(i)) for i in range(3)) for _ in range(3)]
    words = ["heads tails answer", "same", "", "tails answer", "heads heads heads answer", "diff", "ok", "", "tails"]
    tokens = [VOCAB.encode(w) for w in words]
    model = make_model(6).train()
    weights = torch.randn(len(tokens), 4)

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    logp, comp, ent, last = completion_logprobs(model, problems, tokens, temperature=1.3)
    shared_grads = grads((logp * comp * weights[:, : logp.shape[1]]).sum() + last.pow(2).mean())
    rows_logp, rows_last = [], []
    for p, t in zip(problems, tokens, strict=True):
        row = prompt_ids(p) + t
        logits = model(torch.tensor([row]), torch.ones(1, len(row), dtype=torch.bool))[0]
        lp = (logits / 1.3).log_softmax(-1)
        n = len(prompt_ids(p))
        rows_logp.append(torch.stack([lp[n - 1 + j, tok] for j, tok in enumerate(t)]) if t else torch.zeros(0))
        rows_last.append(logits[-1])
    whole = (
        sum((r * weights[i, : len(r)]).sum() for i, r in enumerate(rows_logp)) + torch.stack(rows_last).pow(2).mean()
    )
    for a, b in zip(shared_grads, grads(whole), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    for i, r in enumerate(rows_logp):
        torch.testing.assert_close(logp[i][comp[i]].detach(), r.detach(), atol=1e-5, rtol=0)


def test_fused_answer_logits_equal_a_separate_answer_pass():
    """The trainer reads the answer distribution off the last column of the policy's own pass;
    it must equal what answer_logprobs computes from the CoT text."""
    task = CoinFlip(min_steps=2, max_steps=4)
    problems = [task.sample(random.Random(i)) for i in range(4)]
    cots = ["heads tails", "ok", "", "tails tails heads"]
    tokens = [VOCAB.encode(c) + [VOCAB.answer_id] for c in cots]
    model = make_model()
    _, _, _, last = completion_logprobs(model, problems, tokens, temperature=1.7)
    fused = last[:, VOCAB.ids(task.answer_words)].log_softmax(-1)
    torch.testing.assert_close(fused, answer_logprobs(model, problems, cots, task.answer_words), atol=1e-5, rtol=0)


def test_answer_logprobs_is_a_distribution_over_answer_words():
    task = CoinFlip(min_steps=2, max_steps=4)
    problems = [task.sample(random.Random(i)) for i in range(3)]
    lp = answer_logprobs(make_model(), problems, ["heads", "tails ok", ""], task.answer_words)
    assert lp.shape == (3, 2)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3))


def test_draw_samples_the_given_distribution():
    from legible.policy._tiny import draw

    probs = torch.tensor([[0.7, 0.2, 0.1, 0.0], [0.0, 0.0, 0.0, 1.0]]).repeat(20000, 1)
    picks = draw(probs, torch.Generator().manual_seed(0)).view(20000, 2)
    freq = torch.bincount(picks[:, 0], minlength=4).float() / 20000
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.2, 0.1, 0.0]), atol=0.015, rtol=0)
    assert bool((picks[:, 1] == 3).all())  # a zero-probability token is never drawn


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("budget", [6, 60])
def test_the_answer_distribution_read_off_the_sampling_pass_equals_an_answer_pass(use_cache, budget):
    """``after_stop``: the logits after each row's stop token equal a separate pass over the CoT, for the
    rows that stop last too (they need one more step: all rows stop within 60 tokens, and within 6 some
    rows stop at the last token while others never stop); a row that never stops gets zeros."""
    from legible.policy._tiny import sample

    task = CoinFlip(min_steps=2, max_steps=5)
    problems = [task.sample(random.Random(i)) for i in range(16)]
    model = make_model()
    with torch.no_grad():  # the answer marker about one token in six, so rows stop at many lengths
        model.ln_f.bias[0] = 10.0
        model.head.weight[VOCAB.answer_id, 0] += 0.4
    rows, after = sample(
        model,
        [prompt_ids(p) for p in problems],
        max_new_tokens=budget,
        stop_id=VOCAB.answer_id,
        pad_id=VOCAB.pad_id,
        generator=torch.Generator().manual_seed(1),
        use_cache=use_cache,
        after_stop=True,
    )
    stopped = [i for i, r in enumerate(rows) if r and r[-1] == VOCAB.answer_id]
    never = [i for i in range(len(rows)) if i not in stopped]
    assert len({len(rows[i]) for i in stopped}) > 3
    assert (never and max(len(rows[i]) for i in stopped) == budget) if budget == 6 else not never
    cots = [VOCAB.decode(rows[i][:-1]) for i in stopped]
    expected = answer_logprobs(model, [problems[i] for i in stopped], cots, task.answer_words)
    got = after[stopped][:, VOCAB.ids(task.answer_words)].log_softmax(-1)
    torch.testing.assert_close(got, expected.detach(), atol=1e-5, rtol=0)
    assert after[never].abs().sum() == 0


@pytest.mark.parametrize("columns", [False, True])
def test_rows_in_length_groups_give_the_logits_and_gradients_of_one_batch(columns):
    """``continuation_logits`` runs rows in groups of similar length (more rows than one group here, in
    shuffled lengths, some empty); every row's logits and the gradients equal one batch padded to the
    longest, with all columns or with chosen ones (clamped past a row's end, where the caller masks)."""
    from legible.policy import _rollout

    task = CoinFlip(min_steps=2, max_steps=6)
    rng = random.Random(5)
    problems = [p for p in (task.sample(rng) for _ in range(20)) for _ in range(4)]
    continuations = [[rng.randrange(3, len(VOCAB)) for _ in range(rng.choice([0, 1, 4, 9, 17]))] for _ in problems]
    continuations[0] = [5] * 17  # the longest row first: groups must come back in the callers' order
    at = None
    if columns:
        at = torch.tensor([[max(0, len(c) - 1), min(2, max(0, len(c) - 1))] for c in continuations])
    model = make_model()
    assert len(problems) > 2 * _rollout.LENGTH_GROUP

    def real(i: int) -> int:  # the columns that are real for row i: the caller's loss reads only these
        return len(continuations[i]) + 1 if at is None else (at.shape[1] if continuations[i] else 0)

    def one_batch(model, problems, continuations, at):  # the rows as one batch padded to the longest
        distinct, copy_of = shared_prompts([prompt_ids(p) for p in problems])
        ids, mask = left_pad(distinct, VOCAB.pad_id)
        cache = KVCache(model.cfg.n_layer)
        after_prompt = model(ids, mask, cache)[:, -1:].index_select(0, copy_of)
        cont, cont_mask = right_pad(continuations, VOCAB.pad_id)
        full = torch.cat([after_prompt, model(cont, cont_mask, cache.select(copy_of))], 1)
        if at is None:
            return full
        return full.gather(1, (at.clamp(max=cont.shape[1] - 1) + 1).unsqueeze(-1).expand(-1, -1, full.shape[-1]))

    def run(logits) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        out = logits(model, problems, continuations, at)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
        reals = torch.tensor([real(i) for i in range(len(problems))])
        weights *= (torch.arange(out.shape[1]) < reals[:, None]).unsqueeze(-1)
        (out * weights).sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()]

    grouped, grouped_grads = run(_rollout.continuation_logits)
    whole, whole_grads = run(one_batch)
    assert grouped.shape == whole.shape
    for i in range(len(problems)):
        torch.testing.assert_close(grouped[i, : real(i)], whole[i, : real(i)], atol=1e-5, rtol=0)
    for a, b in zip(grouped_grads, whole_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
