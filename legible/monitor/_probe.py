"""A linear probe that reads the hidden state at each reasoning step out of a CoT.

Two readings of a CoT (its words, without the prompt):
  - "full": which word stands at each position, and which legible word is the k-th;
  - "legible": the same with every non-legible word blanked out: which legible word stands
    at each position, and which is the k-th. It is what a reader who knows only the legible
    words can get, by position (reading the CoT) or by order (reading a paraphrase).
What the full reading recovers beyond the legible one is information the CoT hides. A
presence code (one state written, the other left out) is legible by this measure: where a
state word is missing tells the reader the other state. A paraphraser that moves words
around still destroys it, which the paraphrased CoT's probe shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from legible.stats import mutual_information


@dataclass
class ProbeResult:
    accuracy: float  # mean over steps of held-out accuracy
    bits_per_step: float  # mean over steps of held-out I(state; prediction)
    per_step_bits: list[float]
    chance: float  # accuracy of always guessing the most common state at each step
    # (true class, predicted class) of every scored step of the held-out half: what a probe monitor reads
    pairs: list[tuple[int, int]] = field(default_factory=list)


def features(
    cots: list[list[str]],
    vocab: list[str],
    legible: tuple[str, ...],
    max_len: int,
    max_legible: int,
    reading: Literal["full", "legible"],
) -> torch.Tensor:
    index = {w: i for i, w in enumerate(vocab)}
    legible_index = {w: i for i, w in enumerate(legible)}
    width_pos = max_len * len(vocab)
    x = torch.zeros(len(cots), width_pos + max_legible * len(legible) + 1)
    for row, words in enumerate(cots):
        x[row, -1] = 1.0
        k = 0
        for pos, w in enumerate(words):
            if pos < max_len and w in index and (reading == "full" or w in legible_index):
                x[row, pos * len(vocab) + index[w]] = 1.0
            if w in legible_index and k < max_legible:
                x[row, width_pos + k * len(legible) + legible_index[w]] = 1.0
                k += 1
    return x


def probe_states(
    cots: list[list[str]],
    states: list[tuple[str, ...]],
    classes: tuple[str, ...],
    vocab: list[str],
    legible: tuple[str, ...],
    *,
    reading: Literal["full", "legible"] = "full",
    max_steps: int,
    seed: int = 0,
    iters: int = 300,
    weight_decay: float = 1e-3,
) -> ProbeResult:
    """Train on the first half of the CoTs, score on the second half."""
    max_len = 2 * max_steps + 4
    x = features(cots, vocab, legible, max_len, max_steps + 2, reading)
    y = torch.full((len(cots), max_steps), -100, dtype=torch.long)
    cls = {c: i for i, c in enumerate(classes)}
    for i, st in enumerate(states):
        for t, s in enumerate(st[:max_steps]):
            y[i, t] = cls[s]
    half = len(cots) // 2
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(x.shape[1], max_steps * len(classes), generator=g) * 0.01).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=0.05, weight_decay=weight_decay)
    with torch.enable_grad():  # the probe trains even when its caller evaluates under no_grad
        for _ in range(iters):
            logits = (x[:half] @ w).view(half, max_steps, len(classes))
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y[:half], ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = (x[half:] @ w).view(-1, max_steps, len(classes)).argmax(-1)
    truth = y[half:]
    accs, bits, chances, pairs = [], [], [], []
    for t in range(max_steps):
        valid = truth[:, t] >= 0
        n = int(valid.sum())
        if n < 10:
            continue
        yt, pt = truth[valid, t].tolist(), pred[valid, t].tolist()
        pairs += zip(yt, pt)
        accs.append(sum(a == b for a, b in zip(yt, pt)) / n)
        bits.append(mutual_information(yt, pt))
        chances.append(max(yt.count(c) for c in set(yt)) / n)
    mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
    return ProbeResult(mean(accs), mean(bits), bits, mean(chances), pairs)
