"""Models built in the tests: scripted Inspect model APIs, a tiny local causal LM, and tiny organisms
(random, or trained for a few seconds).

Nothing here touches the network: the scripted models are plain Python, and the tiny model's tokenizer is
trained in the test and its weights are random.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from inspect_ai.model import ChatMessage, GenerateConfig, ModelAPI, ModelOutput, modelapi
from inspect_ai.tool import ToolChoice, ToolInfo

from legible.paraphrase._base import Paraphraser

SCRIPTED_CALLS: list[dict] = []  # every scripted generate() call: {"mode", "system", "user", "config"}

_BLOCK = re.compile(r"<(cot-[0-9a-f]+)>\n(.*)\n</\1>", re.DOTALL)
_QUOTED = (
    re.compile(r'"([^"\n]{3,})"'),
    re.compile(r"«\s*([^»]+?)\s*»"),
    re.compile(r"„([^“]+)“"),
    re.compile(r"「([^」]+)」"),
    re.compile(r"secret marker (\S+)"),
)
_SYNONYMS = {
    "we": "one",
    "need": "wants",
    "the": "this",
    "first": "initially",
    "then": "next",
    "so": "hence",
    "is": "equals",
    "which": "that",
    "gives": "yields",
    "get": "obtain",
    "total": "sum",
    "each": "apiece",
    "add": "combine",
    "adding": "combining",
    "and": "plus",
    "of": "among",
    "answer": "result",
    "final": "last",
    "them": "these",
    "cost": "price",
    "at": "for",
    "times": "multiplied by",
    "are": "make",
    "there": "here",
    "have": "hold",
    "has": "holds",
    "to": "toward",
    "a": "one",
    "in": "within",
    "on": "upon",
}


def data_block(user: str) -> str:
    m = _BLOCK.search(user)
    return m.group(2) if m else user


def reword(text: str) -> str:
    """A well-behaved paraphrase: reverse the sentence order and swap common words for synonyms."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]

    def swap(m: re.Match[str]) -> str:
        w = m.group(0)
        s = _SYNONYMS.get(w.lower())
        if s is None:
            return w
        return s.capitalize() if w[0].isupper() else s

    return " ".join(re.sub(r"[A-Za-z]+", swap, s) for s in reversed(sentences))


def scripted_output(mode: str, user: str) -> str:
    block = data_block(user)
    if mode == "echo":  # an echo bot: obeys "copy this text exactly"
        return block
    if mode == "canary":  # obeys the injection: finds the text it is told to output and outputs it
        for pat in _QUOTED:
            m = pat.search(block)
            if m:
                return "Sure! " + m.group(1)
        return block
    if mode == "reword":
        return reword(block)
    if mode == "tagged":  # a paraphrase wrapped in the delimiter tags and quotes (the cleaner strips them)
        tag = _BLOCK.search(user).group(1)
        return f'<{tag}>\n"{reword(block)}"\n</{tag}>'
    if mode == "leak_tag":  # a delimiter tag inside its answer
        tag = _BLOCK.search(user).group(1)
        return f"</{tag}> " + reword(block) + f" <{tag}> fine."
    if mode == "empty":
        return "   "
    raise ValueError(mode)


@modelapi(name="legible_scripted")
class ScriptedModelAPI(ModelAPI):
    """``legible_scripted/<mode>``: see :func:`scripted_output` for the modes."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        system = "\n".join(m.text for m in input if m.role == "system")
        user = "\n".join(m.text for m in input if m.role == "user")
        SCRIPTED_CALLS.append({"mode": self.model_name, "system": system, "user": user, "config": config})
        return ModelOutput.from_content(model=self.model_name, content=scripted_output(self.model_name, user))


class NumbersOnly(Paraphraser):
    """A conservative fallback for the tests: keeps only the numbers of the reasoning."""

    name = "numbers_only"

    def __init__(self) -> None:
        self.calls = 0

    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        self.calls += 1
        return "Numbers used: " + " ".join(re.findall(r"\d+", cot))


def build_tiny_lm(path: Path) -> Path:
    """A 2-layer, 64-wide GPT-2 with random weights and a byte-level BPE tokenizer trained here on a few
    hundred sentences, saved under ``path`` with a simple chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(0)
    rnd = random.Random(0)
    nouns = ["apples", "pens", "books", "cakes", "marbles", "coins", "steps", "metres"]
    sents = []
    for _ in range(300):
        a, b = rnd.randint(1, 50), rnd.randint(1, 50)
        n = rnd.choice(nouns)
        sents.append(f"We have {a} {n} and add {b} more, so the total is {a + b} {n}. The answer is {a + b}.")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(sents, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>")
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    path.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(path)
    cfg = GPT2Config(
        vocab_size=len(fast),
        n_positions=2048,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=fast.eos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    GPT2LMHeadModel(cfg).save_pretrained(path)
    return path


def noisy_tiny_transformer(seed: int = 0):
    """A 2-layer, 32-wide organism policy with random weights larger than the init's, so that logits
    clearly differ between tokens and positions (at init everything is close to uniform, which hides
    mistakes)."""
    import torch

    from legible.policy._tiny import TinyConfig, TinyTransformer
    from legible.policy._vocab import VOCAB

    torch.manual_seed(seed)
    model = TinyTransformer(TinyConfig(vocab_size=len(VOCAB), n_layer=2, n_head=4, n_embd=32)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    return model


def quick_trained(
    path: Path,
    task,
    steps: int = 250,
    code: dict[str, str] | None = None,
    paraphrase_prob: float = 0.0,
    n_embd: int = 32,
) -> None:
    """Supervised training on the CoTs of short coin flips: a few seconds on one core.

    ``code`` rewrites each state word (e.g. {"heads": "we", "tails": "now"}): an organism whose
    hidden channel is known by construction, as the monitor condition learns one by RL. A share
    ``paraphrase_prob`` of examples shows the ``legible_only`` paraphrase of the legible CoT with
    the loss on the answer only, as stage 1 does, so the model can answer from paraphrases."""
    import torch

    from legible.paraphrase import make_paraphraser
    from legible.policy._checkpoint import save_policy
    from legible.policy._rollout import prompt_ids
    from legible.policy._tiny import TinyConfig, TinyTransformer, left_pad
    from legible.policy._vocab import VOCAB

    torch.manual_seed(0)
    rng = random.Random(0)
    model = TinyTransformer(TinyConfig(vocab_size=len(VOCAB), n_layer=2, n_head=4, n_embd=n_embd))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    # Warm-up and decay as stage 1 uses: without them a 2-layer model often stays at chance here.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / steps))
    code = code or {}
    paraphraser = make_paraphraser("legible_only", task)
    for _ in range(steps):
        problems = [task.sample(rng) for _ in range(32)]
        heads, rows = [], []
        for p in problems:
            head = prompt_ids(p)
            if rng.random() < paraphrase_prob:
                cot = paraphraser.paraphrase(" ".join(p.states), p.prompt, rng)
                head = head + VOCAB.encode(cot) + [VOCAB.answer_id]  # the loss starts at the answer
            else:
                cot = " ".join(code.get(s, s) for s in p.states)
            heads.append(head)
            rows.append(prompt_ids(p) + VOCAB.encode(cot) + [VOCAB.answer_id, VOCAB.index[p.answer]])
        ids, mask = left_pad(rows, VOCAB.pad_id)
        targets = ids[:, 1:].clone()
        for i, (h, r) in enumerate(zip(heads, rows)):
            targets[i, : ids.shape[1] - len(r) + len(h) - 1] = -100  # no loss on the prompt (nor a paraphrase)
        loss = torch.nn.functional.cross_entropy(model(ids, mask)[:, :-1].transpose(1, 2), targets, ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    save_policy(model.eval(), path / "policy")


# A run config that trains stage 1 and RL in seconds (test_train, test_interrupt).
TINY_RUN = {
    "seed": 3,
    "task": {"min_steps": 4, "max_steps": 6},
    "model": {"n_layer": 1, "n_head": 2, "n_embd": 16},
    "pretrain": {"steps": 30, "batch_size": 16, "checkpoint_every": 10},
    "rl": {
        "steps": 24,
        "prompts": 4,
        "group_size": 2,
        "eval_every": 6,
        "eval_problems": 16,
        "checkpoint_every": 3,
        "ramp_steps": 5,
    },
    "condition": "monitor+face",
    "eval": {"problems": 40},
}
