"""The rules written from the second and third held-out sets of the channel search (after each was measured
once): the phrase-level normal forms (``legible.paraphrase._phrases``, the lexical paraphraser's operation 0b)
and canonical's exclamation marks, division signs and markdown emphasis. Each writes its whole class one way,
keeps the meaning, is idempotent, never touches numbers, math or code, and closes the families it was written
for."""

from __future__ import annotations

import random

import pytest
from family_checks import covers_written_alike
from hypothesis import given, settings
from hypothesis import strategies as st

from legible.paraphrase import Lexical, canonicalize, phrase_forms
from legible.stego import load_cover_texts
from legible.stego._families import HELD_OUT_2, HELD_OUT_3
from legible.stego._measure import meaning_kept

COVERS = load_cover_texts()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # calendar and clock abbreviations (an ambiguous one only among dates)
        ("We meet on Mon. and Tues, 3 pm.", "We meet Monday and Tuesday, 3 pm."),
        ("on mon.\nthen we sat. Then on sat. we rest.", "monday then we sat. Then saturday we rest."),
        (
            "Fri. looks wet and sun.\nlooks windy; it depends on Sunday.",
            "Friday looks wet and sunday looks windy; it depends on Sunday.",
        ),
        ("It costs 40 USD and helps to save.", "It costs 40 dollars and helps save."),
        ("Mon., Wed. and Fri.", "Monday, Wednesday and Friday."),
        ("It opens at 3:00 p.m.\nso we go at 3pm. It is 4 o'clock.", "It opens at 3 pm so we go at 3 pm. It is 4."),
        # ordinals as digits after a definite or possessive determiner only
        (
            "the first day, our third try, the twenty-first, the 20-first",
            "the 1st day, our 3rd try, the 21st, the 21st",
        ),
        ("a second later. First, we go.", "a second later. First, we go."),
        # operator words between numbers: symbols, and canonical's operand order
        ("so 12 plus 8 equals 20 and 45 - 18 equals 27", "so 8 + 12 = 20 and 45 - 18 = 27"),
        # quantities and rates
        ("roughly 5, ~6 and around 7 km", "about 5, about 6 and about 7 km"),
        ("60 dollars a month, 3 times every day", "60 dollars per month, 3 times per day"),
        # determiners and modals
        ("every day, every other day, all of the apples", "each day, every other day, all the apples"),
        (
            "We have to pay; he has got to go; it has to do with x.",
            "We need to pay; he needs to go; it has to do with x.",
        ),
        ("We are going to buy it; he was going to the store.", "We will buy it; he was going to the store."),
        ("since we know it, since then", "because we know it, since then"),
        ("check if the sum is 5, even if not", "check whether the total is 5, even if not"),
        ("We know that the total is 5. I like that box.", "We know the total is 5. I like that box."),
        # the answer phrase and templates
        ("Our final answer is 5. Answer: 6.", "The answer is 5. The answer is 6."),
        ("Let's check the box.\nStep 2: we add.", "We check the box.\n2. we add."),
        # a step adverb's place; a sentence opened by a connective
        ("We then check. I first add.", "Then we check. First I add."),
        ("It is 5. So we stop. It is 6. However, we go.", "It is 5 so we stop. It is 6 but we go."),
        # word choices of one sense
        ("The question states that the jar contains 36.", "The problem says the jar holds 36."),
        ("It is close to the school and straightforward.", "It is near the school and simple."),
        ("Once the totals are clear, it is cheap yet small.", "When the totals are clear, it is cheap but small."),
        ("the option which uses less; decide which one", "the option that uses less; decide which one"),
        # hyphenation
        (
            "a left-over e-mail, re-check, well-known; a 3-minute walk",
            "a leftover email, recheck, well-known; a 3 minute walk",
        ),
    ],
)
def test_phrase_forms(text, expected):
    assert phrase_forms(text) == expected
    assert phrase_forms(expected) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wait!!! It works! x != y and 5 != 6.", "wait.\nit works.\nx != y and 5 != 6."),
        ("The answer is **42**; *note* and _this one_.", "the answer is 42, note and this one."),
        ("2**3 = 8, a * b * c, __init__ stays.", "2**3 = 8, a * b * c, __init__ stays."),
        ("8 \u00f7 2 = 4 and 9 \u2215 3 = 3", "8 / 2 = 4 and 9 / 3 = 3"),
    ],
)
def test_canonical_exclamation_emphasis_division(text, expected):
    assert canonicalize(text) == expected
    assert canonicalize(expected) == expected


PROTECTED = ["3 + 4 = 7", "x - y = 2", "`let's check if`", "```\nthe first answer: 5\n```", "1234.5", "42", "3:30"]
TRIGGERS = [
    "on Mon.",
    "at 3 p.m.",
    "the first",
    "plus",
    "equals",
    "roughly",
    "~",
    "a month",
    "every",
    "all of the",
    "have to",
    "is going to",
    "since we",
    "check if",
    "know that",
    "Answer:",
    "Let's",
    "We then",
    ". So",
    "contains",
    "the question states",
    "left-over",
    "yet",
    "which",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TRIGGERS), st.sampled_from(PROTECTED)), min_size=1, max_size=6))
def test_phrase_forms_are_idempotent_and_never_touch_numbers_math_or_code(parts):
    text = " ".join(f"{t} {p}" for t, p in parts)
    out = phrase_forms(text)
    assert phrase_forms(out) == out
    ok, why = meaning_kept(text, out)  # every number kept by value (an ordinal written as digits adds one)
    assert ok, (why, text, out)
    for _, p in parts:
        if p.startswith("`") or "=" in p or p[0].isdigit():
            assert p in out, (p, out)


def test_phrase_forms_are_idempotent_and_keep_meaning_on_every_cover():
    for cover in COVERS:
        out = phrase_forms(cover["text"])
        assert phrase_forms(out) == out, cover["id"]
        ok, why = meaning_kept(cover["text"], out, cover.get("answer"))
        assert ok, (cover["id"], why)


def test_synonym_draws_are_one_per_group_and_do_not_depend_on_word_order():
    lex = Lexical(p_list=0, p_filler=0, p_merge=0, p_split=0)
    for seed in range(20):
        a = lex.paraphrase("We compare money and time, then time and money.", rng=random.Random(seed))
        b = lex.paraphrase("We compare time and money, then money and time.", rng=random.Random(seed))
        words_a, words_b = a.replace(",", "").replace(".", "").split(), b.replace(",", "").replace(".", "").split()
        assert sorted(words_a) == sorted(words_b), (a, b)
        # "sofa" and "couch" are one group: both are written as one member
        out = lex.paraphrase("the sofa and the couch", rng=random.Random(seed))
        assert len(set(out.split()[1::3])) == 1, out


# The families of the second and third held-out sets that were open (more than 1 bit/KB through
# canonical+lexical) at their one measurement and that the rules written afterwards were written for. Not here:
# operator spacing and symbols inside math (no rule touches math); the voice, an additive particle's place and
# an aside's marks (a model paraphraser's: see the README); and the families closed before any rule for them.
CLOSED_SEEN = sorted(
    {
        *("exclamation", "weekday_abbreviation", "ordinal_digits", "operator_words", "compound_hyphen", "each_every"),
        *("clock_time", "unit_hyphen", "roughly_about", "answer_bold", "answer_determiner", "because_since"),
        *("answer_final", "approx_tilde", "need_have_to", "division_symbol", "adverb_placement", "per_a"),
        *("future_going_to", "so_sentence_split", "whether_if"),
        *("step_label", "near_close_to", "holds_contains", "we_lets", "currency_code", "simple_straightforward"),
        *("problem_question", "answer_label", "but_yet", "relative_that_which", "once_when", "total_sum"),
        *("says_states", "conjunction_comma", "help_to", "weekday_on"),
    }
)
assert set(CLOSED_SEEN) <= set(HELD_OUT_2) | set(HELD_OUT_3)


@pytest.mark.parametrize("name", CLOSED_SEEN)
def test_canonical_lexical_writes_both_variants_of_a_seen_family_alike(name):
    assert covers_written_alike(name)
