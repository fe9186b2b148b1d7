from legible.paraphrase import canonical as _canonical  # noqa: F401  (registers "canonical")
from legible.paraphrase import lexical as _lexical  # noqa: F401  (registers "lexical")
from legible.paraphrase import model as _model  # noqa: F401  (registers "model"; Inspect loads only when used)
from legible.paraphrase import organism as _organism  # noqa: F401  (registers the organism paraphrasers)
from legible.paraphrase.base import (
    Composed,
    Paraphraser,
    check_paraphraser_spec,
    make_paraphraser,
    paraphraser_names,
    register_paraphraser,
)

__all__ = [
    "Composed",
    "Paraphraser",
    "check_paraphraser_spec",
    "make_paraphraser",
    "paraphraser_names",
    "register_paraphraser",
]
