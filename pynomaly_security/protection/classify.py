"""Find personal, payment and secret data in strings and records, with validation.

Shape alone flags too much (any 16 digits, any ``x@y``), so every candidate is
validated: card numbers need a known issuer range and a Luhn check digit,
SSNs a valid area/group/serial, IBANs a known length and mod-97, IP addresses
must parse, phone numbers must fit E.164 or a national plan, secrets need a
known prefix or high entropy. Field names add what values cannot show: a date
is a date of birth only under ``dob``/``birth_date``; anything under
``password`` or ``api_key`` is a secret.

References:
    ISO/IEC 7812 (card numbers, Luhn); ISO 13616 (IBAN); SSA "SSN
    randomization" rules; ITU-T E.164; OWASP Logging Cheat Sheet (data to exclude).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pynomaly_security.protection import _validators as v

__all__ = ["Classifier", "DataClass", "SensitiveSpan", "classify"]


class DataClass(StrEnum):
    PII = "PII"
    PCI = "PCI"
    SECRET = "SECRET"  # noqa: S105 -- a class label, not a password
    CONFIDENTIAL = "CONFIDENTIAL"


@dataclass(frozen=True, slots=True)
class SensitiveSpan:
    """One classified span: ``value[start:end]`` of the field at ``path`` (``None`` for a bare
    string). ``kind`` is ``email``, ``phone``, ``credit_card``, ``ssn``, ``iban``,
    ``ip_address``, ``date_of_birth``, ``api_key``, ``secret`` or ``confidential``."""

    kind: str
    data_class: DataClass
    start: int
    end: int
    path: str | None = None


# -- patterns (candidates only; each is validated below) ------------------------------
_EMAIL = re.compile(
    r"(?<![\w.%+-])([A-Za-z0-9._%+-]{1,64})@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24})(?![\w-])"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d])")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_SSN_BARE = re.compile(r"(?<!\d)(\d{3})(\d{2})(\d{4})(?!\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_E164 = re.compile(r"(?<![\w+])\+[1-9][\d ().-]{6,20}\d(?!\d)")
_NANP = re.compile(r"(?<![\d+])(?:\((\d{3})\) ?|(\d{3})[-. ])(\d{3})[-. ](\d{4})(?!\d)")
_TRUNK = re.compile(r"(?<![\d+])0\d{1,4}(?:[ -]\d{2,6}){1,4}(?!\d)")
_KNOWN_SECRETS = re.compile(
    r"\b(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|sk-(?:proj-)?[A-Za-z0-9_-]{20,}"
    r"|eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,})"
    # The PEM body charset excludes "-", so each match stops at the next marker: linear even
    # for thousands of BEGIN lines without END (a lazy ``[\s\S]*?`` was quadratic there).
    r"|-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[A-Za-z0-9+/=\s]{0,16384}"
    r"(?:-----END (?:[A-Z]+ )*PRIVATE KEY-----)?"
)
_HIGH_ENTROPY = re.compile(r"(?<![A-Za-z0-9_+/=-])[A-Za-z0-9_+/=-]{20,}(?![A-Za-z0-9_+/=-])")
_HEX = re.compile(r"[0-9a-fA-F]+")
_DATE = (
    re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$"),  # ISO 8601: year, month, day
    re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$"),  # d/m/Y or m/d/Y
)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_DOB_FIELDS = frozenset({"dob", "dateofbirth", "birthdate", "birthday", "dateofbirthday"})
_SECRET_FIELDS = frozenset(
    {"password", "passwd", "pwd", "secret", "apikey", "token", "accesstoken", "refreshtoken",
     "privatekey", "clientsecret", "secretkey", "authorization", "sessiontoken"}
)  # fmt: skip
_CONFIDENTIAL_FIELDS = frozenset(
    {"salary", "income", "diagnosis", "medicalrecord", "healthcondition", "religion",
     "ethnicity", "sexualorientation", "politicalopinion", "criminalrecord"}
)  # fmt: skip
_SSN_FIELDS = frozenset({"ssn", "socialsecuritynumber", "taxid", "tin"})
# Priority when spans overlap: the more specific, validated finding wins.
_PRIORITY = {"api_key": 0, "credit_card": 1, "iban": 2, "ssn": 3, "email": 4,
             "ip_address": 5, "phone": 6, "secret": 7}  # fmt: skip


class Classifier:
    """Classify strings and (nested) records.

    Args:
        secret_fields / confidential_fields / dob_fields: field names (compared
            case- and punctuation-insensitively: ``apiKey`` == ``api_key``) whose
            whole value is SECRET / CONFIDENTIAL / a date of birth.
        min_entropy: bits per character above which a 20+ character token with
            mixed character classes is a secret (hex strings: ``min_entropy - 1``).
        max_length: characters of each string examined (bounds the work on huge values).
        max_depth: nesting depth of records examined.
    """

    def __init__(
        self,
        *,
        secret_fields: Sequence[str] = tuple(_SECRET_FIELDS),
        confidential_fields: Sequence[str] = tuple(_CONFIDENTIAL_FIELDS),
        dob_fields: Sequence[str] = tuple(_DOB_FIELDS),
        min_entropy: float = 4.0,
        max_length: int = 100_000,
        max_depth: int = 32,
    ) -> None:
        self.secret_fields = frozenset(_norm(f) for f in secret_fields)
        self.confidential_fields = frozenset(_norm(f) for f in confidential_fields)
        self.dob_fields = frozenset(_norm(f) for f in dob_fields)
        self.min_entropy = min_entropy
        self.max_length = max_length
        self.max_depth = max_depth

    # -- records ------------------------------------------------------------------------
    def classify(self, value: Any, *, path: str | None = None) -> list[SensitiveSpan]:
        """Findings in a string, or in every string/number/date of a mapping or sequence."""
        return list(self._walk(value, path, 0))

    def _walk(self, value: Any, path: str | None, depth: int) -> Iterator[SensitiveSpan]:
        if depth > self.max_depth:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield from self._walk(item, f"{path}.{key}" if path else str(key), depth + 1)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                yield from self._walk(item, f"{path}[{i}]" if path else f"[{i}]", depth + 1)
        elif isinstance(value, str | int | dt.date) and not isinstance(value, bool):
            yield from self.classify_value(value, field=_last_field(path), path=path)

    def classify_value(
        self, value: str | int | dt.date, *, field: str | None = None, path: str | None = None
    ) -> list[SensitiveSpan]:
        """Findings in one value; ``field`` (its name) enables name-based rules."""
        text = value.isoformat() if isinstance(value, dt.date) else str(value)
        name = _norm(field) if field else ""
        if name and text:
            whole = self._by_field_name(name, value, text)
            if whole is not None:
                return [SensitiveSpan(whole[0], whole[1], 0, len(text), path)]
        return self.classify_text(text, path=path, ssn_field=name in _SSN_FIELDS)

    def _by_field_name(self, name: str, value: Any, text: str) -> tuple[str, DataClass] | None:
        if name in self.secret_fields:
            return "secret", DataClass.SECRET
        if name in self.confidential_fields:
            return "confidential", DataClass.CONFIDENTIAL
        if name in self.dob_fields and (isinstance(value, dt.date) or _is_date(text)):
            return "date_of_birth", DataClass.PII
        return None

    # -- text ---------------------------------------------------------------------------
    def classify_text(
        self, text: str, *, path: str | None = None, ssn_field: bool = False
    ) -> list[SensitiveSpan]:
        """Validated findings in free text, non-overlapping, in order of position."""
        text = text[: self.max_length]
        # Every detector needs a digit, an "@" or a PEM marker; most log values and prose
        # have none, so this check saves the dozen regex scans (the structlog processor
        # runs on every event).
        if len(text) < 6 or not (
            "@" in text or "-----" in text or any(ch.isdigit() for ch in text)
        ):
            return []
        hits = [*self._candidates(text, ssn_field)]
        hits.sort(key=lambda h: (_PRIORITY[h[0]], h[2]))
        taken: list[tuple[int, int]] = []
        found: list[SensitiveSpan] = []
        for kind, data_class, start, end in hits:
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            found.append(SensitiveSpan(kind, data_class, start, end, path))
        return sorted(found, key=lambda f: f.start)

    def _candidates(self, text: str, ssn_field: bool) -> Iterator[tuple[str, DataClass, int, int]]:
        for m in _KNOWN_SECRETS.finditer(text):
            yield "api_key", DataClass.SECRET, m.start(), m.end()
        for m in _CARD.finditer(text):
            if v.is_card_number(re.sub(r"[ -]", "", m.group())):
                yield "credit_card", DataClass.PCI, m.start(), m.end()
        for m in _IBAN.finditer(text):
            if v.iban_valid(m.group().replace(" ", "")):
                yield "iban", DataClass.PCI, m.start(), m.end()
        # Nine bare digits are an SSN only in a field named for one.
        for pattern in (_SSN, _SSN_BARE) if ssn_field else (_SSN,):
            for m in pattern.finditer(text):
                area, group, serial = (g for g in m.groups() if g.isdigit())
                if v.ssn_valid(area, group, serial):
                    yield "ssn", DataClass.PII, m.start(), m.end()
        for m in _EMAIL.finditer(text):
            local = m.group(1)
            if not (local.startswith(".") or local.endswith(".") or ".." in local):
                yield "email", DataClass.PII, m.start(), m.end()
        for pattern in (_IPV4, _IPV6):
            for m in pattern.finditer(text):
                if _is_ip(m.group()):
                    yield "ip_address", DataClass.PII, m.start(), m.end()
        yield from self._phones(text)
        for m in _HIGH_ENTROPY.finditer(text):
            if self._looks_random(m.group()):
                yield "secret", DataClass.SECRET, m.start(), m.end()

    @staticmethod
    def _phones(text: str) -> Iterator[tuple[str, DataClass, int, int]]:
        for m in _E164.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 8 <= len(digits) <= 15:  # E.164: at most 15 digits incl. country code
                yield "phone", DataClass.PII, m.start(), m.end()
        for m in _NANP.finditer(text):
            if v.nanp_valid(m.group(1) or m.group(2), m.group(3)):
                yield "phone", DataClass.PII, m.start(), m.end()
        for m in _TRUNK.finditer(text):
            # National numbers with a trunk 0 (UK, FR, DE, ...): 10-11 digits in groups.
            if 10 <= len(re.sub(r"\D", "", m.group())) <= 11:
                yield "phone", DataClass.PII, m.start(), m.end()

    def _looks_random(self, token: str) -> bool:
        if _HEX.fullmatch(token):
            has_both = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
            return (
                len(token) >= 32 and has_both and v.shannon_entropy(token) >= self.min_entropy - 1
            )
        classes = sum(
            (any(c.islower() for c in token), any(c.isupper() for c in token),
             any(c.isdigit() for c in token))
        )  # fmt: skip
        return classes == 3 and v.shannon_entropy(token) >= self.min_entropy


def _last_field(path: str | None) -> str | None:
    if not path:
        return None
    last = path.rsplit(".", 1)[-1]
    return None if last.startswith("[") else last.split("[", 1)[0]


def _is_ip(text: str) -> bool:
    if text.count(":") >= 2 and not any(c.isalnum() for c in text):
        return False  # bare "::" says nothing about a host
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    for pattern in _DATE:
        m = pattern.match(text.strip())
        if not m:
            continue
        a, b, c = (int(g) for g in m.groups())
        candidates = [(a, b, c)] if pattern is _DATE[0] else [(c, b, a), (c, a, b)]
        for year, month, day in candidates:
            try:
                d = dt.date(year, month, day)
            except ValueError:
                continue
            if d.year >= 1900 and d <= dt.date.today():
                return True
    return False


def classify(value_or_record: Any, **options: Any) -> list[SensitiveSpan]:
    """Classify a string or a record with a :class:`Classifier` built from ``options``."""
    return Classifier(**options).classify(value_or_record)
