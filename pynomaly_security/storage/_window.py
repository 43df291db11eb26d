"""Sliding-window arithmetic shared by the backends.

Windows are aligned on multiples of ``expiry`` (like limits' memory storage);
naming each window by its index makes "shift current into previous" free.
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["Windows", "sliding_windows"]


class Windows(NamedTuple):
    previous_key: str
    current_key: str
    previous_ttl: float
    """Seconds of the previous window that still overlap the sliding window."""
    current_ttl: float


def sliding_windows(key: str, expiry: int, now: float) -> Windows:
    index = math.floor(now / expiry)
    elapsed = now - index * expiry
    return Windows(
        f"{key}/sw/{index - 1}",
        f"{key}/sw/{index}",
        expiry - elapsed,
        2 * expiry - elapsed,
    )
