"""Step-wise paraphrasing: the policy reads back a paraphrase of its own CoT as it writes it, and its training
pass conditions every token on exactly what it read when it drew it."""

from __future__ import annotations

import random

import pytest
import torch
from conftest_models import TINY_RUN
from conftest_models import noisy_tiny_transformer as make_model

from legible.config import CONDITIONS, ConditionConfig, RunConfig
from legible.paraphrase import WordWise
from legible.policy import NEUTRAL, VOCAB, completion_logprobs, write_cots
from legible.tasks import CoinFlip

TASK = CoinFlip(min_steps=3, max_steps=6)


def _problems(n: int = 12) -> list:
    return [TASK.sample(random.Random(i)) for i in range(n)]


def test_word_wise_keeps_state_words_and_the_marker_and_redraws_every_other_word():
    step = WordWise(TASK.state_words)
    words = ["heads", "so", "tails", "same", "ok", "answer", "<pad>"]
    tokens = torch.tensor(VOCAB.ids(words))
    neutral = set(VOCAB.ids(NEUTRAL))
    outs = [step(tokens, step.fillers(1, len(words), torch.Generator().manual_seed(s))[0]) for s in range(40)]
    for out in outs:
        read = [VOCAB.words[i] for i in out.tolist()]
        assert (read[0], read[2], read[5], read[6]) == ("heads", "tails", "answer", "<pad>")
        assert {out[1].item(), out[3].item(), out[4].item()} <= neutral
    # the other words are drawn afresh, not mapped one to one: "so" reads as many neutral words
    assert len({out[1].item() for out in outs}) > 5


def test_the_policy_reads_back_the_paraphrase_and_its_log_probs_condition_on_it():
    model = make_model()
    problems = _problems()
    step = WordWise(TASK.state_words)
    tokens, cots, finished, read, _ = write_cots(
        model, problems, max_steps=6, temperature=0, generator=torch.Generator().manual_seed(0), step_paraphrase=step
    )
    assert any(r != t for r, t in zip(read, tokens)), "the untrained model writes non-state words: some are redrawn"
    for t, r in zip(tokens, read):
        assert len(t) == len(r)
        assert all(a == b for a, b in zip(t, r) if VOCAB.words[a] in TASK.state_words or a == VOCAB.answer_id)
    # Greedy: every drawn token is the argmax of the training pass's distribution given what was read, and not
    # (everywhere) given the policy's own tokens.
    logp, mask, _, _ = completion_logprobs(model, problems, tokens, 1.0, read)
    assert mask.sum() == sum(map(len, tokens)) and torch.isfinite(logp[mask]).all()
    best = _argmax_tokens(model, problems, read)
    assert all(b[: len(t)] == t for b, t in zip(best, tokens))
    own = _argmax_tokens(model, problems, tokens)
    assert any(o[: len(t)] != t for o, t in zip(own, tokens))


def _argmax_tokens(model, problems, rows):
    from legible.policy._rollout import continuation_logits

    with torch.no_grad():
        logits = continuation_logits(model, problems, rows)
    logits[..., VOCAB.pad_id] = float("-inf")  # the sampler never draws padding
    return [logits[i, : len(r)].argmax(-1).tolist() for i, r in enumerate(rows)]


def test_a_prefix_is_read_through_the_step_paraphrase_too():
    model = make_model()
    problems = _problems(8)
    step = WordWise(TASK.state_words)
    generator = torch.Generator().manual_seed(3)
    written = write_cots(model, problems, max_steps=6, temperature=1.0, generator=generator, step_paraphrase=step)
    prefix_lens = [len(t) // 2 for t in written.tokens]
    prefixes = [t[:k] for t, k in zip(written.tokens, prefix_lens)]
    # continue from the policy's own first half (the load-bearing test's prefill)
    again = write_cots(
        model,
        problems,
        max_steps=6,
        temperature=1.0,
        generator=torch.Generator().manual_seed(4),
        prefixes=prefixes,
        step_paraphrase=step,
    )
    for pre, t, r in zip(prefixes, again.tokens, again.read):
        assert t[: len(pre)] == pre and len(r) == len(t)
        assert all(VOCAB.words[a] in NEUTRAL for a, b in zip(r, t) if a != b)


def test_stepwise_needs_the_paraphrase_in_the_loop_and_the_organism():
    with pytest.raises(ValueError, match="stepwise"):
        ConditionConfig(name="x", rewards={"outcome": 1.0}, stepwise=True)
    with pytest.raises(ValueError, match="condition.stepwise"):
        RunConfig(backend="trl", model="some/model", task={"name": "gsm8k"}, condition="monitor+stepwise")
    assert RunConfig(condition="monitor+stepwise").build_step_paraphrase(TASK) is not None
    assert RunConfig(condition="monitor+paraphrase").build_step_paraphrase(TASK) is None
    assert CONDITIONS["monitor+stepwise+face"].face and CONDITIONS["monitor+stepwise+face"].stepwise


@pytest.mark.parametrize("condition", ["monitor+stepwise", "monitor+stepwise+face"])
def test_stepwise_conditions_train_and_evaluate_end_to_end(tmp_path, condition):
    from legible.train._run import run_training

    cfg = RunConfig.model_validate(TINY_RUN | {"condition": condition, "rl": TINY_RUN["rl"] | {"steps": 6}})
    final = run_training(cfg, tmp_path / "run", show_progress=False, report=False)
    assert final["condition"] == condition and 0.0 <= final["accuracy"] <= 1.0
    assert (tmp_path / "run" / "policy.safetensors").exists()
    assert (tmp_path / "run" / "face.safetensors").exists() == condition.endswith("face")
