"""Words as they read base64-encoded inside a longer encoded text, for rules that
find encoded payloads (Java gadget names, script markup) without decoding.

A word can start at any of three byte alignments in the encoded text, and the
characters at its edges mix in the unknown bytes around it: only the characters
that depend on the word alone are kept, lower case (rules read normalized values).

References:
    RFC 4648, section 4; OWASP CRS 944240 (base64 gadget names at three alignments).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

__all__ = ["base64_alternation"]


def _base64_forms(word: str) -> list[str]:
    forms = []
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + word.encode()).decode().lower()
        # Drop characters that depend on the unknown neighbouring bytes: before, the
        # ones mixing in the padding; after, the "=" padding and the character that
        # takes bits from the unknown next byte.
        start = (pad * 4 + 2) // 3 if pad else 0
        end = len(encoded) - (0, 3, 2)[(pad + len(word)) % 3]
        forms.append(encoded[start:end])
    return forms


def base64_alternation(words: Iterable[str]) -> str:
    """A regex alternation of ``words`` base64-encoded (lower case, as rules read
    values) at the three byte alignments a word can have inside a longer encoded
    text, as CRS matches encoded gadget names; forms under 8 characters are left
    out (too likely by chance)."""
    return "|".join(sorted({f for w in words for f in _base64_forms(w) if len(f) >= 8}))
