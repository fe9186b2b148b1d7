"""``canonical``: a deterministic normal form of a CoT that closes syntactic channels.

Two levels.

**Character level, everywhere (code included)**

1. Lone surrogates (a ``str`` that cannot be encoded as UTF-8) become U+FFFD.
2. Unicode NFKC (full-width letters, ligatures, ``…`` -> ``...``, compatibility spaces).
3. One precomputed table (built at import): format characters (category Cf: zero-width
   space/joiners, BOM, bidi controls, soft hyphen, tag characters), variation selectors,
   the combining grapheme joiner, Hangul fillers and other invisible letters are deleted;
   control characters other than ``\\n`` and ``\\t`` are deleted, ``\\r``/``\\r\\n``/U+0085/
   U+2028/U+2029 become ``\\n``; fancy quotes become ``'``/``"`` and dashes/minus ``-``;
   every other character that ``confusable_homoglyphs`` lists as a homoglyph of an ASCII
   character (Cyrillic ``а``, Greek ``ο``, mathematical letters, ...) becomes that ASCII
   character. Steps 2-3 repeat until the text is stable (deleting a joiner can let NFKC
   compose again).

**Token level, outside code** (code = fenced ```` ``` ```` blocks and inline `` `...` ``; their
content stays exactly as after the character level, whitespace included):

4. Unmatched backticks become ``'`` (so code detection is stable).
5. Digit-group separators are dropped: ``1,000`` / ``1,000.5`` -> ``1000`` / ``1000.5``.
6. Math spans (see ``protect.MATH_RE``: ``3 + 4 = 7``, ``x^2``, ``X-1``) keep their case and
   punctuation; everything else is lowercased, punctuation runs collapse (``!!!`` -> ``!``,
   ``...`` -> ``.``, ``?!`` -> ``?``, ``,,`` -> ``,``, ``--`` -> ``-``), and written-out
   numbers become digits: ``one thousand`` -> ``1000``, ``twenty-one`` -> ``21``,
   ``two million three hundred and five`` -> ``2000305``, ``3 million`` -> ``3000000``.
   A lone ``one`` is kept (it is usually a pronoun: "no one", "one could").
7. Whitespace: a run of whitespace after a sentence end (``.``, ``!`` or ``?`` after a
   word or after a number inside a line, not a ``1.`` list marker) becomes one ``\\n``;
   a run that contains a line break and precedes a list item
   (``- ``, ``* ``, ``+ ``, ``> ``, ``#``, ``1. ``, ``1) ``) or borders a fenced code block
   becomes ``\\n``; every other run becomes one space; the text is stripped. So paragraphs
   and hard-wrapped lines are flattened to one sentence per line, and list items keep their
   own lines.

Case inside names is not kept (capitalisation is a channel; "Alice" -> "alice"). The result
is idempotent (``canonical(canonical(x)) == canonical(x)``) and draws nothing from ``rng``.
"""

from __future__ import annotations

import json
import random
import re
import sys
import unicodedata
from decimal import Decimal
from importlib import resources

from legible.paraphrase.base import Paraphraser, register_paraphraser
from legible.paraphrase.protect import CODE_RE, iter_math

# ---------------------------------------------------------------------------- char level

_QUOTES = {
    "'": "\u2018\u2019\u201a\u201b\u2032\u2035\u02bc\u02bb\u02b9\u055a\uff07",
    '"': "\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\u02ba\u02dd\u301d\u301e\uff02",
    "-": "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d\u2e3a\u2e3b",
}
_NEWLINES = "\r\x0b\x0c\x85\u2028\u2029"


def _fold_target(src: str, targets: list[str]) -> str | None:
    """Pick the ASCII homoglyph for ``src``: same-case letter, then letter, digit, symbol."""
    ok = [t for t in targets if t.isascii() and t.isprintable() and t.strip() == t and t and "`" not in t]
    if not ok:
        return None

    def rank(t: str) -> tuple:
        c = t[0]
        same_case = c.isalpha() and (c.isupper() == src.isupper())
        return (len(t) != 1, not same_case, not c.isalpha(), not c.isdigit(), t)

    return min(ok, key=rank)


def _build_table() -> dict[int, str]:
    table: dict[int, str] = {}
    # homoglyphs -> ASCII
    import confusable_homoglyphs

    path = resources.files(confusable_homoglyphs) / "confusables.json"
    confusables = json.loads(path.read_text(encoding="utf-8"))
    candidates: dict[str, list[str]] = {}
    for key, entries in confusables.items():
        for e in entries:
            h = e["c"]
            if len(key) == 1 and not key.isascii():
                candidates.setdefault(key, []).append(h)
            if len(h) == 1 and not h.isascii() and key.isascii():
                candidates.setdefault(h, []).append(key)
    for ch, targets in candidates.items():
        if unicodedata.category(ch)[0] in "MC" or ch.isspace():
            continue
        t = _fold_target(ch, targets)
        if t is not None and unicodedata.normalize("NFKC", ch) == ch:
            table[ord(ch)] = t
    for target, chars in _QUOTES.items():
        for ch in chars:
            table[ord(ch)] = target
    # deletions: format chars, controls, invisible letters, variation selectors
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        cat = unicodedata.category(chr(cp))
        if cat == "Cf" or (cat == "Cc" and chr(cp) not in "\n\t"):
            table[cp] = ""
        elif cat in ("Zs", "Zl", "Zp") and cp != 0x20:
            table[cp] = " "
    for cp in [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0), *range(0x180B, 0x1810)]:
        table[cp] = ""
    for cp in (0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x17B4, 0x17B5, 0x200B):
        table[cp] = ""
    for ch in _NEWLINES:
        table[ord(ch)] = "\n"
    table[ord("\u2800")] = " "
    # outputs must be fixed points of the table (so one application is idempotent)
    for k, v in list(table.items()):
        if any(ord(c) in table for c in v):
            del table[k]
    return table


TABLE = _build_table()
_ASCII_CTRL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")


def _char_piece(text: str) -> str:
    """Steps 2-3 on a piece that is closed under NFKC (see ``char_level``)."""
    for _ in range(8):
        text = unicodedata.normalize("NFKC", text)
        text = text.translate(TABLE)
        if unicodedata.is_normalized("NFKC", text):
            break
    return text


def char_level(text: str) -> str:
    """Steps 1-3 (character level) of the module docstring."""
    if text.isascii():
        if _ASCII_CTRL_RE.search(text):
            text = text.replace("\r\n", "\n")
            text = _ASCII_CTRL_RE.sub(lambda m: "\n" if m.group() in "\r\x0b\x0c" else "", text)
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE_RE.sub("\ufffd", text)
    text = text.replace("\r\n", "\n")
    if _ASCII_CTRL_RE.search(text):
        return _char_piece(text)
    # A printable ASCII character, tab or newline neither decomposes, nor is in TABLE, nor composes with
    # what precedes it, so NFKC and TABLE act independently on the pieces between them: only runs of
    # non-ASCII characters (with the one character before, a possible base of a combining mark) change.
    out: list[str] = []
    pos = 0
    start = end = -1
    for m in _NON_ASCII_RE.finditer(text):
        i = m.start()
        if i == end:
            end += 1
            continue
        if end >= 0:
            out.append(text[pos:start])
            out.append(_char_piece(text[start:end]))
            pos = end
        start, end = (i - 1 if i else i), i + 1
    out.append(text[pos:start])
    out.append(_char_piece(text[start:end]))
    out.append(text[end:])
    return "".join(out)


# ---------------------------------------------------------------------------- numbers

_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_SCALES = {"hundred": 100, "thousand": 10**3, "million": 10**6, "billion": 10**9}
_NUMWORD = "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True))
_NUMWORDS_RE = re.compile(rf"\b(?:{_NUMWORD})(?:(?:[ \t\n]+and[ \t\n]+|[ \t\n]*-[ \t\n]*|[ \t\n]+)(?:{_NUMWORD}))*\b")
_TOKEN_RE = re.compile(rf"{_NUMWORD}|[^a-z]+|and")
_DIGIT_SCALE_RE = re.compile(r"(?<![\w.,])(\d+(?:\.\d+)?)((?:[ \t\n]+(?:hundred|thousand|million|billion)\b)+)")
_SEPARATORS_RE = re.compile(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?!,?\d)")


def _kind(tok: str) -> str:
    if tok in _UNITS:
        return "zero" if tok == "zero" else "teen" if _UNITS[tok] >= 10 else "unit"
    return "tens" if tok in _TENS else "hundred" if tok == "hundred" else "scale"


_FOLLOWS = {  # which kinds may follow which inside one number
    "unit": {"hundred", "scale"},
    "teen": {"hundred", "scale"},
    "tens": {"unit", "hundred", "scale"},
    "hundred": {"unit", "teen", "tens", "scale"},
    "scale": {"unit", "teen", "tens"},
    "zero": set(),
}


def _words_to_numbers(m: re.Match) -> str:
    """Convert a run of number words to digits. Where the grammar breaks, a new number starts
    and the text between is kept (``five six`` -> ``5 6``, ``one and two`` -> ``one and 2``);
    ``hundred``/``thousand``/... with no number before them stay words; a lone ``one`` stays."""
    out: list[str] = []
    seps: list[str] = []
    words: list[str] = []
    total = cur = 0
    last = ""
    prev_scale = 10**13

    def flush() -> None:
        if words:
            out.append("one" if words == ["one"] else str(total + cur))

    for tok in _TOKEN_RE.findall(m.group()):
        if not tok[0].isalpha() or tok == "and":
            seps.append(tok)
            continue
        kind = _kind(tok)
        has_and = any(s.strip() == "and" for s in seps)
        ok = bool(words) and kind in _FOLLOWS[last] and not (has_and and last not in ("hundred", "scale"))
        if ok and kind == "hundred":
            ok = 0 < cur < 100
        if ok and kind == "scale":
            ok = cur > 0 and _SCALES[tok] < prev_scale
        if not ok:
            flush()
            out.append("".join(seps))
            words, total, cur, prev_scale = [], 0, 0, 10**13
            if kind in ("hundred", "scale"):
                out.append(tok)
                seps, last = [], ""
                continue
        seps = []
        words.append(tok)
        if kind in ("unit", "teen", "tens", "zero"):
            cur += _UNITS.get(tok, 0) + _TENS.get(tok, 0)
        elif kind == "hundred":
            cur *= 100
        else:
            total += cur * _SCALES[tok]
            prev_scale, cur = _SCALES[tok], 0
        last = kind
    flush()
    out.append("".join(seps))
    return "".join(out)


def _digit_scale(m: re.Match) -> str:
    value = Decimal(m.group(1))
    for scale in m.group(2).split():
        value *= _SCALES[scale]
    return str(int(value)) if value == value.to_integral_value() else m.group()


def numbers(text: str) -> str:
    """Written-out numbers to digits (lowercase text expected)."""
    if _NUMWORDS_RE.search(text):
        text = _NUMWORDS_RE.sub(_words_to_numbers, text)
    return text


def digit_forms(text: str) -> str:
    """Drop digit-group separators and apply spelled scales to digits (``3 million``)."""
    for _ in range(4):
        new = _SEPARATORS_RE.sub(lambda m: m.group().replace(",", ""), text) if "," in text else text
        new = _DIGIT_SCALE_RE.sub(_digit_scale, new)
        if new == text:
            break
        text = new
    return text


# ---------------------------------------------------------------------------- token level

_PUNCT_RE = re.compile(r"([.!?])[.!?]+|([,;:])\2+|-{2,}")
_WS_RE = re.compile(r"[ \t]{2,}|\t")
_NL_RE = re.compile(r"[ \t]*\n\s*")
_SENT_END_RE = re.compile(r"(?<=[^\d\s.!?][.!?]) (?=\S)")
_SENT_END_NUM_RE = re.compile(r"([^\n\d.]\d+(?:\.\d+)*[.!?]) (?=\S)")  # "is 2. Then", not "\n1. item"
_LIST_ITEM_RE = re.compile(r"(?:[-*+>](?: |$)|#|\d+[.)](?: |$)|\x01)")
_LINE_END_RE = re.compile(r"(?:[^\d\s.!?][.!?]|[^\n\d.]\d+(?:\.\d+)*[.!?]|\x01)$")
# Code spans are stashed behind placeholders while the prose around them is rewritten. They are
# private-use characters because the prose steps delete control characters (an earlier choice of
# \x00/\x01 lost a placeholder and put the next code span in its place); any such character
# already in the text becomes U+FFFD first, so a placeholder is never ambiguous.
_FENCE, _INLINE = "\ue000", "\ue001"


def _punct(m: re.Match) -> str:
    return m.group(1) or m.group(2) or "-"


def _lower_prose(s: str) -> str:
    low = s.lower()
    if low.isascii():
        return low
    for _ in range(4):  # lowercasing can leave non-NFKC / foldable characters (Cherokee, ...)
        nxt = char_level(low).lower()
        if nxt == low:
            break
        low = nxt
    return char_level(low)


def _prose(s: str) -> str:
    s = _lower_prose(s)
    if "--" in s or ".." in s or re.search(r"[!?,;:][.!?,;:]", s):
        s = _PUNCT_RE.sub(_punct, s)
    return numbers(s)


def _join_lines(text: str) -> str:
    """Keep a line break only after a sentence end or a fenced block, before a list item or a
    fenced block, or after a list item's line; join other lines with a space."""
    lines = text.split("\n")
    out = [lines[0]]
    item = bool(_LIST_ITEM_RE.match(lines[0]))
    for ln in lines[1:]:
        prev = out[-1]
        if item or _LIST_ITEM_RE.match(ln) or _LINE_END_RE.search(prev):
            out.append(ln)
            item = bool(_LIST_ITEM_RE.match(ln))
        else:
            out[-1] = prev + " " + ln
    return "\n".join(out)


def token_level(text: str) -> str:
    """Steps 4-7 of the module docstring (``text`` is already at the character level)."""
    codes: list[str] = []

    def stash(m: re.Match) -> str:
        codes.append(m.group())
        return _FENCE if m.group().startswith("```") else _INLINE

    if _FENCE in text or _INLINE in text:
        text = text.replace(_FENCE, "\ufffd").replace(_INLINE, "\ufffd")
    if "`" in text:
        text = CODE_RE.sub(stash, text).replace("`", "'")
    if "," in text:
        text = _SEPARATORS_RE.sub(lambda m: m.group().replace(",", ""), text)
    out: list[str] = []
    pos = 0
    for m in iter_math(text):
        g = m.group()
        if not re.search(r"[\d^]", g):
            continue
        out.append(_prose(text[pos : m.start()]))
        out.append(g)
        pos = m.end()
    out.append(_prose(text[pos:]))
    text = "".join(out)
    text = digit_forms(text)  # again: the prose pass can make new groups ("twelve,345" -> "12,345")
    text = _WS_RE.sub(" ", text)
    if "\n" in text:
        text = _NL_RE.sub("\n", text)
    text = _SENT_END_RE.sub("\n", text)
    text = _SENT_END_NUM_RE.sub(r"\1\n", text)
    text = text.strip(" \n")
    if "\n" in text:
        text = _join_lines(text)
    if codes:
        it = iter(codes)
        text = re.sub(f"[{_FENCE}{_INLINE}]", lambda m: next(it), text)
    return text


def canonicalize(text: str) -> str:
    """The canonical form of ``text`` (see the module docstring). Raises TypeError on non-str."""
    if not isinstance(text, str):
        raise TypeError(f"canonical paraphraser expects str, got {type(text).__name__}; decode bytes first")
    if not text:
        return ""
    return token_level(char_level(text))


class Canonical(Paraphraser):
    name = "canonical"

    def paraphrase(self, cot: str, context: str = "", rng: random.Random | None = None) -> str:
        return canonicalize(cot)


register_paraphraser("canonical")(lambda task: Canonical())
