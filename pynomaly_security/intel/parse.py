"""Read the IP reputation lists users download (issue 16, item 5).

One function, :func:`parse_list`, reads every supported shape, told apart line by line
or by the first line:

* FireHOL netsets (``firehol_level1.netset``): one address or CIDR per line, ``#``
  comments;
* Spamhaus DROP / EDROP text: ``1.2.3.0/24 ; SBL123``, ``;`` comments;
* Tor exit lists: one address per line (``torbulkexitlist``), or TorDNSEL's
  ``ExitAddress 1.2.3.4 2024-01-01 00:00:00`` lines among ``ExitNode`` /
  ``Published`` / ``LastStatus`` lines (ignored);
* CrowdSec-style CSV: a header naming an ``ip``, ``value`` or ``address`` column
  (a ``scope`` column, when present, must say ``ip`` or ``range``).

IPv4 and IPv6 alike. A line that is none of these is a :class:`IntelParseError`
naming its line number: a list half read would ban half of what its owner meant.
"""

from __future__ import annotations

import csv
import ipaddress
from collections.abc import Iterable, Iterator

from pynomaly_security.intel.ranges import ip_key

__all__ = ["IntelParseError", "parse_list"]

_TOR_KEYWORDS = frozenset({"ExitNode", "Published", "LastStatus"})
_CSV_COLUMNS = ("ip", "value", "address", "ip_address", "cidr")
_MAX_SHOWN = 60


class IntelParseError(ValueError):
    """A line of a list is not an address, a network or a comment."""

    def __init__(self, line: int, text: str, why: str) -> None:
        shown = text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."
        super().__init__(f"line {line}: {shown!r}: {why}")
        self.line = line


def _range(token: str, line: int, text: str) -> tuple[int, int, int]:
    if "/" not in token:
        key = ip_key(token)
        if key is None:
            raise IntelParseError(line, text, "not an IP address or CIDR network")
        return key[0], key[1], key[1]
    try:
        net = ipaddress.ip_network(token, strict=False)
    except ValueError:
        raise IntelParseError(line, text, "not an IP address or CIDR network") from None
    return net.version, int(net.network_address), int(net.broadcast_address)


def _text_lines(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, int, int]]:
    for number, raw in lines:
        text = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not text:
            continue
        words = text.split()
        if words[0] == "ExitAddress":
            if len(words) < 2:
                raise IntelParseError(number, raw.strip(), "ExitAddress without an address")
            yield _range(words[1], number, raw.strip())
        elif words[0] in _TOR_KEYWORDS:
            continue
        elif len(words) == 1:
            yield _range(words[0], number, raw.strip())
        else:
            raise IntelParseError(number, raw.strip(), "more than one value on the line")


def _csv_lines(
    header: list[str], lines: Iterable[tuple[int, str]]
) -> Iterator[tuple[int, int, int]]:
    names = [h.strip().lower() for h in header]
    column = next(names.index(c) for c in _CSV_COLUMNS if c in names)
    scope = names.index("scope") if "scope" in names else None
    for number, raw in lines:
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        row = next(csv.reader([raw]))
        if len(row) <= column:
            raise IntelParseError(number, raw.strip(), f"no {names[column]!r} column")
        if scope is not None and len(row) > scope:
            kind = row[scope].strip().lower()
            if kind not in ("ip", "range", "cidr"):
                raise IntelParseError(number, raw.strip(), f"scope {kind!r} is not ip or range")
        yield _range(row[column].strip(), number, raw.strip())


def parse_list(text: str | Iterable[str]) -> list[tuple[int, int, int]]:
    """The ``(version, start, end)`` ranges of a list's text (or its lines).

    Raises:
        IntelParseError: a line that is no address, network or comment (its number),
            or a CSV header without an address column.
    """
    lines = text.splitlines() if isinstance(text, str) else text
    numbered = ((n, line.rstrip("\r\n")) for n, line in enumerate(lines, 1))
    for number, first in numbered:
        stripped = first.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if "," in stripped:
            header = next(csv.reader([stripped]))
            if not any(h.strip().lower() in _CSV_COLUMNS for h in header):
                raise IntelParseError(
                    number, stripped, f"a CSV header needs one of the columns {list(_CSV_COLUMNS)}"
                )
            return list(_csv_lines(header, numbered))
        return [*_text_lines([(number, first)]), *_text_lines(numbered)]
    return []
