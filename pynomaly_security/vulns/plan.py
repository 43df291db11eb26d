"""The remediation plan: what to upgrade each vulnerable package to, and by when.

The target version comes from a fix loop like pip-audit's, offline: take every
``fixed`` version the database knows for the package above the current one, in the
ecosystem's order, and keep the first that no advisory of the database affects
(an upgrade that fixes one advisory but lands in another's range is skipped). When
none is left: "no fix: mitigate or remove".

Deadlines come from a policy by severity (defaults: critical 7 days, high 30,
medium 90, low 180; ``VULNS_DEADLINE_DAYS``), counted from the scan; a vulnerability
on the CISA KEV list takes the catalogue's due date instead (CISA BOD 22-01).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynomaly_security.vulns.versions import UnknownEcosystem, VersionError, version_key

if TYPE_CHECKING:
    from pynomaly_security.vulns.store import AdvisoryDB, StoredAdvisory

__all__ = ["DEFAULT_DEADLINE_DAYS", "NO_FIX", "DeadlinePolicy", "RemediationStep", "safe_version"]

NO_FIX = "no fix: mitigate or remove"
DEFAULT_DEADLINE_DAYS: dict[str, int] = {"critical": 7, "high": 30, "medium": 90, "low": 180}


@dataclass(frozen=True)
class DeadlinePolicy:
    """Days to remediate by severity; ``UNKNOWN`` is treated as critical (unranked is
    not safe), ``NONE`` as low."""

    days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DEADLINE_DAYS))

    def deadline(
        self, severity: str, found: dt.date, kev_due: str | None = None
    ) -> tuple[str, str]:
        """``(ISO date, why)``: the KEV due date when there is one, else the policy's."""
        if kev_due:
            return kev_due, "CISA KEV due date"
        key = {"UNKNOWN": "critical", "NONE": "low"}.get(severity, severity.lower())
        days = self.days.get(key, DEFAULT_DEADLINE_DAYS.get(key, 7))
        name = "unknown, as critical" if severity == "UNKNOWN" else key
        return (found + dt.timedelta(days=days)).isoformat(), f"{name}: {days} days"


@dataclass
class RemediationStep:
    """One package's line of the plan."""

    ecosystem: str
    package: str
    version: str
    action: str  # "upgrade" or "mitigate or remove"
    target: str | None  # the smallest safe version, None when there is none
    severity: str
    priority: str
    deadline: str
    deadline_reason: str
    vulnerabilities: list[str]
    locations: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ecosystem": self.ecosystem,
            "package": self.package,
            "version": self.version,
            "action": self.action,
            "target": self.target,
            "advice": f"upgrade to {self.target}" if self.target else NO_FIX,
            "severity": self.severity,
            "priority": self.priority,
            "deadline": self.deadline,
            "deadline_reason": self.deadline_reason,
            "vulnerabilities": self.vulnerabilities,
            "locations": self.locations,
        }


def safe_version(
    db: AdvisoryDB,
    ecosystem: str,
    name: str,
    version: str,
    candidates: list[StoredAdvisory] | None = None,
) -> str | None:
    """The smallest known fixed version above ``version`` that no advisory affects."""
    advisories = db.candidates(ecosystem, name) if candidates is None else list(candidates)
    try:
        current = version_key(ecosystem, version)
        fixes = {f: version_key(ecosystem, f) for a in advisories for f in a.fixed_versions()}
        ordered = sorted((f for f, k in fixes.items() if current < k), key=fixes.__getitem__)
    except (UnknownEcosystem, VersionError):
        return None
    for fix in ordered:
        for i, advisory in enumerate(advisories):
            if advisory.affects(fix):
                # The advisory that ruled this candidate out is likely to rule out the
                # next one too: ask it first (exact, and no longer candidates x advisories).
                advisories.insert(0, advisories.pop(i))
                break
        else:
            return fix
    return None
