"""Text that came from a model is data, never instructions: how every prompt of legible shows it.

A paraphraser, a judge or a monitor puts model text inside a delimiter whose tag carries a fresh random
nonce (``<cot-3f9a0c1b2d4e> ... </cot-3f9a0c1b2d4e>``), after every tag-like string that could pose as one
of those delimiters has been neutralised, so the text can neither close its data block nor open another.
"""

from __future__ import annotations

import re
import secrets

__all__ = ["as_data", "neutralize_tags", "new_nonce"]

# Anything that could pose as one of our delimiters: <cot...>, </cot ...>, <question-...>, also with
# spaces, HTML entities left alone. The whole tag family is neutralised, not just the current nonce.
TAG_PATTERN = re.compile(r"<\s*/?\s*(?:cot|question)(?![a-z])[^<>]{0,80}>?", re.IGNORECASE)


def new_nonce() -> str:
    """A fresh, unguessable delimiter nonce (12 hex digits, from the OS CSPRNG)."""
    return secrets.token_hex(6)


def neutralize_tags(text: str) -> str:
    """Defuse every tag-like string of the delimiter families in ``text`` (``<cot-...>``, ``</cot>``,
    ``<question ...>``): the angle brackets become ``[`` ``]`` so the text survives but can never close
    or open a data block."""

    def repl(m: re.Match[str]) -> str:
        s = m.group(0)
        return "[" + s.lstrip("<").rstrip(">").strip() + "]"

    return TAG_PATTERN.sub(repl, text)


def as_data(text: str, nonce: str) -> str:
    """``text`` ready to sit inside the delimiters of ``nonce``: tags neutralised, the nonce removed."""
    return neutralize_tags(text).replace(nonce, "[nonce removed]")
