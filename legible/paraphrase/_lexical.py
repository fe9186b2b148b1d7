"""``lexical``: seeded, meaning-keeping randomisation of a CoT's wording.

Every random choice draws from the given ``rng`` (``random.Random``) in a fixed order, so the
same seed gives the same output; with ``rng=None`` a fresh unseeded ``Random`` is used.

Operations, in order:

0. **Normal forms of word-level classes** (deterministic; written from the development half of
   ``legible stego --search``, one rule per class of surface choice, never per instance): every
   contraction written out (``don't`` -> ``do not``); every British spelling of ``data/spelling.json``
   in its American form; abbreviations expanded (``e.g.`` -> ``for example``, ``vs.`` -> ``versus``,
   ``approx.`` -> ``approximately``; ``and so on`` -> ``etc.``); a unit after a number written out
   (``3 min`` -> ``3 minutes``); a unit word as its symbol (``40 percent`` -> ``40%``, ``12 dollars``
   -> ``$12``: the digits stay as they are); hedges dropped wherever they stand (clearly, obviously,
   basically, actually, ...); connectives one member of their group where they do not open a clause
   (``additionally`` -> ``also``, ``, therefore`` -> ``, so``, ``is thus`` -> ``is therefore``,
   ``, however`` -> ``, but``); a filler opening a sentence (now, well, basically, ...) dropped with
   its comma, and the comma after an opening connective (``So, we`` -> ``So we``). Canonical does the
   character-level classes; these need a look at every word, which this paraphraser makes anyway.
   Then the phrase-level classes of ``_phrases`` (calendar and clock abbreviations, ordinals as digits,
   operator words between numbers, approximations and rates, each/every, need to/have to, will/going to,
   causal since, the answer phrase, a step adverb's place, a sentence opened by so/but, closed compounds).
1. **Synonyms.** Each word found in ``data/synonyms.json`` (WordNet 3.0 dominant-sense groups
   and their inflections, plus curated reasoning-text groups, built by
   ``scripts/build_synonyms.py``; every word in at most one group) is redrawn, with
   probability ``p_synonym``, uniformly from its whole group, itself included (case pattern
   kept); where the context (the question) uses a member of the group, that member is written
   instead (the question's entities are kept, and the writer's choice still carries nothing). The draw is
   one per group and text, keyed by the group, so it depends neither on the member written nor on the
   order of the words.
   Drawing from the whole group rather than "another member" is what closes the
   channel: with ``p_synonym=1`` the output word does not depend on which member was written.
   Connectives (so/thus/therefore/hence, first/firstly, also/moreover, ...) are replaced only
   as the first word of a sentence, clause or line. A capitalised word is replaced only when
   it is such a connective (a capitalised word elsewhere may be a name).
2. **Lists.** A comma list of three or more items (``a, b and c``, ``a, b, or c``; an item is
   one word or protected span, or a determiner or number and a word: ``the pears``,
   ``8 pears``) whose neighbours make it safe (a function word or punctuation before, unless
   the items start with a determiner or number; punctuation or a function word after) is
   shuffled with probability ``p_list``: by default always, so its order carries nothing. So are
   two items joined by ``and``/``or`` after a determiner, a preposition or a verb that takes a
   pair (``between the bus and the train``, ``compare time and money``; see ``_PAIR_BEFORE``).
   The items are sorted before the shuffle, so the order drawn depends on the seed alone; a list
   the context writes as it is (an option's text) is kept.
3. **Sentence openers.** With probability ``p_filler`` a filler drawn from ``OPENER_FILLERS`` is
   put before each sentence's first word: with the writer's own fillers gone (operation 0),
   neither they nor the parity of a sentence's word count (which an optional filler sets)
   carries anything.
4. **Sentences.** Two adjacent short sentences (at most ``max_merge_words`` words each) are
   joined with probability ``p_merge`` (``. Then`` -> ``; then`` or ``, and then``); a
   ``; `` followed by a common word is split into two sentences with probability
   ``p_split``. Only boundaries after a word and before a common function word are touched.
5. **Bullets.** A block of two or more ``- ``/``* `` bullet lines with no ordering words
   (then, next, first, finally, above, ...) and no code is shuffled with probability
   ``p_list``.

Protected spans (``protect.protected_spans``: code, math, numbers, URLs, capitalised names)
are atomic tokens here: never changed, never split, only moved whole by a shuffle (a number
may gain a ``$`` before it or a ``%`` after it, operation 0).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from functools import lru_cache
from importlib import resources

from legible.paraphrase._base import Paraphraser, register_paraphraser
from legible.paraphrase._canonical import expand_contraction
from legible.paraphrase._phrases import phrase_forms
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


# ---- classes of surface choice (operation 0 and 4)

_HEDGES = frozenset(
    "clearly obviously evidently basically essentially fundamentally literally actually indeed certainly definitely "
    "surely honestly".split()
)
# Fillers that may open a sentence (dropped there with their comma), and those operation 4 draws from: one word
# each, so that a drawn filler flips the parity of the sentence's word count.
_OPENER_WORDS = _HEDGES | {"now", "well", "okay"}
OPENER_FILLERS = ("Now", "Well", "Basically", "Essentially")
# Connectives and adverbs whose comma after them, opening a sentence, is a free choice ("So, we" / "So we"): dropped.
_COMMA_OPENERS = frozenset(
    "so then first second third next finally lastly also overall still instead otherwise again later here anyway "
    "meanwhile similarly likewise besides but however therefore thus hence consequently moreover furthermore "
    "additionally afterwards today maybe perhaps yes no".split()
)
_ABBREVIATIONS = {  # tokens (lowercase, without the final period) -> expansion
    ("e", ".", "g"): "for example",
    ("i", ".", "e"): "that is",
    ("vs",): "versus",
    ("approx",): "approximately",
    ("cf",): "compare",
    ("esp",): "especially",
    ("incl",): "including",
}
_UNIT_WORDS = {  # after a number: abbreviation -> (singular, plural)
    "min": ("minute", "minutes"),
    "mins": ("minute", "minutes"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
    "sec": ("second", "seconds"),
    "secs": ("second", "seconds"),
    "km": ("kilometer", "kilometers"),
    "kms": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"),
    "kg": ("kilogram", "kilograms"),
    "kgs": ("kilogram", "kilograms"),
    "g": ("gram", "grams"),
    "l": ("liter", "liters"),
    "ml": ("milliliter", "milliliters"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ft": ("foot", "feet"),
    "mi": ("mile", "miles"),
}
_CONTEXT_WORD_RE = re.compile(r"[^\W\d_]+")
_PLAIN_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
# Connectives where they do not open a clause: one member of the group (operation 1 re-draws them where they do).
_ADDITIVE = {"moreover": "also", "furthermore": "also", "additionally": "also"}
_CAUSAL = frozenset("so thus therefore hence consequently".split())
_EVERYWHERE = {
    "firstly": "first",
    "lastly": "finally",
    "perhaps": "maybe",
    "possibly": "maybe",
    "likewise": "similarly",
}
# Words before a pair whose order carries nothing ("the bus and the train", "between time and money").
_PAIR_BEFORE = frozenset(
    "the of with between among both either like for about from in on at by compare choose buy buys sell sells has "
    "have had".split()
)


@lru_cache(maxsize=1)
def load_spelling() -> dict[str, str]:
    """British -> American spellings (``data/spelling.json``), every inflection its own entry."""
    path = resources.files("legible.paraphrase") / "data" / "spelling.json"
    return json.loads(path.read_text(encoding="utf-8"))["british_to_american"]


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
        p_filler: float = 0.5,
        normal_forms: bool = True,
    ) -> None:
        self.p_synonym, self.p_list, self.p_merge, self.p_split = p_synonym, p_list, p_merge, p_split
        self.max_merge_words = max_merge_words
        self.p_filler, self.normal_forms = p_filler, normal_forms
        self.synonyms, self.connectives = load_lexicon()
        self.spelling = load_spelling()

    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        if not isinstance(cot, str):
            raise TypeError(f"lexical paraphraser expects str, got {type(cot).__name__}; decode bytes first")
        if not cot:
            return ""
        rng = rng or random.Random()
        if _has_surrogates(cot):  # lone surrogates (not valid UTF-8) become U+FFFD, as in ``canonical``
            cot = _SURROGATE_RE.sub("\ufffd", cot)
        if self.normal_forms:
            # the phrase-level forms before the word-level ones too: a sum written in words becomes math first,
            # so that the words after it are read as after math either way ("30 x 40 equals 1200 dollars")
            toks = tokenize(phrase_forms("".join(t.text for t in self._normal_forms(tokenize(phrase_forms(cot))))))
        else:
            toks = tokenize(cot)
        self._synonyms(toks, rng, context)
        self._lists(toks, rng, context.lower())
        toks = self._openers(toks, rng)
        self._sentences(toks, rng)
        return self._bullets("".join(t.text for t in toks), rng)

    # -- 0. normal forms of word-level classes
    def _normal_forms(self, toks: list[Tok]) -> list[Tok]:
        n = len(toks)

        def nxt(k: int) -> int:  # the next token that is not a space (n if none)
            k += 1
            while k < n and toks[k].kind == "space":
                k += 1
            return k

        def prev(k: int) -> int:
            k -= 1
            while k >= 0 and toks[k].kind == "space":
                k -= 1
            return k

        for i, t in enumerate(toks):
            if t.kind != "word" or not t.text:
                continue
            low = t.text.lower()
            if "'" in low:  # a contraction
                head, _, tail = low.partition("'")
                j = nxt(i)
                after = toks[j].text.lower() if j < n and toks[j].kind == "word" else ""
                full = expand_contraction(head, tail, after)
                if full is not None:
                    t.text = _case_like(t.text, full) if not t.text.isupper() else full.upper()
                continue
            if low in self.spelling:
                t.text = _case_like(t.text, self.spelling[low])
                continue
            if low in _HEDGES:
                self._drop_hedge(toks, i)
                continue
            key = tuple(x.text.lower() for x in toks[i : i + 3]) if low in ("e", "i") else (low,)
            if key in _ABBREVIATIONS:
                width = len(key)
                t.text = _case_like(t.text, _ABBREVIATIONS[key])
                for x in toks[i + 1 : i + width]:
                    x.text = ""
                if i + width < n and toks[i + width].text == ".":  # the abbreviation's period
                    toks[i + width].text = ""
                continue
            if low == "and" and [x.text.lower() for x in toks[i + 1 : i + 5]] == [" ", "so", " ", "on"]:
                t.text = _case_like(t.text, "etc.")
                for x in toks[i + 1 : i + 5]:
                    x.text = ""
                if i + 5 < n and toks[i + 5].text == ".":
                    toks[i + 5].text = ""
                continue
            p = prev(i)
            number = p >= 0 and toks[p].kind == "prot" and _PLAIN_NUMBER_RE.fullmatch(toks[p].text)
            if number and toks[p + 1].text == " " and p + 2 == i and not (p > 0 and toks[p - 1].text == "$"):
                if low in _UNIT_WORDS and (t.text == low or low == "l"):
                    one, many = _UNIT_WORDS[low]
                    t.text = one if toks[p].text == "1" else many
                    continue
                if low in ("percent", "dollars", "dollar") or (
                    low == "per" and [x.text.lower() for x in toks[i + 1 : i + 3]] == [" ", "cent"]
                ):
                    toks[p + 1].text = ""
                    if low in ("dollars", "dollar"):
                        toks[p].text = "$" + toks[p].text
                        t.text = ""
                    else:
                        t.text = "%"
                        if low == "per":
                            toks[i + 1].text = toks[i + 2].text = ""
                    continue
            before = toks[p].text.lower() if p >= 0 else ""
            after_joint = before in (",", "and")
            if low in _ADDITIVE:
                t.text = _case_like(t.text, "also")
            elif low in _EVERYWHERE:
                t.text = _case_like(t.text, _EVERYWHERE[low])
            elif low in _CAUSAL and low != "so" and p >= 0 and toks[p].kind in ("word", "prot") and not after_joint:
                t.text = _case_like(t.text, "therefore")  # an adverb inside a clause: "is thus 13"
            elif after_joint and (low in _CAUSAL or low == "however"):
                t.text = _case_like(t.text, "so" if low in _CAUSAL else "but")
                j = i + 1
                if j < n and toks[j].text == ",":  # ", however, we" -> ", but we"
                    toks[j].text = ""
        # drop emptied tokens and join the spaces they leave
        out: list[Tok] = []
        for t in toks:
            if not t.text:
                continue
            if t.kind == "space" and out and out[-1].kind == "space":
                keep = "\n" if "\n" in out[-1].text + t.text else " "
                out[-1] = Tok(keep, "space")
                continue
            out.append(t)
        return self._drop_openers(out)

    @staticmethod
    def _drop_hedge(toks: list[Tok], i: int) -> None:
        """Drop the hedge ``toks[i]`` with the punctuation that sets it off: "is clearly 5" -> "is 5", "x,
        clearly, y" -> "x y", "Clearly, the" -> "The"."""
        n = len(toks)
        t = toks[i]
        capital = t.text[:1].isupper()
        t.text = ""
        j = i + 1
        comma_after = j < n and toks[j].text == ","
        if comma_after:
            toks[j].text = ""
            j += 1
        k = i - 1
        opener = k >= 2 and toks[k - 2].text.lower() in _OPENER_WORDS | _COMMA_OPENERS  # "Now, clearly, we"
        if k >= 1 and toks[k].kind == "space" and toks[k - 1].text == "," and comma_after and not opener:
            toks[k - 1].text = ""  # "x, clearly, y" -> "x y"
        if j < n and toks[j].kind == "space":
            toks[j].text = "" if (i == 0 or toks[i - 1].kind == "space") else toks[j].text
        if capital:  # the hedge opened a sentence: so does the next word
            m = j
            while m < n and toks[m].kind == "space":
                m += 1
            if m < n and toks[m].kind == "word":
                toks[m].text = toks[m].text[:1].upper() + toks[m].text[1:]

    # -- 1. synonyms
    def _synonyms(self, toks: list[Tok], rng: random.Random, context: str = "") -> None:
        # A word whose group has a member the context (the question) uses is written as the question writes
        # it: the entities a question names are kept ("the red sofa", "Earth" after canonical lower-cased it),
        # and the choice among the group still carries nothing.
        asked = {w.lower() for w in _CONTEXT_WORD_RE.findall(context)} if context else set()
        # One draw per group and text, keyed by the group: which member is written does not depend on where the
        # group's words stand, nor on how many other words were drawn before them ("compare money and time" and
        # "compare time and money" draw the same words; a draw per word in text order would not).
        salt = rng.getrandbits(64).to_bytes(8, "little")
        drawn: dict[tuple[str, ...], str] = {}
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
                    fixed = [w for w in choices if w in asked] if asked else None
                    if fixed:
                        t.text = _case_like(t.text, fixed[0])
                        choices = None
                # (no draw at p_synonym=1: the number of draws would depend on which member was written)
                if choices and (self.p_synonym >= 1 or rng.random() < self.p_synonym):
                    if choices not in drawn:
                        key = hashlib.blake2b("\x1f".join(choices).encode(), key=salt, digest_size=8).digest()
                        drawn[choices] = choices[int.from_bytes(key, "little") % len(choices)]
                    t.text = _case_like(t.text, drawn[choices])
            clause_start = t.kind == "punct" and t.text in ".!?;:-*"

    # -- 2. comma lists
    def _lists(self, toks: list[Tok], rng: random.Random, asked: str = "") -> None:
        n, i = len(toks), 0
        while i < n:
            items, j = self._list_at(toks, i)
            if len(items) >= 3 or (len(items) == 2 and self._pair_ok(toks, items)):
                written = "".join(t.text for t in toks[items[0][0] : items[-1][1]]).lower()
                if asked and written in asked:  # the question's own wording (an option's text) stays as it is
                    i = j
                    continue
                if rng.random() < self.p_list:
                    # sorted first: the order drawn then depends on the seed alone, never on the order written
                    texts = sorted("".join(t.text for t in toks[a:b]) for a, b in items)
                    rng.shuffle(texts)
                    for (a, b), text in zip(items, texts):  # an item's text moves whole, into its first token
                        toks[a].text = text
                        for t in toks[a + 1 : b]:
                            t.text = ""
                i = j
            else:
                i += 1

    @staticmethod
    def _pair_ok(toks: list[Tok], items: list[tuple[int, int]]) -> bool:
        """Two items whose order carries nothing: after a word of _PAIR_BEFORE, both with a determiner or both
        without ("the red and the brown", "time and money"), and not verbs after "to" (not in _PAIR_BEFORE)."""
        b = items[0][0] - 1
        if b >= 0 and toks[b].kind == "space":
            b -= 1
        if b < 0 or toks[b].kind != "word" or toks[b].text.lower() not in _PAIR_BEFORE:
            return False
        (a1, b1), (a2, b2) = items
        return (b1 - a1) == (b2 - a2)

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

    # -- 4. sentence openers
    @staticmethod
    def _starts(toks: list[Tok]):
        """Index of each sentence's first word or protected span (after the text's start, a sentence end, a line
        break, and a list marker)."""
        start = True
        for k, t in enumerate(toks):
            if t.kind == "space":
                start = start or "\n" in t.text
            elif t.kind == "punct":
                if t.text in ".!?":
                    start = True
                elif t.text not in "-*+":  # a list marker keeps the start
                    start = False
            elif start:
                start = False
                yield k

    def _drop_openers(self, toks: list[Tok]) -> list[Tok]:
        """(Part of operation 0.) Fillers opening a sentence dropped with their comma ("Now, we" -> "We"), and the
        comma after an opening connective ("So, we" -> "So we"): before any draw, so that the writer's choice
        changes nothing that follows."""
        n = len(toks)
        for k in list(self._starts(toks)):
            first, capital = k, False
            while toks[first].kind == "word" and toks[first].text.lower() in _OPENER_WORDS:
                if not (first + 2 < n and toks[first + 1].text == "," and toks[first + 2].kind == "space"):
                    break
                capital = capital or toks[first].text[:1].isupper()
                toks[first].text = toks[first + 1].text = toks[first + 2].text = ""
                first += 3
            t = toks[first]
            if capital and t.kind == "word":
                t.text = t.text[:1].upper() + t.text[1:]
            if t.kind == "word" and t.text.lower() in _COMMA_OPENERS and first + 1 < n and toks[first + 1].text == ",":
                toks[first + 1].text = ""
        return [t for t in toks if t.text]

    def _openers(self, toks: list[Tok], rng: random.Random) -> list[Tok]:
        """With probability ``p_filler`` a filler drawn from OPENER_FILLERS before each sentence's first word (as
        tokens of its own: a later merge sees a sentence that opens with a common word)."""
        starts = set(self._starts(toks))
        out: list[Tok] = []
        for k, t in enumerate(toks):
            if k in starts and rng.random() < self.p_filler:
                filler = rng.choice(OPENER_FILLERS)
                opens = t.kind == "prot" or t.text[:1].isupper() or not out
                word = t.text.split(" ", 1)[0]
                if t.kind == "word" and word[:1].isupper() and self._common(word):
                    t.text = t.text[:1].lower() + t.text[1:]
                out += [Tok(filler if opens else filler.lower(), "word"), Tok(",", "punct"), Tok(" ", "space")]
            out.append(t)
        return out

    def _common(self, word: str) -> bool:
        """Whether a capitalised word opening a sentence is an ordinary word (lower-cased after a filler): one
        of the lexicon's words, not a name, "I" or an acronym."""
        low = word.lower()
        if low == "i" or (len(word) > 1 and word.isupper()):
            return False
        return low in FUNCTION_WORDS or low in self.synonyms or low in self.connectives or low in _OPENER_WORDS

    # -- 5. bullets
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
                lines.sort()  # (as for comma lists: the order drawn depends on the seed alone)
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
