"""Speed of the drift metrics (MB/s of UTF-8 input, one core), against a cheap peer.

Text: the shipped English reference documents, shuffled and repeated to ``--mb`` MB, as one
text and as CoT-sized pieces (``--cot-chars``, the way trainers call it: one call per CoT); and
a "drifted" copy where every tenth word carries a zero-width space, a Cyrillic homoglyph or a
curly quote (the non-ASCII path). Times, best of ``--repeats``:

* ``english_score``  the character 4-gram model (``legible.monitor._drift``);
* ``zlib.compress``  level 6, of the same UTF-8 bytes (peer: the usual cheap compressibility
  proxy for "is this natural text"; printed as zlib time / our time, so above 1 means faster);
* ``odd_token_rate`` and ``legibility`` (English word list), for reference;
* ``drift_metrics`` on the CoT pieces.

The model is built once before timing (about 0.2 s, reported). Prints figures, asserts nothing
(the brief asks for "a few MB/s" of ``english_score``).

    .venv/bin/python benchmarks/drift_speed.py [--mb 2] [--cot-chars 2000] [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import time
import zlib

from legible.monitor import _drift as drift


def make_text(n_bytes: int, rng: random.Random, drifted: bool) -> str:
    docs = drift._reference_docs()
    parts: list[str] = []
    size = 0
    while size < n_bytes:
        doc = rng.choice(docs)
        if drifted:
            marks = ["\u200b", "\u0430", "\u2019"]
            doc = " ".join(w + rng.choice(marks) if i % 10 == 9 else w for i, w in enumerate(doc.split()))
        parts.append(doc)
        size += len(doc.encode("utf-8")) + 2
    return "\n\n".join(parts)


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def report(label: str, text: str, cot_chars: int, repeats: int) -> None:
    raw = text.encode("utf-8")
    mb = len(raw) / 1e6
    cots = pieces(text, cot_chars)
    t_eng = best(lambda: drift.english_score(text), repeats)
    t_eng_cots = best(lambda: [drift.english_score(c) for c in cots], repeats)
    t_zlib = best(lambda: zlib.compress(raw), repeats)
    t_zlib_cots = best(lambda: [zlib.compress(c.encode("utf-8")) for c in cots], repeats)
    t_odd = best(lambda: drift.odd_token_rate(text), repeats)
    t_leg = best(lambda: drift.legibility(text), repeats)
    t_all = best(lambda: drift.drift_metrics(cots), 1)
    print(f"[{label}] {mb:.2f} MB, {len(cots)} CoTs of {cot_chars} chars, best of {repeats}")
    print(f"  english_score, one text  {mb / t_eng:8.1f} MB/s  -> zlib time / ours {t_zlib / t_eng:.2f}x")
    ratio = t_zlib_cots / t_eng_cots
    print(f"  english_score, per CoT   {mb / t_eng_cots:8.1f} MB/s  -> zlib time / ours {ratio:.2f}x")
    print(f"  zlib.compress, one text  {mb / t_zlib:8.1f} MB/s   (peer)")
    print(f"  odd_token_rate           {mb / t_odd:8.1f} MB/s")
    print(f"  legibility (English)     {mb / t_leg:8.1f} MB/s")
    print(f"  drift_metrics, per CoT   {mb / t_all:8.1f} MB/s  ({t_all * 1e3 / len(cots):.2f} ms per CoT)")
    print(f"  english_score target >= 3 MB/s (per CoT): {'met' if mb / t_eng_cots >= 3 else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=2.0)
    ap.add_argument("--cot-chars", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t = time.perf_counter()
    cal = drift.english_calibration()
    built = time.perf_counter() - t
    print(f"model built in {built:.2f} s: H_ref {cal['h_ref']:.3f}, H_random {cal['h_random']:.3f} bits per symbol")
    for label, drifted in (("english", False), ("drifted (non-ASCII)", True)):
        text = make_text(int(args.mb * 1e6), random.Random(args.seed), drifted)
        report(label, text, args.cot_chars, args.repeats)


if __name__ == "__main__":
    main()
