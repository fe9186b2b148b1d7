"""Paraphrasers: ``paraphrase(cot, context) -> cot'``, one CoT, a batch, or awaited. Registered kinds:
the organism's (identity, swap_neutral, legible_only), canonical (a deterministic normal form), lexical
(seeded meaning-keeping re-draws) and model (an LLM behind a hardened prompt); ``a+b`` composes them."""

from legible.paraphrase import _canonical, _lexical, _model, _organism  # noqa: F401  (register their kinds)
from legible.paraphrase._base import (
    Composed,
    Paraphraser,
    check_paraphraser_spec,
    make_paraphraser,
    paraphraser_names,
    register_paraphraser,
)
from legible.paraphrase._canonical import Canonical, canonicalize
from legible.paraphrase._injection import (
    InjectionCase,
    injection_cases,
    leak_report,
    run_injection_suite,
    run_injection_suite_async,
    suite_summary,
)
from legible.paraphrase._lexical import Lexical
from legible.paraphrase._model import ModelParaphraser, ParaphraseError
from legible.paraphrase._organism import WordWise
from legible.paraphrase._phrases import phrase_forms

__all__ = [
    "Canonical",
    "Composed",
    "InjectionCase",
    "Lexical",
    "ModelParaphraser",
    "ParaphraseError",
    "Paraphraser",
    "WordWise",
    "canonicalize",
    "check_paraphraser_spec",
    "injection_cases",
    "leak_report",
    "make_paraphraser",
    "paraphraser_names",
    "phrase_forms",
    "register_paraphraser",
    "run_injection_suite",
    "run_injection_suite_async",
    "suite_summary",
]
