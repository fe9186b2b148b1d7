r"""Speed of the ``lexical`` paraphraser (MB/s of UTF-8 input, one core), with peers measured in the same run.

The text is ``canonical_speed``'s CoT-like text, cut into CoTs of about ``--cot-kb`` KB each (lexical is
called once per CoT, as a trainer or ``legible stego`` calls it), and timed, best of ``--repeats``:

* ``lexical``               ``Lexical().paraphrase(cot, rng=random.Random(i))`` over every CoT;
* ``canonical+lexical``     the defence a text-CoT pipeline uses without a model;
* ``canonical``             (peer) the deterministic normal form on the same CoTs;
* ``one regex pass``        (peer) ``re.sub(r"\s+", " ", cot)`` on the same CoTs.

Prints MB/s and the ratio of lexical to each peer. Asserts nothing (lexical has no speed target: it is
measured so that its cost next to canonical's is known).

    .venv/bin/python benchmarks/lexical_speed.py [--mb 1] [--cot-kb 1] [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import time

from canonical_speed import make_text

from legible.paraphrase import Lexical, canonicalize, make_paraphraser

_WS = re.compile(r"\s+")


def cots_of(text: str, size: int) -> list[str]:
    """``text`` cut at sentence ends into pieces of about ``size`` characters."""
    out, start = [], 0
    while start < len(text):
        end = text.find(". ", start + size)
        end = len(text) if end < 0 else end + 1
        out.append(text[start:end].strip())
        start = end
    return [c for c in out if c]


def best(fn, cots: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for i, cot in enumerate(cots):
            fn(cot, i)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--cot-kb", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    lexical, defence = Lexical(), make_paraphraser("canonical+lexical")
    for label, ascii_only in (("mixed unicode", False), ("pure ascii", True)):
        text = make_text(int(args.mb * 1e6), random.Random(args.seed), ascii_only)
        cots = cots_of(text, int(args.cot_kb * 1000))
        mb = sum(len(c.encode("utf-8")) for c in cots) / 1e6
        t_lex = best(lambda c, i: lexical.paraphrase(c, rng=random.Random(i)), cots, args.repeats)
        t_def = best(lambda c, i: defence.paraphrase(c, rng=random.Random(i)), cots, args.repeats)
        t_can = best(lambda c, i: canonicalize(c), cots, args.repeats)
        t_re = best(lambda c, i: _WS.sub(" ", c), cots, args.repeats)
        print(f"[{label}] {mb:.2f} MB in {len(cots)} CoTs of about {args.cot_kb:g} KB, best of {args.repeats}")
        per_cot = 1e6 * t_lex / len(cots)
        print(f"  lexical            {mb / t_lex:8.2f} MB/s  ({t_lex * 1e3:.0f} ms, {per_cot:.0f} us per CoT)")
        print(f"  canonical+lexical  {mb / t_def:8.2f} MB/s  ({t_def * 1e3:.0f} ms)")
        print(f"  canonical          {mb / t_can:8.2f} MB/s  -> lexical/canonical = {t_can / t_lex:.3f}x")
        print(f"  \\s+ -> ' '         {mb / t_re:8.2f} MB/s  -> lexical/(one regex pass) = {t_re / t_lex:.3f}x")


if __name__ == "__main__":
    main()
