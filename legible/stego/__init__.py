"""Hidden channels in text CoT: schemes that hide bits in surface choices, cover texts, and how many bits
per KB each scheme gets through each paraphraser (``run_stego`` writes the table, figures and report).

The names load on first use (PEP 562), so importing ``legible.stego`` stays cheap.
"""

from __future__ import annotations

from legible.lazy import lazy_exports

_EXPORTS = {
    "run_stego": "legible.stego.run",
    "write_stego_report": "legible.stego.run",
    "Scheme": "legible.stego.schemes",
    "make_scheme": "legible.stego.schemes",
    "scheme_names": "legible.stego.schemes",
    "load_cover_texts": "legible.stego.corpus",
    "ChannelResult": "legible.stego.measure",
    "ParaphraserQuality": "legible.stego.measure",
    "build_paraphrasers": "legible.stego.measure",
    "measure_channel": "legible.stego.measure",
    "meaning_kept": "legible.stego.measure",
    "paraphraser_quality": "legible.stego.measure",
    "run_matrix": "legible.stego.measure",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
