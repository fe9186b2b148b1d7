"""Steganographic hidden-channel schemes: exact round trips on the cover corpus, capacity, robustness."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legible.stego import _corpus as corpus
from legible.stego._corpus import load_cover_texts
from legible.stego._schemes import SCHEMES, Scheme, make_scheme, scheme_names

COVERS = load_cover_texts()
NAMES = scheme_names()
REQUIRED = {
    "zero_width", "homoglyph", "full_width", "whitespace", "capitalisation", "punctuation", "number_format",
    "synonym", "list_order", "sentence_split", "acrostic", "intro_codebook", "rare_token",
}  # fmt: skip


def test_registry_has_every_scheme_with_metadata():
    assert REQUIRED <= set(NAMES)
    assert list(SCHEMES) == NAMES
    for name in NAMES:
        s = make_scheme(name)
        assert isinstance(s, Scheme) and s.name == name
        assert s.closed_by in ("canonical", "lexical", "model")
        assert s.description and "\n" not in s.description


def test_make_scheme_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="nope") as info:
        make_scheme("nope")
    assert "zero_width" in str(info.value) and "rare_token" in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_every_cover(name):
    scheme = make_scheme(name)
    rng = random.Random(name)
    for cover in COVERS:
        text = cover["text"]
        cap = scheme.capacity(text)
        assert cap >= 0
        for n in sorted({cap, cap // 2, min(cap, 1), 0}):
            bits = [rng.randrange(2) for _ in range(n)]
            stego = scheme.encode(text, bits)
            assert scheme.decode(stego, n) == bits, (cover["id"], n)
            assert scheme.capacity(stego) == cap, cover["id"]


@pytest.mark.parametrize("name", NAMES)
def test_capacity_at_least_four_bits_on_most_covers(name):
    scheme = make_scheme(name)
    enough = sum(scheme.capacity(c["text"]) >= 4 for c in COVERS)
    assert enough >= 0.8 * len(COVERS), f"{name}: only {enough}/{len(COVERS)} covers carry >= 4 bits"


@pytest.mark.parametrize("name", NAMES)
def test_encode_rejects_too_many_bits(name):
    scheme = make_scheme(name)
    text = COVERS[0]["text"]
    with pytest.raises(ValueError):
        scheme.encode(text, [0, 1] * (scheme.capacity(text) // 2 + 1))
    with pytest.raises(ValueError):
        scheme.encode(text, [2])


@pytest.mark.parametrize("name", NAMES)
def test_encoding_changes_the_text_when_the_bits_differ_from_the_cover(name):
    scheme = make_scheme(name)
    for cover in COVERS:
        text = cover["text"]
        cap = scheme.capacity(text)
        flipped = [1 - b for b in scheme.decode(text, cap)]
        stego = scheme.encode(text, flipped)
        assert stego != text, cover["id"]
        assert scheme.decode(stego, cap) == flipped


@pytest.mark.parametrize("name", NAMES)
def test_encoding_keeps_the_text_readable(name):
    scheme = make_scheme(name)
    rng = random.Random(7)
    for cover in COVERS[::7]:
        text = cover["text"]
        bits = [rng.randrange(2) for _ in range(scheme.capacity(text))]
        stego = scheme.encode(text, bits)
        # same order of length, and most of the words survive (case and look-alikes aside)
        assert 0.8 * len(text) <= len(stego) <= 1.6 * len(text)
        if scheme.closed_by != "canonical":
            words = set(text.lower().split())
            assert len(words & set(stego.lower().split())) >= 0.5 * len(words)


@given(text=st.text(max_size=300), n=st.integers(min_value=0, max_value=40))
def test_decode_never_raises_on_junk(text, n):
    for scheme in map(make_scheme, scheme_names()):
        bits = scheme.decode(text, n)
        assert len(bits) == n and set(bits) <= {0, 1}


@given(
    words=st.lists(
        st.sampled_from(["we", "The", "big", "12", "1500", "apples,", "pears", "and", "it's", "So,", "then", "x", "="]),
        max_size=30,
    ),
    data=st.data(),
)
def test_round_trip_on_generated_texts(words, data):
    text = " ".join(words) + "."
    for scheme in map(make_scheme, scheme_names()):
        cap = scheme.capacity(text)
        bits = data.draw(st.lists(st.integers(0, 1), max_size=min(cap, 64)))
        assert scheme.decode(scheme.encode(text, bits), len(bits)) == bits, scheme.name


def test_corpus_loads_with_answers_in_text():
    assert len(COVERS) >= 60
    kinds = [c["kind"] for c in COVERS]
    assert kinds.count("math") >= 30 and kinds.count("everyday") >= 30
    assert len({c["id"] for c in COVERS}) == len(COVERS)
    for c in COVERS:
        assert c["answer"] in c["text"], c["id"]
        assert 200 <= len(c["text"]) <= 900, c["id"]


def test_corpus_bad_line_names_file_and_line(tmp_path, monkeypatch):
    good = json.dumps({"id": "a", "kind": "math", "text": "We get 4.", "answer": "4"})
    bad = tmp_path / "cover_texts.jsonl"
    bad.write_text(good + "\n{not json\n", encoding="utf-8")

    class Root:
        def joinpath(self, _):
            return bad

    monkeypatch.setattr(corpus.resources, "files", lambda _pkg: Root())
    with pytest.raises(ValueError, match=r"cover_texts\.jsonl, line 2"):
        corpus.load_cover_texts()
