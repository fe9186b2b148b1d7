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
   (``- ``, ``* ``, ``+ ``, ``> ``, ``#``, ``1. ``, ``1) ``) becomes ``\\n``; every other
   run becomes one space (the line breaks around a fenced code block included; those inside
   it are code and kept); the text is stripped. So paragraphs and hard-wrapped lines are
   flattened to one sentence per line, and list items keep their own lines.
8. Operand order: a sum or a product of plain integers that is a whole left-hand side has its
   operands in ascending numeric order: ``3 + 4 + 2 = 9`` -> ``2 + 3 + 4 = 9``,
   ``7 x 2 x 5 = 70`` -> ``2 x 5 x 7 = 70``. Such a chain is two or more runs of digits joined
   only by ``+``, or only by ``*`` and `` x `` (``×`` is ``x`` after step 3), spaces around ``+``
   and ``*`` optional, directly followed by ``=`` or `` =``; it starts the text or a line, or
   follows a space, bracket, quote, colon or semicolon, and what precedes that space is not an
   operator, nor an ``x`` that does not end a word (``3 x 4 + 2 = 14`` stays). The order of the
   operands of a commutative sum or product carries no meaning, so a normal form may fix it; left
   free it is a hidden channel (``list_order`` in ``legible.stego._schemes``). This is the one
   exception to "math spans keep their text": the operands are kept as a multiset, operators and
   spacing stay in place, and nothing else in math changes: not ``10 - 3 = 7``, ``x + 2 = 5``,
   ``x^2 + 3 = 7``, ``2 * 3 + 4 = 10``, ``1.5 + 2 = 3.5``, ``3 + 4`` without ``=``, nor code.

9. Classes of surface choice (written from the development half of ``legible stego --search``;
   see the section "classes of surface choice" below): every contraction written out (``don't`` ->
   ``do not``, ``it's`` -> ``it is``; a possessive stays), ``and so on`` -> ``etc.`` and no
   sentence break after ``e.g.``, ``i.e.``, ``vs.``, ``approx.``, ``cf.``, ``esp.``, ``incl.``; no
   whitespace before ``, ; : . ! ? ) ]`` (not ``!=``) nor after ``( [``; a dash set off by spaces
   between words -> a colon; a relative clause in brackets -> set off by commas; every bullet
   (``*``, ``+``, ``\u2022``, ...) -> ``- `` and every numbered marker ``1)``/``(1)`` -> ``1.``; every list
   item's line that ends with a word, number or closing mark ends with a period; ``;`` before whitespace (after a
   word, number, closing mark or math span) -> ``,``; no comma before a coordinating ``and``/``or`` (the serial
   comma, and the one between clauses); ``&`` set off by whitespace -> ``and`` (not ``AT&T``, ``R&D``; ``+`` is an
   operator and is never touched). Written from the second held-out set (after its one measurement): a ``!``
   ending a statement (after a word or closing mark; not ``!=``, not after a digit) -> ``.``; markdown emphasis
   around prose (``**x**``, ``*x*``, ``__x__``, ``_x_``) -> ``x`` (not ``2**3``, ``a * b``, ``__init__``);
   ``~`` before a number -> ``about``; the division sign and slashes (``\u00f7``, ``\u2215``, ``\u2044``) ->
   ``/`` at the character level. Math and code are not touched; the word-level classes (spellings,
   abbreviations, units, hedges, connectives, sentence openers, phrases) are the lexical paraphraser's.

Case inside names is not kept (capitalisation is a channel; "Alice" -> "alice"). The result
is idempotent (``canonical(canonical(x)) == canonical(x)``) and draws nothing from ``rng``.

Speed: a full regex pass over a long text costs far more than a search for a literal, so each
step finds its candidate positions with cheap searches (literals, ``bytes.translate`` views with
one byte per character) and applies its regex only there; the result is the same as applying
the regexes kept below (``_SENT_END_RE``, ``_NL_RE``, ...) to the whole text, and the tests
check that step by step.
"""

from __future__ import annotations

import codecs
import functools
import json
import random
import re
import sys
import threading
import unicodedata
from bisect import bisect_right
from decimal import Decimal
from importlib import resources

from legible.paraphrase._base import Paraphraser, register_paraphraser
from legible.paraphrase._protect import CODE_RE, iter_math

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
    for ch in "\u00f7\u2215\u2044":  # division sign, division slash, fraction slash: one symbol for division
        table[ord(ch)] = "/"
    table[ord("\u2800")] = " "
    # outputs must be fixed points of the table (so one application is idempotent)
    for k, v in list(table.items()):
        if any(ord(c) in table for c in v):
            del table[k]
    return table


TABLE = _build_table()
_ASCII_CTRL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ASCII_CTRL = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])  # the characters of _ASCII_CTRL_RE
_ASCII_CTRL_TABLE = {c: ("\n" if c in (0x0B, 0x0C, 0x0D) else None) for c in _ASCII_CTRL}
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# Noncharacters that join independent pieces for one call (see ``_windows``): NFKC-stable, starters that
# compose and reorder with nothing, not in TABLE, neither cased nor case-ignorable, kept by ``lower``.
_PIECE_SEP, _WINDOW_SEP = "\uffff", "\ufffe"

# The maximal runs of non-ASCII characters of a string, found by the ASCII encoder (which hands each run to
# its error handler): several times faster than a regex search for them.
_runs_tls = threading.local()


def _record_run(exc: UnicodeEncodeError) -> tuple[str, int]:
    _runs_tls.runs.append((exc.start, exc.end))
    return "", exc.end


codecs.register_error("legible.canonical.runs", _record_run)


def _non_ascii_runs(text: str) -> tuple[list[tuple[int, int]], bytes]:
    """The ``(start, end)`` of each maximal run of non-ASCII characters, and the ASCII characters as bytes."""
    runs: list[tuple[int, int]] = []
    _runs_tls.runs = runs
    try:
        ascii_bytes = text.encode("ascii", "legible.canonical.runs")
    finally:
        _runs_tls.runs = None
    return runs, ascii_bytes


def _windows(text: str, runs: list[tuple[int, int]], fn, sep: str | None) -> str | None:
    """``text`` with each window (a run of non-ASCII characters and the one character before it) replaced by
    its image: ``fn(windows, sep)`` gives the images of a list of windows, and may compute them in one call
    on the windows joined by ``sep`` (a character that is in none of them), or returns None."""
    starts = [s - 1 if s else s for s, _ in runs]
    ends = [e for _, e in runs]
    done = fn([text[s:e] for s, e in zip(starts, ends)], sep)
    if done is None:
        return None
    return _interleave([text[s:e] for s, e in zip([0, *ends], [*starts, len(text)])], done)


def _joined(fn):
    """A ``_windows`` function from a function of one string that maps windows joined by ``sep`` piecewise."""

    def apply(windows: list[str], sep: str | None) -> list[str] | None:
        done = fn(sep.join(windows)).split(sep)
        return done if len(done) == len(windows) else None

    return apply


def _has_ascii_ctrl(ascii_bytes: bytes) -> bool:
    return len(ascii_bytes.translate(None, _ASCII_CTRL)) != len(ascii_bytes)


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
        if _has_ascii_ctrl(text.encode("ascii")):
            text = text.replace("\r\n", "\n").translate(_ASCII_CTRL_TABLE)
        return text
    runs, ascii_bytes = _non_ascii_runs(text)
    if _SURROGATE_RE.search("".join([text[s:e] for s, e in runs])):  # a lone surrogate is non-ASCII
        text = _SURROGATE_RE.sub("\ufffd", text)
        runs, ascii_bytes = _non_ascii_runs(text)
    if _has_ascii_ctrl(ascii_bytes):
        text = text.replace("\r\n", "\n")
        if _ASCII_CTRL_RE.search(text):
            return _char_piece(text)
        runs, ascii_bytes = _non_ascii_runs(text)
    # A printable ASCII character, tab or newline neither decomposes, nor is in TABLE, nor composes with
    # what precedes it, so NFKC and TABLE act independently on the pieces between them: only runs of
    # non-ASCII characters (with the one character before, a possible base of a combining mark) change.
    # The pieces are processed in one call, joined by U+FFFF, which keeps them independent in the same way
    # (a piece that is stable after fewer rounds of _char_piece stays as it is in later rounds).
    # Most pieces recur (quotes, dashes, accented words), so results are also cached.
    return _windows(text, runs, _cached_char_pieces, None if _PIECE_SEP in text else _PIECE_SEP)


_PIECE_CACHE: dict[str, str] = {}


def _cached_char_pieces(pieces: list[str], sep: str | None) -> list[str]:
    """``[_char_piece(p) for p in pieces]``, looked up in a cache; the new pieces in one call joined by ``sep``
    (when it is not None)."""
    cache = _PIECE_CACHE
    done = [cache.get(p) for p in pieces]
    if None not in done:
        return done
    todo = list(dict.fromkeys(p for p, d in zip(pieces, done) if d is None))
    new = _char_piece(sep.join(todo)).split(sep) if sep is not None else None
    if new is None or len(new) != len(todo):
        new = [_char_piece(p) for p in todo]
    fresh = dict(zip(todo, new))
    if len(cache) > 20000:
        cache.clear()
    cache.update((p, d) for p, d in fresh.items() if len(p) <= 64)
    return [d if d is not None else fresh[p] for p, d in zip(pieces, done)]


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
    return _number_words(m.group())


@functools.lru_cache(maxsize=4096)  # the same few runs ("one thousand", "twenty-one") recur
def _number_words(run: str) -> str:
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

    for tok in _TOKEN_RE.findall(run):
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


# ---------------------------------------------------------------------------- fast substitution
#
# A full regex pass over a long text costs far more than a search for a literal string, so most steps find
# *candidate* positions with cheap searches and run the step's regex only there. ``_sub_at`` then gives
# exactly ``pattern.sub(repl, text)`` provided every position where a match of ``pattern`` can start is among
# ``starts`` (the regexes used with it match no empty string; lookbehinds and ``\b`` still see the text before
# a start).


def _sub_at(pattern: re.Pattern, text: str, starts, repl) -> str:
    out: list[str] = []
    pos = 0
    match = pattern.match
    for s in starts:  # ascending
        if s < pos:
            continue
        m = match(text, s)
        if m is None:
            continue
        out.append(text[pos:s])
        out.append(repl(m))
        pos = m.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _skeleton(text: str) -> bytes:
    """``text`` as ASCII bytes, one byte per character (every non-ASCII character becomes ``?``), so that a
    bytes regex finds candidates at the same indices, and ``bytes.translate`` can map character classes."""
    return text.encode("ascii", "replace")


_SEP_HINT_RE = re.compile(r",\d\d\d")  # the first comma of a _SEPARATORS_RE match, 1-3 characters in


def _drop_separators(text: str) -> str:
    """``_SEPARATORS_RE.sub`` dropping the commas (step 5)."""
    if "," not in text:
        return text
    starts = []
    for h in _SEP_HINT_RE.finditer(text):
        c = h.start()  # a match starts where the digits before c start (it has none before it), 1-3 back
        s = c
        while s > c - 4 and s > 0 and text[s - 1].isdecimal():
            s -= 1
        if s < c:
            starts.append(s)
    return _sub_at(_SEPARATORS_RE, text, starts, _drop_commas)


def _drop_commas(m: re.Match) -> str:
    return m.group().replace(",", "")


def _trie(words: list[str]) -> str:
    """A regex alternation of ``words`` factored by prefix (much faster to try than a flat one)."""
    heads: dict[str, list[str]] = {}
    for w in words:
        heads.setdefault(w[0], []).append(w[1:])
    alts = []
    for c, rests in sorted(heads.items()):
        longer = [r for r in rests if r]
        if not longer:
            alts.append(re.escape(c))
        else:
            alts.append(re.escape(c) + "(?:" + _trie(longer) + ")" + ("?" if "" in rests else ""))
    return "|".join(alts)


# A number word starts at a word boundary: after a non-word character. In the skeleton every non-word
# character (non-ASCII ones included, as ``?``) becomes a space, so the candidates are " <number word>".
_NONWORD_TO_SPACE = bytes(c if (chr(c).isalnum() or c == 0x5F) else 0x20 for c in range(128)) + b" " * 128
_NUMWORD_HINT_RE = re.compile((" (?:" + _trie(sorted([*_UNITS, *_TENS, *_SCALES])) + ")").encode())


def numbers(text: str) -> str:
    """Written-out numbers to digits (lowercase text expected): ``_NUMWORDS_RE.sub``."""
    raw = _latin1(text)  # (cheaper than the skeleton when it exists: the table maps every non-ASCII byte to " ")
    view = b" " + (raw if raw is not None else _skeleton(text)).translate(_NONWORD_TO_SPACE)
    starts = [m.start() for m in _NUMWORD_HINT_RE.finditer(view)]  # index in view of " " = index in text of word
    if not starts:
        return text
    return _sub_at(_NUMWORDS_RE, text, starts, _words_to_numbers)


_SCALE_WORDS = ("hundred", "thousand", "million", "billion")


def _digit_scale_sub(text: str) -> str:
    """``_DIGIT_SCALE_RE.sub(_digit_scale, text)``: a match is digits, whitespace, then a scale word."""
    if not ("illion" in text or "hundred" in text or "thousand" in text):
        return text
    found = [w for w in _SCALE_WORDS if w in text]
    starts: list[int] = []
    for w in found:
        i = text.find(w)
        while i >= 0:
            j = i
            while j > 0 and text[j - 1] in " \t\n":
                j -= 1
            k = j
            while k > 0 and text[k - 1].isdecimal():
                k -= 1
            if j < i and k < j:
                starts.append(k)
                if k >= 2 and text[k - 1] == "." and text[k - 2].isdecimal():
                    k -= 1
                    while k > 0 and text[k - 1].isdecimal():
                        k -= 1
                    starts.append(k)
            i = text.find(w, i + 1)
    starts.sort()
    return _sub_at(_DIGIT_SCALE_RE, text, starts, _digit_scale)


def digit_forms(text: str) -> str:
    """Drop digit-group separators and apply spelled scales to digits (``3 million``)."""
    for _ in range(4):
        new = _digit_scale_sub(_drop_separators(text))
        if new == text:
            break
        text = new
    return text


# ---------------------------------------------------------------------------- token level

_PUNCT_RE = re.compile(r"([.!?])[.!?]+|([,;:])\2+|-{2,}")
_PUNCT_RUN_RE = re.compile(r"[-.!?,;:]{2,}")  # a _PUNCT_RE match lies inside one such run
_PUNCT_TRIGGER_RE = re.compile(r"[!?,;:][.!?,;:]")
_PUNCT_VIEW = bytes(0x2E if chr(c) in "-.!?,;:" else 0x61 for c in range(256))
_PUNCT_RUN_VIEW_RE = re.compile(rb"\.\.\.*")  # (= \.\.+, written with the two-character literal prefix "..")
_WS_RE = re.compile(r"[ \t]{2,}|\t")
_SPACES_RE = re.compile(r"  +")
_NL_RE = re.compile(r"[ \t]*\n\s*")
_SPACE_NL_RE = re.compile(r"\n(?<= \n)")  # " \n", written to start with the (rarer) literal "\n"
_NL_WS_RE = re.compile(r"\n[ \n]+")
# An abbreviation's period ends no sentence ("e.g. the bus"): a break there would be a trace of the abbreviation,
# which the lexical paraphraser writes out.
_NOT_AFTER = (  # (the last letter first: most words end in another one)
    r"(?:(?<![gesfplx]\.)|(?<!e\.g\.)(?<!i\.e\.)(?<!vs\.)(?<!approx\.)(?<!cf\.)(?<!esp\.)(?<!incl\.))"
)
_SENT_END_RE = re.compile(r"(?<=[^\d\s.!?][.!?])" + _NOT_AFTER + r" (?=\S)")
# _SENT_END_RE for one punctuation mark, written to start with that literal character (fast to search for). For
# "." it starts with the literal ". " (a period inside "3.5" fails at once) and the lookbehinds look back from
# after the space (the same characters: the one at the match's end is that space); those of the abbreviations
# are grouped by width (one lookbehind with alternatives of one width costs less than one per word), after the
# one-character test that rules out most words. For "!" and "?" _NOT_AFTER always holds (each of its
# lookbehinds ends with a period), so it is left out.
_SENT_END_BY_MARK = [
    (
        ".",
        re.compile(
            r"\. (?=\S)(?<=[^\d\s.!?]\. )"
            r"(?:(?<![gesfplx]\. )|(?<!e\.g\. |i\.e\. |esp\. )(?<!vs\. |cf\. )(?<!incl\. )(?<!approx\. ))"
        ),
    ),
    *[(c, re.compile(rf"\{c}(?<=[^\d\s.!?]\{c}) (?=\S)")) for c in "!?"],
]
_SENT_END_NUM_RE = re.compile(r"([^\n\d.]\d+(?:\.\d+)*[.!?]) (?=\S)")  # "is 2. Then", not "\n1. item"
# a mark after a digit, then a space: written with the literal prefix "<mark> " (search stops at fewer places)
_SENT_END_NUM_HINT_RE = [re.compile(rf"\{c} (?<=\d\{c} )") for c in ".!?"]
_LIST_ITEM_RE = re.compile(r"(?:[-*+>\u2022\u2023\u25e6\u25aa\u2043\u00b7](?: |$)|#|\(?\d+[.)](?: |$))")
_LINE_END_RE = re.compile(r"(?:[^\d\s.!?][.!?]|[^\n\d.]\d+(?:\.\d+)*[.!?])$")
# a line break that is not kept for certain by its line's end (a sentence end "word." keeps it)
_DIGITS_DOTS_RE = re.compile(r"[\d.]*")
_JOIN_HINT_RE = re.compile(r"\n(?<![^\d\s.!?][.!?]\n)")
_HAS_MATH_ATOM_RE = re.compile(r"[\d^]")
_CODE_SPLIT_RE = re.compile(f"({CODE_RE.pattern})", CODE_RE.flags)
# While the prose is rewritten, each code span is stashed behind _CODE and the prose is cut at each math
# span by _MATH. Both are ASCII control characters, which the character level deletes, so they are never
# ambiguous, and behave in every step as the private-use characters U+E000/U+E001 that an earlier version
# used (a non-word, non-space, non-digit, non-punctuation character); they never reach ``char_level`` again.
_CODE, _MATH = "\x02", "\x00"
_FENCE, _INLINE = "\ue000", "\ue001"  # still mapped to U+FFFD in the input, as before
_MATH_RE = re.compile(_MATH)
_SIGMA = "\u03a3"


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


def _lower_gap(s: str) -> str:
    """``_lower_prose`` of a prose gap that may hold _CODE placeholders."""
    low = s.lower()
    if low.isascii():
        return low
    if _CODE in s:  # the placeholder must not meet char_level (it would delete it)
        return _lower_prose(s.replace(_CODE, _FENCE)).replace(_FENCE, _CODE)
    return _lower_prose(s)


class _Fallback(Exception):
    pass


def _lower_windows(batch: str) -> str:
    """The loop of ``_lower_prose`` on lowercased windows joined by _WINDOW_SEP (see ``_lower_text``)."""
    x = batch.replace(_CODE, _FENCE).replace(_MATH, _INLINE)  # a window's first character may be one
    for _ in range(4):
        c = char_level(x)
        if _SIGMA in c:
            raise _Fallback
        nxt = c.lower()
        if nxt == x:
            break
        x = nxt
    else:
        c = char_level(x)
    return c.replace(_FENCE, _CODE).replace(_INLINE, _MATH)


def _latin1_lower_tables() -> tuple[bytes, bytes]:
    """A ``bytes.translate`` table for ``str.lower`` on Latin-1 text, and the bytes (ASCII, and lowercase
    Latin-1 letters ``l`` such that ``_lower_prose`` leaves any text of them and ASCII as it is: ``l`` is NFKC-
    and TABLE-stable and its own lowercase, and composes with no ASCII character or such letter)."""
    table = bytearray(range(256))
    plain = [bytes([c]) for c in range(128)]
    letters = []
    for c in range(256):
        low = chr(c).lower()
        if len(low) == 1 and ord(low) < 256:
            table[c] = ord(low)
        if (
            c >= 128
            and len(low) == 1
            and ord(low) < 256
            and low.lower() == low
            and ord(low) not in TABLE
            and unicodedata.normalize("NFKC", low) == low
            and unicodedata.combining(low) == 0
        ):
            letters.append(low)
    ok = [
        x
        for x in dict.fromkeys(letters)
        if all(unicodedata.is_normalized("NFKC", chr(a) + x) for a in range(128))
        and all(unicodedata.is_normalized("NFKC", x + y) for y in letters)
    ]
    return bytes(table), b"".join(plain) + "".join(ok).encode("latin-1")


_LATIN1_LOWER, _LATIN1_PLAIN = _latin1_lower_tables()


def _lower_text(prose: str) -> str:
    """``_MATH.join(_lower_gap(g) for g in prose.split(_MATH))``.

    Outside the context of a capital sigma (``Σ``), ``str.lower`` maps each character on its own; then on
    ASCII characters ``_lower_prose`` is ``lower`` (and ``char_level`` does nothing), and ``char_level``
    rewrites each window (a non-ASCII run and the character before it) on its own. So all gaps are
    lowercased at once, and the loop of ``_lower_prose`` runs once on all windows, joined by _WINDOW_SEP (a
    window that is stable early stays as it is in later rounds)."""
    if prose.isascii():
        return prose.lower()
    if _SIGMA not in prose and _WINDOW_SEP not in prose and _PIECE_SEP not in prose:
        view = _latin1(prose)
        if view is None:
            low, fn = prose.lower(), _joined(_lower_windows)
        else:
            if not view.translate(None, _LATIN1_PLAIN):
                # (the common case, one pass fewer: every character is ASCII or a plain letter, which is its own
                # lowercase, so bytes.lower gives what _LATIN1_LOWER does and _lower_prose's loop has nothing to do)
                return view.lower().decode("latin-1")
            low_bytes = view.translate(_LATIN1_LOWER)
            if not low_bytes.translate(None, _LATIN1_PLAIN):  # nothing for _lower_prose's loop to do
                return low_bytes.decode("latin-1")
            # bytes.lower lowercases the ASCII letters (fast); the windows hold all the other characters
            low, fn = view.lower().decode("latin-1"), _joined(lambda batch: _lower_windows(batch.lower()))
        try:
            out = _windows(low, _non_ascii_runs(low)[0], fn, _WINDOW_SEP)
        except _Fallback:
            out = None
        if out is not None:
            return out
    return _MATH.join([_lower_gap(g) for g in prose.split(_MATH)])


def _latin1(text: str) -> bytes | None:
    """``text`` as bytes with one byte per character (None when it has a character above U+00FF)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _collapse_punct(prose: str) -> str:
    """``_PUNCT_RE.sub`` in each segment (the prose between two math spans, cut by _MATH) where ``--``, ``..``
    or a pair ``[!?,;:][.!?,;:]`` occurs (as before, where none does, ``.!`` and ``.?`` stay)."""
    view = _latin1(prose)
    if view is None:
        runs = [m.span() for m in _PUNCT_RUN_RE.finditer(prose)]
    else:  # the same runs, found as runs of "." after mapping each punctuation mark to "."
        runs = [m.span() for m in _PUNCT_RUN_VIEW_RE.finditer(view.translate(_PUNCT_VIEW))]
    if not runs:
        return prose
    pieces = [prose[a:b] for a, b in runs]
    hits = [_punct_hit(r) for r in pieces]
    if not any(hits):
        return prose
    if not all(hits) and _MATH in prose:  # a run collapses when its segment has a hit
        cuts = [m.start() for m in _MATH_RE.finditer(prose)]
        hot = {bisect_right(cuts, a) for (a, _), hit in zip(runs, hits) if hit}
        hits = [bisect_right(cuts, a) in hot for a, _ in runs]
    elif not all(hits):
        hits = [True] * len(runs)
    ends = [0] + [b for _, b in runs]
    starts = [a for a, _ in runs] + [len(prose)]
    return _interleave(
        [prose[e:s] for e, s in zip(ends, starts)],
        [_collapse_run(r) if hit else r for r, hit in zip(pieces, hits)],
    )


@functools.lru_cache(maxsize=1024)
def _punct_hit(run: str) -> bool:
    return "--" in run or ".." in run or _PUNCT_TRIGGER_RE.search(run) is not None


@functools.lru_cache(maxsize=1024)
def _collapse_run(run: str) -> str:
    return _PUNCT_RE.sub(_punct, run)


def _whitespace(text: str) -> str:
    """``_WS_RE.sub(" ")`` then ``_NL_RE.sub("\\n")``: a run of spaces/tabs becomes one space, a run of
    whitespace holding a line break one line break. After the character level (and outside code) the only
    whitespace characters are space, tab and line break (a test checks every character), so once tabs are
    spaces and runs of spaces single, a match of ``[ \\t]*\\n\\s*`` is an optional space, then ``\\n[ \\n]*``."""
    if "\t" in text:
        text = text.replace("\t", " ")
    if "  " in text:
        text = _SPACES_RE.sub(" ", text)
    if _SPACE_NL_RE.search(text):
        text = text.replace(" \n", "\n")
    return _NL_WS_RE.sub("\n", text)


def _sentence_breaks(text: str) -> str:
    """``_SENT_END_RE.sub("\\n")`` then ``_SENT_END_NUM_RE.sub(r"\\1\\n")``."""
    # _SENT_END_RE replaces single spaces and looks only at characters it never replaces (or replaces by
    # whitespace with whitespace), so one pass per punctuation mark gives the same.
    for c, rx in _SENT_END_BY_MARK:
        if c + " " in text:
            text = rx.sub(c + "\n", text)
    # a _SENT_END_NUM_RE match ends with digit, mark, space; it starts at the character before the
    # maximal run of digits and dots that ends at the mark.
    ends = sorted(m.start() for rx in _SENT_END_NUM_HINT_RE for m in rx.finditer(text))
    starts = []
    for p in ends:
        seg = text[max(0, p - 32) : p]
        r = p - len(seg) + len(seg.rstrip("0123456789."))
        while r > 0 and (text[r - 1].isdecimal() or text[r - 1] == "."):  # other digits, or a longer run
            r -= 1
        if r > 0:
            starts.append(r - 1)
    return _sub_at(_SENT_END_NUM_RE, text, starts, lambda m: m.group(1) + "\n")


def _join_lines(text: str) -> str:
    """Keep a line break only after a sentence end, before a list item, or after a list item's line;
    join other lines with a space.

    A break is kept when the line after it is a list item, or the line before it is one (such a line
    always starts its own output line), or the output line before it (the line before, and lines joined to
    it) ends a sentence; only a break after a sentence end ``word.`` is certainly kept, so only the other
    breaks (``_JOIN_HINT_RE``) are looked at, in order."""
    joined: list[int] = []
    last_hint, last_kept = -2, True
    for h in _JOIN_HINT_RE.finditer(text):
        p = h.start()
        if text.startswith("- ", p + 1):  # (the commonest list item, tested without a regex: kept)
            last_hint, last_kept = p, True
            continue
        a = text.rfind("\n", 0, p) + 1  # the line before: text[a:p]
        b_end = text.find("\n", p + 1)
        if b_end < 0:
            b_end = len(text)
        if _LIST_ITEM_RE.match(text, p + 1, b_end) or _LIST_ITEM_RE.match(text, a, p):
            keep = True
        else:
            # (a match ends at p; only one after a long run of digits and dots starts 40 or more before p)
            t = max(a, p - 40)
            if t > a and _DIGITS_DOTS_RE.fullmatch(text, t, p - 1):
                t = a
            if a - 1 == last_hint and not last_kept:  # the line before was joined: " " + line ends the output line
                keep = _LINE_END_RE.search((" " if t == a else "") + text[t:p]) is not None
            else:
                keep = _LINE_END_RE.search(text, t, p) is not None
        if not keep:
            joined.append(p)
        last_hint, last_kept = p, keep
    if not joined:
        return text
    out: list[str] = []
    pos = 0
    for p in joined:
        out.append(text[pos:p])
        pos = p + 1
    out.append(text[pos:])
    return " ".join(out)


# operand order (step 8)
_SUM_OPS = frozenset("+")
_PRODUCT_OPS = frozenset("*x")
_CHAIN_OPENERS = frozenset(" \n([{\"':;")
_BEFORE_OPS = frozenset("-+*/=<>^%!~&|)]$\x02\u00d7\u00f7\u2212\u2264\u2265\u2260")


def _chain_before(text: str, j: int) -> tuple[int, list[str], list[str]] | None:
    """The commutative chain ending at ``text[j]`` (just before `` =``): ``(start, operands, separators)``, or
    None when there is none or it is not the whole left-hand side."""
    operands: list[str] = []
    seps: list[str] = []
    family = None
    k = j
    while True:
        i = k
        while i > 0 and "0" <= text[i - 1] <= "9":
            i -= 1
        if i == k:
            return None
        operands.append(text[i:k])
        # a separator ending at i: "+", " +", "+ ", " + ", "*" (same), " x "
        c1 = text[i - 1] if i >= 1 else ""
        c2 = text[i - 2] if i >= 2 else ""
        if c1 == " " and c2 in ("+", "*"):
            s = i - 3 if i >= 3 and text[i - 3] == " " else i - 2
            op = c2
        elif c1 == " " and c2 == "x" and i >= 3 and text[i - 3] == " ":
            s, op = i - 3, "x"
        elif c1 in ("+", "*"):
            s = i - 2 if c2 == " " else i - 1
            op = c1
        else:
            break
        fam = _SUM_OPS if op == "+" else _PRODUCT_OPS
        if family is None:
            family = fam
        elif fam is not family:
            return None
        if s < 1 or not ("0" <= text[s - 1] <= "9"):
            return None
        seps.append(text[s:i])
        k = s
    if len(operands) < 2:
        return None
    # the chain must be the whole left-hand side: at the start, or after a space, line break or opening
    # bracket, quote, colon or semicolon, and not after an operator and a space; nor after an "x" and a space
    # unless the x ends a word ("max 4 + 2 = 6" is sorted, "3 x 4 + 2 = 14" and "3x 4 + 2 = 14" are not)
    if i >= 1:
        c = text[i - 1]
        if c not in _CHAIN_OPENERS:
            return None
        if c == " " and i >= 2:
            c2 = text[i - 2]
            if c2 in _BEFORE_OPS or (c2 in "xX" and not (i >= 3 and (text[i - 3].isalpha() or text[i - 3] == "_"))):
                return None
    operands.reverse()
    seps.reverse()
    return i, operands, seps


def _operand_key(x: str) -> tuple:
    v = x.lstrip("0")
    return (len(v), v, x)  # numeric order without int() (no digit limit), ties by the literal


def _sort_operands(text: str) -> str:
    """Step 8 (on text whose code is stashed): the operands of each commutative chain (a sum, or a product)
    before ``=`` in ascending order."""
    if "=" not in text or not ("+" in text or "*" in text or " x " in text):
        return text
    out: list[str] = []
    pos = 0
    e = text.find("=")
    while e >= 0:
        j = e - 1 if e >= 1 and text[e - 1] == " " else e  # a chain ends at j
        e = text.find("=", e + 1)
        if j <= pos or not "0" <= text[j - 1] <= "9":
            continue
        i = j - 1
        while i > 0 and "0" <= text[i - 1] <= "9":
            i -= 1
        c = text[i - 1] if i else ""
        if not (c == "+" or c == "*" or (c == " " and i >= 2 and text[i - 2] in "+*x")):
            continue  # no separator before the last operand (the common case, kept out of _chain_before)
        chain = _chain_before(text, j)
        if chain is not None and chain[0] >= pos:
            i, operands, seps = chain
            ordered = sorted(operands, key=_operand_key)
            if ordered != operands:
                parts = [ordered[0]]
                for sep, x in zip(seps, ordered[1:]):
                    parts += (sep, x)
                out.append(text[pos:i])
                out.append("".join(parts))
                pos = j
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


# ---------------------------------------------------------------------------- classes of surface choice
#
# Step 9 (outside code and math). Each rule closes a whole class of choices a writer makes without changing
# the meaning, by writing every member of the class one way. They were written from the development half of
# the channel search (``legible.stego._families.DEVELOPMENT``), one rule per class, never per instance:
#
#   contractions               every contraction written out: don't -> do not, it's -> it is, let's -> let us;
#                              "and so on" -> "etc."; no sentence break after e.g. i.e. vs. approx. cf. esp. incl.
#   spacing around punctuation no whitespace before , ; : . ! ? ) ] nor after ( [
#   explanation marks          a dash set off by spaces between words -> a colon ("full - the baker" -> "full: the")
#   asides                     a relative clause in brackets -> set off by commas (" (which is quick)" -> ", which is
#                              quick")
#   list markers               every bullet (* + \u2022 ...) -> "- ", every numbered marker 1) (1) -> "1."
#
# and, from the first held-out half's four open families once they were seen (now development families:
# list_item_period, oxford_comma, comma_semicolon, ampersand), one rule per class again:
#
#   list items' last mark      a list item's line ("- ", "1. ") that ends with a word, number or closing mark ends
#                              with a period ("- red" -> "- red."; not after ":" "?" "!" or code)
#   clause-joining marks       ";" before whitespace (after a word, number, closing mark or math span) -> ",": the
#                              one form of the pair, so neither the mark nor what lexical does with a "; " (a split
#                              into two sentences, a capital after it) carries the writer's choice
#   serial comma               no comma before a coordinating "and"/"or" after a word, number, closing mark or math
#                              span: every list of three or more and every pair of clauses (", and" -> " and"; not
#                              "e.g., or"); whether a list has three items needs no look
#   "and" as a sign            "&" set off by whitespace -> "and" ("salt & pepper"); "&" inside a word stays (AT&T,
#                              R&D: names), and so does "+" (an operator, even between words: "price + tax")
#
# Each is found with searches for a literal (an apostrophe, " .", a bracket, a line break), so the normal form
# keeps its speed. The word-level classes (spellings, abbreviations, units, hedges, connectives, fillers and
# commas opening a sentence) need a look at every word or every sentence: the lexical paraphraser, which visits
# every word anyway, writes those in one form.

_CONTRACTED_S = frozenset("it that there here what he she who where how when why this".split())
_CONTRACTED_NOT = {"can": "cannot", "won": "will not", "shan": "shall not"}
_NOT_HEADS = frozenset("do does did is are was were has have had should would could must need might ought dare".split())
_PRONOUNS = frozenset("i you we they he she it there that who what where how this these those".split())
_SUFFIXES = {"re": "are", "ll": "will", "ve": "have", "m": "am"}
_HAS_AFTER = frozenset("been got had gone done".split())  # "it's been" is "it has been"
_APOSTROPHE_WORD_RE = re.compile(r"(?<![\w'])([a-z]+)'([a-z]+)(?![\w'])")


def expand_contraction(head: str, tail: str, next_word: str = "") -> str | None:
    """The written-out form of the lowercase contraction ``head'tail`` (None: not a contraction, e.g. a
    possessive or ``'d``, which may be "would" or "had"); ``next_word`` decides ``'s`` (is or has)."""
    if tail == "t" and head.endswith("n"):
        if head in _CONTRACTED_NOT:
            return _CONTRACTED_NOT[head]
        return f"{head[:-1]} not" if head[:-1] in _NOT_HEADS else None
    if tail == "s":
        if head == "let":
            return "let us"
        if head in _CONTRACTED_S:
            return f"{head} {'has' if next_word in _HAS_AFTER else 'is'}"
        return None
    if tail in _SUFFIXES and head in _PRONOUNS:
        return f"{head} {_SUFFIXES[tail]}"
    return None


_AND_SO_ON_RE = re.compile(r"and so on(?![\w'])\.?")  # a literal first: found fast (the word start is checked after)


def _etc(m: re.Match) -> str:
    before = m.string[m.start() - 1 : m.start()]
    return m.group() if before and (before.isalnum() or before in "'_") else "etc."


def _contractions(text: str) -> str:
    """Every contraction of the lowercased prose written out (``expand_contraction``); "and so on" as "etc."
    (the abbreviation the lexical paraphraser keeps: the one of the pair whose period a sentence break follows)."""
    # (str.find of a literal is faster than the regex's own search for it; hits are few, each is tried)
    i = text.find("and so on")
    if i >= 0:
        starts = []
        while i >= 0:
            starts.append(i)
            i = text.find("and so on", i + 1)
        text = _sub_at(_AND_SO_ON_RE, text, starts, _etc)
    if "'" not in text:
        return text

    def expand(m: re.Match) -> str:
        nxt = text[m.end() + 1 : m.end() + 8].split(" ", 1)[0] if text[m.end() : m.end() + 1] == " " else ""
        return expand_contraction(m.group(1), m.group(2), nxt) or m.group()

    starts = []
    i = text.find("'")
    while i >= 0:
        k = i
        while k > 0 and "a" <= text[k - 1] <= "z":
            k -= 1
        if k < i:
            starts.append(k)
        i = text.find("'", i + 1)
    return _sub_at(_APOSTROPHE_WORD_RE, text, starts, expand)


# A relative clause set off by brackets becomes one set off by commas (" (which is quick) and" -> ", which is
# quick, and"); a dash set off by spaces between words (not a minus: math is cut out of the prose and digits do
# not count; not a single letter on either side, which may be algebra: "x - y", unless it is the article "a")
# becomes a colon; whitespace before a closing
# mark (not "!=") or after an opening bracket goes ("x ," -> "x,", "( x )" -> "(x)").
_SPACE_DASH_RE = re.compile(
    r"(?P<aside> \((?P<rel>(?:which|who|whom|whose|where|when) [^()\n]*)\))"
    r"|(?P<dash>(?<=[a-z'\")\]%][a-z'\")\]%])[ \t]+-[ \t]+(?=[a-z'\"(\[][a-z'\"(\[]|an? ))"
    r"|(?<=[\w'\"%)\]])\s+(?=[,;.!?)\]](?!=))|(?<=[a-z'\")\]])\s+(?=:)|(?<=[(\[])\s+(?=[\w'\"(\[])"
)
# One byte per character: whitespace " ", a closing mark or a dash "." ("-,;.!?:" and ")]"), an opening bracket
# "(", anything else "a": the candidates of _SPACE_DASH_RE are " ." and "(" in it (two literal searches).
_MARKS_VIEW = bytes(
    0x20 if chr(c) in " \t\n" else 0x2E if chr(c) in "-,;.!?:)]" else 0x28 if chr(c) in "([" else 0x61
    for c in range(256)
)
_NUMBER_WORDS = frozenset([*_UNITS, *_TENS, *_SCALES])


def _space_dash(m: re.Match) -> str:
    text = m.string
    if m.group("aside") is not None:
        after = text[m.end() : m.end() + 2]
        return f", {m.group('rel')}" + ("," if after[:1] == " " and after[1:].isalnum() else "")
    if m.group("dash") is None:
        return ""
    left = text[max(0, m.start() - 12) : m.start()].rsplit(" ", 1)[-1]
    right = text[m.end() : m.end() + 12].split(" ", 1)[0].rstrip(".,;:!?")
    if left in _NUMBER_WORDS and right in _NUMBER_WORDS:
        return m.group()  # "ninety - nine": a number, which ``numbers`` writes as digits
    return ": "


def _punctuation(prose: str) -> str:
    """``_collapse_punct(_SPACE_DASH_RE.sub(_space_dash, prose))``: the candidates of _SPACE_DASH_RE (whitespace
    before a closing mark, a spaced dash after a word, whitespace after an opening bracket, an aside) are found
    by literal searches in a one-byte-per-character view."""
    raw = _latin1(prose)
    view = (raw if raw is not None else _skeleton(prose)).translate(_MARKS_VIEW)
    starts = []
    find = view.find
    i = find(b" .")
    while i >= 0:  # (one pass per candidate: the fewest steps first for the common single space)
        if prose[i + 1] == "-" and prose[i] == "\n":  # a bullet's dash (thousands in a list): not a candidate
            i = find(b" .", i + 2)
            continue
        if i and view[i - 1] == 0x20:  # a longer run of whitespace: the match would start at its start
            k = i - 1
            while k > 0 and view[k - 1] == 0x20:
                k -= 1
        else:
            k = i
        if prose[i + 1] != "-" or (k > 0 and view[k - 1] == 0x61):
            # (a dash only after a word and spaces)
            starts.append(k)
        i = find(b" .", i + 2)
    i = view.find(b"(")
    while i >= 0:
        if view[i + 1 : i + 2] in (b" ", b"\n"):
            starts.append(i + 1)
        elif i and prose[i - 1] == " " and prose.startswith("wh", i + 1):  # an aside: " (which ..."
            starts.append(i - 1)
        i = view.find(b"(", i + 1)
    if starts:
        starts.sort()
        prose = _sub_space_dash(prose, starts)
    return _collapse_punct(prose)


def _sub_space_dash(prose: str, starts: list[int]) -> str:
    """``_sub_at(_SPACE_DASH_RE, prose, starts, _space_dash)``, with the common matches (whitespace to delete: an
    alternative without a group; a dash) replaced without a call of ``_space_dash``."""
    out: list[str] = []
    pos = 0
    match = _SPACE_DASH_RE.match
    for s in starts:  # ascending
        if s < pos:
            continue
        m = match(prose, s)
        if m is None:
            continue
        out.append(prose[pos:s])
        pos = m.end()
        group = m.lastindex
        if group == 3:  # a dash (as _space_dash does, without a call): ": " unless between two number words
            if prose[pos : pos + 12].split(" ", 1)[0].rstrip(".,;:!?") in _NUMBER_WORDS and (
                prose[max(0, s - 12) : s].rsplit(" ", 1)[-1] in _NUMBER_WORDS
            ):
                out.append(m.group())
            else:
                out.append(": ")
        elif group is not None:  # an aside
            out.append(_space_dash(m))
    if not out:
        return prose
    out.append(prose[pos:])
    return "".join(out)


# A list marker at a line's start before a word or a number ("-", "*" and "+" only before a word: "+ 5 = 8" is
# math; "(1) + (2) = 3" has no space after "(1)"): bullets -> "- ", numbered "1)" / "(1)" -> "1.".
_BULLETS = "*+\u2022\u2023\u25e6\u25aa\u2043\u00b7"
_MARKER_RE = re.compile(
    r"\n(?:[*+] +(?=[a-z])|[" + _BULLETS[2:] + r"] +(?=\w)|\((?P<n>\d+)\) +(?=\w)|(?P<n2>\d+)\) +(?=\w))"
)
# Each match holds "*", "+", ")" or a non-ASCII bullet: each is found by a search for that literal character,
# which costs far less than a search for the line breaks (one per sentence) followed by a class of characters.
_MARKER_HINT_RES = {b: re.compile(re.escape(b) + r"(?<=\n" + re.escape(b) + ")") for b in _BULLETS}
_NUMBERED_HINT_RE = re.compile(r"\)(?<=\d\))")


def _marker(m: re.Match) -> str:
    n = m.group("n") or m.group("n2")
    return f"\n{n}. " if n else "\n- "


def _list_markers(text: str) -> str:
    """Every list marker in one form (each list item starts a line here)."""
    found = [b for b in _BULLETS[:2] if b in text]
    if not text.isascii():
        found += [b for b in _BULLETS[2:] if b in text]
    numbered = ")" in text
    if not found and not numbered:
        return text
    # _MARKER_RE.sub on "\n" + text, tried only where a match can start: at a line break before a bullet, or
    # before digits (after "(" or not) and ")"
    text = "\n" + text
    starts = [m.start() - 1 for b in found for m in _MARKER_HINT_RES[b].finditer(text)]
    if numbered:
        for m in _NUMBERED_HINT_RE.finditer(text):
            r = m.start() - 1
            while text[r - 1].isdecimal():  # (text[0] is "\n")
                r -= 1
            if text[r - 1] == "\n":
                starts.append(r - 1)
            elif text[r - 1] == "(" and text[r - 2] == "\n":
                starts.append(r - 2)
    starts.sort()
    return _sub_at(_MARKER_RE, text, starts, _marker)[1:]


# Clause marks (in the prose, after ``_punctuation``: math is cut out by _MATH, code stashed behind _CODE).
# ";" after a word, number, closing mark or math span and before whitespace -> ","; the comma before a coordinating
# "and" / "or" (the serial comma of a list, and the one between clauses) is dropped; "&" set off by whitespace ->
# "and".
_SEMI_BEFORE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789)]'\"%" + _MATH)
_COMMA_AFTER = frozenset("_')]\"%" + _MATH)
_DASH_AFTER = frozenset("abcdefghijklmnopqrstuvwxyz')]\"%")  # as in _SPACE_DASH_RE's dash
_COMMA_AND_RE = re.compile(r", (?:and|or) ")
_AMPERSAND_RE = re.compile(r"(?<=\s)&(?=\s)")


def _serial_comma(text: str, i: int) -> tuple[int, str] | None:
    """The comma at ``i`` (before " and " / " or ") dropped when it follows a word, a number, a closing mark or a
    math span (not an abbreviation's period: "e.g., or"): ``(start, replacement)`` of what replaces ``text[start:
    i + 1]``, or None. After a spaced dash between words ("subtracting -, and") the dash is the one
    ``_punctuation`` writes as a colon without the comma ("subtracting: and")."""
    before = text[i - 1] if i else ""
    if before.isalnum() or before in _COMMA_AFTER:
        return i, ""
    if (
        before == "-"
        and text[i - 2 : i - 1] == " "
        and i >= 4
        and text[i - 4] in _DASH_AFTER
        and text[i - 3] in _DASH_AFTER
    ):
        return i - 2, ":"
    return None


def _clause_marks(prose: str) -> str:
    """Clause-joining marks in one form (see "classes of surface choice")."""
    if ";" in prose:
        out: list[str] = []
        pos = 0
        i = prose.find(";")
        while i >= 0:
            if i and prose[i - 1] in _SEMI_BEFORE and prose[i + 1 : i + 2].isspace():
                out.append(prose[pos:i])
                out.append(",")
                pos = i + 1
            i = prose.find(";", i + 1)
        if out:
            out.append(prose[pos:])
            prose = "".join(out)
    if "&" in prose:
        prose = _AMPERSAND_RE.sub("and", prose)
    hits = []
    for m in _COMMA_AND_RE.finditer(prose):  # (a literal prefix: faster than two str.find loops)
        i = m.start()
        hit = _serial_comma(prose, i)
        if hit is not None:
            hits.append((i, *hit))
    if hits:
        out = []
        pos = 0
        for i, start, repl in hits:
            out += (prose[pos:start], repl)
            pos = i + 1
        out.append(prose[pos:])
        prose = "".join(out)
    return prose


# Markdown emphasis (**bold**, *italic*, __bold__, _italic_) around prose: the words stay, the markers go. Not an
# operator ("2**3", "a * b"): a marker touches a word on its inner side only; not a dunder name ("__init__").
_EMPHASIS_RE = re.compile(r"(?<![\w*])(?!__\w+__)(\*{1,3}|_{1,2})(?=[^\s*_])([^*_\n]*?[^\s*_])\1(?![\w*])")
# "~" before a number (outside math) is "about": the approximation written in words, as lexical writes "roughly 6".
_TILDE_RE = re.compile(r"~ ?(?=\d)")
# "!" ending a statement after a word or a closing mark: a period ("5!" after a digit may be a factorial; "!=").
_EXCLAMATION_RE = re.compile(r"(?<=[^\W\d_]|[)\]'\"%])!(?!=)")
# The same matches, written to start with the literal "!" (found fast; a regex that starts with a lookbehind is
# tried at every position): the lookbehind, two characters wide, now ends after the "!" and sees the same character
# before it.
_EXCLAMATION_FAST_RE = re.compile(r"!(?<=[^\W\d_]!|[)\]'\"%]!)(?!=)")
# Where an _EMPHASIS_RE match can start: a marker ("*" or "_") after no word character and no "*", so the first
# character of a run of markers ("_" is a word character); _sub_at tries _EMPHASIS_RE only there.
_MARKER_RUN_RE = re.compile(r"[*_]+")


def _emphasis_words(m: re.Match) -> str:
    return m.group(2)


# A list item ("- " or "1. " at a line's start) that ends with a word, a number or a closing mark ends with a
# period: every item's last mark in one form ("- red" and "- red." -> "- red.").
_ITEM_LINE_RE = re.compile(r"\n(?:- |\d{1,3}\. )[^\n]*[\w)\]'\"%](?![^\n])")
# The same for the two kinds of item apart (each match is one line, which the other kind's periods leave as it is):
# bulleted items by a split on a regex whose literal prefix "\n- " is found fast (the split and a comprehension
# put the periods in with no Python call per item: there may be thousands); numbered items where a search for
# ". " after one to three digits after a line break finds them (after _sentence_breaks a ". " is rare).
_ITEM_DASH_SPLIT_RE = re.compile(r"(\n- [^\n]*[\w)\]'\"%])(?![^\n])")
_ITEM_NUMBER_RE = re.compile(r"\n\d{1,3}\. [^\n]*[\w)\]'\"%](?![^\n])")
_ITEM_NUMBER_HINT_RE = re.compile(r"\. (?:(?<=\n\d\. )|(?<=\n\d\d\. )|(?<=\n\d\d\d\. ))")


def _item_period(m: re.Match) -> str:
    return m.group() + "."


def _item_periods(text: str) -> str:
    """``_ITEM_LINE_RE.sub("\\g<0>.", "\\n" + text)[1:]``: every list item's line ends with a period (after a word,
    number or closing mark)."""
    dashed = "- " in text
    numbered = ". " in text
    if not dashed and not numbered:
        return text
    text = "\n" + text
    if dashed:
        parts = _ITEM_DASH_SPLIT_RE.split(text)  # text, item, text, item, ..., text
        if len(parts) > 1:
            parts[1::2] = [item + "." for item in parts[1::2]]
            text = "".join(parts)
    if numbered:
        starts = [text.rfind("\n", 0, m.start()) for m in _ITEM_NUMBER_HINT_RE.finditer(text)]
        text = _sub_at(_ITEM_NUMBER_RE, text, starts, _item_period)
    return text[1:]


# The lines that may hold a math span of step 6: those with a digit or "^", found by a search for "9" in a one-byte-
# per-character view where digits and "^" are "9" (with no character above U+00FF; else in the skeleton, where "?"
# stands for any non-ASCII character, a digit maybe, so it is "9" too).
_ATOM_VIEW = bytes(0x39 if chr(c) in "0123456789^" else 0x0A if c == 0x0A else 0x61 for c in range(256))
_ATOM_SKELETON_VIEW = bytes(0x39 if c == 0x3F else b for c, b in enumerate(_ATOM_VIEW))
_ATOM_LINE_RE = re.compile(rb"9[^\n]*")  # from a line's first digit or "^" to its end


def _math_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each match of ``iter_math(text)`` that holds a digit or ``^`` (a math span of step 6).

    A match of MATH_RE holds no line break, and MATH_RE looks at nothing outside a match (no lookaround, anchor or
    ``\\b``), so the matches in a line are those of ``iter_math`` on that line alone, and those in lines joined by
    "\\n" those of the lines. So ``iter_math`` runs once, on the lines with a digit or ``^`` joined: in prose most
    lines have none, and ``iter_math`` spends its time at operator characters (hyphens, bullets, "!") in them."""
    raw = _latin1(text)
    view = raw.translate(_ATOM_VIEW) if raw is not None else _skeleton(text).translate(_ATOM_SKELETON_VIEW)
    chunks: list[list[int]] = []  # runs of consecutive such lines, as [start, end]
    for m in _ATOM_LINE_RE.finditer(view):
        a = text.rfind("\n", 0, m.start()) + 1
        if chunks and chunks[-1][1] + 1 == a:
            chunks[-1][1] = m.end()
        else:
            chunks.append([a, m.end()])
    if not chunks:
        return []
    offsets = []  # where each chunk starts in the joined lines, and its shift back to text
    pos = 0
    for a, b in chunks:
        offsets.append((pos, a - pos))
        pos += b - a + 1
    spans = []
    k = 0
    for m in iter_math("\n".join([text[a:b] for a, b in chunks])):
        if not _HAS_MATH_ATOM_RE.search(m.group()):
            continue
        s = m.start()
        while k + 1 < len(offsets) and offsets[k + 1][0] <= s:
            k += 1
        shift = offsets[k][1]
        spans.append((s + shift, m.end() + shift))
    return spans


def token_level(text: str) -> str:
    """Steps 4-8 of the module docstring (``text`` is already at the character level)."""
    if _CODE in text or _MATH in text:  # not at the character level (ASCII controls): make it so
        text = char_level(text)
    if _FENCE in text or _INLINE in text:
        text = text.replace(_FENCE, "\ufffd").replace(_INLINE, "\ufffd")
    codes: list[str] = []
    if "`" in text:
        parts = _CODE_SPLIT_RE.split(text)  # prose, code, prose, ..., prose
        codes = parts[1::2]
        text = _CODE.join(parts[0::2]).replace("`", "'")
    if "*" in text or "_" in text:
        text = _sub_at(_EMPHASIS_RE, text, [m.start() for m in _MARKER_RUN_RE.finditer(text)], _emphasis_words)
    text = _drop_separators(text)
    # step 6: math spans (with a digit or ^) stay as they are; the prose between them is rewritten as one
    # text cut by _MATH (no prose rule matches across it, as none would across the end of a piece)
    maths: list[str] = []
    gaps: list[str] = []
    pos = 0
    for start, end in _math_spans(text):
        gaps.append(text[pos:start])
        maths.append(text[start:end])
        pos = end
    gaps.append(text[pos:])
    prose = _lower_text(_MATH.join(gaps))
    if "~" in prose:  # (before the punctuation: "is - ~6" is "is - about 6", a dash between words)
        prose = _TILDE_RE.sub("about ", prose)
    prose = _clause_marks(_punctuation(_contractions(prose)))
    if "!" in prose:
        prose = _EXCLAMATION_FAST_RE.sub(".", prose)  # (= _EXCLAMATION_RE.sub)
    prose = numbers(prose)
    text = _interleave(prose.split(_MATH), maths) if maths else prose
    text = digit_forms(text)  # again: the prose pass can make new groups ("twelve,345" -> "12,345")
    text = _whitespace(text)
    text = _sentence_breaks(text)
    text = text.strip(" \n")
    if "\n" in text:
        text = _join_lines(text)
    text = _list_markers(text)
    text = _item_periods(text)
    text = _sort_operands(text)
    if codes:
        text = _interleave(text.split(_CODE), codes)
    return text


def _interleave(parts: list[str], fill: list[str]) -> str:
    """``parts[0] + fill[0] + parts[1] + fill[1] + ...`` (one fewer ``fill`` than ``parts``)."""
    out = [""] * (2 * len(parts) - 1)
    out[0::2] = parts
    out[1::2] = fill
    return "".join(out)


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
