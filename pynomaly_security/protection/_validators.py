"""Checksums and range checks behind classification (pure functions)."""

from __future__ import annotations

import math
from collections import Counter

# Issuer ranges: (prefix low, prefix high, allowed lengths). Prefixes compare on
# the same number of leading digits. Sources: ISO/IEC 7812 registrations as
# published by the schemes (Visa, Mastercard 2-series since 2017, Amex,
# Discover incl. China UnionPay co-branding, JCB, Diners Club).
_ISSUERS: tuple[tuple[str, str, str, frozenset[int]], ...] = (
    ("visa", "4", "4", frozenset({13, 16, 19})),
    ("mastercard", "51", "55", frozenset({16})),
    ("mastercard", "2221", "2720", frozenset({16})),
    ("amex", "34", "34", frozenset({15})),
    ("amex", "37", "37", frozenset({15})),
    ("discover", "6011", "6011", frozenset(range(16, 20))),
    ("discover", "644", "649", frozenset(range(16, 20))),
    ("discover", "65", "65", frozenset(range(16, 20))),
    ("unionpay", "62", "62", frozenset(range(16, 20))),
    ("jcb", "3528", "3589", frozenset(range(16, 20))),
    ("diners", "300", "305", frozenset(range(14, 20))),
    ("diners", "36", "36", frozenset(range(14, 20))),
    ("diners", "38", "39", frozenset(range(16, 20))),
    ("maestro", "50", "50", frozenset(range(12, 20))),
    ("maestro", "56", "58", frozenset(range(12, 20))),
    ("maestro", "67", "67", frozenset(range(12, 20))),
)

# ISO 13616 IBAN lengths per country (a representative subset: SEPA + common).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21,
    "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27,
    "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "QA": 29, "RO": 24, "SA": 24, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "TR": 26, "UA": 29,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """ISO/IEC 7812-1 Luhn check over a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_issuer(digits: str) -> str | None:
    """Issuer of a card number whose prefix and length match a known range."""
    for name, low, high, lengths in _ISSUERS:
        if len(digits) in lengths and low <= digits[: len(low)] <= high:
            return name
    return None


def is_card_number(digits: str) -> bool:
    """A known issuer range, a valid length and a valid Luhn check digit."""
    return 12 <= len(digits) <= 19 and card_issuer(digits) is not None and luhn_valid(digits)


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000.

    Also rejects the two numbers the SSA documents as advertising samples.
    """
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return f"{area}{group}{serial}" not in ("078051120", "219099999")


def iban_valid(compact: str) -> bool:
    """ISO 13616: known country length and mod-97 of the rearranged number equals 1."""
    country = compact[:2]
    if IBAN_LENGTHS.get(country) != len(compact) or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def shannon_entropy(text: str) -> float:
    """Bits of entropy per character of ``text`` (empirical distribution)."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def nanp_valid(area: str, exchange: str) -> bool:
    """North American Numbering Plan: area and exchange codes start with 2-9, no N11 area."""
    return area[0] not in "01" and exchange[0] not in "01" and area[1:] != "11"
