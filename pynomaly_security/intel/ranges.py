"""A set of IP addresses as sorted, merged integer ranges in compact arrays.

A reputation list of a million entries is a million ``(start, end)`` pairs: kept as
two :mod:`array` columns per family (IPv4 in 32-bit words, IPv6 as two 64-bit words
per bound), it costs 8 bytes per IPv4 range instead of the ~200 of Python ints in
tuples, and a lookup is one :func:`bisect.bisect_right` on the starts (O(log n)):
overlapping and adjacent entries are merged when the set is built, so the range
before the address is the only one that can hold it. ``bench/intel.py`` measures
both. A radix tree answers the same question; bisect over arrays is in the standard
library and is as fast at this size.
"""

from __future__ import annotations

import base64
import bisect
import ipaddress
import socket
import sys
import zlib
from array import array
from collections.abc import Iterable
from typing import Any

__all__ = ["IPRangeSet", "ip_key"]

_V4 = 4
_V6 = 6
_MASK64 = (1 << 64) - 1
_bisect = bisect.bisect_right
_pton = socket.inet_pton
_INET, _INET6 = socket.AF_INET, socket.AF_INET6
_from_bytes = int.from_bytes


def ip_key(text: str) -> tuple[int, int] | None:
    """``(4 or 6, the address as an integer)``, None if ``text`` is not an address.

    ``inet_pton`` rather than :mod:`ipaddress`: this runs per request when a list or
    CIDR decision exists, and is several times cheaper."""
    try:
        if ":" not in text:
            return _V4, _from_bytes(_pton(_INET, text), "big")
        value = _from_bytes(_pton(_INET6, text.split("%", 1)[0]), "big")
    except (OSError, ValueError):
        return None
    if value >> 32 == 0xFFFF:  # an IPv4-mapped address is the IPv4 one
        return _V4, value & 0xFFFFFFFF
    return _V6, value


class _Wide:
    """IPv6 bounds as one sequence of ints over an ``array('Q')`` of (high, low) words,
    so :func:`bisect.bisect_right` searches it without a list of Python ints."""

    __slots__ = ("words",)

    def __init__(self, words: array[int]) -> None:
        self.words = words

    def __len__(self) -> int:
        return len(self.words) // 2

    def __getitem__(self, i: int) -> int:
        words = self.words
        return (words[2 * i] << 64) | words[2 * i + 1]


def _merge(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    pairs.sort()
    merged: list[tuple[int, int]] = []
    for start, end in pairs:
        if merged and start <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _native(column: array[int]) -> array[int]:
    """Stored little-endian: swap on a big-endian host (both when writing and reading)."""
    if sys.byteorder == "big":
        column = array(column.typecode, column)
        column.byteswap()
    return column


class IPRangeSet:
    """IPv4 and IPv6 ranges, merged; ``ip_key(address) in ranges`` is the lookup.

    Args:
        networks: what :func:`ipaddress.ip_network` accepts, or ``(version, start,
            end)`` triples.
    """

    __slots__ = ("_v4_ends", "_v4_starts", "_v6_ends", "_v6_starts", "entries")

    def __init__(self, networks: Iterable[str | tuple[int, int, int]] = ()) -> None:
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        count = 0
        for item in networks:
            count += 1
            if isinstance(item, tuple):
                version, start, end = item
            else:
                net = ipaddress.ip_network(item, strict=False)
                version, start, end = (
                    net.version,
                    int(net.network_address),
                    int(net.broadcast_address),
                )
            (v4 if version == _V4 else v6).append((start, end))
        self.entries = count
        """Entries given (before merging)."""
        m4, m6 = _merge(v4), _merge(v6)
        self._v4_starts = array("I", (s for s, _ in m4))
        self._v4_ends = array("I", (e for _, e in m4))
        self._v6_starts = _Wide(array("Q", _words(s for s, _ in m6)))
        self._v6_ends = _Wide(array("Q", _words(e for _, e in m6)))

    def __len__(self) -> int:
        """Ranges after merging."""
        return len(self._v4_starts) + len(self._v6_starts)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple):
            return False
        return self.has(*key)

    def has(self, version: int, value: int) -> bool:
        """Whether the address ``value`` (an integer of IP ``version``) is in the set."""
        if version == _V4:
            i = _bisect(self._v4_starts, value) - 1
            return i >= 0 and value <= self._v4_ends[i]
        i = _bisect(self._v6_starts, value) - 1
        return i >= 0 and value <= self._v6_ends[i]

    def contains(self, address: str) -> bool:
        """Whether ``address`` (text) is in the set; False for text that is no address."""
        key = ip_key(address)
        return key is not None and self.has(*key)

    def nbytes(self) -> int:
        """Bytes of the four arrays (what a worker holds per list)."""
        return sum(
            a.itemsize * len(a)
            for a in (
                self._v4_starts,
                self._v4_ends,
                self._v6_starts.words,
                self._v6_ends.words,
            )
        )

    # -- storage: base64 of zlib of the little-endian arrays ---------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            **{
                name: base64.b64encode(zlib.compress(_native(column).tobytes(), 1)).decode()
                for name, column in (
                    ("v4s", self._v4_starts),
                    ("v4e", self._v4_ends),
                    ("v6s", self._v6_starts.words),
                    ("v6e", self._v6_ends.words),
                )
            },
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> IPRangeSet:
        """The set :meth:`dump` wrote; ValueError if the data is not one."""
        out = cls()
        columns = []
        for name, code in (("v4s", "I"), ("v4e", "I"), ("v6s", "Q"), ("v6e", "Q")):
            column = array(code)
            try:
                column.frombytes(zlib.decompress(base64.b64decode(data[name])))
            except (KeyError, TypeError, zlib.error, ValueError) as exc:
                raise ValueError(f"stored range set is damaged ({name})") from exc
            columns.append(_native(column))
        if len(columns[0]) != len(columns[1]) or len(columns[2]) != len(columns[3]):
            raise ValueError("stored range set is damaged (lengths)")
        out._v4_starts, out._v4_ends = columns[0], columns[1]
        out._v6_starts, out._v6_ends = _Wide(columns[2]), _Wide(columns[3])
        out.entries = int(data.get("entries", len(out)))
        return out


def _words(values: Iterable[int]) -> Iterable[int]:
    for value in values:
        yield value >> 64
        yield value & _MASK64
