"""Search keys: what an agent types on a call ("obrien", "Zoe", "sw1a1aa") must find what the practice sent
("O'Brien", "Zoë", "SW1A 1AA"). Keys are computed once on upload and indexed, so a lookup is an equality match."""

from __future__ import annotations

import re
import unicodedata

# Letters that Unicode does not decompose into a base letter plus an accent.
_UNDECOMPOSABLE = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})
_WHITESPACE = re.compile(r"\s+")


def name_key(value: str) -> str:
    """Lower case, accents stripped, and everything but letters and digits removed (spaces, apostrophes,
    hyphens, full stops): "O'Brien-Smith" and "obrien smith" share the key "obriensmith"."""
    folded = unicodedata.normalize("NFKD", value.casefold().translate(_UNDECOMPOSABLE))
    return "".join(ch for ch in folded if ch.isalnum())


def postcode_key(value: str) -> str:
    return _WHITESPACE.sub("", value).upper()
