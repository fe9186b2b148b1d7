from legible.paraphrase import organism as _organism  # noqa: F401  (registers the organism paraphrasers)
from legible.paraphrase.base import (
    Composed,
    Paraphraser,
    make_paraphraser,
    paraphraser_names,
    register_paraphraser,
)

__all__ = ["Composed", "Paraphraser", "make_paraphraser", "paraphraser_names", "register_paraphraser"]
