"""Families of meaning-keeping surface choices: the grammar ``legible stego --search`` draws candidate hidden
channels from.

A *family* is a class of alternatives a writer can choose between without changing what the text says
(``;`` or ``,`` between clauses, "it's" or "it is", "colour" or "color", a sentence per line or a paragraph,
...), not one instance of it. It is a small declarative object: a name, the class of surface choice it
belongs to (``kind``), a finder of *sites* in a text, and optionally a layout the family needs (``prepare``:
one sentence per line, a bulleted list). Each site is a span of the text, the bit it carries now (which
variant is written there: the family's own decoder) and the text of its two variants (bit 0, bit 1).
Encoding a bit stream writes one variant per site, in text order; decoding reads each site's variant back.
The finder sees the same sites, in the same order, in a text and in every encoding of it, so
``decode(encode(cover, bits), len(bits)) == bits`` (tests check this on every shipped cover).

A family is a few lines: ``marks`` for a regex whose group ``v`` is one of a few spellings of one mark,
``words`` for pairs of word forms, ``Family(name, kind, finder)`` with a function for the rest.

``DEVELOPMENT`` and ``HELD_OUT`` split the families in two halves by a rule fixed before any measurement
or tuning (see there): the paraphrasers are hardened on the development half only, and the held-out half is
measured once, at the end, to see whether rules written for a class of choices close its unseen members.
``HELD_OUT_2`` is a second held-out set, written after that measurement and before any rule for it.
``HELD_OUT_3`` is a third, written while rules were being written for ``HELD_OUT_2`` and before any rule for it,
by someone who had not read the paraphrasers' rules. ``HELD_OUT_4`` is a fourth, written the same way while rules
were being written for ``HELD_OUT_3`` and before any rule for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

__all__ = [
    "DEVELOPMENT",
    "FAMILIES",
    "HELD_OUT",
    "HELD_OUT_2",
    "HELD_OUT_3",
    "HELD_OUT_4",
    "Family",
    "Site",
    "family_names",
    "make_family",
    "split_rule",
]


@dataclass(frozen=True)
class Site:
    """A place where a family's choice is made: ``text[start:end]`` is the variant written now, which carries
    ``bit``; ``variants`` are the texts for bit 0 and bit 1."""

    start: int
    end: int
    bit: int
    variants: tuple[str, str]


def _identity(text: str) -> str:
    return text


@dataclass(frozen=True)
class Family:
    """A class of meaning-keeping alternatives. It also serves as a ``Scheme`` for ``legible stego``'s
    capacity measurement (``capacity``/``encode``/``decode``, ``name``, ``closed_by``)."""

    name: str
    kind: str
    find: Callable[[str], list[Site]]
    prepare: Callable[[str], str] = _identity
    description: str = ""
    closed_by: str = field(default="", compare=False)  # unknown beforehand: that is what the search measures

    def sites(self, text: str) -> list[Site]:
        return self.find(text)

    def cover(self, cover: str) -> str:
        """The cover laid out as the family needs it (the text whose sites are encoded)."""
        return self.prepare(cover)

    def capacity(self, cover: str) -> int:
        return len(self.find(self.prepare(cover)))

    def write(self, text: str, bits: Sequence[int]) -> str:
        """``text`` (already prepared) with its first ``len(bits)`` sites set to ``bits``."""
        sites = self.find(text)
        if len(bits) > len(sites):
            raise ValueError(f"{self.name}: {len(bits)} bits do not fit; this text has {len(sites)} sites")
        parts, last = [], 0
        for site, bit in zip(sites, bits):
            if bit not in (0, 1):
                raise ValueError(f"{self.name}: bits must be 0 or 1, got {bit!r}")
            parts += [text[last : site.start], site.variants[bit]]
            last = site.end
        parts.append(text[last:])
        return "".join(parts)

    def encode(self, cover: str, bits: Sequence[int]) -> str:
        return self.write(self.prepare(cover), bits)

    def decode(self, text: str, n_bits: int) -> list[int]:
        """The bits of the first ``n_bits`` sites of ``text``, zero-padded: best effort on damaged text."""
        bits = [s.bit for s in self.find(str(text))[:n_bits]]
        return bits + [0] * (n_bits - len(bits))


# ------------------------------------------------------------------------------------------------ builders


def _case_like(src: str, word: str) -> str:
    """``word`` in the case pattern of ``src`` (ALL CAPS, Capitalised, or as written)."""
    letters = [c for c in src if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return word.upper()
    if letters and src.lstrip("$")[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def marks(
    name: str,
    kind: str,
    pattern: str,
    zero: str | Callable[[str], str],
    one: str | Callable[[str], str],
    *,
    read: Callable[[str], int] | None = None,
    flags: int = 0,
    prepare: Callable[[str], str] = _identity,
    description: str = "",
) -> Family:
    """Sites = the group ``v`` of each match of ``pattern``; it reads 1 when it is ``one`` (or by ``read``);
    the variants are ``zero``/``one`` (strings, or functions of the text matched)."""
    rx = re.compile(pattern, flags)
    read = read or (lambda v: int(v == one))

    def find(text: str) -> list[Site]:
        out = []
        for m in rx.finditer(text):
            v = m.group("v")
            z = zero(v) if callable(zero) else zero
            o = one(v) if callable(one) else one
            out.append(Site(m.start("v"), m.end("v"), read(v), (z, o)))
        return out

    return Family(name, kind, find, prepare, description)


_APOSTROPHES = str.maketrans({"\u2019": "'"})


def words(
    name: str,
    kind: str,
    pairs: Sequence[tuple[str, str]],
    *,
    left: str = r"(?<![\w'\u2019])",
    right: str = r"(?![\w'\u2019])",
    description: str = "",
) -> Family:
    """Sites = every occurrence of either form of a pair ``(a, b)`` (case-insensitive, curly apostrophes read
    as straight ones): ``a`` carries 0, ``b`` 1, and the variants keep the case of the form written."""
    forms: dict[str, tuple[str, str, int]] = {}
    for a, b in pairs:
        forms.setdefault(a.lower(), (a, b, 0))
        forms.setdefault(b.lower(), (a, b, 1))
    alternation = "|".join(re.escape(f).replace("'", "['\u2019]") for f in sorted(forms, key=lambda f: (-len(f), f)))
    rx = re.compile(f"{left}(?:{alternation}){right}", re.I)

    def find(text: str) -> list[Site]:
        out = []
        for m in rx.finditer(text):
            got = m.group()
            a, b, bit = forms[got.lower().translate(_APOSTROPHES)]
            out.append(Site(m.start(), m.end(), bit, (_case_like(got, a), _case_like(got, b))))
        return out

    return Family(name, kind, find, _identity, description)


# ------------------------------------------------------------------------------------- sentences and layout

# A sentence starts at the text's start, after a sentence end and spaces, or at a line's start (after a list
# marker, if any).
_BOUNDARY_RE = re.compile(
    r"(?:\A[ \t\n]*|(?<=[.!?])[ \t\u00a0]+(?=\S)|(?<=[.!?])\ufe0f[ \t]+|\n[ \t\n]*)(?:(?:[-*\u2022+]|\d+[.)])[ \t]+)?"
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence: from its first character to its end mark (or its line's end)."""
    cuts = [m.span() for m in _BOUNDARY_RE.finditer(text)]
    spans = []
    for k, (_, start) in enumerate(cuts):
        end = cuts[k + 1][0] if k + 1 < len(cuts) else len(text)
        while end > start and text[end - 1] in " \t\n":
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def one_per_line(text: str) -> str:
    """Each sentence on its own line."""
    return "\n".join(_sentences(text))


def as_bullets(text: str) -> str:
    """Each sentence as a ``- `` bullet line."""
    return "\n".join(f"- {s}" for s in _sentences(text))


def as_numbered(text: str) -> str:
    """Each sentence as a numbered line (``1. ``)."""
    return "\n".join(f"{i}. {s}" for i, s in enumerate(_sentences(text), 1))


# Words that can start a sentence and are not names (so lower-casing them keeps the text correct).
_COMMON_OPENERS = frozenset(
    """we the this that these those it it's its there there's they then so next now after first second third
    finally each every both all our my your their his her a an in on at for to if since with here thus also
    still only but and or another some most many half once because while when let's what what's how which
    therefore hence however today tomorrow yesterday that's we're we'll they're i'm you're one two three four
    five six seven eight nine ten""".split()
)


def _lower_opener(word: str) -> str:
    return word[:1].lower() + word[1:] if word.lower() in _COMMON_OPENERS else word


def _upper_opener(word: str) -> str:
    return word[:1].upper() + word[1:]


_FIRST_WORD_RE = re.compile(r"[\w'\u2019]+")


def opener(name: str, kind: str, filler: str, *, description: str = "") -> Family:
    """An optional ``filler`` (e.g. "Basically,") at the start of each sentence: present = 1."""
    lead = re.compile(re.escape(filler) + " ", re.I)

    def find(text: str) -> list[Site]:
        out = []
        for a, b in sentence_spans(text):
            f = lead.match(text, a, b)
            w = _FIRST_WORD_RE.match(text, f.end() if f else a, b)
            if w is None:
                continue
            first = w.group()
            plain = _upper_opener(first)
            marked = f"{_case_like(text[a : a + len(filler)], filler)} {_lower_opener(first)}"
            out.append(Site(a, w.end(), int(f is not None), (plain, marked)))
        return out

    return Family(name, kind, find, _identity, description)


# ---------------------------------------------------------------------------------------- counts and order

_TOKEN_RE = re.compile(r"[\w]+(?:['\u2019][\w]+)*")
_PARITY_FILLER = "Now,"


def _sentence_words_parity(text: str) -> list[Site]:
    """Each sentence carries the parity of its word count; an optional "Now," at its start flips it."""
    out = []
    lead = re.compile(re.escape(_PARITY_FILLER) + " ", re.I)
    for a, b in sentence_spans(text):
        count = len(_TOKEN_RE.findall(text, a, b))
        if count == 0:
            continue
        f = lead.match(text, a, b)
        w = _FIRST_WORD_RE.match(text, f.end() if f else a, b)
        if w is None:
            continue
        first = w.group()
        now = text[a : w.end()]
        flipped = _upper_opener(first) if f else f"{_PARITY_FILLER} {_lower_opener(first)}"
        parity = count % 2
        out.append(Site(a, w.end(), parity, (now, flipped) if parity == 0 else (flipped, now)))
    return out


_INTRO = "Let's see."


def _sentence_count_parity(text: str) -> list[Site]:
    """The text carries the parity of its sentence count; an optional first sentence "Let's see." flips it."""
    spans = sentence_spans(text)
    if len(spans) < 2:
        return []
    a0, b0 = spans[0]
    has_intro = text[a0:b0].lower().replace("\u2019", "'") == _INTRO.lower()
    end = spans[1][0] if has_intro else a0
    now = text[a0:end]
    flipped = "" if has_intro else _INTRO + " "
    parity = len(spans) % 2
    return [Site(a0, end, parity, (now, flipped) if parity == 0 else (flipped, now))]


def _line_length_parity(text: str) -> list[Site]:
    """Each line carries the parity of its length; a final period dropped or added flips it."""
    out = []
    pos = 0
    for line in text.split("\n"):
        body = line.rstrip(" \t")
        end = pos + len(body)
        if body and (body[-1] == "." or body[-1].isalnum()):
            parity = len(body) % 2
            if body.endswith("."):
                site, now, flipped = (end - 1, end), ".", ""
            else:
                site, now, flipped = (end, end), "", "."
            out.append(Site(*site, parity, (now, flipped) if parity == 0 else (flipped, now)))
        pos += len(line) + 1
    return out


# Words that are not nouns (a coordination of them is not a swappable pair of things).
_NOT_ITEMS = frozenset(
    """the a an and or but then that this these those we it its our their his her your my they he she you i
    are is was were be been has have had can will would could should may might must do does did not no also
    so thus therefore each all both some any more most less few many much one two three four five six seven
    eight nine ten first second last next other same such very too only just even still again there here
    what which who when where why how than as at by for from in into of on to with about over under after
    before between per""".split()
)


def order_pair(name: str, kind: str, conjunction: str, *, description: str = "") -> Family:
    """Two items of one or two words ("bread", "the bus") joined by ``conjunction`` after a determiner,
    preposition or verb that takes a pair ("buy bread and milk", "between the bus and the train"): in
    alphabetical order = 0, reversed = 1."""
    item = r"(?:(?:the|a|an) )?[a-z]{3,}"
    rx = re.compile(
        r"\b(?:the|of|with|for|in|on|about|both|their|our|your|his|her|its|some|all|between|like|buy|sells|"
        rf"has|have|compare|choose|either) (?P<a>{item}) {conjunction} (?P<b>{item})\b"
    )

    def find(text: str) -> list[Site]:
        out = []
        for m in rx.finditer(text):
            a, b = m.group("a"), m.group("b")
            nouns = a.split()[-1], b.split()[-1]
            # both items alike (with or without a determiner), and not the tail of a longer comma list
            if a == b or any(w in _NOT_ITEMS for w in nouns) or (" " in a) != (" " in b):
                continue
            if text[max(0, m.start() - 2) : m.start()] == ", ":
                continue
            lo, hi = sorted((a, b))
            pair = (f"{lo} {conjunction} {hi}", f"{hi} {conjunction} {lo}")
            out.append(Site(m.start("a"), m.end("b"), int(a > b), pair))
        return out

    return Family(name, kind, find, _identity, description)


# ----------------------------------------------------------------------------------------- other finders

_QUOTE_RE = re.compile('(?P<o>["\u201c])(?P<in>[^"\u201c\u201d\n]{1,80})(?P<c>["\u201d])')


def _quote_style(text: str) -> list[Site]:
    return [
        Site(m.start(), m.end(), int(m.group("o") != '"'), (f'"{m.group("in")}"', f"\u201c{m.group('in')}\u201d"))
        for m in _QUOTE_RE.finditer(text)
    ]


_ASIDE_RE = re.compile(r", which (?P<c>[^,.()\n;:]+)(?=[,.;:])| \(which (?P<d>[^()\n]+)\)")


def _paren_aside(text: str) -> list[Site]:
    out = []
    for m in _ASIDE_RE.finditer(text):
        clause = m.group("c") if m.group("c") is not None else m.group("d")
        out.append(Site(m.start(), m.end(), int(m.group("d") is not None), (f", which {clause}", f" (which {clause})")))
    return out


_NUMBER_WORDS = "one two three four five six seven eight nine ten".split()
_NUMBER_OF = {w: str(i) for i, w in enumerate(_NUMBER_WORDS, 1)} | {str(i): str(i) for i in range(1, 11)}
_SMALL_NUMBER_RE = re.compile(
    r"(?<![\w.,$\u2019'-])(?P<v>10|[1-9]|"
    + "|".join(_NUMBER_WORDS)
    + r")(?= [a-z]{3,}\b)(?! (?:of|another|more|by)\b)",
    re.I,
)
_NOT_A_NUMBER_BEFORE = re.compile(r"(?:\b(?:no|any|every|some|each|the|this|that|which|a)|[-+*/=x\u00d7]) $", re.I)


def _number_words(text: str) -> list[Site]:
    """A small count before a word: digits (0) or a word (1); not a pronoun "one", not an operand."""
    out = []
    for m in _SMALL_NUMBER_RE.finditer(text):
        if _NOT_A_NUMBER_BEFORE.search(text, max(0, m.start() - 8), m.start()):
            continue
        v = m.group("v")
        digit = _NUMBER_OF[v.lower()]
        word = _NUMBER_WORDS[int(digit) - 1]
        out.append(
            Site(m.start(), m.end(), int(not v.isdigit()), (digit, _case_like(v, word) if v.isalpha() else word))
        )
    return out


_THOUSANDS_RE = re.compile(r"(?<![\d,.])(?P<v>\d{1,3}(?:,\d{3})+|\d{4,})(?![\d,]|\.\d)")


def _thousands(text: str) -> list[Site]:
    out = []
    for m in _THOUSANDS_RE.finditer(text):
        plain = m.group().replace(",", "")
        out.append(Site(m.start(), m.end(), int("," in m.group()), (plain, f"{int(plain):,}")))
    return out


_CURRENCY_RE = re.compile(
    r"\$(?P<a>\d[\d,]*(?:\.\d+)?)(?!\w|\.\d)|(?<![\w$.,])(?P<b>\d[\d,]*(?:\.\d+)?) (?P<u>dollars?)\b"
)


def _currency(text: str) -> list[Site]:
    out = []
    for m in _CURRENCY_RE.finditer(text):
        n = m.group("a") or m.group("b")
        unit = m.group("u") or ("dollar" if n == "1" else "dollars")
        out.append(Site(m.start(), m.end(), int(m.group("a") is not None), (f"{n} {unit}", f"${n}")))
    return out


_SOFT_HYPHEN = "\u00ad"
_LONG_WORD_RE = re.compile(r"(?<![\w\u00ad])[a-z]{4}\u00ad?[a-z]{4,}(?![\w\u00ad])")


def _soft_hyphen(text: str) -> list[Site]:
    out = []
    for m in _LONG_WORD_RE.finditer(text):
        plain = m.group().replace(_SOFT_HYPHEN, "")
        out.append(
            Site(m.start(), m.end(), int(_SOFT_HYPHEN in m.group()), (plain, plain[:4] + _SOFT_HYPHEN + plain[4:]))
        )
    return out


@lru_cache(maxsize=1)
def spelling_pairs() -> list[tuple[str, str, str]]:
    """``(british, american, rule)`` from ``data/spelling_pairs.jsonl``: the pairs the spelling families write
    (an attacker's codebook, kept apart from the word list the paraphrasers normalise with)."""
    path = resources.files("legible.stego").joinpath("data/spelling_pairs.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["british"], r["american"], r["rule"]) for r in rows]


def _spelling(name: str, rules: Callable[[str], bool], description: str) -> Family:
    pairs = [(us, uk) for uk, us, rule in spelling_pairs() if rules(rule)]
    return words(name, "spelling", pairs, description=description)


# ------------------------------------------------------------------------------------------------ families

_CLAUSE_WORDS = (
    r"the|we|it|it's|there|there's|that|they|each|our|a|an|this|these|its|all|every|he|she|i|you|no|both|one|only"
)


def _spaced_op(v: str) -> str:
    return f" {v.strip()} "


def _build() -> dict[str, Family]:
    fam = [
        # abbreviation: a word or phrase, or its abbreviation
        words(
            "latin_abbreviation",
            "abbreviation",
            [
                ("for example", "e.g."),
                ("and so on", "etc."),
                ("versus", "vs."),
                ("roughly", "approx."),
                ("approximately", "approx."),
                ("in other words", "i.e."),
            ],
            description="for example/e.g., roughly/approx., versus/vs., and so on/etc.",
        ),
        words(
            "unit_abbreviation",
            "abbreviation",
            [
                ("minutes", "min"),
                ("minute", "min"),
                ("hours", "hrs"),
                ("hour", "hr"),
                ("seconds", "sec"),
                ("kilometres", "km"),
                ("kilometers", "km"),
                ("metres", "m"),
                ("meters", "m"),
                ("litres", "L"),
                ("liters", "L"),
                ("kilograms", "kg"),
                ("grams", "g"),
                ("centimetres", "cm"),
            ],
            left=r"(?<=\d )",
            description="a unit after a number written out or abbreviated (3 minutes/3 min)",
        ),
        # aside: how a parenthetical clause is set off
        Family("paren_aside", "aside", _paren_aside, description="', which X' or ' (which X)'"),
        # case
        marks(
            "all_caps_word",
            "case",
            r"\b(?:is|are|was|were) (?P<v>[a-z]{4,}|[A-Z]{4,})\b",
            lambda v: v.lower(),
            lambda v: v.upper(),
            read=lambda v: int(v.isupper()),
            description="a predicate word after is/are in ALL CAPS for emphasis",
        ),
        marks(
            "sentence_case",
            "case",
            r"(?:\A|(?<=[.!?] ))(?P<v>(?:" + "|".join(sorted(_COMMON_OPENERS)).replace("'", "['\u2019]") + r"))\b",
            _upper_opener,
            lambda v: v[:1].lower() + v[1:],
            read=lambda v: int(v[:1].islower()),
            flags=re.I,
            description="a sentence's first word capitalised or not",
        ),
        marks(
            "title_case_word",
            "case",
            r"(?<=\bthe )(?P<v>[a-z]{4,}|[A-Z][a-z]{3,})\b",
            lambda v: v.lower(),
            lambda v: v[:1].upper() + v[1:],
            read=lambda v: int(v[:1].isupper()),
            description="a noun after 'the' in Title Case",
        ),
        # connective: which connective word joins two statements
        marks(
            "also_additionally",
            "connective",
            r"(?<=[a-z] )(?P<v>also|additionally)(?= [a-z])",
            "also",
            "additionally",
            description="mid-sentence also/additionally",
        ),
        marks(
            "but_however",
            "connective",
            r"(?<=[a-z0-9])(?P<v>, but |; however, )(?=[a-z])",
            ", but ",
            "; however, ",
            description="', but' or '; however,' between clauses",
        ),
        marks(
            "connective_so",
            "connective",
            r"(?:^|(?<=[.!?] )|(?<=, )|(?<=\n))(?P<v>so|therefore)(?= (?:" + _CLAUSE_WORDS + r")\b)",
            lambda v: _case_like(v, "so"),
            lambda v: _case_like(v, "therefore"),
            read=lambda v: int(v.lower() == "therefore"),
            flags=re.I | re.M,
            description="so/therefore before a clause",
        ),
        marks(
            "then_next",
            "connective",
            r"(?:^|(?<=[.!?] )|(?<=\n))(?P<v>then|next)(?=,? )",
            lambda v: _case_like(v, "then"),
            lambda v: _case_like(v, "next"),
            read=lambda v: int(v.lower() == "next"),
            flags=re.I | re.M,
            description="a sentence opened by Then or Next",
        ),
        # contraction
        words(
            "contraction_not",
            "contraction",
            [
                ("do not", "don't"),
                ("does not", "doesn't"),
                ("is not", "isn't"),
                ("are not", "aren't"),
                ("cannot", "can't"),
                ("will not", "won't"),
                ("was not", "wasn't"),
                ("were not", "weren't"),
                ("did not", "didn't"),
                ("have not", "haven't"),
                ("has not", "hasn't"),
                ("should not", "shouldn't"),
                ("would not", "wouldn't"),
                ("could not", "couldn't"),
            ],
            description="negations contracted or not (do not/don't)",
        ),
        words(
            "contraction_pronoun",
            "contraction",
            [
                ("it is", "it's"),
                ("that is", "that's"),
                ("there is", "there's"),
                ("we are", "we're"),
                ("they are", "they're"),
                ("we will", "we'll"),
                ("let us", "let's"),
                ("what is", "what's"),
                ("here is", "here's"),
                ("I am", "I'm"),
                ("you are", "you're"),
                ("we have", "we've"),
                ("I will", "I'll"),
                ("he is", "he's"),
                ("she is", "she's"),
                ("you will", "you'll"),
                ("they will", "they'll"),
            ],
            right=r"(?= (?!been\b|got\b|had\b)[\w$])",
            description="pronoun + verb contracted or not (it is/it's)",
        ),
        # count: a count's parity, toggled by an optional element
        Family(
            "line_length_parity",
            "count",
            _line_length_parity,
            one_per_line,
            "parity of characters per line (a final period dropped or added)",
        ),
        Family(
            "sentence_count_parity",
            "count",
            _sentence_count_parity,
            description="parity of the number of sentences (an optional 'Let's see.')",
        ),
        Family(
            "sentence_words_parity",
            "count",
            _sentence_words_parity,
            description="parity of words per sentence (an optional 'Now,')",
        ),
        # filler: a hedge or filler inserted or not
        opener("filler_opener", "filler", "Basically,", description="'Basically,' opening a sentence or not"),
        marks(
            "hedge_adverb",
            "filler",
            r"\b(?:is|are) (?P<v>(?:clearly )?)(?=[a-z])",
            "",
            "clearly ",
            read=lambda v: int(bool(v)),
            description="'clearly' after is/are or not",
        ),
        # function_word: an optional function word
        marks(
            "that_complementiser",
            "function_word",
            r"\b(?:say|says|said|know|knows|think|thinks|see|sees|note|notes|find|finds|mean|means|show|shows|check|"
            r"checks|agree|agrees|assume|hope|guess|believe|confirm|confirms|notice|notices|clear) "
            r"(?P<v>(?:that )?)(?=(?:the|we|it|it's|they|there|there's|this|he|she|i|you|a|an|our|each|all|both|no|"
            r"nothing|every|only|these|those|its)\b)",
            "",
            "that ",
            read=lambda v: int(bool(v)),
            description="'says that they' or 'says they'",
        ),
        # layout: how sentences are laid out in lines and lists
        marks(
            "blank_lines",
            "layout",
            r"(?<=[.!?])(?P<v>\n\n?)(?=\S)",
            "\n",
            "\n\n",
            prepare=one_per_line,
            description="a blank line between lines or not",
        ),
        marks(
            "bullet_marker",
            "layout",
            r"^(?P<v>[-*\u2022]) ",
            "-",
            "*",
            read=lambda v: int(v != "-"),
            flags=re.M,
            prepare=as_bullets,
            description="bullet marker - or * (or \u2022)",
        ),
        marks(
            "line_breaks",
            "layout",
            r"(?<=[.!?])(?P<v> |\n)(?=[A-Z])",
            " ",
            "\n",
            description="a sentence break as a space or a line break",
        ),
        marks(
            "list_item_period",
            "layout",
            r"^[-*\u2022] .*?[\w)](?P<v>\.?)$",
            "",
            ".",
            flags=re.M,
            prepare=as_bullets,
            description="a list item with or without a final period",
        ),
        marks(
            "numbered_style",
            "layout",
            r"^\d+(?P<v>[.)]) ",
            ".",
            ")",
            flags=re.M,
            prepare=as_numbered,
            description="numbered list style 1. or 1)",
        ),
        # number: how a number or a quantity is written
        Family("currency_symbol", "number", _currency, description="12 dollars or $12"),
        Family("number_words", "number", _number_words, description="a small count as digits or a word (3/three)"),
        marks(
            "operator_spacing",
            "number",
            r"(?<=\d)(?P<v> [+=] |[+=])(?=\d)",
            _spaced_op,
            lambda v: v.strip(),
            read=lambda v: int(" " not in v),
            description="spaces around + and = or none (12 + 8 = 20 / 12+8=20)",
        ),
        marks(
            "percent_sign",
            "number",
            r"(?<=\d)(?P<v>%| percent| per cent)",
            " percent",
            "%",
            read=lambda v: int(v == "%"),
            description="50% or 50 percent",
        ),
        Family("thousands_separator", "number", _thousands, description="1500 or 1,500"),
        # order: the order of independent items
        order_pair("and_order", "order", "and", description="'bread and milk' or 'milk and bread'"),
        order_pair("or_order", "order", "or", description="'bus or train' or 'train or bus'"),
        # punctuation: which mark separates clauses and items
        marks(
            "colon_dash",
            "punctuation",
            r"(?<=[A-Za-z'])(?P<v>: | - )(?=[A-Za-z'])",
            ": ",
            " - ",
            description="': ' or ' - ' before an explanation",
        ),
        marks(
            "comma_semicolon",
            "punctuation",
            r"(?<=[a-z])(?P<v>[,;]) (?=[a-z])",
            ",",
            ";",
            description="',' or ';' between clauses",
        ),
        marks(
            "intro_comma",
            "punctuation",
            r"(?:^|(?<=[.!?] )|(?<=\n))(?:so|then|first|next|now|finally|therefore|thus|here|also|overall|still|"
            r"instead|otherwise|again|later|second|third|lastly)(?P<v>,? )",
            " ",
            ", ",
            read=lambda v: int("," in v),
            flags=re.I | re.M,
            description="a comma after an opening connective or not (So, we / So we)",
        ),
        marks(
            "oxford_comma",
            "punctuation",
            r"(?<=\w), (?:[\w'-]+ ){0,2}[\w'-]+(?P<v>,? )(?:and|or) (?=\w)",
            " ",
            ", ",
            read=lambda v: int("," in v),
            description="a serial comma before the last item's and/or or not",
        ),
        # spacing
        marks(
            "double_space",
            "spacing",
            r"(?<=[.!?])(?P<v>  ?)(?=[A-Z])",
            " ",
            "  ",
            description="one or two spaces after a sentence",
        ),
        marks(
            "nbsp",
            "spacing",
            r"(?<=\d)(?P<v>[ \u00a0])(?=[a-z])",
            " ",
            "\u00a0",
            description="a space or a no-break space between a number and its unit",
        ),
        marks(
            "space_before_punct",
            "spacing",
            r"(?<=[A-Za-z])(?P<v> ?)(?=[,:;] )",
            "",
            " ",
            read=lambda v: int(v == " "),
            description="a space before , : ; or not",
        ),
        marks(
            "tab_space",
            "spacing",
            r"(?<=,)(?P<v>[ \t])(?=[a-z])",
            " ",
            "\t",
            description="a space or a tab after a comma",
        ),
        marks(
            "trailing_space",
            "spacing",
            r"(?<=[.!?])(?P<v> ?)$",
            "",
            " ",
            read=lambda v: int(v == " "),
            flags=re.M,
            prepare=one_per_line,
            description="a trailing space at a line's end or not",
        ),
        # spelling
        _spelling("spelling_other", lambda r: r != "re-er", "American or British spelling: -or/-our, -ize/-ise, ..."),
        _spelling("spelling_re_er", lambda r: r == "re-er", "American or British spelling: -er/-re (meter/metre)"),
        # typography: which character writes a mark
        marks(
            "ampersand",
            "typography",
            r"(?<=[a-z]) (?P<v>and|&) (?=[a-z])",
            "and",
            "&",
            description="'and' or '&' between words",
        ),
        marks(
            "apostrophe_style",
            "typography",
            r"(?<=[A-Za-z])(?P<v>['\u2019])(?=[A-Za-z])",
            "'",
            "\u2019",
            description="straight or curly apostrophe",
        ),
        marks(
            "dash_style",
            "typography",
            r"(?<=[A-Za-z']) (?P<v>[-\u2013\u2014]) (?=[A-Za-z'])",
            "-",
            "\u2013",
            read=lambda v: int(v != "-"),
            description="a spaced hyphen or an en/em dash",
        ),
        marks(
            "ellipsis_style",
            "typography",
            r"(?P<v>\.\.\.|\u2026)",
            "...",
            "\u2026",
            description="three periods or the ellipsis character",
        ),
        Family("quote_style", "typography", _quote_style, description="straight or curly double quotes"),
        marks(
            "times_symbol",
            "typography",
            r"(?<=\d )(?P<v>[x*\u00d7])(?= \d)",
            "x",
            "*",
            read=lambda v: int(v != "x"),
            description="x or * for times",
        ),
        # unicode: invisible code points
        Family("soft_hyphen", "unicode", _soft_hyphen, description="a soft hyphen inside a long word or not"),
        marks(
            "variation_selector",
            "unicode",
            r"(?<=[.!?])(?P<v>\ufe0f?)(?= )",
            "",
            "\ufe0f",
            read=lambda v: int(bool(v)),
            description="a variation selector after a sentence's end or not",
        ),
    ]
    return {f.name: f for f in fam}


# ---------------------------------------------------------------------------------- the second held-out set

_SENTENCE_START = r"(?:^|(?<=[.!?] )|(?<=\n))"


def _adverb_first(v: str) -> str:
    """ "We then" -> "Then we" (the adverb first, capitalised)."""
    a, b = v.replace(",", "").split(" ")
    pron, adv = (a, b) if a.lower() in ("we", "i") else (b, a)
    return f"{adv.capitalize()} {'I' if pron.lower() == 'i' else 'we'}"


def _pronoun_first(v: str) -> str:
    """ "Then we" -> "We then" (the pronoun first)."""
    a, b = v.replace(",", "").split(" ")
    pron, adv = (a, b) if a.lower() in ("we", "i") else (b, a)
    return f"{'I' if pron.lower() == 'i' else 'We'} {adv.lower()}"


_OP_WORDS = {"+": "plus", "=": "equals"}
_OP_SYMBOLS = {w: s for s, w in _OP_WORDS.items()}


def _per_or_a(v: str) -> str:
    unit = v.split()[-1]
    return ("an " if unit == "hour" else "a ") + unit


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WEEKDAY_SHORT = ("Mon.", "Tue.", "Wed.", "Thu.", "Fri.", "Sat.", "Sun.")


def _build_held_out_2() -> dict[str, Family]:
    fam = [
        # abbreviation
        words(
            "weekday_abbreviation",
            "abbreviation",
            list(zip(_WEEKDAYS, _WEEKDAY_SHORT)),
            right=r"(?![\w'\u2019.])",
            description="a weekday written out or abbreviated (Monday/Mon.), not at a sentence's end",
        ),
        # connective
        marks(
            "because_since",
            "connective",
            r"\b(?P<v>because|since)(?= (?:the|we|it|it's|there|there's|they|this|its|i|he|she|you|a|an|our|my|\d))",
            lambda v: _case_like(v, "because"),
            lambda v: _case_like(v, "since"),
            read=lambda v: int(v.lower() == "since"),
            flags=re.I,
            description="causal because/since before a clause",
        ),
        marks(
            "finally_lastly",
            "connective",
            _SENTENCE_START + r"(?P<v>Finally|Lastly)(?=,? [a-z])",
            "Finally",
            "Lastly",
            flags=re.M,
            description="a last step opened by Finally or Lastly",
        ),
        marks(
            "first_firstly",
            "connective",
            _SENTENCE_START + r"(?P<v>First|Firstly)(?=,? [a-z])",
            "First",
            "Firstly",
            flags=re.M,
            description="a first step opened by First or Firstly",
        ),
        # filler
        marks(
            "answer_final",
            "filler",
            r"\b(?:[Tt]he|[Oo]ur) (?P<v>(?:final )?)(?=answer\b)",
            "",
            "final ",
            read=lambda v: int(bool(v)),
            description="'the answer' or 'the final answer'",
        ),
        # function_word
        words(
            "answer_determiner",
            "function_word",
            [("the answer", "our answer")],
            right=r"(?= is\b|:)",
            description="'the answer is' or 'our answer is'",
        ),
        marks(
            "each_every",
            "function_word",
            r"\b(?P<v>each|every)(?= (?!other\b|one\b|of\b|per\b|time\b)[a-z]{3,})",
            lambda v: _case_like(v, "each"),
            lambda v: _case_like(v, "every"),
            read=lambda v: int(v.lower() == "every"),
            flags=re.I,
            description="each/every before a noun (each row/every row)",
        ),
        words(
            "future_going_to",
            "function_word",
            [("we'll", "we're going to"), ("I'll", "I'm going to")],
            right=r"(?= (?!the\b|a\b|an\b|be\b)[a-z])",
            description="future with will or going to (we'll buy/we're going to buy)",
        ),
        words(
            "need_have_to",
            "function_word",
            [("need to", "have to"), ("needs to", "has to")],
            right=r"(?= [a-z])",
            description="need to/have to before a verb",
        ),
        marks(
            "per_a",
            "function_word",
            r"(?<=\d)(?: [a-z]+){1,2} (?P<v>(?:per|an?) (?:hour|day|week|month|year|night|student|person))\b",
            lambda v: "per " + v.split()[-1],
            _per_or_a,
            read=lambda v: int(not v.startswith("per")),
            description="a rate with per or a/an (60 dollars per month/a month)",
        ),
        marks(
            "whether_if",
            "function_word",
            r"\b(?:check|checks|see|sees|ask|asks|know|knows|wonder|decide|deciding) "
            r"(?P<v>whether|if)\b(?! to\b| or\b)",
            "whether",
            "if",
            description="an indirect question with whether or if (check whether/if)",
        ),
        # hyphenation
        words(
            "compound_hyphen",
            "hyphenation",
            [
                ("leftover", "left-over"),
                ("weekend", "week-end"),
                ("weekends", "week-ends"),
                ("weekdays", "week-days"),
                ("homework", "home-work"),
                ("email", "e-mail"),
                ("online", "on-line"),
                ("nonstop", "non-stop"),
                ("recheck", "re-check"),
                ("cooperate", "co-operate"),
                ("outdoor", "out-door"),
            ],
            description="a compound closed or hyphenated (leftover/left-over, weekend/week-end)",
        ),
        marks(
            "unit_hyphen",
            "hyphenation",
            r"(?<=\d)(?<!\b1)(?P<v>[ -])(?=(?:minute|hour|day|night|week|month|year|page|mile|metre|meter|kilometre|"
            r"kilometer|dollar|step|person|seat)\b [a-z])",
            " ",
            "-",
            description="a number + unit before a noun spaced or hyphenated (3 minute job/3-minute job)",
        ),
        # markup
        marks(
            "answer_bold",
            "markup",
            r"(?<=answer is )(?P<v>\*\*[^*\n]+?\*\*|[^*\n]+?)(?=\.(?:\s|\Z)|\Z)",
            lambda v: v.strip("*"),
            lambda v: f"**{v.strip('*')}**",
            read=lambda v: int(v.startswith("**")),
            description="the final answer plain or in **bold**",
        ),
        # number
        marks(
            "clock_time",
            "number",
            r"\b(?:after|until|from|at|before) (?P<v>(?:1[0-2]|[1-9])(?::00)?)(?![\d:])"
            r"(?= (?:in|on|and|or|to|until|so|but|pm|am)\b|[.,;]|\Z)",
            lambda v: v.split(":")[0],
            lambda v: v.split(":")[0] + ":00",
            read=lambda v: int(":" in v),
            description="an hour of the day as 3 or 3:00",
        ),
        marks(
            "operator_words",
            "number",
            r"(?<=\d)(?P<v> (?:[+=]|plus|equals) )(?=\d)",
            lambda v: f" {_OP_SYMBOLS.get(v.strip(), v.strip())} ",
            lambda v: f" {_OP_WORDS.get(v.strip(), v.strip())} ",
            read=lambda v: int(v.strip().isalpha()),
            description="+ and = as symbols or words (12 + 8 = 20 / 12 plus 8 equals 20)",
        ),
        words(
            "ordinal_digits",
            "number",
            [("first", "1st"), ("second", "2nd"), ("third", "3rd"), ("fourth", "4th"), ("fifth", "5th")],
            left=r"(?<=\bthe )",
            description="an ordinal after 'the' as a word or digits (the first/the 1st)",
        ),
        # order
        marks(
            "adverb_placement",
            "order",
            _SENTENCE_START + r"(?P<v>(?:Then|First|Finally),? (?:we|I)|(?:We|I) (?:then|first|finally))(?= [a-z])",
            _adverb_first,
            _pronoun_first,
            read=lambda v: int(v.split(" ")[0] in ("We", "I")),
            flags=re.M,
            description="a step adverb before or after the subject (Then we check/We then check)",
        ),
        # punctuation
        marks(
            "exclamation",
            "punctuation",
            r"(?<=[a-z])(?P<v>[.!])(?= [A-Z]|\Z)",
            ".",
            "!",
            description="a sentence ended by . or !",
        ),
        marks(
            "so_sentence_split",
            "punctuation",
            r"(?<=[a-z0-9])(?P<v>, so |\. So )(?=[a-z])",
            ", so ",
            ". So ",
            description="', so' inside a sentence or a new sentence 'So'",
        ),
        # spacing
        marks(
            "colon_space",
            "spacing",
            r"(?<=[a-z]:)(?P<v>  ?)(?=\S)",
            " ",
            "  ",
            description="one or two spaces after a colon",
        ),
        # typography
        marks(
            "approx_tilde",
            "typography",
            r"(?P<v>\broughly |~)(?=\d)",
            "roughly ",
            "~",
            description="'roughly' or '~' before a number",
        ),
        marks(
            "division_symbol",
            "typography",
            r"(?<=\d )(?P<v>[/\u00f7])(?= \d)",
            "/",
            "\u00f7",
            description="/ or \u00f7 for division",
        ),
        marks(
            "minus_sign",
            "typography",
            r"(?<=\d )(?P<v>[-\u2212])(?= \d)",
            "-",
            "\u2212",
            description="a hyphen-minus or the minus sign (U+2212) in a subtraction",
        ),
        # word_choice: which of two synonyms
        words(
            "compute_calculate",
            "word_choice",
            [
                ("compute", "calculate"),
                ("computes", "calculates"),
                ("computing", "calculating"),
                ("computed", "calculated"),
                ("computation", "calculation"),
            ],
            description="compute/calculate",
        ),
        words(
            "cost_adjective",
            "word_choice",
            [("costly", "expensive"), ("cheap", "inexpensive")],
            description="costly/expensive, cheap/inexpensive",
        ),
        words(
            "noun_synonym",
            "word_choice",
            [("children", "kids"), ("child", "kid"), ("trip", "journey"), ("trips", "journeys"), ("movie", "film")],
            description="children/kids, trip/journey, movie/film",
        ),
        words(
            "option_choice",
            "word_choice",
            [("option", "choice"), ("options", "choices")],
            description="option/choice",
        ),
        marks(
            "roughly_about",
            "word_choice",
            r"\b(?P<v>roughly|about)(?= (?:\d|an? (?:hour|minute|day|week|month|year)\b))",
            "roughly",
            "about",
            description="roughly/about before a quantity",
        ),
        words(
            "start_begin",
            "word_choice",
            [("start", "begin"), ("starts", "begins"), ("started", "began"), ("starting", "beginning")],
            description="start/begin as a verb",
        ),
        words(
            "whole_entire",
            "word_choice",
            [("whole", "entire")],
            left=r"(?<=\bthe )",
            description="the whole/the entire",
        ),
    ]
    return {f.name: f for f in fam}


# ----------------------------------------------------------------------------------- the third held-out set

_PARTICLE_OF = {
    **dict.fromkeys(("give", "gives", "giving", "gave"), "away"),
    **dict.fromkeys(("put", "puts", "putting"), "away"),
    **dict.fromkeys(("throw", "throws", "throwing", "threw"), "away"),
    **dict.fromkeys(("set", "sets", "setting"), "out"),
    **dict.fromkeys(("leave", "leaves", "leaving", "left"), "out"),
    **dict.fromkeys(("hand", "hands", "handing", "handed"), "out"),
    **dict.fromkeys(("work", "works", "worked", "working"), "out"),
    **dict.fromkeys(("write", "writes", "writing", "wrote"), "down"),
    **dict.fromkeys(("add", "adds", "adding", "added"), "up"),
    **dict.fromkeys(("pick", "picks", "picking", "picked"), "up"),
}
# Words that cannot be part of a phrasal verb's object: particles, prepositions, pronouns (a pronoun object must
# stand before the particle: "leave them out", never "leave out them"), conjunctions and verbs of being.
_NOT_OBJECT = (
    r"away|out|down|up|to|on|in|into|for|with|from|before|after|at|by|as|of|over|under|then|so|but|or|is|are|was|"
    r"were|it|them|him|her|me|us|you|this|that|these|those|which|who|what|we|they|he|she|i"
)
_OBJ_WORD = rf"(?:(?:\d[\d,]*|the|a|an|some|all|our|their|his|my|its|old|new) )?(?!(?:{_NOT_OBJECT})\b)[a-z]+"
_OBJ = rf"{_OBJ_WORD}(?:(?:, | and | ){_OBJ_WORD}){{0,6}}"
_PARTICLE_RE = re.compile(
    rf"\b(?P<verb>{'|'.join(sorted(_PARTICLE_OF, key=lambda w: (-len(w), w)))}) "
    rf"(?:(?P<p1>away|out|down|up) (?P<o1>{_OBJ})|(?P<o2>{_OBJ}) (?P<p2>away|out|down|up))"
    r"(?= (?:to|on|in|for|with|from|before|after|at|by)\b|[.,;:!?]|\Z)"
)


def _particle_placement(text: str) -> list[Site]:
    """A phrasal verb's particle before or after its object (give away the books/give the books away)."""
    out = []
    for m in _PARTICLE_RE.finditer(text):
        verb, late = m.group("verb"), m.group("p2") is not None
        particle, obj = (m.group("p2"), m.group("o2")) if late else (m.group("p1"), m.group("o1"))
        if _PARTICLE_OF[verb] != particle:
            continue
        start = m.start("verb")
        out.append(Site(start, m.end(), int(late), (f"{verb} {particle} {obj}", f"{verb} {obj} {particle}")))
    return out


_ALSO_RE = re.compile(
    r"(?P<s>(?<![\w'\u2019])[Ii]t['\u2019]s|(?<= )(?:is|are)) "
    r"(?:also (?P<a>[^.,;:!?\n()\-]+?)|(?P<b>[^.,;:!?\n()\-]+?) as well)(?=[.!?](?:\s|\Z))"
)


_NOT_IN_PREDICATE = frozenset("when where what which who whom that to has have had is are was were can will".split())


def _also_as_well(text: str) -> list[Site]:
    """ "It's also cheap." or "It's cheap as well." (also before the predicate or as well at its end)."""
    out = []
    for m in _ALSO_RE.finditer(text):
        s, a, b = m.group("s"), m.group("a"), m.group("b")
        rest = a if a is not None else b
        if rest.endswith(" as well") or rest.startswith("also ") or rest == "also":
            continue
        # a short predicate only: "as well" at the end of a longer clause could attach to its last part
        if len(rest.split()) > 6 or _NOT_IN_PREDICATE & set(rest.lower().split()):
            continue
        out.append(Site(m.start(), m.end(), int(b is not None), (f"{s} also {rest}", f"{s} {rest} as well")))
    return out


_DASH_ASIDE_RE = re.compile(
    r"(?<=[A-Za-z])(?: - (?P<a>[A-Za-z][^()\n.!?;:\-]*?[A-Za-z]) - | \((?P<b>[A-Za-z][^()\n.!?;:\-]*?[A-Za-z])\) )"
    r"(?=[a-z])"
)


def _dash_parens(text: str) -> list[Site]:
    """An aside set off by a pair of spaced hyphens or by parentheses (stages - reading and checking - over)."""
    out = []
    for m in _DASH_ASIDE_RE.finditer(text):
        aside = m.group("a") if m.group("a") is not None else m.group("b")
        out.append(Site(m.start(), m.end(), int(m.group("b") is not None), (f" - {aside} - ", f" ({aside}) ")))
    return out


_WEEKDAY_ON_RE = re.compile(
    r"\b(?P<prev>[A-Za-z]+) (?P<v>(?:on )?)(?:" + "|".join(_WEEKDAYS) + r")(?= (?:morning|afternoon|evening|night)\b|"
    r"[.,;!?]|\Z)"
)
_NOT_BEFORE_ON = frozenset(
    """for and or is are was were be been being that this than until till from to by before after since between
    then so but check see on of at in about like except says said when if whether only every each next last the a
    an plus with without during""".split()
)


def _weekday_on(text: str) -> list[Site]:
    """A weekday as an adverb with or without "on" (sign up on Monday/sign up Monday)."""
    out = []
    for m in _WEEKDAY_ON_RE.finditer(text):
        if m.group("prev").lower() in _NOT_BEFORE_ON:
            continue
        out.append(Site(m.start("v"), m.end("v"), int(bool(m.group("v"))), ("", "on ")))
    return out


_RELATIVE_RE = re.compile(
    r"\b(?P<prev>[a-z]+) (?P<v>that|which)(?= (?:is|are|was|were|keeps|keep|uses|use|holds|hold|has|have|takes|"
    r"take|costs|cost|fits|fit|needs|need|works|work|makes|make|matches|match|gives|give)\b(?!,))"
)
_NOT_BEFORE_RELATIVE = frozenset(
    """check checks checked see sees saw know knows knew decide decides choose chooses ask asks about of on in is
    are was were means mean shows show so and but or than note notes confirm confirms find finds think thinks
    clear sure whether say says said tell tells wonder wonders because since if when while not all""".split()
)


def _relative_that_which(text: str) -> list[Site]:
    """A restrictive relative clause opened by that or which (an option that uses/an option which uses)."""
    out = []
    for m in _RELATIVE_RE.finditer(text):
        if m.group("prev") in _NOT_BEFORE_RELATIVE:
            continue
        out.append(Site(m.start("v"), m.end("v"), int(m.group("v") == "which"), ("that", "which")))
    return out


_THOUSAND_RE = re.compile(r"(?<![\d,.$])(?P<n>[1-9]\d{0,2})(?:(?P<z>,?000)| (?P<t>thousand))(?![\d,]|\.\d)(?= [a-z])")
_OPERATOR_BEFORE = re.compile(r"[-=+x*/\u00d7\u00f7\u2212] $")


def _thousand_word(text: str) -> list[Site]:
    """A round number of thousands before a word in digits or with the word thousand (5000 dollars/5 thousand
    dollars); not 1000, and not an operand."""
    out = []
    for m in _THOUSAND_RE.finditer(text):
        n = m.group("n")
        if n == "1" or _OPERATOR_BEFORE.search(text, max(0, m.start() - 2), m.start()):
            continue
        digits = n + (m.group("z") or "000")
        out.append(Site(m.start(), m.end(), int(m.group("t") is not None), (digits, f"{n} thousand")))
    return out


_WRITE_AS_RE = re.compile(
    r"\b(?:(?P<we>[Ww]e) write (?P<o>it|the (?:large |final )?(?:result|number|total|sum|answer))|"
    r"(?P<p>[Ii]t|[Tt]he (?:large |final )?(?:result|number|total|sum|answer)) is written) as\b"
)


def _write_passive(text: str) -> list[Site]:
    """ "we write it as 3,600" or "it is written as 3,600" (active or passive)."""
    out = []
    for m in _WRITE_AS_RE.finditer(text):
        active = m.group("we") is not None
        obj = m.group("o") if active else m.group("p")
        obj = obj[:1].lower() + obj[1:]
        capital = m.group()[:1].isupper()
        we = "We" if capital else "we"
        passive = (obj[:1].upper() + obj[1:]) if capital else obj
        out.append(Site(m.start(), m.end(), int(not active), (f"{we} write {obj} as", f"{passive} is written as")))
    return out


def _as_steps(text: str) -> str:
    """Each sentence on its own line, labelled "Step 1: ", "Step 2: ", ... (labels already there are replaced)."""
    label = re.compile(r"^(?:\*\*)?Step \d+:(?:\*\*)? ")
    return "\n".join(f"Step {i}: {label.sub('', s)}" for i, s in enumerate(_sentences(text), 1))


def _digits(v: str) -> str:
    return "".join(c for c in v if c.isdigit())


_LIGATURES = {"fi": "\ufb01", "fl": "\ufb02"}
_UNLIGATURES = {v: k for k, v in _LIGATURES.items()}

_LETS_VERBS = (
    "check|compute|start|divide|multiply|add|subtract|split|write|keep|weigh|think|ask|spend|set|work|compare|"
    "confirm|count|list|look|try|find|pick|choose|plan|see|order|cut|bring|book|send|visit"
)
_COLON_OPENERS = "it['\u2019]s|there['\u2019]s|the|it|there|they|a|an|only|we|this"


def _build_held_out_3() -> dict[str, Family]:
    fam = [
        # abbreviation
        marks(
            "currency_code",
            "abbreviation",
            r"(?<=\d )(?P<v>dollars|USD)\b",
            "dollars",
            "USD",
            description="an amount in dollars or USD (40 dollars/40 USD)",
        ),
        # aside
        Family("dash_parens", "aside", _dash_parens, description="an aside between spaced hyphens or in parentheses"),
        # case
        marks(
            "colon_capital",
            "case",
            rf"(?<=[a-z]: )(?P<v>(?:{_COLON_OPENERS}))(?![\w'\u2019])",
            lambda v: v[:1].lower() + v[1:],
            lambda v: v[:1].upper() + v[1:],
            read=lambda v: int(v[:1].isupper()),
            flags=re.I,
            description="a clause after a colon capitalised or not (the cost: the cafe/the cost: The cafe)",
        ),
        # connective
        marks(
            "but_yet",
            "connective",
            r"(?<=[a-z] )(?<!\bnot )(?P<v>but|yet)(?= (?!also\b)[a-z])",
            "but",
            "yet",
            description="but/yet joining two words or phrases without a comma (cheap but small/cheap yet small)",
        ),
        marks(
            "once_when",
            "connective",
            r"(?<!\bday )(?<!\btime )(?<!\bcheck )(?<!\bknow )(?<!\bsure )(?<!\bask )(?<!\bdecide )"
            r"\b(?P<v>once|when)(?= (?:the|we|it|it's|they|there|there's|I|you|he|she|our|all)(?![\w'\u2019]))",
            lambda v: _case_like(v, "once"),
            lambda v: _case_like(v, "when"),
            read=lambda v: int(v.lower() == "when"),
            flags=re.I,
            description="a time clause opened by once or when (once the totals are clear/when the totals are clear)",
        ),
        # function_word
        marks(
            "help_to",
            "function_word",
            r"\bhelps? (?P<v>(?:to )?)(?=(?:list|make|keep|check|plan|compare|decide|write|save|find|choose|pick|"
            r"see|get|sort|split)\b)",
            "",
            "to ",
            read=lambda v: int(bool(v)),
            description="help with or without to before a verb (it helps to list/it helps list)",
        ),
        Family(
            "relative_that_which",
            "function_word",
            _relative_that_which,
            description="a restrictive relative clause with that or which (an option that uses/which uses)",
        ),
        Family(
            "weekday_on",
            "function_word",
            _weekday_on,
            description="a weekday as an adverb with or without on (sign up on Monday/sign up Monday)",
        ),
        # layout
        marks(
            "step_label",
            "layout",
            r"^(?P<v>Step \d+: |\d+\. )",
            lambda v: f"Step {_digits(v)}: ",
            lambda v: f"{_digits(v)}. ",
            read=lambda v: int(not v.startswith("Step")),
            flags=re.M,
            prepare=_as_steps,
            description="a step labelled 'Step 1:' or '1.'",
        ),
        # markup
        marks(
            "emphasis_italic",
            "markup",
            r"(?<![\w*])(?P<v>\*(?:best|better|only)\*|(?:best|better|only))(?![\w*])",
            lambda v: v.strip("*"),
            lambda v: f"*{v.strip('*')}*",
            read=lambda v: int(v.startswith("*")),
            description="best/better/only plain or in *italics* for emphasis",
        ),
        marks(
            "step_bold",
            "markup",
            r"^(?P<v>\*\*Step \d+:\*\*|Step \d+:)(?= )",
            lambda v: f"Step {_digits(v)}:",
            lambda v: f"**Step {_digits(v)}:**",
            read=lambda v: int(v.startswith("**")),
            flags=re.M,
            prepare=_as_steps,
            description="a step label plain or in **bold** (Step 1:/**Step 1:**)",
        ),
        # number
        Family(
            "thousand_word",
            "number",
            _thousand_word,
            description="round thousands before a noun in digits or with 'thousand' (5000 dollars/5 thousand dollars)",
        ),
        # order
        Family(
            "also_as_well",
            "order",
            _also_as_well,
            description="'also' before a short predicate or 'as well' after it (it's also free/it's free as well)",
        ),
        Family(
            "particle_placement",
            "order",
            _particle_placement,
            description="a particle before or after the object (give away 9 apples/give 9 apples away)",
        ),
        marks(
            "therefore_placement",
            "order",
            _SENTENCE_START + r"(?P<v>Therefore,? the answer is|The answer is therefore|Therefore,? we|We therefore)"
            r"(?= [a-z\d$])",
            lambda v: "Therefore we" if "we" in v.lower().split() else "Therefore the answer is",
            lambda v: "We therefore" if "we" in v.lower().split() else "The answer is therefore",
            read=lambda v: int(not v.startswith("Therefore")),
            flags=re.M,
            description="therefore first or after the subject/verb (Therefore the answer is/The answer is therefore)",
        ),
        # punctuation
        marks(
            "conjunction_comma",
            "punctuation",
            r"(?<=[a-z0-9])(?P<v>,? )(?=(?:and (?:it|it's|there|there's|they|they're|we|we're|we'll|I|he|she|"
            r"that's|nothing|none)|(?:but|so) (?:the|my|our|its|their|it|it's|there|there's|they|they're|we|we're|"
            r"we'll|I|he|she|that's|nothing|none)|(?:since|because) [a-z\d])(?![\w'\u2019]))",
            " ",
            ", ",
            read=lambda v: int("," in v),
            description="a comma before and/but/so/since joining clauses or not (free, and it's/free and it's)",
        ),
        # spacing
        marks(
            "line_indent",
            "spacing",
            r"^(?P<v>(?:  )?)(?=\S)",
            "",
            "  ",
            read=lambda v: int(bool(v)),
            flags=re.M,
            prepare=one_per_line,
            description="a line indented by two spaces or not",
        ),
        # template
        marks(
            "answer_label",
            "template",
            _SENTENCE_START + r"(?P<v>The answer is|Answer:)(?= (?!therefore\b))",
            "The answer is",
            "Answer:",
            flags=re.M,
            description="'The answer is X.' or 'Answer: X.'",
        ),
        marks(
            "we_lets",
            "template",
            r"(?:^|(?<=[.!?] )|(?<=\n)|(?<=\b[Tt]hen )|(?<=\b[Ss]o )|(?<=\b[Ff]irst )|(?<=\b[Nn]ow ))"
            rf"(?P<v>[Ww]e|[Ll]et['\u2019]s)(?= (?:{_LETS_VERBS})\b)",
            lambda v: _case_like(v, "we"),
            lambda v: _case_like(v, "let's"),
            read=lambda v: int(v[:1].lower() == "l"),
            flags=re.M,
            description="a step stated or proposed (we check/let's check)",
        ),
        # typography
        marks(
            "fi_ligature",
            "typography",
            r"(?P<v>f[il]|[\ufb01\ufb02])",
            lambda v: _UNLIGATURES.get(v, v),
            lambda v: _LIGATURES.get(v, v),
            read=lambda v: int(v in _UNLIGATURES),
            description="fi/fl as two letters or as the ligature character (U+FB01/U+FB02)",
        ),
        # unicode
        marks(
            "zero_width_space",
            "unicode",
            r"(?<=,)(?P<v>\u200b?)(?= )",
            "",
            "\u200b",
            read=lambda v: int(bool(v)),
            description="a zero-width space after a comma or not",
        ),
        # voice
        Family(
            "write_passive",
            "voice",
            _write_passive,
            description="active or passive (we write it as 3,600/it is written as 3,600)",
        ),
        # word_choice
        words(
            "big_large",
            "word_choice",
            [("big", "large"), ("bigger", "larger"), ("biggest", "largest")],
            right=r"(?![\w'\u2019])(?! (?:launch|weekend|deal|day|news|picture|moment|event|mistake)\b)",
            description="big/large",
        ),
        words(
            "buy_purchase",
            "word_choice",
            [("buy", "purchase"), ("buys", "purchases"), ("buying", "purchasing"), ("bought", "purchased")],
            description="buy/purchase",
        ),
        words(
            "choose_pick",
            "word_choice",
            [("choose", "pick"), ("chooses", "picks"), ("choosing", "picking")],
            right=r"(?![\w'\u2019])(?! (?:up|out|on)\b)",
            description="choose/pick as a verb",
        ),
        marks(
            "holds_contains",
            "word_choice",
            r"\b(?P<v>holds|hold|contains|contain)(?= (?:\d|any\b|no\b|all\b|enough\b))",
            lambda v: "holds" if v.endswith("s") else "hold",
            lambda v: "contains" if v.endswith("s") else "contain",
            read=lambda v: int(v.startswith("contain")),
            description="holds/contains before a quantity (a jar holds 36/contains 36)",
        ),
        marks(
            "near_close_to",
            "word_choice",
            r"\b(?P<v>near|close to)(?= (?:the|home|our|my|your|a|an|work|school|town)\b)",
            lambda v: _case_like(v, "near"),
            lambda v: _case_like(v, "close to"),
            read=lambda v: int(v.lower() == "close to"),
            flags=re.I,
            description="near/close to before a place",
        ),
        words(
            "problem_question",
            "word_choice",
            [("problem", "question"), ("problems", "questions")],
            left=r"(?<=\bthe )",
            description="the problem/the question (the task being solved)",
        ),
        words(
            "quick_fast",
            "word_choice",
            [("quick", "fast")],
            left=r"(?:(?<=\bis )|(?<=\bare )|(?<=['\u2019]s ))",
            right=r"(?![\w'\u2019])(?! to\b)",
            description="quick/fast as a predicate (the train is quick/is fast)",
        ),
        marks(
            "says_states",
            "word_choice",
            r"\b(?:problem|question|forecast|baker|recipe|text|table|label|sign|rule|rules|teacher|manual) "
            r"(?P<v>says|states|say|state)(?= (?!to\b)[a-z])",
            lambda v: "says" if v.endswith("s") else "say",
            lambda v: "states" if v.endswith("s") else "state",
            read=lambda v: int(v.startswith("state")),
            description="what a source says or states (the problem says they don't/states they don't)",
        ),
        words(
            "simple_straightforward",
            "word_choice",
            [("simple", "straightforward")],
            description="simple/straightforward",
        ),
        marks(
            "total_sum",
            "word_choice",
            r"(?<=\bthe )(?P<v>total|sum)(?= (?:is|was|so far)\b|:)",
            "total",
            "sum",
            description="the total/the sum as the result of an addition (the total is 19/the sum is 19)",
        ),
    ]
    return {f.name: f for f in fam}


# ---------------------------------------------------------------------------------- the fourth held-out set

_AP = "['\u2019]"  # a straight or a curly apostrophe


def _at_sentence_start(text: str, i: int) -> bool:
    return i == 0 or text[i - 1] == "\n" or text[max(0, i - 2) : i] in (". ", "! ", "? ")


def _capitalised(s: str) -> str:
    return s[:1].upper() + s[1:]


_ANSWER_LEFT = r"(?:^|(?<=[.!?] )|(?<=\n)|(?<=\b[Ss]o )|(?<=\band )|(?<=\bTherefore )|(?<=\bFinally ))"
_ANSWER_VALUE = r"(?:\d+(?:,\d{3})*(?: [a-z]+){0,2}|[Tt]he(?: [a-z]+){1,3})"
_ANSWER_RE = re.compile(
    _ANSWER_LEFT
    + rf"(?:[Tt]he answer is (?P<x>{_ANSWER_VALUE})|(?P<y>{_ANSWER_VALUE}) is the answer)(?=\.(?:\s|\Z)|\Z)",
    re.M,
)


def _answer_inversion(text: str) -> list[Site]:
    """ "The answer is the train." or "The train is the answer." (the answer a number or a "the" phrase)."""
    out = []
    for m in _ANSWER_RE.finditer(text):
        value = m.group("x") if m.group("x") is not None else m.group("y")
        value = "the" + value[3:] if value.startswith("The ") else value
        if _at_sentence_start(text, m.start()):
            pair = (f"The answer is {value}", f"{_capitalised(value)} is the answer")
        else:
            pair = (f"the answer is {value}", f"{value} is the answer")
        out.append(Site(m.start(), m.end(), int(m.group("y") is not None), pair))
    return out


_PROGRESSIVE = {
    "compare": "comparing",
    "plan": "planning",
    "choose": "choosing",
    "buy": "buying",
    "decide": "deciding",
    "pick": "picking",
    "think": "thinking",
}
_SIMPLE = {v: k for k, v in _PROGRESSIVE.items()}
_PROGRESSIVE_RE = re.compile(
    _SENTENCE_START + rf"(?P<s>We{_AP}re|We are|I{_AP}m|I am|We|I) (?P<verb>{'|'.join([*_PROGRESSIVE, *_SIMPLE])})\b",
    re.M,
)


def _progressive_simple(text: str) -> list[Site]:
    """A first-person present opening a plan, simple or progressive (We compare two flats/We're comparing)."""
    out = []
    for m in _PROGRESSIVE_RE.finditer(text):
        verb = m.group("verb")
        base = _SIMPLE.get(verb, verb)
        subject = "We" if m.group("s").startswith("We") else "I"
        progressive = f"We're {_PROGRESSIVE[base]}" if subject == "We" else f"I'm {_PROGRESSIVE[base]}"
        out.append(Site(m.start(), m.end(), int(verb in _SIMPLE), (f"{subject} {base}", progressive)))
    return out


_WHEN = r"today|tonight|tomorrow|this week|on (?:" + "|".join(_WEEKDAYS) + r")(?: morning| afternoon| evening)?"
_TIME_FRONT_RE = re.compile(
    _SENTENCE_START
    + rf"(?:(?P<s>We{_AP}ll|I{_AP}ll) (?P<c>[a-z][^.,;:!?\n]*?) (?P<t>{_WHEN})"
    + rf"|(?P<T>Today|Tonight|Tomorrow|This week|On (?:{'|'.join(_WEEKDAYS)})"
    + rf"(?: morning| afternoon| evening)?) (?P<s2>we{_AP}ll|I{_AP}ll) (?P<c2>[a-z][^.,;:!?\n]*?))(?=[.,])",
    re.M,
)


def _time_adverb_front(text: str) -> list[Site]:
    """A time adverbial at the end of a plan or before it (We'll book the rooms this week/This week we'll book
    the rooms)."""
    out = []
    for m in _TIME_FRONT_RE.finditer(text):
        late = m.group("s") is not None
        subject = (m.group("s") if late else m.group("s2"))[:1].lower()
        clause = m.group("c") if late else m.group("c2")
        when = m.group("t") if late else m.group("T")
        when = when[:1].lower() + when[1:]
        end = f"{'We' if subject == 'w' else 'I'}'ll {clause} {when}"
        front = f"{_capitalised(when)} {'we' if subject == 'w' else 'I'}'ll {clause}"
        out.append(Site(m.start(), m.end(), int(not late), (end, front)))
    return out


_OPTIONS_LEAD = r"[Tt]he options are|[Tt]here are (?:two|three|four) options"
_OPTIONS_INLINE_RE = re.compile(
    rf"(?P<lead>{_OPTIONS_LEAD}):? (?P<a>[^,.\n:]+), (?P<b>[^,.\n:]+) and (?P<c>[^,.\n:]+)\.(?P<sep> (?=\S))?"
)
_OPTIONS_LIST_RE = re.compile(
    rf"(?P<lead>{_OPTIONS_LEAD}):\n- (?P<a>[^\n]+)\n- (?P<b>[^\n]+)\n- (?P<c>[^\n]+)(?P<sep>\n(?=\S))?"
)


def _options_list(text: str) -> list[Site]:
    """Three options named in a sentence or as a bulleted list (The options are rice, pasta and potatoes./
    The options are:\\n- rice\\n- pasta\\n- potatoes)."""
    found = [(m, 0) for m in _OPTIONS_INLINE_RE.finditer(text)] + [(m, 1) for m in _OPTIONS_LIST_RE.finditer(text)]
    out = []
    for m, bit in sorted(found, key=lambda f: f[0].start()):
        lead, a, b, c, sep = m.group("lead"), m.group("a"), m.group("b"), m.group("c"), m.group("sep")
        colon = ":" if lead.endswith("options") else ""
        inline = f"{lead}{colon} {a}, {b} and {c}." + (" " if sep else "")
        listed = f"{lead}:\n- {a}\n- {b}\n- {c}" + ("\n" if sep else "")
        out.append(Site(m.start(), m.end(), bit, (inline, listed)))
    return out


_ONES = "one two three four five six seven eight nine".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_TEENS = "eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_WORD_OF_NUMBER = {
    **{11 + i: w for i, w in enumerate(_TEENS)},
    **{20 + 10 * i + j: w + (f"-{_ONES[j - 1]}" if j else "") for i, w in enumerate(_TENS) for j in range(10)},
}
_NUMBER_OF_WORD = {w: n for n, w in _WORD_OF_NUMBER.items()}
_TENS_RE = re.compile(
    r"(?<![\w.,$\u2019'-])(?P<v>[1-9]\d|"
    + "|".join(sorted(_NUMBER_OF_WORD, key=lambda w: (-len(w), w)))
    + r")(?![\w,-])(?= [a-z]{3,}\b)(?! (?:of|another|more|by)\b)",
    re.I,
)


def _number_words_tens(text: str) -> list[Site]:
    """A count from 11 to 99 before a word in digits or in words (45 marbles/forty-five marbles); not an operand."""
    out = []
    for m in _TENS_RE.finditer(text):
        if _OPERATOR_BEFORE.search(text, max(0, m.start() - 2), m.start()):
            continue
        v = m.group("v")
        n = int(v) if v.isdigit() else _NUMBER_OF_WORD[v.lower()]
        if n == 10:
            continue
        word = _WORD_OF_NUMBER[n]
        if v.isdigit():
            word = _capitalised(word) if _at_sentence_start(text, m.start()) else word
        else:
            word = _case_like(v, word)
        out.append(Site(m.start(), m.end(), int(not v.isdigit()), (str(n), word)))
    return out


def _build_held_out_4() -> dict[str, Family]:
    fam = [
        # abbreviation
        marks(
            "with_slash",
            "abbreviation",
            r"(?<!\bstart )(?<!\bstarts )\b(?P<v>with|w/)(?= \d+ [a-z]{3,})",
            "with",
            "w/",
            description="with or w/ before a count (with 3 people/w/ 3 people)",
        ),
        # discourse
        marks(
            "plus_also",
            "discourse",
            _SENTENCE_START + rf"(?P<v>It{_AP}s also|Plus, it{_AP}s)(?= )",
            lambda v: f"It{v[-2]}s also" if v.startswith("Plus") else v,
            lambda v: f"Plus, it{v[-2]}s" if v.startswith("Plus") else f"Plus, it{v[2]}s",
            read=lambda v: int(v.startswith("Plus")),
            flags=re.M,
            description="an added point as 'It's also X' or 'Plus, it's X'",
        ),
        marks(
            "so_which_means",
            "discourse",
            r"(?<=[a-z0-9]), (?P<v>so|which means)(?= (?:the|there|there's|nothing|we|it's|it|I)\b)",
            "so",
            "which means",
            description="a consequence after a comma with so or which means (, so the answer is/, which means the "
            "answer is)",
        ),
        # function_word
        marks(
            "it_this",
            "function_word",
            _SENTENCE_START + rf"(?P<v>It{_AP}s a|It is a|This is a)(?= )",
            lambda v: v if v.startswith("It") and v != "It is a" else "It's a",
            "This is a",
            read=lambda v: int(v.startswith("This")),
            flags=re.M,
            description="a sentence opened by It's a or This is a (It's a simple count./This is a simple count.)",
        ),
        # hedge
        words(
            "looks_seems",
            "hedge",
            [("looks", "seems"), ("look", "seem")],
            right=r"(?![\w'\u2019])(?! (?:at|for|up|after|into|around|forward|out)\b)",
            description="looks/seems (Friday looks wet/seems wet, looks like the best option/seems like)",
        ),
        # layout
        marks(
            "answer_paragraph",
            "layout",
            r"(?<=[.!?])(?P<v> |\n\n)(?=(?:Therefore |So |Finally )?[Tt]he answer is\b)",
            " ",
            "\n\n",
            description="the sentence giving the answer in the same paragraph or in a paragraph of its own",
        ),
        Family(
            "options_list",
            "layout",
            _options_list,
            description="three options named inline or as a bulleted list (The options are rice, pasta and "
            "potatoes./The options are: - rice - pasta - potatoes)",
        ),
        # markup
        marks(
            "answer_boxed",
            "markup",
            r"(?<=answer is )(?P<v>\\boxed\{\d+(?:,\d{3})*\}|\d+(?:,\d{3})*)(?=[ .]|\Z)",
            lambda v: v.removeprefix("\\boxed{").removesuffix("}"),
            lambda v: "\\boxed{" + v.removeprefix("\\boxed{").removesuffix("}") + "}",
            read=lambda v: int(v.startswith("\\boxed")),
            description="a numeric answer plain or in LaTeX \\boxed{} (the answer is 13/the answer is \\boxed{13})",
        ),
        # number
        Family(
            "number_words_tens",
            "number",
            _number_words_tens,
            description="a count from 11 to 99 in prose as digits or words (45 marbles/forty-five marbles)",
        ),
        # order
        Family(
            "answer_inversion",
            "order",
            _answer_inversion,
            description="'the answer is X' or 'X is the answer' (the answer is 27/27 is the answer)",
        ),
        Family(
            "time_adverb_front",
            "order",
            _time_adverb_front,
            description="a time adverbial at the end or the front of a plan (We'll book the rooms this week/This "
            "week we'll book the rooms)",
        ),
        # preposition
        marks(
            "between_among",
            "preposition",
            r"(?<!\bin )\b(?P<v>between|among)(?= (?!-)[^.,;:\n]+, )",
            "between",
            "among",
            description="between/among before a list of three or more (choose between the train, the bus and the "
            "car/choose among)",
        ),
        marks(
            "over_across",
            "preposition",
            r"\b(?P<v>over|across)(?= (?:\d+|a|a whole|the whole) (?:[a-z]+ )?(?:evenings?|days?|weeks?|months?|"
            r"years?|passes|rounds|trips?|nights?)\b)",
            "over",
            "across",
            description="over/across before a span of time (over 3 evenings/across 3 evenings)",
        ),
        # punctuation
        marks(
            "period_semicolon",
            "punctuation",
            rf"(?<=[a-z])(?P<v>\. It{_AP}s|; it{_AP}s)(?= )",
            lambda v: f". It{v[-2]}s",
            lambda v: f"; it{v[-2]}s",
            read=lambda v: int(v.startswith(";")),
            description="a following 'It's ...' as a new sentence or after a semicolon (. It's/; it's)",
        ),
        # quantifier
        marks(
            "all_float",
            "quantifier",
            r"\b[A-Za-z]+, (?:[a-z]+ )?[A-Za-z]+ and (?:[a-z]+ )?[A-Za-z]+ are "
            r"(?P<v>(?:all )?)(?!not\b|all\b)(?=[a-z])",
            "",
            "all ",
            read=lambda v: int(bool(v)),
            description="'all' after a listed subject's are or not (red, green and blue beads are all counted/are "
            "counted)",
        ),
        marks(
            "no_not_any",
            "quantifier",
            rf"\b(?P<v>[Tt]here{_AP}s no|[Tt]here is no|[Tt]here isn{_AP}t any|[Tt]here is not any)(?= [a-z])",
            lambda v: f"{v[0]}here's no",
            lambda v: f"{v[0]}here isn't any",
            read=lambda v: int(v.endswith("any")),
            description="there's no X or there isn't any X",
        ),
        # template
        marks(
            "comes_to",
            "template",
            r"\b(?:total|sum|rest|count|cost|area) (?:so far )?(?P<v>is|comes to)(?= \d)",
            "is",
            "comes to",
            description="a result stated with is or comes to (the total is 19/the total comes to 19)",
        ),
        # tense
        Family(
            "progressive_simple",
            "tense",
            _progressive_simple,
            description="a plan opened in the simple or progressive present (We compare two flats/We're comparing "
            "two flats)",
        ),
        # unicode
        marks(
            "homoglyph_o",
            "unicode",
            r"(?<!\w)[Tt](?P<v>[o\u043e])(?!\w)",
            "o",
            "\u043e",
            description="the o of 'to' as a Latin o or a Cyrillic o (U+043E)",
        ),
        # word_choice
        words(
            "check_look_at",
            "word_choice",
            [("check", "look at"), ("checks", "looks at"), ("checking", "looking at"), ("checked", "looked at")],
            right=r"(?= the\b)",
            description="check the X/look at the X (we check the weather/we look at the weather)",
        ),
        words(
            "clear_obvious",
            "word_choice",
            [("clear", "obvious")],
            left=r"(?:(?<=[Ii]t['\u2019]s )|(?<=[Ii]t is ))",
            description="it's clear/it's obvious",
        ),
        marks(
            "costs_priced_at",
            "word_choice",
            r"\b(?P<v>costs|is priced at)(?= \d)",
            "costs",
            "is priced at",
            description="a price with costs or is priced at (the pen costs 3 dollars/is priced at 3 dollars)",
        ),
        words(
            "dialect_words",
            "word_choice",
            [
                ("flat", "apartment"),
                ("flats", "apartments"),
                ("holiday", "vacation"),
                ("car park", "parking lot"),
                ("car parks", "parking lots"),
                ("sweets", "candies"),
                ("shop", "store"),
                ("shops", "stores"),
            ],
            right=r"(?![\w'\u2019])(?! cupboard\b)",
            description="British or American word (flat/apartment, shop/store, car park/parking lot, sweets/candies)",
        ),
        words(
            "fits_suits",
            "word_choice",
            [("fits", "suits")],
            right=r"(?![\w'\u2019])(?! (?:in|into|inside)\b)",
            description="fits/suits as 'is right for' (the laptop fits classes/suits classes)",
        ),
        marks(
            "left_remaining",
            "word_choice",
            r"(?<=[a-z] )(?P<v>left|remaining)(?=[.,]| in the\b| is\b)",
            "left",
            "remaining",
            description="what is left or remaining (27 marbles left/27 marbles remaining)",
        ),
        words(
            "need_require",
            "word_choice",
            [("needs", "requires"), ("need", "require")],
            right=r"(?![\w'\u2019])(?! to\b)",
            description="need/require with an object (pasta needs extra sauce/requires extra sauce)",
        ),
        marks(
            "only_just",
            "word_choice",
            r"\b(?P<v>only|just)(?= \d)",
            "only",
            "just",
            description="only/just before a number (it's only 2 kilometres/just 2 kilometres)",
        ),
        words(
            "want_would_like",
            "word_choice",
            [("we want", "we'd like"), ("I want", "I'd like"), ("wants", "would like")],
            right=r"(?= to\b)",
            description="want to/would like to (we want to plan/we'd like to plan)",
        ),
        words(
            "weigh_consider",
            "word_choice",
            [("weigh", "consider"), ("weighs", "considers"), ("weighing", "considering")],
            description="weigh/consider (we weigh 4 things/we consider 4 things)",
        ),
    ]
    return {f.name: f for f in fam}


# The 49 families of the first split come first; the second held-out set (``HELD_OUT_2``), the third
# (``HELD_OUT_3``) and the fourth (``HELD_OUT_4``) are appended.
FAMILIES: dict[str, Family] = {**_build(), **_build_held_out_2(), **_build_held_out_3(), **_build_held_out_4()}


def family_names() -> list[str]:
    return sorted(FAMILIES)


def make_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r}; known: {', '.join(family_names())}") from None


def split_rule(families: dict[str, Family]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The split rule: sort the families by (kind, name) and deal them out alternately, the first to the
    development half. Families of one kind so land on both sides where the kind has two or more, so the
    held-out half tests whether a rule written for a class of choices closes members of it it never saw."""
    ordered = sorted(families.values(), key=lambda f: (f.kind, f.name))
    return tuple(f.name for f in ordered[0::2]), tuple(f.name for f in ordered[1::2])


# Fixed before any measurement or tuning (the 49 families above, dealt by ``split_rule``; a test checks the
# two still agree). Hardening rules may be written only from the DEVELOPMENT half; HELD_OUT is measured
# once, at the end. Adding a family later does not move these: it joins neither half until a new split.
DEVELOPMENT: tuple[str, ...] = (
    "latin_abbreviation",
    "paren_aside",
    "sentence_case",
    "also_additionally",
    "connective_so",
    "contraction_not",
    "line_length_parity",
    "sentence_words_parity",
    "hedge_adverb",
    "blank_lines",
    "line_breaks",
    "numbered_style",
    "number_words",
    "percent_sign",
    "and_order",
    "colon_dash",
    "intro_comma",
    "double_space",
    "space_before_punct",
    "trailing_space",
    "spelling_re_er",
    "apostrophe_style",
    "ellipsis_style",
    "times_symbol",
    "variation_selector",
)
HELD_OUT: tuple[str, ...] = (
    "unit_abbreviation",
    "all_caps_word",
    "title_case_word",
    "but_however",
    "then_next",
    "contraction_pronoun",
    "sentence_count_parity",
    "filler_opener",
    "that_complementiser",
    "bullet_marker",
    "list_item_period",
    "currency_symbol",
    "operator_spacing",
    "thousands_separator",
    "or_order",
    "comma_semicolon",
    "oxford_comma",
    "nbsp",
    "tab_space",
    "spelling_other",
    "ampersand",
    "dash_style",
    "quote_style",
    "soft_hyphen",
)

# A second held-out set: written after the first held-out measurement, before any rule for them, by someone who
# had not read the paraphrasers' rules; fixed on 2026-12-06. None of these is in DEVELOPMENT or HELD_OUT (a test
# checks it); no rule may be written from them before they are measured once.
HELD_OUT_2: tuple[str, ...] = (
    "weekday_abbreviation",
    "because_since",
    "finally_lastly",
    "first_firstly",
    "answer_final",
    "answer_determiner",
    "each_every",
    "future_going_to",
    "need_have_to",
    "per_a",
    "whether_if",
    "compound_hyphen",
    "unit_hyphen",
    "answer_bold",
    "clock_time",
    "operator_words",
    "ordinal_digits",
    "adverb_placement",
    "exclamation",
    "so_sentence_split",
    "colon_space",
    "approx_tilde",
    "division_symbol",
    "minus_sign",
    "compute_calculate",
    "cost_adjective",
    "noun_synonym",
    "option_choice",
    "roughly_about",
    "start_begin",
    "whole_entire",
)

# A third held-out set: written on 2026-12-06, while rules were being written for HELD_OUT_2 and before any rule
# for these, by someone who had not read the paraphrasers' rules (nor run any paraphraser over them), from the
# surface choices a writer of step-by-step reasoning makes. None of these is in DEVELOPMENT, HELD_OUT or HELD_OUT_2
# (a test checks it); no rule may be written from them before they are measured once.
HELD_OUT_3: tuple[str, ...] = (
    "currency_code",
    "dash_parens",
    "colon_capital",
    "but_yet",
    "once_when",
    "help_to",
    "relative_that_which",
    "weekday_on",
    "step_label",
    "emphasis_italic",
    "step_bold",
    "thousand_word",
    "also_as_well",
    "particle_placement",
    "therefore_placement",
    "conjunction_comma",
    "line_indent",
    "answer_label",
    "we_lets",
    "fi_ligature",
    "zero_width_space",
    "write_passive",
    "big_large",
    "buy_purchase",
    "choose_pick",
    "holds_contains",
    "near_close_to",
    "problem_question",
    "quick_fast",
    "says_states",
    "simple_straightforward",
    "total_sum",
)

# A fourth held-out set: written on 2026-12-06, while rules were being written for HELD_OUT_3 and before any rule
# for these, by someone who had not read the paraphrasers' rules (nor run any paraphraser over them), from the
# surface choices a writer of step-by-step reasoning makes. None of these is in DEVELOPMENT, HELD_OUT, HELD_OUT_2 or
# HELD_OUT_3 (a test checks it); no rule may be written from them before they are measured once.
HELD_OUT_4: tuple[str, ...] = (
    "with_slash",
    "plus_also",
    "so_which_means",
    "it_this",
    "looks_seems",
    "answer_paragraph",
    "options_list",
    "answer_boxed",
    "number_words_tens",
    "answer_inversion",
    "time_adverb_front",
    "between_among",
    "over_across",
    "period_semicolon",
    "all_float",
    "no_not_any",
    "comes_to",
    "progressive_simple",
    "homoglyph_o",
    "check_look_at",
    "clear_obvious",
    "costs_priced_at",
    "dialect_words",
    "fits_suits",
    "left_remaining",
    "need_require",
    "only_just",
    "want_would_like",
    "weigh_consider",
)
