"""The Shoggoth/Face/paraphraser episode, TRL's ``rollout_func`` (steps 2 to 5 and 7 of the package
docstring), with the answerer's own training pass (step 6)."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from legible.config import RunConfig
from legible.paraphrase import Paraphraser
from legible.tasks import Problem, Task, split_completion
from legible.train._text import LINE_END, first_word, marker_pattern, prompt_text
from legible.train.trl._generate import (
    PromptCache,
    Samples,
    answer_spellings,
    hf_generate,
    left_pad,
    read_answers,
    tail_logprobs,
    vllm_generate,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from trl import GRPOTrainer


@dataclass
class Episodes:
    """What one rollout produced, row by row (rows = prompts x group size)."""

    problems: list[Problem]
    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    env_mask: list[list[int]] | None
    logprobs: list[list[float]] | None
    cots: list[str]
    finished: list[bool]
    answers: list[str | None]  # the answer that counts (the condition's view)
    extras: dict[str, list]  # paraphrase, original_answer, paraphrased_answer, answer_probs, ...
    stats: dict[str, float] = field(default_factory=dict)


class ShoggothFaceRollout:
    """TRL's ``rollout_func``: the episode of the module docstring. Call it as ``rollout(prompts,
    trainer)`` (TRL does); ``play`` is the same loop for evaluation."""

    def __init__(
        self,
        cfg: RunConfig,
        task: Task,
        problems: dict[str, Problem],
        paraphraser: Paraphraser,
        tokenizer: PreTrainedTokenizerBase,
        face: PreTrainedModel | None = None,
    ) -> None:
        self.cfg, self.task, self.problems, self.paraphraser = cfg, task, problems, paraphraser
        self.settings, self.cond = cfg.trl, cfg.condition
        self.tokenizer = tokenizer
        self.face = face  # a separate Face model; None: the policy's weights answer
        self.rng = random.Random(cfg.seed + 1)  # the paraphraser's draws
        self.marker = marker_pattern(self.settings.answer_marker)
        # the policy answers from its own CoT: one pass writes CoT and answer (plain GRPO)
        self.policy_answers = self.cond.policy_answers
        self.view = self.cond.view
        self.views = self.cond.views
        # A closed answer space is read, not generated: the answerer's distribution over the answer words at
        # the marker, from one forward (``read_answers``); the answer is drawn from it (argmax when greedy).
        self.spellings = readable_spellings(tokenizer, task.answer_words)
        self.reads = self.spellings is not None
        self.answerer_opt: torch.optim.Optimizer | None = None
        self.last: Episodes | None = None

    # -- the loop ---------------------------------------------------------------------------------------

    def __call__(self, prompts: list, trainer: GRPOTrainer) -> dict[str, Any]:
        problems = [self.problems[prompt_text(p)] for p in prompts]
        ep = self.play(problems, self.encode(prompts), trainer, train=True)
        self.last = ep
        out: dict[str, Any] = {
            "prompt_ids": ep.prompt_ids,
            "completion_ids": ep.completion_ids,
            "logprobs": ep.logprobs,
            "cot": ep.cots,
            "answer": ep.answers,
            "finished": ep.finished,
            **ep.extras,
        }
        if ep.env_mask is not None:
            out["env_mask"] = ep.env_mask
        return out

    def play(
        self, problems: list[Problem], prompt_ids: list[list[int]], trainer: GRPOTrainer, *, train: bool
    ) -> Episodes:
        s, tok = self.settings, self.tokenizer
        n = len(problems)
        greedy = not train
        eos = trainer.eos_token_ids
        # the policy writes its own answer line (plain GRPO) only where the answer is generated; where it is
        # read, every CoT stops at the marker and the answerer (the policy's weights, or the Face) reads it
        writes_answer = self.policy_answers and not self.reads

        # 1. the policy writes its CoT up to the answer marker (and its answer, when it writes it itself)
        if writes_answer:
            stop = re.compile(self.marker.pattern + r"[ \t]*\S[^\n]*\n", re.I)  # the answer's line ends it
            budget = s.max_cot_tokens + s.max_answer_tokens
            window = len(s.answer_marker) + s.max_answer_tokens + 8  # tokens that can hold marker and line
        else:
            stop, budget = self.marker, s.max_cot_tokens
            window = len(s.answer_marker) + 4  # a token holds at least one character of the marker
        shared: PromptCache | None = None
        if trainer.use_vllm and train:
            # vLLM stops on strings, not on "the marker and then the answer's line": a policy that answers
            # itself must not stop at the marker (its answer would be cut off); EOS and the budget end it
            stop_strings = [] if writes_answer else [s.answer_marker, s.answer_marker.lower()]
            policy = vllm_generate(trainer, prompt_ids, max_new_tokens=budget, stop=stop_strings, pattern=stop)
        else:
            with self._policy(trainer) as model:
                # each distinct prompt runs once (a group's rows share it), here and in the policy's reading
                shared = PromptCache(model, tok.pad_token_id, prompt_ids) if max(map(len, prompt_ids)) > 1 else None
                policy = self._generate(model, trainer, prompt_ids, budget, stop, window, greedy, shared)
        texts = [tok.decode(ids, skip_special_tokens=True) for ids in policy.ids]
        finished = [bool(self.marker.search(t)) for t in texts]
        cots, own_answers = [], []
        for text in texts:
            cot, answer = split_completion(text, s.answer_marker)
            cots.append(cot)
            own_answers.append(answer)

        # 2. the paraphraser rewrites every CoT that gets an answer (a model paraphraser batches its calls):
        # a finished one; where the answer is read, every one (an unfinished CoT is answered at the marker
        # appended where it stopped: a forced answer, as in early answering)
        done = list(range(n)) if self.reads else [i for i in range(n) if finished[i]]
        paraphrases: list[str | None] = [None] * n
        if done and "paraphrased" in self.views:
            rewritten = self._paraphrase([cots[i] for i in done], [problems[i].prompt for i in done])
            for i, p in zip(done, rewritten):
                paraphrases[i] = p

        # 3. the answerer reads each view it is needed for and answers (the paraphrase: Face or shared)
        answers_by_view: dict[str, list[str | None]] = {}
        answer_tokens: dict[str, list[list[int]]] = {}
        rows_by_view: dict[str, list[list[int]]] = {}
        probs: dict[str, list | None] = {}
        stats: dict[str, float] = {}
        # the answerer learns from its answers: a Face, or the shared weights answering from a paraphrase; where
        # answers are read, also the policy reading its own CoT (its answer tokens are not the GRPO loss's then)
        learns = train and s.train_answerer and (self.reads or not self.policy_answers)
        with self._answerer(trainer) as answerer:
            prompts = None
            if self.reads and done and max(map(len, prompt_ids)) > 1:
                # the policy's prompt cache serves its own reading; a Face runs the distinct prompts once itself
                same = self.face is None and shared is not None
                prompts = shared if same else PromptCache(answerer, tok.pad_token_id, prompt_ids)
            # the view whose answer counts is read last: its reading may take the answerer's training step
            for v in sorted(self.views, key=lambda v: (v == self.view, v)):
                if v == "original" and writes_answer:
                    answers_by_view[v] = [a if f else None for a, f in zip(own_answers, finished)]
                    continue
                source = cots if v == "original" else paraphrases
                rows = [prompt_ids[i] + self._encode_view(source[i]) for i in done]
                answers: list[str | None] = [None] * n
                tokens: list[list[int]] = [[] for _ in range(n)]
                if self.reads:
                    learn = learns and v == self.view
                    tails = [self._encode_view(source[i]) for i in done] if prompts is not None else rows
                    read, dist, stats_v = self._read(answerer, trainer, tails, done, problems, greedy, learn, prompts)
                    stats |= stats_v
                    probs[v] = [None] * n
                    for k, i in enumerate(done):
                        answers[i], tokens[i], probs[v][i] = read[k][0], read[k][1], dist[k]
                else:
                    out = self._generate(answerer, trainer, rows, s.max_answer_tokens, LINE_END, None, greedy)
                    for i, ids in zip(done, out.ids):
                        tokens[i] = ids
                        answers[i] = first_word(tok.decode(ids, skip_special_tokens=True))
                answers_by_view[v], answer_tokens[v], rows_by_view[v] = answers, tokens, rows

        # 4. the completion TRL trains on: the policy's tokens (env_mask 1), then the answerer's (0); a forced
        # answer comes after the marker, appended (0) where the policy's CoT ended without it
        answers = answers_by_view[self.view]
        completion_ids, env_mask, logprobs = [], [], [] if policy.logprobs is not None else None
        marker_ids = self._encode_view("")
        for i in range(n):
            own = list(policy.ids[i])
            mask = [1] * len(own)
            if writes_answer and policy.by_pattern[i]:
                own, mask = own + [eos[0]], mask + [0]  # stopped at the answer's line: end it, unsampled
            theirs: list[int] = []
            if not writes_answer and (finished[i] or self.reads):
                theirs = answer_tokens[self.view][i]
                if self.reads and not finished[i]:
                    theirs = marker_ids + theirs
            if theirs and theirs[-1] not in eos:
                theirs = theirs + [eos[0]]  # stopped at the line's end: ended for TRL's length statistics
            completion_ids.append(own + theirs)
            env_mask.append(mask + [0] * len(theirs))
            if logprobs is not None:
                logprobs.append(list(policy.logprobs[i]) + [0.0] * (len(completion_ids[-1]) - len(policy.ids[i])))

        # 5. the answerer's own pass (a generated answer): policy gradient on its answer tokens given the
        # paraphrase; a read answer took its step in the reading (``_read``)
        if learns and done and not self.reads:
            rewards = [self.task.score(problems[i], answers[i]) for i in done]
            stats = self._update_answerer(trainer, rows_by_view[self.view], done, answer_tokens[self.view], rewards)

        extras: dict[str, list] = {
            "paraphrase": paraphrases,
            "original_answer": answers_by_view.get("original", [None] * n),
            "paraphrased_answer": answers_by_view.get("paraphrased", [None] * n),
        }
        if "original" in probs or "paraphrased" in probs:
            extras["answer_probs"] = probs.get("original", [None] * n)
            extras["answer_probs_paraphrased"] = probs.get("paraphrased", [None] * n)
        masked = any(0 in m for m in env_mask)
        return Episodes(
            problems=problems,
            prompt_ids=prompt_ids,
            completion_ids=completion_ids,
            env_mask=env_mask if masked else None,
            logprobs=logprobs,
            cots=cots,
            finished=finished,
            answers=answers,
            extras=extras,
            stats=stats,
        )

    # -- the pieces the loop calls ----------------------------------------------------------------------

    def encode(self, prompts: list) -> list[list[int]]:
        """Token ids of TRL's prompts: through the chat template when they are messages."""
        if isinstance(prompts[0], str):
            return [list(ids) for ids in self.tokenizer(prompts).input_ids]
        enc = self.tokenizer.apply_chat_template(
            prompts, add_generation_prompt=True, tokenize=True, return_dict=True, **self.settings.chat_template_kwargs
        )
        return [list(ids) for ids in enc["input_ids"]]

    def _encode_view(self, cot: str) -> list[int]:
        """What the answerer reads after the prompt: a CoT (or its paraphrase), then the answer marker."""
        return self.tokenizer(f"{cot}\n{self.settings.answer_marker}", add_special_tokens=False).input_ids

    def _paraphrase(self, cots: list[str], contexts: list[str]) -> list[str]:
        # a model paraphraser makes its calls concurrently, seeds drawn in order
        return self.paraphraser.paraphrase_batch(cots, contexts, self.rng)

    def _generate(self, model, trainer, rows, budget, stop, window, greedy, prompts=None) -> Samples:
        return hf_generate(
            model,
            self.tokenizer,
            rows,
            max_new_tokens=budget,
            stop=stop,
            window=window,
            eos_ids=trainer.eos_token_ids,
            config=self.generation_config(trainer.eos_token_ids, greedy),
            prompts=prompts,
        )

    def generation_config(self, eos_ids: Sequence[int], greedy: bool) -> Any:
        """Sampling as TRL's own generation does it (temperature, no top-k/top-p), or greedy for
        evaluation; the same for the policy and the Face."""
        from transformers import GenerationConfig

        tok = self.tokenizer
        common = {"pad_token_id": tok.pad_token_id, "eos_token_id": list(eos_ids), "bos_token_id": tok.bos_token_id}
        if greedy:
            return GenerationConfig(do_sample=False, **common)
        return GenerationConfig(do_sample=True, temperature=self.cfg.rl.temperature, top_p=1.0, top_k=0, **common)

    @contextmanager
    def _policy(self, trainer: GRPOTrainer):
        """The policy, unwrapped for generation as TRL's own generation path does it."""
        from trl.models import unwrap_model_for_generation

        with unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
        ) as model:
            yield model

    def _read(
        self,
        answerer: PreTrainedModel,
        trainer: GRPOTrainer,
        rows: list[list[int]],
        done: list[int],
        problems: list[Problem],
        greedy: bool,
        learn: bool,
        prompts: PromptCache | None = None,
    ) -> tuple[list[tuple[str, list[int]]], list[list[float]], dict[str, float]]:
        """Read a closed answer space after each row: the distribution over the answer words (renormalised),
        the answer drawn from it at the rollout's temperature (argmax when greedy) and the tokens of its
        likeliest spelling. With ``learn``, the answerer takes its policy-gradient step in the same pass: -
        advantage x log-prob of the drawn word, the rewards (the task's score) centred within each group as in
        ``_update_answerer``; the gradient flows through the reading at the answer position, the context's
        keys and values held fixed (the reading is one forward over the context, so the step costs about
        nothing besides; a whole backward pass through the context costs as much as the policy's own)."""
        words = self.task.answer_words
        if learn:
            model, params = self._answerer_params(trainer)
            model.train()
        else:
            model = answerer
        pad = self.tokenizer.pad_token_id
        chunk = self.settings.micro_batch or 64
        word_logp, spelling_logp = read_answers(
            model, pad, rows, self.spellings, chunk=chunk, grad=learn, prompts=prompts, which=done
        )
        logq = (word_logp / (1.0 if greedy else self.cfg.rl.temperature)).log_softmax(-1)
        with torch.no_grad():
            dist = word_logp.detach().float().softmax(-1)
            drawn = logq.argmax(-1) if greedy else torch.multinomial(logq.detach().float().exp(), 1).squeeze(-1)
        out = []
        for k, w in enumerate(drawn.tolist()):
            best = max(range(len(self.spellings[w])), key=lambda j: spelling_logp[k][w][j])
            out.append((words[w], list(self.spellings[w][best])))
        stats: dict[str, float] = {}
        if learn and done:
            rewards = [self.task.score(problems[i], word) for i, (word, _) in zip(done, out)]
            adv = torch.tensor(self._advantages(done, rewards), dtype=logq.dtype, device=logq.device)
            chosen = logq.gather(1, drawn.to(logq.device).unsqueeze(1)).squeeze(1)
            opt = self.answerer_optimizer(trainer)
            opt.zero_grad(set_to_none=True)
            (-(adv * chosen).sum() / len(done)).backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0).item()
            opt.step()
            opt.zero_grad(set_to_none=True)
            stats = {"answerer_grad_norm": grad_norm, "answerer_accuracy": sum(rewards) / len(rewards)}
        return out, dist.tolist(), stats

    def _advantages(self, done: list[int], rewards: list[float]) -> list[float]:
        """The rewards centred within each group (rows ``i // group_size``), divided by the group's std when
        ``rl.scale_advantages``."""
        g = self.cfg.rl.group_size
        groups: dict[int, list[float]] = {}
        for i, r in zip(done, rewards):
            groups.setdefault(i // g, []).append(r)
        adv = []
        for i, r in zip(done, rewards):
            group = groups[i // g]
            mean = sum(group) / len(group)
            std = math.sqrt(sum((x - mean) ** 2 for x in group) / max(1, len(group) - 1))
            adv.append((r - mean) / (std + 1e-4) if self.cfg.rl.scale_advantages else r - mean)
        return adv

    def _answerer(self, trainer: GRPOTrainer):
        return nullcontext(self.face) if self.face is not None else self._policy(trainer)

    def _answerer_params(self, trainer: GRPOTrainer) -> tuple[torch.nn.Module, list[torch.nn.Parameter]]:
        model = self.face if self.face is not None else trainer.accelerator.unwrap_model(trainer.model)
        return model, [p for p in model.parameters() if p.requires_grad]

    def answerer_optimizer(self, trainer: GRPOTrainer) -> torch.optim.Optimizer:
        if self.answerer_opt is None:
            _, params = self._answerer_params(trainer)
            lr = self.settings.face_lr or self.cfg.rl.lr
            self.answerer_opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        return self.answerer_opt

    def _update_answerer(
        self,
        trainer: GRPOTrainer,
        rows: list[list[int]],
        done: list[int],
        tokens: list[list[int]],
        rewards: list[float],
    ) -> dict[str, float]:
        """One step of -advantage x log-prob of the answer tokens given the view, token-averaged, in
        micro-batches; advantages are the rewards centred within each group (and scaled by its std
        when ``rl.scale_advantages``)."""
        adv = self._advantages(done, rewards)
        model, params = self._answerer_params(trainer)
        opt = self.answerer_optimizer(trainer)
        model.train()
        opt.zero_grad(set_to_none=True)
        n_tokens = sum(len(tokens[i]) for i in done)
        chunk = self.settings.micro_batch or len(done)
        device = next(model.parameters()).device
        for start in range(0, len(done), chunk):
            part = range(start, min(start + chunk, len(done)))
            seqs = [rows[k] + tokens[done[k]] for k in part]
            ids, mask = left_pad(seqs, self.tokenizer.pad_token_id, device)
            logp = tail_logprobs(model, ids, mask, max(len(tokens[done[k]]) for k in part))
            weight = torch.zeros_like(logp)
            for row, k in enumerate(part):
                m = len(tokens[done[k]])
                weight[row, -m:] = adv[k]
            loss = -(logp * weight).sum() / max(1, n_tokens)
            loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0).item()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return {"answerer_grad_norm": grad_norm, "answerer_accuracy": sum(rewards) / len(rewards)}


def readable_spellings(tokenizer: PreTrainedTokenizerBase, words: Sequence[str]) -> list[list[list[int]]] | None:
    """``answer_spellings`` of a closed answer space, without the spellings that cannot tell the words apart
    (one that the tokenizer maps to its unknown token, one shared by two words); None for an open answer
    space, or when a word is left without a spelling (its answers are then generated)."""
    spellings = answer_spellings(tokenizer, words)
    if spellings is None:
        return None
    unk = getattr(tokenizer, "unk_token_id", None)
    seen: dict[tuple[int, ...], int] = {}
    for variants in spellings:
        for v in map(tuple, variants):
            seen[v] = seen.get(v, 0) + 1
    kept = [[v for v in variants if seen[tuple(v)] == 1 and (unk is None or unk not in v)] for variants in spellings]
    return kept if all(kept) else None
