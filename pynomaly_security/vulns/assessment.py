"""``AutomatedVulnerabilityAssessment``: scan lockfiles or the running process, score, plan.

One object over one advisory database (:class:`~.store.AdvisoryDB`):
:meth:`~AutomatedVulnerabilityAssessment.scan_path` reads lockfiles
(:func:`~.lockfiles.scan_tree`), :meth:`~AutomatedVulnerabilityAssessment.scan_environment`
the installed and imported distributions (:mod:`.environment`); both give a
:class:`VulnerabilityScan` of findings (one per package location and vulnerability,
aliases merged, scored and prioritized by :mod:`.scoring`) and a remediation plan
(:mod:`.plan`). :meth:`~AutomatedVulnerabilityAssessment.summary` is the small
read-only view other parts read (counts by severity, open criticals, last scan time).

Thread-safe: the app runs scans in a worker thread; one lock guards the database.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pynomaly_security.vulns.lockfiles import Package, scan_tree
from pynomaly_security.vulns.markers import TargetEnvironment
from pynomaly_security.vulns.osv import AdvisoryError, normalize_name
from pynomaly_security.vulns.plan import DeadlinePolicy, RemediationStep, safe_version
from pynomaly_security.vulns.scoring import (
    SEVERITIES,
    Score,
    priority,
    score_vulnerability,
    severity_rank,
)
from pynomaly_security.vulns.store import AdvisoryDB, StoredAdvisory
from pynomaly_security.vulns.versions import UnknownEcosystem, VersionError

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = [
    "AutomatedVulnerabilityAssessment",
    "DependencyFinding",
    "VulnerabilityScan",
    "VulnerabilitySummary",
]


@dataclass
class DependencyFinding:
    """One vulnerability of one package at one place (a lockfile line, the environment)."""

    ecosystem: str
    package: str
    version: str
    location: str
    vulnerability: str  # the merged vulnerability's name (its smallest record id)
    aliases: list[str]  # every id: records and the CVE/GHSA/PYSEC names they give
    summary: str
    score: Score
    epss: float | None
    kev_due: str | None  # None: not on the KEV list; "" listed without a due date
    imported: bool | None  # by the running app; None for a lockfile
    priority_points: float
    priority: str
    line: int | None = None

    @property
    def severity(self) -> str:
        return self.score.severity

    def to_dict(self) -> dict[str, Any]:
        return {
            "ecosystem": self.ecosystem,
            "package": self.package,
            "version": self.version,
            "location": self.location,
            "line": self.line,
            "vulnerability": self.vulnerability,
            "aliases": self.aliases,
            "summary": self.summary,
            "severity": self.score.severity,
            "score": self.score.score,
            "score_source": self.score.source,
            "vector": self.score.vector,
            "epss": self.epss,
            "kev": self.kev_due is not None,
            "kev_due": self.kev_due or None,
            "imported": self.imported,
            "priority": self.priority,
            "priority_points": self.priority_points,
        }


@dataclass
class VulnerabilityScan:
    """What one scan found: findings (highest priority first), the plan, what was skipped."""

    target: str
    findings: list[DependencyFinding]
    plan: list[RemediationStep]
    packages: int
    scanned_at: float
    unpinned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_installed: list[str] = field(default_factory=list)
    """Pinned packages whose environment marker is false for the target: not matched."""
    environment: str = ""  # what the markers were evaluated for
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    """The environment scan's installed distributions: name, version, imported."""

    def counts(self) -> dict[str, int]:
        """Vulnerable packages per severity (each package counted at its worst)."""
        counts = dict.fromkeys(SEVERITIES, 0)
        for step in self.plan:
            counts[step.severity] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "scanned_at": self.scanned_at,
            "packages": self.packages,
            "vulnerable_packages": len(self.plan),
            "counts": self.counts(),
            "findings": [f.to_dict() for f in self.findings],
            "plan": [s.to_dict() for s in self.plan],
            "unpinned": self.unpinned,
            "not_installed": self.not_installed,
            "environment": self.environment,
            "errors": self.errors,
            **({"dependencies": self.dependencies} if self.dependencies else {}),
        }


@dataclass(frozen=True)
class VulnerabilitySummary:
    """The read-only view of the app's own dependencies other parts read (compliance,
    dashboards): ``stack.vulnerabilities.summary()``."""

    counts: dict[str, int]  # vulnerable packages per severity
    open_criticals: int  # critical vulnerable packages
    imported_vulnerable: int  # vulnerable packages the app has imported
    last_scan_at: float | None  # None: not scanned yet
    database: str | None  # the advisory database, None when there is none
    error: str | None = None  # why the last scan failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "open_criticals": self.open_criticals,
            "imported_vulnerable": self.imported_vulnerable,
            "last_scan_at": self.last_scan_at,
            "database": self.database,
            "error": self.error,
        }


@dataclass
class _Matched:
    vulnerability: str
    aliases: list[str]
    summary: str
    score: Score
    epss: float | None
    kev_due: str | None


def _known_rank(severity: str) -> int:
    return -1 if severity == "UNKNOWN" else severity_rank(severity)


class AutomatedVulnerabilityAssessment:
    """Dependency vulnerability assessment over a local advisory database.

    Args:
        db: the database, or its file (opened on first use; a missing file is an
            :class:`~pynomaly_security.vulns.osv.AdvisoryError` then, naming the
            ``vulndb import`` command).
        policy: remediation deadlines by severity.
        environment: the target whose environment markers decide which locked
            requirements are installed (default: the running interpreter).
        clock: seconds since the epoch (tests pin it).

    References:
        OSV schema (ossf/osv-schema); pip-audit's fix loop; CISA BOD 22-01 (KEV due dates).
    """

    def __init__(
        self,
        db: AdvisoryDB | str | Path,
        *,
        policy: DeadlinePolicy | None = None,
        clock: Callable[[], float] = time.time,
        environment: TargetEnvironment | None = None,
    ) -> None:
        self._db = db if isinstance(db, AdvisoryDB) else None
        self.db_path = db.path if isinstance(db, AdvisoryDB) else str(db)
        self.policy = policy or DeadlinePolicy()
        self.environment = environment or TargetEnvironment.running()
        self.clock = clock
        self._lock = threading.Lock()
        self._last: VulnerabilityScan | None = None
        self._last_error: str | None = None

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> AutomatedVulnerabilityAssessment:
        section = settings.vulns
        return cls(section.db_path, policy=DeadlinePolicy(dict(section.deadline_days)))

    @property
    def db(self) -> AdvisoryDB:
        if self._db is None:
            self._db = AdvisoryDB(self.db_path, create=False)
        return self._db

    def close(self) -> None:
        """Close the database once a scan in progress (in another thread) is done."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- scans ----------------------------------------------------------------------

    def scan_path(self, path: str | Path) -> VulnerabilityScan:
        """Every lockfile under ``path`` (or that one file)."""
        root = Path(path)
        if not root.exists():
            raise AdvisoryError(f"{root}: no such file or directory")
        packages, errors = scan_tree(root.resolve())
        return self.scan_packages(packages, target=str(root), errors=errors)

    def scan_environment(self) -> VulnerabilityScan:
        """The running process: installed distributions, imported ones marked."""
        from pynomaly_security.vulns.environment import imported_distributions, installed_packages

        try:
            with self._lock:
                _ = self.db  # no database: fail before reading every distribution's metadata
            installed, imported = installed_packages(), imported_distributions()
            scan = self.scan_packages(installed, target="environment", imported=imported)
        except AdvisoryError as exc:
            self._last_error = str(exc)
            raise
        scan.dependencies = [
            {
                "name": p.name,
                "version": p.version,
                "imported": normalize_name("PyPI", p.name) in imported,
            }
            for p in installed
        ]
        self._last, self._last_error = scan, None
        return scan

    def scan_packages(
        self,
        packages: Iterable[Package],
        *,
        target: str = "packages",
        imported: set[str] | None = None,
        errors: list[str] | None = None,
    ) -> VulnerabilityScan:
        """Match, score and plan ``packages``; ``imported``: normalized names of the
        distributions the app imported (the environment scan), None when unknown."""
        now = self.clock()
        errors = list(errors or [])
        findings: list[DependencyFinding] = []
        unpinned: list[str] = []
        not_installed: list[str] = []
        count = 0
        with self._lock:
            db = self.db
            pinned: list[tuple[Package, tuple[str, str, str]]] = []
            seen: set[Package] = set()
            for package in packages:
                if package in seen:
                    continue  # one file reached twice (scanned, and -r included by another)
                seen.add(package)
                count += 1
                where = f"{package.source}:{package.line}" if package.line else package.source
                if package.version is None:
                    unpinned.append(f"{where}: {package.name} ({package.note})")
                    continue
                if self.environment.applies(package.marker) is False:
                    not_installed.append(
                        f"{where}: {package.name} {package.version} (marker: {package.marker})"
                    )
                    continue
                name = normalize_name(package.ecosystem, package.name)
                pinned.append((package, (package.ecosystem, name, package.version)))
            matches = self._match(db, [key for _, key in pinned])
            for package, key in pinned:
                found, version = matches[key], key[2]
                if isinstance(found, Exception):
                    errors.append(f"{package.source}: {package.name} {version}: {found}")
                    continue
                is_imported = (
                    None if imported is None else normalize_name("PyPI", package.name) in imported
                )
                for m in found:
                    points, label = priority(
                        m.score, epss=m.epss, kev=m.kev_due is not None, imported=is_imported
                    )
                    findings.append(
                        DependencyFinding(
                            package.ecosystem,
                            package.name,
                            version,
                            str(package.source),
                            m.vulnerability,
                            m.aliases,
                            m.summary,
                            m.score,
                            m.epss,
                            m.kev_due,
                            is_imported,
                            points,
                            label,
                            package.line,
                        )
                    )
            findings.sort(key=lambda f: (-f.priority_points, f.package, f.vulnerability))
            plan = self._plan(db, findings, now)
        return VulnerabilityScan(
            target,
            findings,
            plan,
            count,
            now,
            unpinned,
            errors,
            not_installed=not_installed,
            environment=self.environment.describe(),
        )

    def _match(
        self, db: AdvisoryDB, keys: list[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], list[_Matched] | Exception]:
        """The vulnerabilities of each ``(ecosystem, name, version)``, records that alias
        each other merged. The database is read in batches (records of all packages,
        then their alias groups, then severities, EPSS and KEV of all vulnerabilities),
        not package by package."""
        by_ecosystem: dict[str, set[str]] = {}
        for ecosystem, name, _version in keys:
            by_ecosystem.setdefault(ecosystem, set()).add(name)
        for ecosystem, names in by_ecosystem.items():
            db.prefetch(ecosystem, names)
        found: dict[tuple[str, str, str], list[StoredAdvisory] | Exception] = {}
        for key in keys:
            if key not in found:
                try:
                    found[key] = db.matching(*key)
                except (UnknownEcosystem, VersionError) as exc:
                    found[key] = exc
        records = [a for hit in found.values() if isinstance(hit, list) for a in hit]
        db.prefetch_groups(a.id for a in records)
        ids: dict[str, set[str]] = {}  # vulnerability -> every id of it
        first: dict[str, str] = {}  # vulnerability -> the summary of its first record found
        for advisory in records:
            name = db.vulnerability(advisory.id)
            ids.setdefault(name, set()).update(db.aliases(advisory.id))
            first.setdefault(name, advisory.summary)
        everything = {i for group in ids.values() for i in group}
        severities = {row[0]: row for row in db.severities(everything)}
        intel = db.intel(i for i in everything if i.startswith("CVE-"))
        merged: dict[str, _Matched] = {}
        for name, group in ids.items():
            members = sorted(group)
            rows = [severities[i] for i in members if i in severities]
            score = score_vulnerability(
                [(t, v) for r in rows for t, v in r[3]], [r[2] for r in rows]
            )
            cves = [i for i in members if i.startswith("CVE-")]
            summary = next((r[1] for r in rows if r[1]), first[name])
            merged[name] = _Matched(
                name, members, summary, score, intel.epss(cves), intel.kev_due(cves)
            )
        out: dict[tuple[str, str, str], list[_Matched] | Exception] = {}
        for key, hit in found.items():
            if isinstance(hit, Exception):
                out[key] = hit
            else:
                out[key] = [merged[n] for n in sorted({db.vulnerability(a.id) for a in hit})]
        return out

    def _plan(
        self, db: AdvisoryDB, findings: list[DependencyFinding], now: float
    ) -> list[RemediationStep]:
        found = dt.datetime.fromtimestamp(now, dt.UTC).date()
        steps: dict[tuple[str, str, str], RemediationStep] = {}
        deadlines: dict[tuple[str, str | None], tuple[str, str]] = {}  # few distinct ones
        for f in findings:  # highest priority first: the first of a package sets its priority
            key = (f.ecosystem, normalize_name(f.ecosystem, f.package), f.version)
            when = deadlines.get((f.severity, f.kev_due))
            if when is None:
                when = deadlines[(f.severity, f.kev_due)] = self.policy.deadline(
                    f.severity, found, f.kev_due
                )
            deadline, why = when
            step = steps.get(key)
            if step is None:
                target = safe_version(db, f.ecosystem, f.package, f.version)
                steps[key] = RemediationStep(
                    f.ecosystem,
                    f.package,
                    f.version,
                    "upgrade" if target else "mitigate or remove",
                    target,
                    f.severity,
                    f.priority,
                    deadline,
                    why,
                    [f.vulnerability],
                    [f.location],
                )
                continue
            if f.vulnerability not in step.vulnerabilities:
                step.vulnerabilities.append(f.vulnerability)
            if f.location not in step.locations:
                step.locations.append(f.location)
            if _known_rank(f.severity) > _known_rank(step.severity):
                step.severity = f.severity  # a ranked severity over UNKNOWN, the worst of them
            if deadline < step.deadline:
                step.deadline, step.deadline_reason = deadline, why
        return sorted(steps.values(), key=lambda s: (s.deadline, s.priority, s.package))

    # -- plan and summary ------------------------------------------------------------

    def remediation_plan(self, scan: VulnerabilityScan | None = None) -> list[RemediationStep]:
        """The plan of ``scan``, by default of the last environment scan (run one if none)."""
        if scan is None:
            scan = self._last or self.scan_environment()
        return scan.plan

    @property
    def last_scan(self) -> VulnerabilityScan | None:
        """The last environment scan, if any."""
        return self._last

    def summary(self) -> VulnerabilitySummary:
        """Counts by severity, open criticals and the last scan time of the app's own
        dependencies (the last :meth:`scan_environment`); never scans, never blocks."""
        scan = self._last
        database = self.db_path if Path(self.db_path).is_file() or self._db else None
        if scan is None:
            return VulnerabilitySummary(
                dict.fromkeys(SEVERITIES, 0), 0, 0, None, database, self._last_error
            )
        counts = scan.counts()
        imported = sum(
            1
            for step in scan.plan
            if any(f.imported and f.package == step.package for f in scan.findings)
        )
        return VulnerabilitySummary(
            counts, counts["CRITICAL"], imported, scan.scanned_at, database, self._last_error
        )
