"""The ``legible`` Inspect model provider: an organism checkpoint served through Inspect's model API.

Every model here is built in the test (random weights, or a few seconds of supervised training on
short coin flips) and saved to tmp_path; nothing reads runs/.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai")

import torch  # noqa: E402
from conftest_models import noisy_tiny_transformer, quick_trained  # noqa: E402
from inspect_ai import Task, eval  # noqa: E402
from inspect_ai.dataset import Sample  # noqa: E402
from inspect_ai.model import (  # noqa: E402
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    get_model,
)
from inspect_ai.scorer import Score, Target, accuracy, scorer  # noqa: E402
from inspect_ai.solver import TaskState, generate  # noqa: E402

import legible.audit._provider as provider  # noqa: E402  (registers the "legible" model API)
from legible.config import RunConfig, save_config  # noqa: E402
from legible.policy._checkpoint import save_policy  # noqa: E402
from legible.policy._tiny import TinyTransformer  # noqa: E402
from legible.policy._vocab import VOCAB  # noqa: E402
from legible.tasks import CoinFlip  # noqa: E402
from legible.tasks._base import split_completion  # noqa: E402

PROMPTS = [CoinFlip(2, 5).sample(random.Random(i)).prompt for i in range(6)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory with a policy and a Face, and no config.yaml (the answer is unrestricted)."""
    d = tmp_path_factory.mktemp("organism") / "run"
    save_policy(noisy_tiny_transformer(0), d / "policy")
    save_policy(noisy_tiny_transformer(1), d / "face")
    return d


def model_for(path: Path, **args):
    return get_model(f"legible/{path}", memoize=False, **args)


def gen(model, messages, **config):
    return asyncio.run(model.generate(messages, config=GenerateConfig(**config)))


def reference_greedy(model: TinyTransformer, prompt: str, prefill: str, budget: int) -> list[str]:
    """Greedy decoding written out with full forward passes and no cache: the stop rule by hand."""
    ids = [VOCAB.bos_id, *VOCAB.encode(prompt), *VOCAB.encode(prefill)]
    new: list[int] = []
    with torch.no_grad():
        while len(new) < budget:
            row = ids + new
            logits = model(torch.tensor([row]), torch.ones(1, len(row), dtype=torch.bool))[0, -1]
            logits[VOCAB.pad_id] = float("-inf")
            tok = int(logits.argmax())
            if tok == VOCAB.eos_id:
                break
            new.append(tok)
            if row[-1] == VOCAB.answer_id:
                break
    return [VOCAB.words[t] for t in new]


def direct_logprobs(model: TinyTransformer, prompt: str, text_ids: list[int]) -> torch.Tensor:
    """log_softmax (without <pad>) before each of ``text_ids``, computed directly."""
    row = [VOCAB.bos_id, *VOCAB.encode(prompt), *text_ids]
    with torch.no_grad():
        logits = model(torch.tensor([row]), torch.ones(1, len(row), dtype=torch.bool))[0]
    logits[:, VOCAB.pad_id] = float("-inf")
    return logits.log_softmax(-1)[len(row) - len(text_ids) - 1 : len(row) - 1]


# ---------------------------------------------------------------- generation


def test_generates_vocabulary_words_greedy_is_deterministic_and_seeds_repeat(run_dir):
    model = model_for(run_dir)
    for prompt in PROMPTS[:3]:
        out = gen(model, prompt, temperature=0)
        assert out.completion and all(w in VOCAB.index for w in out.completion.split())
        assert out.usage.input_tokens == 1 + len(prompt.split())
        assert out.usage.output_tokens == len(out.completion.split())
        assert out.stop_reason in ("stop", "max_tokens")
        assert gen(model, prompt, temperature=0).completion == out.completion
        assert out.completion.split() == reference_greedy(
            provider.load_policy(run_dir / "policy"), prompt, "", 2 * len(prompt.split()) + 4
        )
    seeded = [gen(model, PROMPTS[0], temperature=1.0, seed=s).completion for s in range(6)]
    assert [gen(model, PROMPTS[0], temperature=1.0, seed=s).completion for s in range(6)] == seeded
    assert len(set(seeded)) > 1


def test_system_messages_are_ignored_and_the_last_user_message_is_the_prompt(run_dir):
    model = model_for(run_dir)
    alone = gen(model, PROMPTS[1], temperature=0).completion
    chat = [ChatMessageSystem(content="You are helpful."), ChatMessageUser(content=PROMPTS[0])]
    chat.append(ChatMessageUser(content=PROMPTS[1]))
    assert gen(model, chat, temperature=0).completion == alone


def test_prefill_is_continued_exactly_as_greedy_decoding_of_prompt_plus_prefill(run_dir):
    model = model_for(run_dir)
    policy = provider.load_policy(run_dir / "policy")
    for prompt in PROMPTS[:3]:
        for prefill in ("heads tails", "heads tails answer", "tails "):
            out = gen(model, [ChatMessageUser(content=prompt), ChatMessageAssistant(content=prefill)], temperature=0)
            expected = reference_greedy(policy, prompt, prefill, 2 * len(prompt.split()) + 4)
            assert out.completion.split() == expected
            # prefill + completion reads as one text: a space is added only where one is missing.
            joined = prefill + out.completion
            assert joined.split() == prefill.split() + expected and "  " not in joined
            assert out.usage.input_tokens == 1 + len(prompt.split()) + len(prefill.split())
        after_marker = gen(
            model, [ChatMessageUser(content=prompt), ChatMessageAssistant(content="so answer")], temperature=0
        )
        assert len(after_marker.completion.split()) <= 1 and after_marker.stop_reason == "stop"


def test_complete_prefill_generates_nothing_and_max_tokens_truncates(run_dir):
    model = model_for(run_dir)
    done = gen(model, [ChatMessageUser(content=PROMPTS[0]), ChatMessageAssistant(content="heads answer tails")])
    assert done.completion == "" and done.stop_reason == "stop" and done.usage.output_tokens == 0
    short = gen(model, PROMPTS[0], temperature=0, max_tokens=2)
    full = gen(model, PROMPTS[0], temperature=0).completion.split()
    if len(full) > 2:
        assert short.completion.split() == full[:2] and short.stop_reason == "max_tokens"


def test_answer_words_restrict_the_answer_and_auto_reads_the_runs_config(tmp_path, run_dir):
    prefill = [ChatMessageUser(content=PROMPTS[0]), ChatMessageAssistant(content="heads tails answer")]
    restricted = model_for(run_dir, answer_words="heads,tails")
    for seed in range(5):
        out = gen(restricted, prefill, temperature=1.0, seed=seed, logprobs=True, top_logprobs=20)
        assert out.completion.strip() in ("heads", "tails")
        top = out.choices[0].logprobs.content[0].top_logprobs
        assert {t.token for t in top} == {"heads", "tails"}
        assert float(torch.tensor([t.logprob for t in top]).exp().sum()) == pytest.approx(1.0, abs=1e-5)
    run = tmp_path / "run"
    save_policy(noisy_tiny_transformer(0), run / "policy")
    assert model_for(run).api.answer_ids is None  # no config.yaml: unrestricted
    save_config(RunConfig(), run / "config.yaml")
    assert model_for(run).api.answer_ids == VOCAB.ids(("heads", "tails"))
    assert model_for(run, answer_words="none").api.answer_ids is None


# ---------------------------------------------------------------- logprobs


def test_logprobs_equal_log_softmax_computed_directly(run_dir):
    model = model_for(run_dir, answer_words="none")
    policy = provider.load_policy(run_dir / "policy")
    prompt = PROMPTS[2]
    out = gen(
        model,
        [ChatMessageUser(content=prompt), ChatMessageAssistant(content="heads answer")],
        temperature=0,
        logprobs=True,
        top_logprobs=5,
    )
    (lp,) = out.choices[0].logprobs.content
    direct = direct_logprobs(policy, prompt, VOCAB.encode("heads answer") + [VOCAB.index[lp.token]])[-1]
    top = lp.top_logprobs
    assert len(top) == 5 and lp.token == top[0].token == out.completion.strip()
    assert sum(torch.tensor([t.logprob for t in top]).exp()) <= 1 + 1e-6
    assert lp.logprob == pytest.approx(float(direct[VOCAB.index[lp.token]]), abs=1e-5)
    for t in top:
        assert t.logprob == pytest.approx(float(direct[VOCAB.index[t.token]]), abs=1e-5)
    assert [t.token for t in top] == [VOCAB.words[i] for i in direct.topk(5).indices]
    # Every generated token of a sampled completion gets its own entry.
    sampled = gen(model, prompt, temperature=1.0, seed=3, logprobs=True, top_logprobs=37)
    words = sampled.completion.split()
    entries = sampled.choices[0].logprobs.content
    direct = direct_logprobs(policy, prompt, VOCAB.encode(sampled.completion))
    assert [e.token for e in entries] == words
    for e, d, w in zip(entries, direct, words):
        assert e.logprob == pytest.approx(float(d[VOCAB.index[w]]), abs=1e-5)
        assert len(e.top_logprobs) == len(VOCAB) - 1  # the whole distribution, <pad> aside
    assert gen(model, prompt, temperature=0).choices[0].logprobs is None


# ---------------------------------------------------------------- batching


@pytest.mark.parametrize("args, largest_batch", [({}, None), ({"max_batch": 2}, 2), ({"batch": False}, 1)], ids=str)
def test_concurrent_requests_are_batched_and_match_single_requests(run_dir, args, largest_batch):
    model = model_for(run_dir, **args)
    singles = [gen(model, p, temperature=0).completion for p in PROMPTS]
    seeded = [gen(model, p, temperature=1.0, seed=7).completion for p in PROMPTS]
    model.api.batcher.batch_sizes.clear()

    async def together():
        greedy = [model.generate(p, config=GenerateConfig(temperature=0)) for p in PROMPTS]
        sampled = [model.generate(p, config=GenerateConfig(temperature=1.0, seed=7)) for p in PROMPTS]
        return await asyncio.gather(*greedy, *sampled)

    outs = asyncio.run(together())
    assert [o.completion for o in outs[: len(PROMPTS)]] == singles
    assert [o.completion for o in outs[len(PROMPTS) :]] == seeded  # a seed's sample ignores its batch
    largest = max(model.api.batcher.batch_sizes)
    # How many requests queue up depends on thread timing; that some share a batch does not.
    assert largest == largest_batch if largest_batch is not None else largest > 1


# ---------------------------------------------------------------- inspect eval


@scorer(metrics=[accuracy()])
def answer_after_marker():
    async def score(state: TaskState, target: Target) -> Score:
        _, answer = split_completion(state.output.completion)
        return Score(value=float(answer == target.text), answer=answer)

    return score


def test_inspect_eval_of_a_quick_trained_organism_scores_well_above_chance(tmp_path):
    coin = CoinFlip(2, 4)
    quick_trained(tmp_path / "run", coin)
    rng = random.Random(1)
    samples = [Sample(input=p.prompt, target=p.answer) for p in (coin.sample(rng) for _ in range(40))]
    task = Task(dataset=samples, solver=generate(), scorer=answer_after_marker())
    (log,) = eval(
        task,
        model=f"legible/{tmp_path / 'run'}",
        log_dir=str(tmp_path / "logs"),
        temperature=0,
        display="none",
    )
    assert log.status == "success" and len(log.samples) == 40
    assert log.results.scores[0].metrics["accuracy"].value >= 0.8


# ---------------------------------------------------------------- errors


def test_bad_paths_and_arguments_are_one_line_errors(tmp_path, run_dir):
    with pytest.raises(FileNotFoundError, match=r"nowhere: not found; expected a run directory"):
        model_for(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: no policy.safetensors"):
        model_for(tmp_path / "empty")
    solo = tmp_path / "solo"
    save_policy(noisy_tiny_transformer(0), solo / "policy")
    with pytest.raises(FileNotFoundError, match=r"solo: no face.safetensors"):
        model_for(solo, weights="face")
    with pytest.raises(ValueError, match=r"weights='critic'"):
        model_for(solo, weights="critic")
    with pytest.raises(ValueError, match=r"unknown model args temperature"):
        model_for(solo, temperature=0)
    with pytest.raises(ValueError, match=r"answer_words='heads,yes!'"):
        model_for(solo, answer_words="heads,yes!")
    (solo / "broken.safetensors").write_text("not a model")
    (solo / "broken.json").write_text((solo / "policy.json").read_text())
    with pytest.raises(ValueError, match=r"broken: cannot load .*broken") as e:
        model_for(solo / "broken")
    assert "\n" not in str(e.value)
    model = model_for(run_dir)
    with pytest.raises(ValueError, match=r"word 'Hello' is not in the organism vocabulary \(in the prompt\)"):
        gen(model, "coin heads Hello")
    with pytest.raises(ValueError, match=r"word 'because' .* \(in the assistant prefill\)"):
        gen(model, [ChatMessageUser(content=PROMPTS[0]), ChatMessageAssistant(content="heads because")])


def test_weights_face_and_file_prefixes_pick_the_right_model(run_dir):
    policy_out = gen(model_for(run_dir), PROMPTS[0], temperature=0).completion
    face_out = gen(model_for(run_dir, weights="face"), PROMPTS[0], temperature=0).completion
    assert gen(model_for(run_dir / "policy"), PROMPTS[0], temperature=0).completion == policy_out
    assert gen(model_for(run_dir / "face"), PROMPTS[0], temperature=0).completion == face_out
    assert face_out != policy_out
    assert face_out.split() == reference_greedy(
        provider.load_policy(run_dir / "face"), PROMPTS[0], "", 2 * len(PROMPTS[0].split()) + 4
    )
