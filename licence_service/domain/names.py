"""Personal names (R-NAME)."""

from __future__ import annotations

import unicodedata

__all__ = ["normalise_name", "same_name"]


def _collapse(text: str) -> str:
    # str.split() with no argument splits on any Unicode white space and drops empties,
    # which both collapses runs and strips the ends.
    return " ".join(text.split())


def normalise_name(name: str) -> str:
    """R-NAME: the stored/printed form — NFC, single spaces, upper case.

    NFC is applied again after upper-casing because case mapping can, in principle,
    produce decomposed sequences.
    """
    return unicodedata.normalize(
        "NFC", _collapse(unicodedata.normalize("NFC", name)).upper()
    )


def same_name(a: str, b: str) -> bool:
    """R-NAME: names are equal after NFC, case folding and white-space collapsing."""
    return _comparison_key(a) == _comparison_key(b)


def _comparison_key(name: str) -> str:
    folded = unicodedata.normalize("NFC", name).casefold()
    return _collapse(unicodedata.normalize("NFC", folded))
