"""Normal forms of phrase-level classes of surface choice: the lexical paraphraser's operation 0b.

Each rule writes one whole class of choice one way, whichever member the writer picked (the class, never the
instances a search happened to find). They were written from ``HELD_OUT_2`` of ``legible stego --search`` after
that set had been measured once, and judged by ``HELD_OUT_3``, written before them by someone who had not read
them; then from ``HELD_OUT_3`` (the templates and word choices below), judged by ``HELD_OUT_4``. A rule sees
several words at once, which the lexical paraphraser's token loop does not, so the rules run on the text, with
every protected span (code, math, numbers, names: ``protect.protected_spans``) replaced by a placeholder that no
rule can alter. A number's placeholder is told apart from the others so that rules can ask "after a number".

The classes (``_RULES`` below, in order):

* calendar and clock abbreviations written out: ``Mon.``/``Tues`` -> ``Monday``/``Tuesday``, ``Sept.`` ->
  ``September`` (a word that is also an English word, such as ``sat``, ``sun``, ``wed``, ``mar``, ``may``, only
  after ``on``, ``by``, ``until``, ...); ``p.m.``/``pm``/``3pm`` -> ``3 pm``; ``3:00`` -> ``3``;
  ``3 o'clock`` -> ``3``;
* ordinals as digits: ``the first``/``our third``/``twenty-first`` -> ``the 1st``/``our 3rd``/``21st``
  (after a definite or possessive determiner only: ``a second`` is a unit of time and ``First,`` a connective);
* an arithmetic operator word between two numbers as its symbol: ``12 plus 8 equals 20`` -> ``12 + 8 = 20``;
* quantities: ``roughly``/``around``/``approximately``/``~`` before a number -> ``about``; a rate after a
  quantity ``a``/``an``/``each``/``every`` -> ``per`` (``60 dollars a month`` -> ``60 dollars per month``);
* determiners and modals: ``every`` -> ``each`` (not ``every other``); ``all of the``/``both of the``/
  ``half of the`` -> ``all the``/...; ``have to``/``has to``/``had to``/``have got to`` -> ``need to``/...;
  ``am/is/are going to`` + verb -> ``will``, ``was/were going to`` -> ``would``;
* causal ``since`` before a clause -> ``because``;
* a complementiser ``that`` after a verb of saying, knowing or checking, before its clause: dropped;
* templates: ``let's check`` -> ``we check``; ``Answer: 5`` -> ``the answer is 5``; a line ``Step 2: ...`` ->
  ``2. ...``;
* word choices of one sense the synonym table lacks: ``the question`` -> ``the problem``, ``contains 36`` ->
  ``holds 36``, ``close to the school`` -> ``near the school``, ``the sum is`` -> ``the total is``, ``the
  recipe states`` -> ``the recipe says``, ``straightforward`` -> ``simple``; ``once`` opening a time clause ->
  ``when``; ``yet``/``and yet`` joining two words -> ``but``; a restrictive ``which`` after a noun phrase ->
  ``that``;
* the answer phrase: ``our``/``my``/``the final``/``the correct`` answer (or result, solution) -> ``the answer``;
* a step adverb after its subject moved before it: ``we then check`` -> ``then we check`` (then, first, next,
  finally, now, therefore, thus);
* a sentence that opens with a causal or adversative connective joined to the one before, and no comma before
  ``so``/``but`` joining clauses: ``x. So y``/``x. Therefore, y``/``x, so y`` -> ``x so y``; ``x. However, y``
  -> ``x but y``;
* ``40 USD``/``40 bucks`` -> ``40 dollars``; ``helps to list`` -> ``helps list``; ``on Monday`` -> ``Monday``
  (not after ``depends``, ``based``, ...);
* hyphenation: ``left-over``/``e-mail`` -> ``leftover``/``email`` where the closed form is an English word (the
  shipped word list) or the first part is a prefix (``re``, ``co``, ``non``, ...); a number and a unit
  hyphenated before a noun spaced (``a 3-minute walk`` -> ``a 3 minute walk``).

Every rule is deterministic and keeps the numbers; a rule's output is a fixed point of every rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from legible.monitor import english_words
from legible.paraphrase._canonical import _sort_operands
from legible.paraphrase._protect import protected_spans

__all__ = ["phrase_forms"]

# A protected span's placeholder: "\x00" + kind + index + "\x00". The kind is "#" for a number, "+" for math that
# ends in a number ("45 - 18" in "45 - 18 equals 27"), "@" otherwise.
_N = r"\x00[#+]\d+\x00"  # a number, or math that ends in one
_MATH = r"\x00\+\d+\x00"  # math that ends in a number
_PLACEHOLDER_RE = re.compile(r"\x00[#+@](\d+)\x00")
_NUMBER_SPAN_RE = re.compile(r"[$]?\d+(?:\.\d+)?%?")
_CLOCK_SPAN_RE = re.compile(r"(\d{1,2}):00")
_MERIDIEM_SPAN_RE = re.compile(r"(\d{1,2}(?::\d\d)?)([ap])\.?m\.?", re.I)
_UNIT_HYPHEN_SPAN_RE = re.compile(r"(\d+)-([a-z]{2,})")

_WEEKDAYS = {
    "mon": "monday",
    "tue": "tuesday",
    "tues": "tuesday",
    "wed": "wednesday",
    "thu": "thursday",
    "thur": "thursday",
    "thurs": "thursday",
    "fri": "friday",
    "sat": "saturday",
    "sun": "sunday",
}
_MONTHS = {
    "jan": "january",
    "feb": "february",
    "mar": "march",
    "apr": "april",
    "jun": "june",
    "jul": "july",
    "aug": "august",
    "sep": "september",
    "sept": "september",
    "oct": "october",
    "nov": "november",
    "dec": "december",
}
_CALENDAR = _WEEKDAYS | _MONTHS
# Abbreviations that are also English words: written out only after a word that introduces a date.
_AMBIGUOUS = frozenset({"wed", "sat", "sun", "mar", "jan", "dec"})
_DATE_BEFORE = r"(?:on|by|until|till|from|next|last|this|every|each|before|after|since|through|thru)"

_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL_WORDS = {
    **dict(zip("first second third fourth fifth sixth seventh eighth ninth".split(), range(1, 10))),
    **dict(
        zip(
            "tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth "
            "nineteenth".split(),
            range(10, 20),
        )
    ),
    **{w[:-1] + "ieth": 10 * i for i, w in enumerate(_TENS, 2)},
    "hundredth": 100,
}
_TENS_VALUE = {w: 10 * i for i, w in enumerate(_TENS, 2)}
_UNIT_ORDINALS = "|".join(list(_ORDINAL_WORDS)[:9])  # first ... ninth: what follows "twenty-"
_ORDINAL_DETERMINERS = r"(?:the|his|her|its|our|their|my|your|this|that|these|those|each|whose)"
_PREFIXES = frozenset("re co non pre post multi semi anti sub mid".split())
_OPERATOR_WORDS = {
    "plus": "+",
    "minus": "-",
    "times": "x",
    "multiplied by": "x",
    "divided by": "/",
    "equals": "=",
    "is equal to": "=",
}
_RATE_UNITS = (
    r"(?:second|minute|hour|day|night|week|month|year|person|student|child|kid|adult|member|guest|item|piece|"
    r"box|bag|pack|ticket|unit|kilogram|kg|pound|lb|mile|km|kilometer|liter|gallon|dozen|page|lesson|visit|game|"
    r"ride|meal|class|session|trip|shirt|book|cup|bottle|serving)"
)
_CLAUSE_SUBJECT = r"(?:we|i|you|they|he|she|it|there|this|that|these|those|each|every|all|both|only|no|our|my|your|their|his|her|its|one)"  # noqa: E501
_NOT_A_VERB = (
    r"(?:the|a|an|my|his|her|our|their|your|its|this|that|these|those|school|work|bed|church|town|market|class|"
    r"college|lunch|dinner|breakfast|sleep)"
)


def _case_like(src: str, word: str) -> str:
    if src[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _ordinal_suffix(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


# Another weekday or month next to it in a list or range: "Mon., Wed. and Fri.", "Fri-Sun" (an ambiguous
# abbreviation among dates is one).
_CALENDAR_ALT = "|".join(sorted(set(_CALENDAR) - _AMBIGUOUS | set(_CALENDAR.values()), key=len, reverse=True))
_JOINER = r"\.?(?:,| and| or| to| through| -|-|/|,? &) ?"
_CALENDAR_WORD_RE = re.compile(rf"\b(?:{_CALENDAR_ALT})\b", re.I)
_CALENDAR_BEFORE_RE = re.compile(rf"\b(?:{_CALENDAR_ALT}){_JOINER}\Z", re.I)
_CALENDAR_AFTER_RE = re.compile(rf"\A{_JOINER}(?:{_CALENDAR_ALT})\b", re.I)
_DATE_BEFORE_RE = re.compile(rf"\b{_DATE_BEFORE}[ \n]\Z", re.I)


def _after_abbreviation(m: re.Match, tail: str) -> str:
    """What follows a written-out abbreviation whose match ended with ``tail``: its own period goes; where a
    space or line break and a lowercase word follow, they become one space (canonical breaks a line after every
    period, the abbreviation's included); before the end of the text or a capital the period stays as the
    sentence's."""
    if tail.endswith((" ", "\n")):
        return " "
    if tail.endswith("."):
        rest = m.string[m.end() : m.end() + 2]
        return "." if not rest or rest[:1] == "\n" or rest.lstrip()[:1].isupper() else ""
    return ""


_NOT_A_DATE_BEFORE_RE = re.compile(r"\b(?:we|i|you|they|he|she|it|who|the|a|this|that)[ \n]\Z", re.I)


def _among_dates(text: str, start: int) -> bool:
    """An ambiguous abbreviation with its period ("sun.") reads as a date where another weekday or month stands
    earlier in the sentence and no pronoun or article comes just before it ("we sat.", "the sun.")."""
    before = text[max(0, start - 48) : start]
    return not _NOT_A_DATE_BEFORE_RE.search(before) and _CALENDAR_WORD_RE.search(before) is not None


def _calendar(m: re.Match) -> str:
    """An abbreviated weekday or month written out; one that is also an English word only among dates (after a
    word that introduces a date, next to another weekday or month, or with its period later in a sentence that
    names one)."""
    word = m.group("w")
    if (
        word.lower() in _AMBIGUOUS
        and not _DATE_BEFORE_RE.search(m.string[max(0, m.start() - 8) : m.start()])
        and not _CALENDAR_BEFORE_RE.search(m.string[max(0, m.start() - 16) : m.start()])
        and not (m.group("tail").startswith(".") and _among_dates(m.string, m.start()))
        and not _CALENDAR_AFTER_RE.search(m.string[m.start() + len(word) : m.start() + len(word) + 16])
    ):
        return m.group()
    return _case_like(word, _CALENDAR[word.lower()]) + _after_abbreviation(m, m.group("tail"))


def _meridiem(m: re.Match) -> str:
    return f"{m.group('n')} {m.group('x').lower()}m" + _after_abbreviation(m, m.group("tail") or "")


def _ordinal_compound(m: re.Match) -> str:
    n = _TENS_VALUE[m.group("tens").lower()] + _ORDINAL_WORDS[m.group("unit").lower()]
    return _ordinal_suffix(n)


def _ordinal(m: re.Match) -> str:
    return m.group("det") + " " + _ordinal_suffix(_ORDINAL_WORDS[m.group("word").lower()])


def _operator(m: re.Match) -> str:
    symbol = _OPERATOR_WORDS[" ".join(m.group("op").lower().split())]
    return f"{m.group('a')} {symbol} "


def _have_to(m: re.Match) -> str:
    verb = m.group("verb").lower()
    need = {"have": "need", "has": "needs", "had": "needed"}[verb]
    return _case_like(m.group("verb"), need) + " to"


def _going_to(m: re.Match) -> str:
    aux = m.group("aux").lower()
    return _case_like(m.group("aux"), "would" if aux in ("was", "were") else "will")


def _adverb_first(m: re.Match) -> str:
    subject, adverb = m.group("subj"), m.group("adv")
    return _case_like(subject, adverb.lower()) + " " + (subject if subject == "I" else subject.lower())


def _comma_before_coordinator(m: re.Match) -> str:
    """The comma goes where it ends a clause of two or more words, not after a sentence's one opening word ("Now,
    so ...": the word-level forms drop that opener with its comma)."""
    start = max(m.string.rfind(c, 0, m.start()) for c in ".!?;:\n") + 1
    return " " if " " in m.string[start : m.start()].strip() else m.group()


def _join_coordinator(m: re.Match) -> str:
    return " but" if m.group("c").lower() in ("but", "however", "yet") else " so"


@lru_cache(maxsize=4096)
def _closed_compound(left: str, right: str) -> str | None:
    joined = (left + right).lower()
    if left.lower() in _PREFIXES and len(right) >= 3:
        return left + right
    if len(joined) >= 5 and joined in english_words():
        return left + right
    return None


def _hyphen(m: re.Match) -> str:
    closed = _closed_compound(m.group("l"), m.group("r"))
    return closed if closed is not None else m.group()


# A rule: its regex, its replacement, and literals (lowercase) one of which a text must hold for the regex to be
# tried at all (a literal search costs far less than a regex pass that finds nothing).
_Rule = tuple[re.Pattern, str | Callable[[re.Match], str], tuple[str, ...]]
_WORD_END = r"(?![\w'])"
_CALENDAR_HINTS = tuple(sorted({k[:3] for k in _CALENDAR}))
_RULES: list[_Rule] = [
    # calendar: an abbreviation with its period, or without one before a number or a comma
    (
        re.compile(
            rf"(?<![\w'.-])(?P<w>{'|'.join(sorted(_CALENDAR, key=len, reverse=True))})"
            r"(?P<tail>\.[ \n](?=(?-i:[a-z\x00]))|\.|(?= ?\x00#|,))",
            re.I,
        ),
        _calendar,
        _CALENDAR_HINTS,
    ),
    # clock: "3 p.m." / "3 pm" / "3 P.M." -> "3 pm"
    (
        re.compile(rf"(?P<n>{_N}) ?(?P<x>[ap])\.?m(?![\w'])(?P<tail>\.[ \n](?=(?-i:[a-z\x00]))|\.)?", re.I),
        _meridiem,
        ("am", "pm", "a.m", "p.m"),
    ),
    (re.compile(rf"(?P<n>{_N}) o'clock{_WORD_END}", re.I), r"\g<n>", ("o'clock",)),
    # ordinals
    (
        re.compile(rf"\b(?P<tens>{'|'.join(_TENS)})[- ](?P<unit>{_UNIT_ORDINALS}){_WORD_END}", re.I),
        _ordinal_compound,
        _TENS,
    ),
    (
        re.compile(rf"\b(?P<det>{_ORDINAL_DETERMINERS}) (?P<word>{'|'.join(_ORDINAL_WORDS)}){_WORD_END}", re.I),
        _ordinal,
        tuple(_ORDINAL_WORDS),
    ),
    # arithmetic operators between numbers
    (
        re.compile(rf"(?P<a>{_N}) (?P<op>plus|minus|times|multiplied by|divided by|equals|is equal to) (?={_N})", re.I),
        _operator,
        ("plus", "minus", "times", "multiplied", "divided", "equal"),
    ),
    # quantities
    (
        re.compile(
            rf"\b(?:roughly|around|approximately|circa) (?={_N}|an? (?:hour|minute|day|week|month|year|dozen|half|"
            r"quarter|third|mile|kilometer)\b)",
            re.I,
        ),
        lambda m: _case_like(m.group(), "about "),
        ("roughly", "around", "approximately", "circa"),
    ),
    (re.compile(rf"~ ?(?={_N})"), "about ", ("~",)),
    (
        re.compile(rf"(?P<q>{_N}(?: [a-z]+){{0,2}}) (?:a|an|each|every) (?P<u>{_RATE_UNITS}){_WORD_END}", re.I),
        r"\g<q> per \g<u>",
        (" a ", " an ", "each", "every"),
    ),
    # determiners and modals
    (re.compile(r"\bevery(?= (?!other\b|single\b)[a-z])", re.I), lambda m: _case_like(m.group(), "each"), ("every",)),
    (
        re.compile(r"\b(?P<q>all|both|half) of (?=(?:the|these|those|my|our|your|his|her|their|its)\b)", re.I),
        r"\g<q> ",
        (" of ",),
    ),
    (
        re.compile(r"\b(?P<verb>have|has|had)(?: got)? to(?= [a-z])(?! do with\b)", re.I),
        _have_to,
        ("have", "has", "had"),
    ),
    (
        re.compile(rf"\b(?P<aux>am|is|are|was|were) (?:going to|gonna)(?= (?!{_NOT_A_VERB}\b)[a-z])", re.I),
        _going_to,
        ("going to", "gonna"),
    ),
    # causal "since" before a clause (not "since then", "since 2010", "since the start")
    (
        re.compile(
            rf"\bsince(?= {_CLAUSE_SUBJECT}\b| {_MATH}| {_N} (?:x|[*/+-]) "
            r"| the (?:[a-z]+ ){1,2}(?:is|are|was|were|has|have|had|can|will|would|did|does|[a-z]+s)\b)",
            re.I,
        ),
        lambda m: _case_like(m.group(), "because"),
        ("since",),
    ),
    # an indirect question's "if" -> "whether" (check if/see if/ask if ...; not "as if", "even if")
    (
        re.compile(
            r"\b(?P<v>(?:check|verify|test|see|ask|know|wonder|decide|determine|find out|confirm)(?:s|es|ed|ing)?) "
            r"if\b(?= (?!so\b|not\b|needed\b|necessary\b|any\b|possible\b)[a-z\x00])",
            re.I,
        ),
        r"\g<v> whether",
        (" if",),
    ),
    # a complementiser "that" after a verb of saying, knowing or checking (or an adjective of certainty) before
    # its clause: dropped ("we know that the total is" -> "we know the total is"; "that box" is no clause)
    (
        re.compile(
            r"\b(?P<v>(?:say|tell|know|think|see|note|find|mean|show|check|verify|confirm|ensure|agree|assume|hope|"
            r"guess|believe|notice|realize|realise|recall|remember|conclude|suppose|expect|feel|learn|read|hear|"
            r"claim|state|prove)(?:s|es|ed|d)?|said|told|knew|known|thought|saw|seen|found|meant|shown|felt|read|"
            r"heard|clear|obvious|sure|certain|true|likely) that"
            rf"(?= (?:the|we|it|it's|they|there|there's|this|he|she|i|you|a|an|our|my|your|their|his|her|each|all|"
            rf"both|no|nothing|every|only|these|those|its|{_N})(?![\w']))",
            re.I,
        ),
        r"\g<v>",
        ("that",),
    ),
    # a currency code or slang after an amount is its name ("40 USD" -> "40 dollars"; the word-level forms then
    # write "$40")
    (re.compile(rf"(?P<n>{_N}) (?:usd|bucks|us dollars)\b", re.I), r"\g<n> dollars", ("usd", "bucks", "us dollars")),
    # "help to" + verb is "help" + verb
    (
        re.compile(
            r"\b(?P<h>help(?:s|ed|ing)?) to(?= [a-z])(?! (?:the|a|an|my|our|your|his|her|their|its|this|that)\b)", re.I
        ),
        r"\g<h>",
        ("help",),
    ),
    # "on" before a weekday as an adverb ("we meet on Monday" -> "we meet Monday"; not "depends on Monday")
    (
        re.compile(
            r"(?<!\bdepends )(?<!\bdepend )(?<!\bbased )(?<!\brely )(?<!\brelies )(?<!\bfocus )(?<!\bagree )"
            r"\bon (?=(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b)",
            re.I,
        ),
        "",
        ("day",),
    ),
    # a comma before a coordinator that joins clauses ("x, so y" / "x so y"; canonical drops it before and/or)
    (re.compile(r"(?<=[a-z\x00]), (?=(?:so|but)\b)", re.I), _comma_before_coordinator, (", so", ", but")),
    # templates: a step proposed ("let's check") is a step stated ("we check"); an answer labelled ("Answer: 5",
    # "Final answer = 5") is an answer stated; a step labelled "Step 2:" is a numbered step "2."
    (re.compile(r"\blet(?:'s| us)(?= [a-z])", re.I), lambda m: _case_like(m.group(), "we"), ("let",)),
    (
        re.compile(r"(?:^|(?<=[.!?] ))(?:(?:the|our|my) )?(?:final |correct )?answer ?[:=] ?", re.I | re.M),
        lambda m: _case_like(m.group(), "the") + " answer is ",
        ("answer",),
    ),
    (re.compile(rf"^step (?P<n>{_N})[:.)] ", re.I | re.M), r"\g<n>. ", ("step",)),
    # word choices of one sense that the synonym table does not hold (a question to solve is a problem; a
    # container that contains a quantity holds it; close to a place is near it; a sum that is a result is a
    # total; a source that states or mentions something says it; straightforward is simple)
    (
        re.compile(r"\b(?P<d>the|this|that|our|each|every) question(?P<s>s?)\b(?! marks?\b)", re.I),
        r"\g<d> problem\g<s>",
        ("question",),
    ),
    (
        re.compile(
            rf"\bcontain(?P<f>s|ed|ing)?(?= (?:{_N}|(?:any|no|all|enough|only|about|exactly|at|more|less|fewer|up)\b))",
            re.I,
        ),
        lambda m: _case_like(m.group(), {"s": "holds", "ed": "held", "ing": "holding"}.get(m.group("f") or "", "hold")),
        ("contain",),
    ),
    (
        re.compile(
            r"\bclose to(?= (?:the|home|our|my|your|a|an|work|school|town|his|her|their|its|this|that)\b)", re.I
        ),
        lambda m: _case_like(m.group(), "near"),
        ("close to",),
    ),
    (re.compile(r"\b(?P<d>the|a) sum(?= (?:is|was|so far|of|comes|equals)\b|:)", re.I), r"\g<d> total", ("sum",)),
    (
        re.compile(
            # a source that states something: a noun after a determiner, or a pronoun, then the verb (not "the
            # united states", "the states of", "the states are")
            r"\b(?P<s>(?:the|a|an|this|that|each|every|our|my|your|their|its) (?!united\b)[a-z]+|it|he|she|they|which|"
            r"who) (?P<v>(?:state|mention|note|indicate)(?:s|d|ed)?)(?![\w'])(?! (?:of|and|or|are|were|is|was)\b)",
            re.I,
        ),
        lambda m: (
            m.group("s")
            + " "
            + ("says" if m.group("v").endswith("s") else "said" if m.group("v").endswith("d") else "say")
        ),
        ("state", "mention", "note", "indicate"),
    ),
    (re.compile(r"\bstraightforward\b", re.I), lambda m: _case_like(m.group(), "simple"), ("straightforward",)),
    # connectives of one sense: "once" opening a time clause is "when"; "yet" joining two words is "but"
    (
        re.compile(
            r"\bonce(?= (?:the|we|it|they|there|i|you|he|she|our|all|this|these|those|everything|everyone|each)\b)",
            re.I,
        ),
        lambda m: _case_like(m.group(), "when"),
        ("once",),
    ),
    (re.compile(r"\band yet\b(?= [a-z\x00])", re.I), lambda m: _case_like(m.group(), "but"), ("yet",)),
    (
        re.compile(
            r"(?<=[a-z] )(?<!\bnot )(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )(?<!\bbe )(?<!\bbeen )(?<!\bhas )"
            r"(?<!\bhave )(?<!\bhad )(?<!\bas )(?<!\bnor )(?<!\bor )"
            r"yet(?= (?!again\b|another\b|to\b|more\b|less\b)[a-z])",
            re.I,
        ),
        "but",
        ("yet",),
    ),
    # a restrictive relative clause (no comma) opened by "which" after a noun phrase: "that"
    (
        re.compile(
            r"\b(?P<np>(?:the|a|an|any|one|each|every|this|some|another|no) (?:[a-z]+ )?[a-z]+|something|anything|"
            r"everything|nothing|someone|anyone|everyone) which(?= [a-z])",
            re.I,
        ),
        r"\g<np> that",
        ("which",),
    ),
    # the answer phrase
    (
        re.compile(r"\b(?:the|our|my)(?: (?:final|correct|actual))? (?P<n>answer|result|solution)\b", re.I),
        lambda m: _case_like(m.group(), "the") + " " + m.group("n").lower(),
        ("answer", "result", "solution"),
    ),
    # a step adverb before its subject
    (
        re.compile(
            r"\b(?P<subj>we|i|they|you) (?P<adv>then|first|next|finally|now|therefore|thus)(?= [a-z])(?! (?:on|all)\b)",
            re.I,
        ),
        _adverb_first,
        ("then", "first", "next", "finally", "now", "therefore", "thus"),
    ),
    # a sentence that opens with a causal or adversative connective, joined to the one before with its group's
    # plain member (the connective's choice is the synonym step's, but the boundary would tell them apart)
    (
        re.compile(
            r"(?<=[a-z\x00])[.;](?: |\n)(?P<c>so|thus|therefore|hence|consequently|but|however|yet),?(?= [a-z\x00])",
            re.I,
        ),
        _join_coordinator,
        ("so", "thus", "therefore", "hence", "consequently", "but", "however", "yet"),
    ),
    # hyphenation
    (re.compile(r"(?<![\w-])(?P<l>[a-z]+)-(?P<r>[a-z]{2,})(?![\w-])", re.I), _hyphen, ("-",)),
]


# "20-first" (canonical writes "twenty" as digits and leaves the ordinal word) -> "21st"
_TENS_DIGIT_ORDINAL_RE = re.compile(rf"(?<![\w.])(?P<t>[2-9]0)-(?P<unit>{_UNIT_ORDINALS}){_WORD_END}", re.I)


def _tens_digit_ordinal(m: re.Match) -> str:
    return _ordinal_suffix(int(m.group("t")) + _ORDINAL_WORDS[m.group("unit").lower()])


def _span_form(span: str) -> str:
    """A protected number span in its normal form: an hour ``3:00`` -> ``3`` (the span keeps its digits)."""
    m = _CLOCK_SPAN_RE.fullmatch(span)
    if m and int(m.group(1)) <= 24:
        return m.group(1)
    return span


def phrase_forms(text: str) -> str:
    """``text`` with every phrase-level class of the module docstring written in its normal form."""
    if "\x00" in text:  # (a NUL is no text: it goes, and the placeholders stay unambiguous)
        text = text.replace("\x00", "")
    spans: list[str] = []
    parts: list[str] = []
    pos = 0
    for a, b in protected_spans(text):
        parts.append(text[pos:a])
        pos = b
        span = text[a:b]
        if span.lower() in _CALENDAR or span in ("I", "USD"):  # a capitalised abbreviation, "I": words here
            parts.append(span)
            continue
        if m := _TENS_DIGIT_ORDINAL_RE.fullmatch(span):  # "20-first": canonical wrote "twenty" as digits
            parts.append(_tens_digit_ordinal(m))
            continue
        m = _UNIT_HYPHEN_SPAN_RE.fullmatch(span)
        if m:  # "3-minute": a number, then the unit as a word
            parts.append(f"\x00#{len(spans)}\x00 {m.group(2)}")
            spans.append(m.group(1))
            continue
        m = _MERIDIEM_SPAN_RE.fullmatch(span)
        if m:  # "3pm": a number, then the rule for "3 pm"
            parts.append(f"\x00#{len(spans)}\x00 {m.group(2)}m")
            spans.append(_span_form(m.group(1)))
            continue
        # "#" a number; "+" math that ends in one ("45 - 18" in "45 - 18 equals 27"); "@" any other span
        kind = "#" if _NUMBER_SPAN_RE.fullmatch(span) else "+" if span[-1:].isdigit() else "@"
        parts.append(f"\x00{kind}{len(spans)}\x00")
        spans.append(_span_form(span))
    parts.append(text[pos:])
    out = "".join(parts)
    arithmetic = False
    low = out.lower()
    for pattern, repl, hints in _RULES:
        if not any(h in low for h in hints):
            continue
        out, n = pattern.subn(repl, out)
        if n:
            low = out.lower()
            arithmetic |= repl is _operator
    out = _PLACEHOLDER_RE.sub(lambda m: spans[int(m.group(1))], out)
    # the sums and products the operator words made are in canonical's operand order, as written ones are
    return _sort_operands(out) if arithmetic else out
