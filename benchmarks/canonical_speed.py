r"""Speed of the ``canonical`` paraphraser (MB/s of UTF-8 input, one core).

Generates a few MB of CoT-like text (sentences with numbers, number words, math, inline and
fenced code, names, bullets, and a sprinkle of non-ASCII: quotes, dashes, zero-width spaces,
Cyrillic homoglyphs, full-width letters), then times, best of ``--repeats``:

* ``canonical``              the full normal form (``canonicalize``);
* ``NFKC``                   ``unicodedata.normalize("NFKC", text)`` alone (peer);
* ``str.lower``              (peer);
* ``one regex pass``         ``re.sub(r"\s+", " ", text)``, a single full regex pass (peer; on ASCII
                             text NFKC is only a quick check, so this is the telling one there);

on the mixed text and on a pure-ASCII version of it, and prints MB/s and the ratio of
canonical to each peer. Prints figures, asserts nothing (the target is >= 20 MB/s).

    .venv/bin/python benchmarks/canonical_speed.py [--mb 4] [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import time
import unicodedata

from legible.paraphrase._canonical import canonicalize

WORDS = (
    "the answer is so we need to compute total value check first then result because each step "
    "gives us a number and it seems correct but wait let me verify again carefully"
).split()
EXTRAS = [
    "1,000",
    "one thousand",
    "twenty-one",
    "x^2 + 3 = 7",
    "`f(x)`",
    "Alice",
    "42",
    "3.5",
    "...",
    "!!",
    "\u201cquoted\u201d",
    "\u2014",
    "w\u200bord",
    "\u0430pple",
    "\uff21BC",
    "caf\u00e9",
]


def make_text(n_bytes: int, rng: random.Random, ascii_only: bool) -> str:
    parts: list[str] = []
    size = 0
    while size < n_bytes:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
        if rng.random() < 0.5:
            extra = rng.choice(EXTRAS)
            if ascii_only:
                extra = extra.encode("ascii", "ignore").decode() or "7"
            words.insert(rng.randrange(len(words)), extra)
        s = " ".join(words).capitalize() + rng.choice([". ", ". ", "? ", ".\n", ".\n\n"])
        if rng.random() < 0.03:
            s += "```python\nx = compute(1, 2)\nprint(x)\n```\n"
        if rng.random() < 0.05:
            s += "- first item\n- second item\n"
        parts.append(s)
        size += len(s.encode("utf-8"))
    return "".join(parts)


_WS = re.compile(r"\s+")


def best(fn, text: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for label, ascii_only in (("mixed unicode", False), ("pure ascii", True)):
        text = make_text(int(args.mb * 1e6), random.Random(args.seed), ascii_only)
        mb = len(text.encode("utf-8")) / 1e6
        t_can = best(canonicalize, text, args.repeats)
        t_nfkc = best(lambda s: unicodedata.normalize("NFKC", s), text, args.repeats)
        t_low = best(str.lower, text, args.repeats)
        t_re = best(lambda s: _WS.sub(" ", s), text, args.repeats)
        print(f"[{label}] {mb:.2f} MB, best of {args.repeats}")
        print(f"  canonical   {mb / t_can:9.1f} MB/s  ({t_can * 1e3:.0f} ms)")
        print(f"  NFKC alone  {mb / t_nfkc:9.1f} MB/s  -> canonical/NFKC = {t_nfkc / t_can:.3f}x")
        print(f"  str.lower   {mb / t_low:9.1f} MB/s  -> canonical/lower = {t_low / t_can:.3f}x")
        print(f"  \\s+ -> ' '  {mb / t_re:9.1f} MB/s  -> canonical/(one regex pass) = {t_re / t_can:.3f}x")
        print(f"  target >= 20 MB/s: {'met' if mb / t_can >= 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
