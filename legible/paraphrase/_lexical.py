"""``lexical``: seeded, meaning-keeping randomisation of a CoT's wording.

Every random choice draws from the given ``rng`` (``random.Random``) in a fixed order, so the
same seed gives the same output; with ``rng=None`` a fresh unseeded ``Random`` is used.

Operations, in order:

1. **Synonyms.** Each word found in ``data/synonyms.json`` (WordNet 3.0 dominant-sense groups
   and their inflections, plus curated reasoning-text groups, built by
   ``scripts/build_synonyms.py``; every word in at most one group) is redrawn, with
   probability ``p_synonym``, uniformly from its whole group, itself included (case pattern
   kept). Drawing from the whole group rather than "another member" is what closes the
   channel: with ``p_synonym=1`` the output word does not depend on which member was written.
   Connectives (so/thus/therefore/hence, first/firstly, also/moreover, ...) are replaced only
   as the first word of a sentence, clause or line. A capitalised word is replaced only when
   it is such a connective (a capitalised word elsewhere may be a name).
2. **Lists.** A comma list of three or more items (``a, b and c``, ``a, b, or c``; an item is
   one word or protected span, or a determiner or number and a word: ``the pears``,
   ``8 pears``) whose neighbours make it safe (a function word or punctuation before, unless
   the items start with a determiner or number; punctuation or a function word after) is
   shuffled with probability ``p_list``: by default always, so its order carries nothing.
3. **Sentences.** Two adjacent short sentences (at most ``max_merge_words`` words each) are
   joined with probability ``p_merge`` (``. Then`` -> ``; then`` or ``, and then``); a
   ``; `` followed by a common word is split into two sentences with probability
   ``p_split``. Only boundaries after a word and before a common function word are touched.
4. **Bullets.** A block of two or more ``- ``/``* `` bullet lines with no ordering words
   (then, next, first, finally, above, ...) and no code is shuffled with probability
   ``p_list``.

Protected spans (``protect.protected_spans``: code, math, numbers, URLs, capitalised names)
are atomic tokens here: never changed, never split, only moved whole by a shuffle.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from importlib import resources

from legible.paraphrase._base import Paraphraser, register_paraphraser
from legible.paraphrase._protect import protected_spans

_TOKEN_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\s+|.", re.S)

# Common words that may open a sentence; only boundaries before one of these are merged/split.
FUNCTION_WORDS = frozenset(
    """the a an this that these those then so thus therefore hence now next also but however first finally
we it there they he she you i our its their his her each all both in on for if since because let to
from with of at by when while after before once given note here""".split()
)
# Words after which ", and" reads well (else "; " is used).
_AND_OK = frozenset(
    "the a an this that these those we it there they he she you i our its their his her each all both then".split()
)
_LIST_BEFORE = frozenset(
    "of are is were was be include includes including like with the as from between among namely and or for "
    "to in on at by".split()
)
_LIST_AFTER = frozenset(
    "are is were was have has had in on at to for of with all both each were will would can could may might "
    "must should do does did".split()
)
_DETERMINERS = frozenset("a an the some two three four five six seven eight nine ten eleven twelve".split())
_ORDER_WORDS = re.compile(
    r"\b(?:then|next|first|firstly|second|secondly|finally|lastly|after|before|above|below|previous|"
    r"following|last|now|so|thus|therefore|hence|step)\b",
    re.I,
)
_BULLET_BLOCK_RE = re.compile(r"(?:^|(?<=\n))(?:[ \t]*[-*] [^\n]*(?:\n|$)){2,}")


@lru_cache(maxsize=1)
def load_lexicon() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """``(synonyms, connectives)``: word -> every member of its group (itself included)."""
    path = resources.files("legible.paraphrase") / "data" / "synonyms.json"
    data = json.loads(path.read_text(encoding="utf-8"))

    def index(groups: list[list[str]]) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for g in groups:
            for w in g:
                out.setdefault(w, tuple(g))
        return out

    return index(data["groups"]), index(data["connectives"])


def _case_like(src: str, word: str) -> str:
    if src.isupper() and len(src) > 1:
        return word.upper()
    if src[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


class Tok:
    __slots__ = ("text", "kind")

    def __init__(self, text: str, kind: str) -> None:
        self.text, self.kind = text, kind  # kind: prot | word | space | punct

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Tok({self.text!r}, {self.kind})"


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []

    def gap(s: str) -> None:
        for t in _TOKEN_RE.findall(s):
            c = t[0]
            kind = "space" if c.isspace() else "word" if (c.isalpha() and c != "_") else "punct"
            toks.append(Tok(t, kind))

    pos = 0
    for a, b in protected_spans(text):
        if a > pos:
            gap(text[pos:a])
        toks.append(Tok(text[a:b], "prot"))
        pos = b
    if pos < len(text):
        gap(text[pos:])
    return toks


class Lexical(Paraphraser):
    name = "lexical"

    def __init__(
        self,
        p_synonym: float = 1.0,
        p_list: float = 1.0,
        p_merge: float = 0.3,
        p_split: float = 0.5,
        max_merge_words: int = 12,
    ) -> None:
        self.p_synonym, self.p_list, self.p_merge, self.p_split = p_synonym, p_list, p_merge, p_split
        self.max_merge_words = max_merge_words
        self.synonyms, self.connectives = load_lexicon()

    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        if not isinstance(cot, str):
            raise TypeError(f"lexical paraphraser expects str, got {type(cot).__name__}; decode bytes first")
        if not cot:
            return ""
        rng = rng or random.Random()
        if _has_surrogates(cot):  # lone surrogates (not valid UTF-8) become U+FFFD, as in ``canonical``
            cot = _SURROGATE_RE.sub("\ufffd", cot)
        toks = tokenize(cot)
        self._synonyms(toks, rng)
        self._lists(toks, rng)
        self._sentences(toks, rng)
        return self._bullets("".join(t.text for t in toks), rng)

    # -- 1. synonyms
    def _synonyms(self, toks: list[Tok], rng: random.Random) -> None:
        clause_start = True
        for t in toks:
            if t.kind == "space":
                if "\n" in t.text:
                    clause_start = True
                continue
            if t.kind == "word":
                low = t.text.lower()
                capital = t.text[:1].isupper()
                choices = None
                if clause_start and low in self.connectives:
                    choices = self.connectives[low]
                elif not capital and low in self.synonyms:
                    choices = self.synonyms[low]
                if choices and rng.random() < self.p_synonym:
                    t.text = _case_like(t.text, rng.choice(choices))
            clause_start = t.kind == "punct" and t.text in ".!?;:-*"

    # -- 2. comma lists
    def _lists(self, toks: list[Tok], rng: random.Random) -> None:
        n, i = len(toks), 0
        while i < n:
            items, j = self._list_at(toks, i)
            if len(items) >= 3:
                if rng.random() < self.p_list:
                    texts = ["".join(t.text for t in toks[a:b]) for a, b in items]
                    rng.shuffle(texts)
                    for (a, b), text in zip(items, texts):  # an item's text moves whole, into its first token
                        toks[a].text = text
                        for t in toks[a + 1 : b]:
                            t.text = ""
                i = j
            else:
                i += 1

    def _is_item(self, t: Tok) -> bool:
        return t.kind == "prot" or (
            t.kind == "word"
            and not t.text[:1].isupper()
            and t.text.lower() not in FUNCTION_WORDS
            and t.text.lower() not in self.connectives
        )

    def _item_at(self, toks: list[Tok], k: int) -> int | None:
        """The end of a list item starting at token ``k``: one word or protected span, or a
        determiner or number and a word ("the pears", "8 pears"); None if no item starts there."""
        n = len(toks)
        if k >= n:
            return None
        head = toks[k]
        counted = head.kind == "prot" and head.text[:1].isdigit() or head.text.lower() in _DETERMINERS
        if counted and k + 2 < n and toks[k + 1].text == " " and toks[k + 2].kind == "word":
            if self._is_item(toks[k + 2]):
                return k + 3
        return k + 1 if self._is_item(head) else None

    def _list_at(self, toks: list[Tok], i: int) -> tuple[list[tuple[int, int]], int]:
        """The (start, end) token spans of the items of a list starting at token ``i``, and the
        index after it."""
        n = len(toks)
        end = self._item_at(toks, i)
        if end is None:
            return [], i
        # what comes before must make the first item a whole noun phrase (a determiner or a number
        # starting it does)
        b = i - 1
        if b >= 0 and toks[b].kind == "space":
            b -= 1
        if (
            end - i == 1
            and b >= 0
            and not (toks[b].kind == "punct" and toks[b].text in ":;,(")
            and not (toks[b].kind == "word" and toks[b].text.lower() in _LIST_BEFORE)
        ):
            return [], i
        items, j = [(i, end)], end
        final = False
        while True:
            # ", item"  |  ",? and/or item" (final)
            k = j
            comma = k < n and toks[k].text == ","
            if comma:
                k += 1
            if k < n and toks[k].text == " ":
                k += 1
            else:
                break
            final = k < n and toks[k].text in ("and", "or") and k + 2 < n and toks[k + 1].text == " "
            if final:
                k += 2
            elif not comma:
                break
            end = self._item_at(toks, k)
            if end is None:
                return [], i
            items.append((k, end))
            j = end
            if final:
                break
        if not final:
            return [], i
        # what follows must end the phrase
        a = j
        if a < n and toks[a].kind == "space":
            a += 1
        if (
            a < n
            and not (toks[a].kind == "punct" and toks[a].text in ".,;:!?)")
            and not (toks[a].kind == "word" and toks[a].text.lower() in _LIST_AFTER)
        ):
            return [], i
        return items, j

    # -- 3. sentence merge / split
    def _sentences(self, toks: list[Tok], rng: random.Random) -> None:
        n = len(toks)
        # words per sentence, to merge only short ones
        sent_of: list[int] = [0] * n
        words: list[int] = [0]
        for k, t in enumerate(toks):
            sent_of[k] = len(words) - 1
            if t.kind in ("word", "prot"):
                words[-1] += 1
            elif t.kind == "punct" and t.text in ".!?":
                words.append(0)
        for k in range(1, n - 2):
            p, sp, w = toks[k], toks[k + 1], toks[k + 2]
            if toks[k - 1].kind != "word" or sp.kind != "space" or w.kind != "word":
                continue
            if w.text.lower() not in FUNCTION_WORDS or (sp.text != " " and sp.text != "\n"):
                continue
            if p.text == "." and w.text[:1].isupper() or p.text == "." and sp.text == "\n":
                s = sent_of[k]
                if s + 1 >= len(words) or max(words[s], words[s + 1]) > self.max_merge_words:
                    continue
                if rng.random() < self.p_merge:
                    if rng.random() < 0.5 and w.text.lower() in _AND_OK:
                        p.text, sp.text = ", and", " "
                    else:
                        p.text, sp.text = ";", " "
                    w.text = w.text.lower()
            elif p.text == ";" and sp.text == " " and not w.text[:1].isupper():
                if rng.random() < self.p_split:
                    p.text = "."
                    w.text = w.text[:1].upper() + w.text[1:]

    # -- 4. bullets
    def _bullets(self, text: str, rng: random.Random) -> str:
        if "- " not in text and "* " not in text:
            return text

        def shuffle(m: re.Match) -> str:
            block = m.group()
            if "`" in block or _ORDER_WORDS.search(block):
                return block
            lines = block.split("\n")
            tail = lines.pop() if lines[-1] == "" else None
            if len({ln[: len(ln) - len(ln.lstrip())] for ln in lines}) > 1:  # nested: keep as is
                return block
            if rng.random() < self.p_list:
                rng.shuffle(lines)
            return "\n".join(lines) + ("\n" if tail is not None else "")

        return _BULLET_BLOCK_RE.sub(shuffle, text)


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


register_paraphraser("lexical")(lambda task: Lexical())
