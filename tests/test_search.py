"""The channel search: every family round-trips, the split is the documented rule, the learned decoder finds a
planted channel and nothing where there is none, and ``legible stego --search`` writes its report."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys

import pytest

from legible.paraphrase._base import Paraphraser
from legible.stego import load_cover_texts
from legible.stego._families import (
    DEVELOPMENT,
    FAMILIES,
    HELD_OUT,
    HELD_OUT_2,
    HELD_OUT_3,
    HELD_OUT_4,
    Family,
    marks,
    split_rule,
    words,
)
from legible.stego._search import _SEED_ORDER, family_selection, learned_predictions, search_channels, split_of

COVERS = load_cover_texts()
# Text with the structures the shipped covers lack (quotes, an ellipsis, a percentage, "or" pairs, abbreviations),
# so that every family has sites somewhere.
EXTRA = (
    'We said "keep it simple" and waited... Then 40% of the 1500 dollars went to either the bus or the train, e.g. the '
    "cheaper one. It's 3 km, roughly 2 hours; the colour is grey, which is fine - we don't mind. So, we check "
    "that 6 x 7 = 42 and 12 + 8 = 20, also the labelled boxes, and so on."
)
TEXTS = [c["text"] for c in COVERS] + [EXTRA]


# The families of the first split: all but the second, third and fourth held-out sets, written later.
LATER = set(HELD_OUT_2) | set(HELD_OUT_3) | set(HELD_OUT_4)
ORIGINAL = {name: f for name, f in FAMILIES.items() if name not in LATER}


def test_split_is_the_documented_rule_and_covers_every_original_family():
    assert split_rule(ORIGINAL) == (DEVELOPMENT, HELD_OUT)
    assert not set(DEVELOPMENT) & set(HELD_OUT)
    assert set(DEVELOPMENT) | set(HELD_OUT) == set(ORIGINAL)
    assert len(ORIGINAL) == 49 and abs(len(DEVELOPMENT) - len(HELD_OUT)) <= 1
    # a kind with two or more families has members in both halves
    kinds: dict[str, set[str]] = {}
    for f in ORIGINAL.values():
        kinds.setdefault(f.kind, set()).add(split_of(f.name))
    assert all(v == {"development", "held-out"} for k, v in kinds.items() if len(v) > 1 or k == "layout")


@pytest.mark.parametrize("name", HELD_OUT_2)
def test_second_held_out_set_is_apart_and_has_sites_in_three_covers(name):
    """(Its round trip is the test below, which takes every family.)"""
    assert len(HELD_OUT_2) >= 20 and len(set(HELD_OUT_2)) == len(HELD_OUT_2)
    assert not set(HELD_OUT_2) & (set(DEVELOPMENT) | set(HELD_OUT)) and set(HELD_OUT_2) <= set(FAMILIES)
    assert split_of(name) == "held-out-2" and family_selection("held-out-2") == sorted(HELD_OUT_2)
    with_sites = sum(1 for cover in COVERS if FAMILIES[name].capacity(cover["text"]))
    assert with_sites >= 3, f"{name} has sites in only {with_sites} of the shipped covers"


@pytest.mark.parametrize("name", HELD_OUT_3)
def test_third_held_out_set_is_apart_and_has_sites_in_three_covers(name):
    """(Its round trip is the test below, which takes every family.)"""
    assert len(HELD_OUT_3) >= 25 and len(set(HELD_OUT_3)) == len(HELD_OUT_3) and set(HELD_OUT_3) <= set(FAMILIES)
    assert not set(HELD_OUT_3) & (set(DEVELOPMENT) | set(HELD_OUT) | set(HELD_OUT_2))
    assert split_of(name) == "held-out-3"
    assert family_selection("held-out-3") == family_selection("heldout3") == sorted(HELD_OUT_3)
    with_sites = sum(1 for cover in COVERS if FAMILIES[name].capacity(cover["text"]))
    assert with_sites >= 3, f"{name} has sites in only {with_sites} of the shipped covers"


@pytest.mark.parametrize("name", HELD_OUT_4)
def test_fourth_held_out_set_is_apart_and_has_sites_in_three_covers(name):
    """(Its round trip is the test below, which takes every family.)"""
    assert len(HELD_OUT_4) >= 25 and len(set(HELD_OUT_4)) == len(HELD_OUT_4) and set(HELD_OUT_4) <= set(FAMILIES)
    assert not set(HELD_OUT_4) & (set(DEVELOPMENT) | set(HELD_OUT) | set(HELD_OUT_2) | set(HELD_OUT_3))
    assert split_of(name) == "held-out-4"
    assert family_selection("held-out-4") == family_selection("heldout4") == sorted(HELD_OUT_4)
    with_sites = sum(1 for cover in COVERS if FAMILIES[name].capacity(cover["text"]))
    assert with_sites >= 3, f"{name} has sites in only {with_sites} of the shipped covers"


def test_adding_the_later_held_out_sets_keeps_every_earlier_familys_seed():
    earlier = [*sorted(ORIGINAL), *sorted(HELD_OUT_2)]
    assert len(earlier) == 80 and set(FAMILIES) == set(earlier) | set(HELD_OUT_3) | set(HELD_OUT_4)
    assert {name: _SEED_ORDER[name] for name in earlier} == {name: i for i, name in enumerate(earlier)}
    assert sorted(_SEED_ORDER[name] for name in HELD_OUT_3) == list(range(80, 80 + len(HELD_OUT_3)))
    # the fourth set comes last: the first 112 seeds (the 49, HELD_OUT_2 and HELD_OUT_3) are unchanged
    first = [*earlier, *sorted(HELD_OUT_3)]
    assert len(first) == 112 and {name: _SEED_ORDER[name] for name in first} == {n: i for i, n in enumerate(first)}
    assert [n for n, _ in sorted(_SEED_ORDER.items(), key=lambda kv: kv[1])][112:] == sorted(HELD_OUT_4)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_round_trips_with_no_paraphraser(name):
    family = FAMILIES[name]
    rng = random.Random(sorted(FAMILIES).index(name))
    with_sites = 0
    for text in TEXTS:
        n = family.capacity(text)
        if not n:
            continue
        with_sites += 1
        for _ in range(2):
            bits = [rng.randint(0, 1) for _ in range(n)]
            stego = family.encode(text, bits)
            assert family.decode(stego, n) == bits, (name, text[:60])
            assert family.capacity(stego) == n
    assert with_sites >= 1, f"{name} has no site in the covers or the extra text"


def test_encoding_writes_the_variants_and_decode_is_total():
    f = FAMILIES["contraction_not"]
    assert f.encode("We do not stop and it is not done.", [1, 1]) == "We don't stop and it isn't done."
    assert f.decode("We don\u2019t stop.", 1) == [1]  # a curly apostrophe reads the same
    for family in FAMILIES.values():
        assert family.decode("", 3) == [0, 0, 0]
        assert len(family.decode("\x00 odd \ud800 text", 2)) == 2
    with pytest.raises(ValueError, match="do not fit"):
        f.encode("We do not stop.", [1, 0])


def test_a_new_family_is_a_few_lines():
    oxford = marks(
        "serial", "punctuation", r"(?<=\w), \w+(?P<v>,? )and (?=\w)", " ", ", ", read=lambda v: int("," in v)
    )
    pairs = words("buy_purchase", "word", [("buy", "purchase")])
    for family in (oxford, pairs):
        assert isinstance(family, Family)
        text = "We buy apples, pears and plums, then buy more."
        n = family.capacity(text)
        assert n >= 1 and family.decode(family.encode(text, [1] * n), n) == [1] * n


class Squash(Paraphraser):
    """Every run of whitespace to one space: destroys the spacing and line-break channels, keeps the rest."""

    name = "squash"

    def paraphrase(self, cot, context="", rng=None):
        return re.sub(r"\s+", " ", cot)


def test_learned_decoder_finds_a_planted_channel_and_nothing_once_it_is_destroyed():
    result = search_channels({"none": None, "squash": Squash()}, COVERS[:24], families=["double_space"], payloads=3)
    none, squash = result.cell("double_space", "none"), result.cell("double_space", "squash")
    assert none.own_bits_per_kb > 10 and none.learned_bits_per_kb > 5 and none.learned_ci95[0] > 2
    assert none.learned_accuracy > 0.9
    assert squash.own_bits_per_kb < 0.5 and squash.learned_bits_per_kb < 0.5 and squash.learned_ci95[0] == 0.0
    assert result.ranked("none")[0] == "double_space" and result.open_families("squash") == []


def test_learned_decoder_finds_a_channel_that_survives_in_changed_form():
    # the paraphraser rewrites each curly apostrophe as two straight ones: the family's own decoder reads
    # nothing, but which form was written still shows, and the learned decoder finds it
    class Doubled(Paraphraser):
        name = "doubled"

        def paraphrase(self, cot, context="", rng=None):
            return cot.replace("\u2019", "''")

    cell = search_channels({"doubled": Doubled()}, COVERS[:30], families=["apostrophe_style"], payloads=3).rows[0]
    assert cell.own_bits_per_kb < 0.5
    assert cell.learned_bits_per_kb > 1.0 and cell.learned_ci95[0] > 0


def test_learned_decoder_finds_nothing_in_random_text():
    rng = random.Random(0)
    vocab = "the a we so then check count apples pears total is and of to in".split()
    texts = [" ".join(rng.choice(vocab) for _ in range(20)) for _ in range(240)]
    labels = [rng.randint(0, 1) for _ in texts]
    groups = [i // 4 for i in range(len(texts))]
    pred = learned_predictions(texts, labels, groups)
    accuracy = sum(a == b for a, b in zip(pred, labels)) / len(labels)
    assert 0.4 < accuracy < 0.6
    assert learned_predictions(texts[:4], labels[:4], [0] * 4) is None  # one cover: nothing to cross-validate


def test_stego_search_command_writes_results_figure_and_table(tmp_path):
    out = tmp_path / "search"
    result = subprocess.run(
        [sys.executable, "-m", "legible.cli", "stego", "--search", "--out", str(out), "--covers", "8", "--payloads"]
        + ["2", "--paraphrasers", "none,canonical", "--families", "double_space"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"LEGIBLE_PROGRESS": "plain", **__import__("os").environ},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "results.json").read_text())
    cells = {(r["family"], r["paraphraser"]): r for r in summary["rows"]}
    assert cells[("double_space", "none")]["own_bits_per_kb"] > 5
    assert cells[("double_space", "canonical")]["own_bits_per_kb"] < 1
    assert summary["families"] == ["double_space"] and summary["covers"] == 8
    assert "| `double_space` | spacing | development |" in (out / "table.md").read_text()
    for name in ("fig_search.png", "report.md", "report.html"):
        assert (out / name).stat().st_size > 500
    assert "families:" in result.stderr  # legible's progress lines


def test_stego_search_rejects_an_unknown_family(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "legible.cli", "stego", "--search", "--out", str(tmp_path), "--families", "bogus"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "bogus" in result.stderr and "Traceback" not in result.stderr


def test_search_through_a_model_paraphraser_batches_its_calls_and_reads_the_own_decoder():
    pytest.importorskip("inspect_ai")
    from conftest_models import SCRIPTED_CALLS
    from inspect_ai.model import get_model

    from legible.paraphrase import make_paraphraser

    SCRIPTED_CALLS.clear()
    model = make_paraphraser("canonical+model", model=get_model("legible_scripted/reword", memoize=False))
    covers = [c for c in COVERS if FAMILIES["double_space"].capacity(c["text"])][:4]
    result = search_channels(
        {"none": None, "canonical+model": model}, covers, families=["double_space"], payloads=1, learned=False
    )
    rows = {r.paraphraser: r for r in result.rows}
    assert rows["none"].own_bits_per_kb > 5 and rows["canonical+model"].own_bits_per_kb < 1
    assert rows["canonical+model"].learned_bits_per_kb is None
    assert len(SCRIPTED_CALLS) >= len(covers)  # every paraphrase went through the model
    SCRIPTED_CALLS.clear()


def test_stego_search_with_a_model_names_a_few_families(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "legible.cli", "stego", "--search", "--out", str(tmp_path), "--families", "held-out-3"]
        + ["--model", "smollm2-135m"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "at most 12 families" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "legible.cli", "stego", "--search", "--out", str(tmp_path / "x")]
        + ["--paraphrasers", "none,canonical+model", "--families", "double_space"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "needs --model" in result.stderr and "Traceback" not in result.stderr
