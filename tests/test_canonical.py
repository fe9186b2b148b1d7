"""The ``canonical`` paraphraser: known outputs, invariants, each fast step against the regex that defines
it, and the operand-order normal form (step 8) that closes the arithmetic part of ``list_order``."""

from __future__ import annotations

import math
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import legible.paraphrase._canonical as C
from legible.paraphrase._canonical import canonicalize, char_level
from legible.paraphrase._protect import MATH_RE, iter_math
from legible.stego._schemes import make_scheme

# Outputs of the implementation before the speed work (steps 1-7 are unchanged; none of these has a chain
# that step 8 reorders).
KNOWN = [
    ("Wait!!! Really?! Hmm... OK.", "wait.\nreally?\nhmm.\nok."),
    (
        "It is 42. Then we stop.\n1. First item\n2. Second item",
        "it is 42.\nthen we stop.\n1. first item.\n2. second item.",
    ),
    (
        "We have 1,000,000 apples and 12,345.5 pears, 1,00 and 1,0000.",
        "we have 1000000 apples and 12345.5 pears, 1,00 and 1,0000.",
    ),
    (
        "Three million people; 2.5 thousand more; 1.25 hundred. A hundred.",
        "3000000 people, 2500 more, 125.\na hundred.",
    ),
    (
        "twenty-one, forty two, ninety - nine and one hundred and five; no one knows.",
        "21, 42, 99 and 105, no one knows.",
    ),
    (
        "Lines\nwrapped\nhere.\nNext line 7.\n- item one\n- item two\n# Heading\nText",
        "lines wrapped here.\nnext line 7.\n- item one.\n- item 2.\n# heading\ntext",
    ),
    ("Tabs\tand  spaces \t here.\r\nWindows\rline\x0bend\x0c.", "tabs and spaces here.\nwindows line end."),
    (
        "Code `Foo(X)  BAR` and ```py\nX  = 1\n``` after, plus `unclosed and ```\nrest",
        "code `Foo(X)  BAR` and ```py\nX  = 1\n``` after, plus `unclosed and `'' rest",
    ),
    (
        "Math: x^2 + 3 = 7, f(x) = 2x + 1, n-1, X-1, 5! = 120, a != b, 2**3 = 8.",
        "math: x^2 + 3 = 7, f(x) = 2x + 1, n-1, X-1, 5!\n= 120, a != b, 2**3 = 8.",
    ),
    (
        "Fancy \u201cquotes\u201d \u2018x\u2019 a\u2014b \u2212 c, \u2026 and w\u200bo\u200dr\ufeffd\u00ad.",
        "fancy \"quotes\" 'x' a-b - c, . and word.",
    ),
    (
        "\uff21\uff22\uff23 \u0430pple caf\u00e9 e\u0301 \ufb01 \u2460 \U0001d400 \u00bd.",
        "abc apple caf\u00e9 \u00e9 fi 1 a 1/2.",
    ),
    (
        "\u0391\u03a3 \u039f\u0394\u039f\u03a3 \u03a3 \u0130stanbul \u212a \u13a0\u13a1 \u1e9e.",
        "a\u03c2 o\u03b4o\u03c2 o i\u0307stanbul k dr \u00df.",
    ),
    (
        "Bad \ud800 surrogate \udfff and \ue000 \ue001 \uffff \ufffe private.",
        "bad \ufffd surrogate \ufffd and \ufffd \ufffd \uffff \ufffe private.",
    ),
    ("Punctuation ,, ;; :: -- --- .! .? !. ?, ,. done", "punctuation, ; : - - . . ! ?, ,.\ndone"),
    ("He said: one. She said: two! They said: three?", "he said: one.\nshe said: 2.\nthey said: 3?"),
    ("Numbers 3. 4. 5. end 1.5. 2.5! 3.5? x", "numbers 3.\n4. 5.\nend 1.5.\n2.5! 3.5?\nx"),
    ("  leading and trailing  \n\n  ", "leading and trailing"),
    ("A \u2028line\u2029separator\x85next.", "a line separator next."),
    ("a.\u00a0B \u3000C\u1680D", "a.\nb c d"),
    (
        "\u0663 million and \uff11,000 and \u0661\u0662,\u0663\u0664\u0665.",
        "3000000 and 1000 and \u0661\u0662\u0663\u0664\u0665.",
    ),
    ("So the answer is twelve,345 dollars.", "so the answer is 12345 dollars."),
    (
        "```\ncode block\n```\nText after the block. And `a` `b`.",
        "```\ncode block\n``` text after the block.\nand `a` `b`.",
    ),
    ("Hello there\n```\ncode\n```\nworld is here", "hello there ```\ncode\n``` world is here"),
]


@pytest.mark.parametrize(("text", "expected"), KNOWN)
def test_known_outputs(text, expected):
    assert canonicalize(text) == expected
    assert canonicalize(expected) == expected


PIECES = [
    " ", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\x0b", "\u2028", "\x00", "\x02", "\ue000", "\uffff", "\ufffe",
    "\ud800", "\u200b", "\u0301", "e\u0301", "\u03a3", "\u0130", "\u212a", "\u13a0", "\u00c9", "\u00e9", "\u00bf",
    "\u00d7", "\u2212", "\u4e2d", "\U0001f600", "\u201c", ".", "..", "...", "!", "!!", "?!", ".!", ",", ",,", ";;",
    "--", ":", "`", "```", "`code`", "```py\nX  = 1\n```", "one", "two", "twenty-one", "forty two", "hundred",
    "thousand", "million", "one hundred and five", "and", "0", "3", "42", "1,000", "12,345", "1,000.5", "3.5",
    "3 million", "x", "X", "Alice", "So", "we", "the", "+", "-", "*", "/", "^", "=", "!=", "(", ")", "x^2",
    "3 + 4 = 7", "4 + 3 + 2 = 9", "2 x 5 x 7 =", "f(x) = 2x + 1", "n-1", "5!", "- ", "1. ", "1) ", "# ", "> ",
    "- item\n", "\n1. ", "http://x.y",
]  # fmt: skip
texts = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), max_size=30).map("".join)


@given(texts)
def test_idempotent_deterministic_and_total(text):
    once = canonicalize(text)
    assert isinstance(once, str)
    once.encode("utf-8")
    assert canonicalize(once) == once
    assert canonicalize(text) == once


@given(st.lists(st.sampled_from(["`a  B`", "```\nX\t= 1\n```", "`x = 4 + 3`"]), min_size=1, max_size=4), texts)
def test_code_spans_kept_verbatim_and_in_order(codes, filler):
    filler = filler.replace("`", "")
    text = " ".join(f"{filler} {c}" for c in codes) + " end"
    out = canonicalize(text)
    found = re.findall(r"```.*?```|`[^`\n]+`", out, re.S)
    assert [f for f in found if f in codes] == codes


# ------------------------------------------------------------ each fast step equals its regex definition

SEP_ALPHABET = st.lists(st.sampled_from(["1", "12", "123", ",", ",000", ".", "5", "a", " ", "\u0663"]), max_size=20)


@given(SEP_ALPHABET.map("".join))
def test_drop_separators_is_the_regex(text):
    assert C._drop_separators(text) == C._SEPARATORS_RE.sub(lambda m: m.group().replace(",", ""), text)


NUM_PIECES = [
    "one", "two", "twenty", "-", " - ", " ", "  ", "\n", "and", " and ", "hundred", "thousand", "million", "x",
    "ones", "someone", "0", ".", ",", "\x00", "\x02", "\u00e9", "\u4e2d", "_", "eleven", "ninety", "zero",
]  # fmt: skip


@given(st.lists(st.sampled_from(NUM_PIECES), max_size=25).map("".join))
def test_numbers_is_the_regex(text):
    assert C.numbers(text) == C._NUMWORDS_RE.sub(C._words_to_numbers, text)


@given(
    st.lists(
        st.sampled_from(["3", "25", ".", "5", " ", "\t", "\n", "hundred", "thousand", "million", "a"]), max_size=20
    )
)
def test_digit_scale_is_the_regex(parts):
    text = "".join(parts)
    assert C._digit_scale_sub(text) == C._DIGIT_SCALE_RE.sub(C._digit_scale, text)


@given(st.text(alphabet=" \t\na.1", max_size=40))
def test_whitespace_is_the_regexes(text):
    assert C._whitespace(text) == C._NL_RE.sub("\n", C._WS_RE.sub(" ", text))


@given(st.text(alphabet="ab1.!? \n", max_size=40))
def test_sentence_breaks_are_the_regexes(text):
    text = C._whitespace(text)  # as in token_level
    expected = C._SENT_END_NUM_RE.sub(r"\1\n", C._SENT_END_RE.sub("\n", text))
    assert C._sentence_breaks(text) == expected


def _join_lines_definition(text: str) -> str:
    lines = text.split("\n")
    out = [lines[0]]
    item = bool(C._LIST_ITEM_RE.match(lines[0]))
    for ln in lines[1:]:
        if item or C._LIST_ITEM_RE.match(ln) or C._LINE_END_RE.search(out[-1]):
            out.append(ln)
            item = bool(C._LIST_ITEM_RE.match(ln))
        else:
            out[-1] = out[-1] + " " + ln
    return "\n".join(out)


LINES = [
    "word",
    "word.",
    "42.",
    "3.5.",
    "x 1.",
    "is 2!",
    "- item",
    "-",
    "* x",
    "1. a",
    "1)",
    "# h",
    "> q",
    "\x02",
    "a?",
]


@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=12))
def test_join_lines_is_the_definition(lines):
    text = "\n".join(lines)
    assert C._join_lines(text) == _join_lines_definition(text)


@given(
    st.lists(
        st.sampled_from(["a", " ", ".", "..", "!", "?", ",", ";", ":", "-", "\x00", "\u00e9", "\u4e2d"]), max_size=30
    )
)
def test_collapse_punct_is_the_definition(parts):
    prose = "".join(parts)

    def gap(s: str) -> str:
        if "--" in s or ".." in s or re.search(r"[!?,;:][.!?,;:]", s):
            return C._PUNCT_RE.sub(C._punct, s)
        return s

    assert C._collapse_punct(prose) == C._MATH.join(gap(g) for g in prose.split(C._MATH))


MATH_PIECES = [
    "x",
    "2",
    "12",
    " ",
    "-",
    "+",
    "*",
    "**",
    "=",
    "!=",
    "!",
    "^",
    "(",
    ")",
    "f(",
    "a b",
    ",000",
    ".5",
    "\n",
    "\u00f7",
]


@given(st.lists(st.sampled_from(MATH_PIECES), max_size=30).map("".join))
def test_iter_math_finds_what_math_re_finds(text):
    assert [m.span() for m in iter_math(text)] == [m.span() for m in MATH_RE.finditer(text)]


@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=20).map("".join))
def test_lower_text_is_per_gap(text):  # (fast paths: ASCII, Latin-1, windows; per gap with a sigma)
    prose = char_level(text).replace(C._FENCE, "\ufffd").replace(C._INLINE, "\ufffd")  # as token_level does
    prose = prose.replace(" ", C._MATH, 2).replace("a", C._CODE)
    assert C._lower_text(prose) == C._MATH.join(C._lower_gap(g) for g in prose.split(C._MATH))


@given(texts)
def test_char_level_batches_pieces_exactly(text):
    out = char_level(text)
    assert char_level(out) == out
    if "\ud800" not in text and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text) and "\uffff" not in text:
        runs, _ = C._non_ascii_runs(text)
        assert out == C._windows(text, runs, lambda pieces, sep: [C._char_piece(p) for p in pieces], None)


def test_only_space_tab_and_newline_survive_as_whitespace():
    """``_whitespace`` relies on it: no other whitespace character comes out of the character level."""
    every = "a".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for out in (char_level(every), char_level(every.lower()), char_level(char_level(every).lower())):
        assert set(re.findall(r"\s", out)) <= {" ", "\t", "\n"}


# ------------------------------------------------------------ step 8: operand order

SORTED = [
    ("3 + 4 + 2 = 9", "2 + 3 + 4 = 9"),
    ("So 7 x 2 x 5 = 70.", "so 2 x 5 x 7 = 70."),
    ("We get 5 * 2 * 1 = 10 in total", "we get 1 * 2 * 5 = 10 in total"),
    ("Step 2: 9 + 1 = 10", "step 2: 1 + 9 = 10"),
    ("(4 + 3 = 7)", "(3 + 4 = 7)"),
    ("so 4+3=7", "so 3+4=7"),
    ("2 \u00d7 9 \u00d7 3 = 54", "2 x 3 x 9 = 54"),
    ("10 + 9 + 100 = 119", "9 + 10 + 100 = 119"),
    ("4 + 3 = 7 + 0 = 7", "3 + 4 = 7 + 0 = 7"),
    ("Done.\n12 + 3 = 15", "done.\n3 + 12 = 15"),
    ("one\n12 + 3 = 15", "one 3 + 12 = 15"),
    ("The max 4 + 2 = 6", "the max 2 + 4 = 6"),
]
UNCHANGED = [
    "10 - 3 = 7",
    "x + 2 = 5",
    "3 + x = 5",
    "x^2 + 3 = 7",
    "2 * 3 + 4 = 10",
    "2 + 3 * 4 = 14",
    "10 - 4 + 3 = 9",
    "-4 + 3 = -1",
    "1.5 + 2 = 3.5",
    "2 + 1.5 = 3.5",
    "3 + 4 + 2",
    "3 + 4 + 2 is 9",
    "4 + 3 <= 8",
    "a x 3 x 2 = 6",
    "3 x 4 + 2 = 14",
    "3x 4 + 2 = 14",
    "9 / 3 * 2 = 6",
    "2^3 * 4 = 32",
    "$4 + 3 = 7",
    "f(x) 4 + 3 = 7",
    "2 ** 3 = 8",
    "`4 + 3 = 7`",
    "```\n4 + 3 = 7\n```",
]


@pytest.mark.parametrize(("text", "expected"), SORTED)
def test_operand_order_sorted(text, expected):
    assert canonicalize(text) == expected
    assert canonicalize(expected) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_operand_order_leaves_other_math_alone(text):
    assert canonicalize(text) == text.lower()
    if "`" not in text:  # (in canonicalize, code is out of the way when step 8 runs)
        assert C._sort_operands(text) == text


def _chain(rng: random.Random, op: str) -> str:
    xs = rng.sample(range(0, 60), rng.randint(2, 5))
    total = sum(xs) if "+" in op else math.prod(xs)
    return op.join(map(str, xs)) + f" = {total}"


@given(st.integers(0, 2**32 - 1), st.lists(st.sampled_from(PIECES), max_size=8))
def test_operand_order_is_idempotent_and_keeps_the_multiset(seed, noise):
    rng = random.Random(seed)
    chains = [_chain(rng, rng.choice([" + ", " x ", " * ", "+"])) for _ in range(3)]
    text = " so ".join(chains) + " " + "".join(noise)
    once = canonicalize(text)
    assert canonicalize(once) == once
    assert sorted(re.findall(r"\d+", C._sort_operands(text))) == sorted(re.findall(r"\d+", text))


ARITH_COVERS = [
    "First we add the parts: 3 + 4 + 2 = 9. Then the area is 2 x 5 x 7 = 70 square units. "
    "Finally 12 + 5 + 8 + 1 = 26 apples remain, so the answer is 26.",
    "We have 15 + 7 = 22 pens. The boxes hold 3 x 4 = 12 each. Together 22 + 12 + 6 = 40.",
]


@pytest.mark.parametrize("cover", ARITH_COVERS)
def test_canonical_closes_the_arithmetic_order_channel(cover):
    scheme = make_scheme("list_order")
    cap = scheme.capacity(cover)
    assert cap >= 4
    rng = random.Random(cover)
    outs, decoded = set(), set()
    for _ in range(20):
        bits = [rng.randrange(2) for _ in range(cap)]
        stego = scheme.encode(cover, bits)
        assert scheme.decode(stego, cap) == bits
        out = canonicalize(stego)
        outs.add(out)
        decoded.add(tuple(scheme.decode(out, cap)))
    assert len(outs) == 1 and len(decoded) == 1  # nothing of the payload gets through


@given(st.integers(0, 2**32 - 1))
def test_canonical_closes_the_arithmetic_order_channel_on_random_covers(seed):
    rng = random.Random(seed)
    cover = ". ".join(
        f"{rng.choice(['So', 'Then we get', 'Next,'])} {_chain(rng, rng.choice([' + ', ' x ']))}" for _ in range(3)
    )
    scheme = make_scheme("list_order")
    cap = scheme.capacity(cover)
    outs = {canonicalize(scheme.encode(cover, [rng.randrange(2) for _ in range(cap)])) for _ in range(4)}
    assert len(outs) == 1


@given(st.text(alphabet="a1)'%!= \n", max_size=30))
def test_exclamation_fast_is_the_regex(text):
    assert C._EXCLAMATION_FAST_RE.sub(".", text) == C._EXCLAMATION_RE.sub(".", text)


@given(st.text(alphabet="ab2 *_\n_", max_size=30))
def test_emphasis_at_marker_runs_is_the_regex(text):
    starts = [m.start() for m in C._MARKER_RUN_RE.finditer(text)]
    assert C._sub_at(C._EMPHASIS_RE, text, starts, C._emphasis_words) == C._EMPHASIS_RE.sub(r"\2", text)


@given(st.text(alphabet="ax3^+= -\n(\u00e9\u2264", max_size=40))
def test_math_spans_are_iter_math_with_a_digit_or_caret(text):
    expected = [m.span() for m in iter_math(text) if C._HAS_MATH_ATOM_RE.search(m.group())]
    assert C._math_spans(text) == expected
