"""Masking policies per kind and class, applied to strings and records.

A policy maps a finding's ``kind`` (``credit_card``) or, failing that, its
class (``PCI``) to a strategy, a plain ``Callable[[str], str]``. Defaults
follow PCI DSS 3.4 (at most the last four digits of a PAN shown) and the usual
e-mail convention (first character and domain)::

    4111 1111 1111 1111  -> ****1111
    john.doe@example.com -> j***@example.com
    123-45-6789          -> ***-**-6789
    sk_live_...          -> [REDACTED]
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from pynomaly_security.protection.classify import Classifier, DataClass, SensitiveSpan

__all__ = [
    "DEFAULT_POLICY",
    "REDACTED",
    "MaskStrategy",
    "Masker",
    "mask_email",
    "mask_iban",
    "mask_ip",
    "mask_last4",
    "mask_ssn",
    "redact",
]

MaskStrategy = Callable[[str], str]
REDACTED = "[REDACTED]"


def redact(_value: str) -> str:
    """Replace the whole value."""
    return REDACTED


def mask_last4(value: str) -> str:
    """``****`` and the last four alphanumerics (separators dropped)."""
    chars = re.sub(r"[^0-9A-Za-z]", "", value)
    return "****" + chars[-4:] if len(chars) > 8 else "****"


def mask_email(value: str) -> str:
    """First character of the local part, ``***``, and the domain."""
    local, _, domain = value.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else REDACTED


def mask_ssn(value: str) -> str:
    """``***-**-`` and the serial."""
    return "***-**-" + re.sub(r"\D", "", value)[-4:]


def mask_iban(value: str) -> str:
    """Country and check digits, ``****``, and the last four characters."""
    compact = value.replace(" ", "")
    return f"{compact[:4]}****{compact[-4:]}"


def mask_ip(value: str) -> str:
    """Keep the network part a log reader needs: ``192.168.*.*``, ``2001:db8:*``."""
    if ":" in value:
        return ":".join(value.split(":")[:2]) + ":*"
    return ".".join(value.split(".")[:2]) + ".*.*"


# Read-only, so no caller can change another's defaults (pass ``policy=`` instead).
DEFAULT_POLICY: Mapping[str, MaskStrategy] = MappingProxyType(
    {
        "credit_card": mask_last4,
        "email": mask_email,
        "ssn": mask_ssn,
        "phone": mask_last4,
        "iban": mask_iban,
        "ip_address": mask_ip,
        "date_of_birth": redact,
        "api_key": redact,
        "secret": redact,
        "confidential": redact,
        DataClass.PII: redact,
        DataClass.PCI: mask_last4,
        DataClass.SECRET: redact,
        DataClass.CONFIDENTIAL: redact,
    }
)


class Masker:
    """Mask classified values in strings and records.

    Args:
        classifier: finds what to mask (default :class:`Classifier`).
        policy: overrides per kind or class, merged over :data:`DEFAULT_POLICY`
            (e.g. ``{"email": redact}``, ``{DataClass.PII: redact}``).
    """

    def __init__(
        self,
        classifier: Classifier | None = None,
        *,
        policy: Mapping[str, MaskStrategy] | None = None,
    ) -> None:
        self.classifier = classifier or Classifier()
        self.policy: dict[str, MaskStrategy] = {**DEFAULT_POLICY, **(policy or {})}

    def strategy(self, finding: SensitiveSpan) -> MaskStrategy:
        """The strategy for ``finding``: by kind, then by class, else :func:`redact`."""
        return self.policy.get(finding.kind) or self.policy.get(finding.data_class) or redact

    def apply(self, text: str, findings: Sequence[SensitiveSpan]) -> str:
        """Replace each finding's span of ``text`` by its mask."""
        for f in sorted(findings, key=lambda f: f.start, reverse=True):
            text = text[: f.start] + self.strategy(f)(text[f.start : f.end]) + text[f.end :]
        return text

    def mask_text(self, text: str, *, field: str | None = None) -> str:
        """Mask every finding in ``text`` (``field`` enables name-based rules)."""
        return self.apply(text, self.classifier.classify_value(text, field=field))

    def mask(self, value: Any, *, field: str | None = None, _depth: int = 0) -> Any:
        """A copy of ``value`` (string, number, date, mapping, list) with findings masked.

        Values that are classified but not strings (a card number stored as an
        ``int``, a ``date`` of birth) come back as masked strings.
        """
        if _depth > self.classifier.max_depth:
            return value
        if isinstance(value, Mapping):
            return {
                k: self.mask(item, field=str(k), _depth=_depth + 1) for k, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.mask(item, field=field, _depth=_depth + 1) for item in value]
        if isinstance(value, str | int | dt.date) and not isinstance(value, bool):
            findings = self.classifier.classify_value(value, field=field)
            if not findings:
                return value
            text = value.isoformat() if isinstance(value, dt.date) else str(value)
            return self.apply(text, findings)
        return value

    def mask_field(self, value: Any, *, field: str | None = None) -> Any:
        """Mask a field someone asked to protect: by its findings, else redacted whole.

        Used for explicitly configured fields (middleware routes): an
        unrecognised value in a field named for masking is still hidden.
        """
        if value is None or isinstance(value, bool):
            return value
        masked = self.mask(value, field=field)
        return REDACTED if masked == value and not isinstance(value, Mapping | list) else masked
