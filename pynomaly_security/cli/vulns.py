"""``python -m pynomaly_security vulns scan PATH [--db DB] [--format ...] [--fail-on ...]``.

``--python-version`` / ``--platform``: the target whose environment markers decide
which locked requirements are installed (default: the running interpreter); a
requirement whose marker is false there is listed as not installed, not matched.

Reads the lockfiles under PATH (:mod:`pynomaly_security.vulns.lockfiles`) and checks
each pinned package against the advisory database: ``--db`` names the SQLite file
(``vulndb import`` builds it; default ``VULNS_DB_PATH``), or OSV records (a directory,
an ``all.zip``, files; repeatable), imported into memory for this run.

Formats: ``table`` (one row per vulnerability of a package, then the remediation
plan, then unpinned lines and unreadable files), ``json``, ``sarif`` (SARIF 2.1.0),
``cyclonedx`` (CycloneDX 1.6 VEX). Exit codes: 0 no finding at or above
``--fail-on``; 1 such findings; 2 bad input. A finding with neither a CVSS vector
nor a severity label counts as reaching any ``--fail-on`` level: CI should not pass
on what the scan could not rank.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pynomaly_security.vulns.assessment import AutomatedVulnerabilityAssessment, VulnerabilityScan
from pynomaly_security.vulns.markers import PLATFORMS, TargetEnvironment
from pynomaly_security.vulns.osv import AdvisoryError
from pynomaly_security.vulns.report import FORMATS, render
from pynomaly_security.vulns.scoring import severity_rank
from pynomaly_security.vulns.sources import OSVSource
from pynomaly_security.vulns.store import AdvisoryDB

__all__ = ["open_database", "register", "scan"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("vulns", help="Scan lockfiles for known vulnerabilities.")
    sub = parser.add_subparsers(dest="vulns_command", metavar="ACTION", required=True)
    scan_parser = sub.add_parser("scan", help="Scan a lockfile or a directory of them.")
    scan_parser.add_argument("path", type=Path)
    scan_parser.add_argument(
        "--db",
        type=Path,
        action="append",
        help="the advisory database file (default: VULNS_DB_PATH), or OSV records:"
        " a directory, an all.zip or files (repeatable)",
    )
    scan_parser.add_argument("--format", choices=FORMATS, default="table")
    scan_parser.add_argument(
        "--fail-on", choices=("low", "medium", "high", "critical"), default=None
    )
    scan_parser.add_argument(
        "--python-version",
        metavar="X.Y[.Z]",
        help="evaluate environment markers for this Python (default: the running one)",
    )
    scan_parser.add_argument(
        "--platform",
        choices=sorted(PLATFORMS),
        help="evaluate environment markers for this sys.platform (default: the running one)",
    )
    scan_parser.set_defaults(func=_scan)


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(16) == _SQLITE_MAGIC
    except OSError:
        return False


def open_database(paths: list[Path] | None) -> AdvisoryDB:
    """The database ``--db`` names: a SQLite file as it is, OSV records imported into
    memory; none: ``VULNS_DB_PATH`` from the settings."""
    if not paths:
        from pynomaly_security.settings import load_settings

        return AdvisoryDB(load_settings().vulns.db_path, create=False)
    if len(paths) == 1 and paths[0].is_file() and _is_sqlite(paths[0]):
        return AdvisoryDB(paths[0], create=False)
    db = AdvisoryDB(":memory:")
    sources = [OSVSource(p) for p in paths]
    db.import_sources(sources)
    bad = [e for s in sources for e in s.errors]
    if bad:
        db.close()
        raise AdvisoryError(str(bad[0]))
    return db


def scan(
    path: Path, db_paths: list[Path] | None, environment: TargetEnvironment | None = None
) -> VulnerabilityScan:
    """One scan of ``path`` against the database of ``db_paths`` (see :func:`open_database`),
    markers evaluated for ``environment`` (default: the running interpreter)."""
    db = open_database(db_paths)
    try:
        return AutomatedVulnerabilityAssessment(db, environment=environment).scan_path(path)
    finally:
        db.close()


# Listed after the table, so one bad file never hides the findings of the others.
_SECTIONS = {
    "unpinned": "not matched: no single pinned version",
    "errors": "unreadable files, skipped",
}


def _scan(args: argparse.Namespace) -> int:
    if not args.path.exists():
        print(f"error: {args.path}: no such file or directory", file=sys.stderr)
        return 2
    try:
        target = TargetEnvironment.of(args.python_version, args.platform)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = scan(args.path, args.db, target)
        text = render(report, args.format, args.path.resolve())
    except AdvisoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # an output format's optional library is missing
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    if args.fail_on is None:
        return 0
    threshold = severity_rank(args.fail_on.upper())
    failing = [f for f in report.findings if severity_rank(f.severity) >= threshold]
    return 1 if failing else 0
