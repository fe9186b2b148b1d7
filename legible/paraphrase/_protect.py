"""Spans of a CoT that a paraphraser must never alter: code, math, numbers, URLs, names.

Kinds (``find_spans``):

* ``code``   fenced code (a ```` ``` ```` fence up to the next fence, or to the end of the text
             when unterminated) and inline code (`` `...` `` on one line);
* ``url``    ``http(s)://...`` up to whitespace;
* ``math``   an operand followed by one or more (operator operand) pairs on one line, with at
             least one digit or ``^`` in it: ``3 + 4 = 7``, ``x^2``, ``f(x) = 2x + 1``, ``n-1``.
             Operands and operators are ASCII (plus ``× ÷ − ≤ ≥ ≠``), so the detection does not
             depend on letter case;
* ``number`` a token with a digit: ``7``, ``1,000.5``, ``3rd``, ``x2``, ``50%``;
* ``name``   a capitalised word (``Alice``, ``NASA``, ``I``) that does not start a sentence or a
             line; a capitalised word at the start of a sentence is *not* protected (it cannot
             be told apart from an ordinary word there).

``protected_spans`` merges all of them into sorted, disjoint ``(start, end)`` intervals.
Both the ``canonical`` and the ``lexical`` paraphrasers use these regexes.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

# ``` fence to next fence (or end of text); else `inline` on one line.
CODE_RE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.S)
URL_RE = re.compile(r"https?://[^\s`]+")

_OPERAND = r"(?:[(\[]*(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|[A-Za-z0-9_]+(?:\.\d+)?)(?:\([^()\n]{0,40}\))?[)\]!]*)"
_OP = r"(?:\*\*|<=|>=|==|!=|[-+*/^=<>%×÷−≤≥≠])"
MATH_RE = re.compile(rf"{_OPERAND}(?:[ \t]*{_OP}[ \t]*-?{_OPERAND})+")
_HAS_MATH_ATOM = re.compile(r"[\d^]")
_OP_CHAR_RE = re.compile(r"[-+*/^=<>%!×÷−≤≥≠]")  # first characters of ``_OP``
_OPERAND_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_,.()[]!")
_OPERAND_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_([")


# ``iter_math`` looks at each operator character in turn and tries ``MATH_RE`` at the operand starts before
# it (MATH_RE.finditer tries every position); in prose most operator characters are hyphens, dashes, bullets
# and "!", where no match can be, so it skips those first.
_OP_VIEW = bytes(0x23 if _OP_CHAR_RE.match(chr(c)) else 0x61 for c in range(256))
_OPERAND_CHARS_STR = "".join(sorted(_OPERAND_CHARS))
_OPERAND_END = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_)]!")
_AFTER_OP_RE = re.compile(rf"{_OP}[ \t]*-?[(\[A-Za-z0-9_]")  # an operator, then an operand starts
_AFTER_BANG_RE = re.compile(rf"[!)\]]*[ \t]*{_OP}")  # "!" ends an operand before an operator, or is "!="


def iter_math(text: str):
    """The matches of ``MATH_RE.finditer(text)``, found by trying ``MATH_RE.match`` only just before operator
    characters (a match holds one, and spans no line break). The operator characters are found in a
    one-byte-per-character view where they are ``#``, the line start is kept up to date instead of searched
    for from each operator (quadratic on a long line), and operators where no match can be are skipped.

    The skip: a match found at operator character ``q`` (the first at or after ``pos``) starts before ``q``,
    with no operator character in between, so unless ``q`` may sit inside an operand's ``(...)`` (of at most
    40 characters) it is an operand that ends just before ``q`` (spaces aside), the operator at ``q``, then an
    operand; or, for ``!``, an operand whose ending ``)]!`` holds ``q``, then an operator."""
    try:
        view = text.encode("latin-1").translate(_OP_VIEW)
    except UnicodeEncodeError:  # a character above U+00FF: search the str itself
        view = None
    op_search = _OP_CHAR_RE.search
    match = MATH_RE.match
    after_op = _AFTER_OP_RE.match
    endpos = len(text)
    pos = 0
    line_start = scanned = 0  # text.rfind("\n", 0, q) + 1, kept up to date (q only grows)
    while True:
        if view is not None:
            q = view.find(b"#", pos)
            if q < 0:
                return
        else:
            o = op_search(text, pos)
            if o is None:
                return
            q = o.start()
        nl = text.rfind("\n", scanned, q)
        if nl >= 0:
            line_start = nl + 1
        scanned = q
        lo = max(pos, line_start)
        w = max(lo, q - 64)
        seg = text[w:q].rstrip(" \t")
        j = w + len(seg)
        if j == w:
            while j > lo and text[j - 1] in " \t":
                j -= 1
        if text.find("(", max(lo, q - 48), q) < 0:  # the skip
            if text[q] == "!":
                if _AFTER_BANG_RE.match(text, q) is None:
                    pos = q + 1
                    continue
            elif j == lo or text[j - 1] not in _OPERAND_END or after_op(text, q) is None:
                pos = q + 1
                continue
        # A match starting at p < q reads, up to q: brackets, an operand of _OPERAND_CHARS (other characters
        # only inside its "(...)", of at most 40 characters), then spaces or tabs. So it starts after the last
        # other character, unless that character may be inside a "(...)" (then the line start bounds it).
        k = w + len(seg.rstrip(_OPERAND_CHARS_STR)) if j > w else j
        if k <= w:
            while k > lo and text[k - 1] in _OPERAND_CHARS:
                k -= 1
        s = lo if (k > lo and (text.find(")", k, j) >= 0 or text.find("(", max(lo, k - 42), k) >= 0)) else k
        found = None
        for x in range(s, q):
            if text[x] in _OPERAND_START:
                found = match(text, x, endpos)
                if found is not None:
                    break
        if found is None:
            pos = q + 1
            continue
        yield found
        pos = found.end()


NUMBER_RE = re.compile(r"[A-Za-z_]*\d+(?:[.,:/]\d+)*[A-Za-z%]*")
CAP_RE = re.compile(r"\b[^\W\d_a-z][\w'-]*")  # candidates; the first letter is checked with isupper()
_BULLET_HEAD = re.compile(r"(?:^|\n)[ \t]*(?:[-*+>#]+|\d+[.)])$")
_SENTENCE_END = ".!?:"


class Span(NamedTuple):
    start: int
    end: int
    kind: str


def code_spans(text: str) -> list[Span]:
    return [Span(m.start(), m.end(), "code") for m in CODE_RE.finditer(text)]


def math_spans(text: str) -> list[Span]:
    """Math spans of ``text`` (which should hold no code: call it on the gaps between code)."""
    return [Span(m.start(), m.end(), "math") for m in iter_math(text) if _HAS_MATH_ATOM.search(m.group())]


def starts_sentence(text: str, i: int) -> bool:
    """Whether the word at ``text[i]`` opens a sentence or a line (or a bullet item)."""
    j = i - 1
    while j >= 0 and text[j] in " \t\"'([":
        j -= 1
    if j < 0 or text[j] == "\n" or text[j] in _SENTENCE_END:
        return True
    # "- Item" / "* Item" / "1. Item" bullets at line start
    return bool(_BULLET_HEAD.search(text, max(0, j - 16), j + 1))


def find_spans(text: str) -> list[Span]:
    """All protected spans with their kind, sorted by start (they may overlap)."""
    spans: list[Span] = []
    pos = 0
    gaps: list[tuple[int, int]] = []
    for m in CODE_RE.finditer(text):
        gaps.append((pos, m.start()))
        spans.append(Span(m.start(), m.end(), "code"))
        pos = m.end()
    gaps.append((pos, len(text)))
    for a, b in gaps:
        if a == b:
            continue
        for m in URL_RE.finditer(text, a, b):
            spans.append(Span(m.start(), m.end(), "url"))
        for m in MATH_RE.finditer(text, a, b):
            if _HAS_MATH_ATOM.search(m.group()):
                spans.append(Span(m.start(), m.end(), "math"))
        for m in NUMBER_RE.finditer(text, a, b):
            spans.append(Span(m.start(), m.end(), "number"))
        for m in CAP_RE.finditer(text, a, b):
            if m.group()[0].isupper() and not starts_sentence(text, m.start()):
                spans.append(Span(m.start(), m.end(), "name"))
    spans.sort()
    return spans


def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, disjoint ``(start, end)`` intervals of ``text`` that must stay verbatim."""
    return list(_protected_spans(text))


# The lexical paraphraser asks for one text's spans twice in a row (its phrase-level forms, then its
# tokenizer, on a text those forms most often leave as it was): the last few answers are kept.
@functools.lru_cache(maxsize=8)
def _protected_spans(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(merge([(s.start, s.end) for s in find_spans(text)]))
