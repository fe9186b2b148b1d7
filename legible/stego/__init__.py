"""Hidden channels in text CoT: schemes that hide bits in surface choices, cover texts, and how many bits
per KB each scheme gets through each paraphraser (``run_stego`` writes the table, figures and report);
families of meaning-keeping surface choices and a search over them that needs no list of schemes
(``search_channels``, ``write_search_report``).

The names load on first use (PEP 562), so importing ``legible.stego`` stays cheap.
"""

from __future__ import annotations

from legible.lazy import lazy_exports

_EXPORTS = {
    "run_stego": "legible.stego._run",
    "MODEL_SPECS": "legible.stego._run",
    "spread_covers": "legible.stego._run",
    "write_stego_report": "legible.stego._run",
    "Scheme": "legible.stego._schemes",
    "make_scheme": "legible.stego._schemes",
    "scheme_names": "legible.stego._schemes",
    "load_cover_texts": "legible.stego._corpus",
    "ChannelResult": "legible.stego._measure",
    "ParaphraserQuality": "legible.stego._measure",
    "build_paraphrasers": "legible.stego._measure",
    "measure_channel": "legible.stego._measure",
    "meaning_kept": "legible.stego._measure",
    "paraphraser_quality": "legible.stego._measure",
    "run_matrix": "legible.stego._measure",
    "DEVELOPMENT": "legible.stego._families",
    "HELD_OUT": "legible.stego._families",
    "Family": "legible.stego._families",
    "Site": "legible.stego._families",
    "family_names": "legible.stego._families",
    "make_family": "legible.stego._families",
    "FamilyResult": "legible.stego._search",
    "SearchResult": "legible.stego._search",
    "family_selection": "legible.stego._search",
    "search_channels": "legible.stego._search",
    "write_search_report": "legible.stego._search",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
