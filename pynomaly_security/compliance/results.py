"""What a check returns, and how results become control statuses and scores.

A check's :class:`CheckResult` is one of four statuses with its evidence: the values
observed, what they were held against, when and how they were gathered. A control's
status comes from its checks' (after waivers): ``fail`` if one fails, else ``error``
if one could not run, ``not_applicable`` if none applies, else ``pass``. A framework's
score is the share of its applicable controls that pass (a waived control counts as
passing and is shown as waived).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["CheckResult", "Status", "control_status", "iso", "score"]


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 (a status, not a password)
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    ERROR = "error"


def iso(ts: float) -> str:
    """UTC ISO 8601 with a ``Z`` and whole seconds (stable across exports)."""
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's verdict and its evidence.

    Args:
        check_id: the catalogue's check instance (``headers.hsts``).
        status: pass, fail, not_applicable or error.
        summary: one sentence a reader understands without the rest.
        observed: the values seen (settings, headers, counts), JSON.
        expected: what they were held against (the thresholds).
        method: ``settings``, ``probe`` (requests through the app in process) or ``data``.
        how: how the values were gathered, in words.
        at: when (Unix seconds).
    """

    check_id: str
    status: Status
    summary: str
    observed: Mapping[str, Any] = field(default_factory=dict)
    expected: Mapping[str, Any] = field(default_factory=dict)
    method: str = "settings"
    how: str = ""
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "status": self.status.value,
            "summary": self.summary,
            "observed": dict(self.observed),
            "expected": dict(self.expected),
            "method": self.method,
            "how": self.how,
            "at": iso(self.at),
            "at_ts": self.at,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CheckResult:
        return cls(
            check_id=str(doc["check_id"]),
            status=Status(doc["status"]),
            summary=str(doc.get("summary", "")),
            observed=dict(doc.get("observed") or {}),
            expected=dict(doc.get("expected") or {}),
            method=str(doc.get("method", "")),
            how=str(doc.get("how", "")),
            at=float(doc.get("at_ts", 0.0)),
        )


def control_status(statuses: Iterable[Status]) -> Status:
    """The control's status from its checks' (waived ones already counted as pass)."""
    seen = set(statuses)
    if Status.FAIL in seen:
        return Status.FAIL
    if Status.ERROR in seen:
        return Status.ERROR
    if not seen or seen == {Status.NOT_APPLICABLE}:
        return Status.NOT_APPLICABLE
    return Status.PASS


def score(statuses: Iterable[Status]) -> float | None:
    """Percent of applicable controls passing (one decimal); None when none applies."""
    applicable = [s for s in statuses if s is not Status.NOT_APPLICABLE]
    if not applicable:
        return None
    return round(100.0 * sum(s is Status.PASS for s in applicable) / len(applicable), 1)
