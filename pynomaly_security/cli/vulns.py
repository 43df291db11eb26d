"""``python -m pynomaly_security vulns scan PATH --db OSV_DIR [--format ...] [--fail-on ...]``.

Reads the lockfiles under PATH (:mod:`pynomaly_security.vulns.lockfiles`), matches
each pinned package against the OSV records of ``--db`` (in memory, loaded on each
run) and prints one row per vulnerable package: version, vulnerability ids
(aliases merged), severity label, and the smallest version that fixes every
listed advisory by its ``fixed`` events ("-" when none is known). Packages
without a pinned version and files that could not be read (malformed) are listed
after the table, paths relative to PATH; a pom.xml yields its direct dependencies
only, and the output says so.

Exit codes: 0 no finding at or above ``--fail-on``; 1 such findings; 2 bad input.
A finding whose severity is only a CVSS vector or absent counts as reaching any
``--fail-on`` level, because scoring vectors is not built yet and CI should not
pass on what it could not rank.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pynomaly_security.vulns.lockfiles import scan_tree
from pynomaly_security.vulns.osv import AdvisoryError, OSVDatabase
from pynomaly_security.vulns.versions import UnknownEcosystem, VersionError, sort_key

__all__ = ["register", "scan"]

LEVELS = {"LOW": 1, "MEDIUM": 2, "MODERATE": 2, "HIGH": 3, "CRITICAL": 4}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("vulns", help="Scan lockfiles for known vulnerabilities.")
    sub = parser.add_subparsers(dest="vulns_command", metavar="ACTION", required=True)
    scan_parser = sub.add_parser("scan", help="Scan a lockfile or a directory of them.")
    scan_parser.add_argument("path", type=Path)
    scan_parser.add_argument(
        "--db",
        type=Path,
        action="append",
        required=True,
        help="OSV records: a directory or file (repeatable)",
    )
    scan_parser.add_argument("--format", choices=("table", "json"), default="table")
    scan_parser.add_argument(
        "--fail-on", choices=("low", "medium", "high", "critical"), default=None
    )
    scan_parser.set_defaults(func=_scan)


def _fix(db: OSVDatabase, ecosystem: str, name: str, version: str, ids: list[str]) -> str:
    """The smallest version past ``version`` that is at or past a fix of every advisory."""
    try:
        key = sort_key(ecosystem)
        current = key(version)
        needed = []
        for advisory in db.matching(ecosystem, name, version):
            fixes = [f for f in advisory.fixed_versions(ecosystem, name) if key(f) > current]
            if not fixes:
                return "-"
            needed.append(min(fixes, key=key))
        return max(needed, key=key) if needed else "-"
    except (UnknownEcosystem, VersionError):
        return "-"


def _severity(db: OSVDatabase, ecosystem: str, name: str, version: str) -> str:
    labels = [a.severity for a in db.matching(ecosystem, name, version)]
    ranked = [s for s in labels if s in LEVELS]
    if ranked:
        best = max(ranked, key=lambda s: LEVELS[s])
        return "MEDIUM" if best == "MODERATE" else best
    return "UNKNOWN (CVSS vector)" if any(labels) else "UNKNOWN"


def scan(path: Path, db_paths: list[Path]) -> dict[str, Any]:
    db = OSVDatabase.load(db_paths)
    packages, errors = scan_tree(path.resolve())
    findings, unpinned = [], []
    for package in packages:
        if package.version is None:
            where = f"{package.source}:{package.line}" if package.line else str(package.source)
            unpinned.append(f"{where}: {package.name} ({package.note})")
            continue
        try:
            ids = db.affected(package.ecosystem, package.name, package.version)
        except (UnknownEcosystem, VersionError) as exc:
            errors.append(f"{package.source}: {package.name} {package.version}: {exc}")
            continue
        if ids:
            findings.append(
                {
                    "file": str(package.source),
                    "ecosystem": package.ecosystem,
                    "package": package.name,
                    "version": package.version,
                    "advisories": ids,
                    "severity": _severity(db, package.ecosystem, package.name, package.version),
                    "fixed_in": _fix(db, package.ecosystem, package.name, package.version, ids),
                }
            )
    poms = sorted({str(p.source) for p in packages if p.source.name == "pom.xml"})
    notes = []
    if poms:
        notes.append(
            f"pom.xml lists direct dependencies only; transitive ones are not resolved "
            f"({len(poms)} files)"
        )
    return {
        "findings": findings,
        "unpinned": unpinned,
        "errors": errors,
        "notes": notes,
        "packages": len(packages),
    }


def _table(report: dict[str, Any], root: Path) -> str:
    rows = [("FILE", "PACKAGE", "VERSION", "SEVERITY", "FIXED IN", "ADVISORIES")]
    for f in report["findings"]:
        where = Path(f["file"])
        shown = (
            str(where.relative_to(root))
            if root.is_dir() and where.is_relative_to(root)
            else where.name
        )
        ids = ", ".join(f["advisories"])
        rows.append((shown, f["package"], f["version"], f["severity"], f["fixed_in"], ids))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in rows
    ]
    lines.append(f"{len(report['findings'])} vulnerable of {report['packages']} packages")
    lines += [f"note: {note}" for note in report["notes"]]
    prefix = f"{root}/" if root.is_dir() else ""
    for key, title in _SECTIONS.items():
        if report[key]:
            lines.append(f"{title} ({len(report[key])}):")
            lines += [f"  {item.removeprefix(prefix)}" for item in report[key]]
    return "\n".join(lines)


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
        report = scan(args.path, args.db)
    except AdvisoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(report, indent=2)
        if args.format == "json"
        else _table(report, args.path.resolve())
    )
    if args.fail_on is None:
        return 0
    threshold = LEVELS[args.fail_on.upper()]
    failing = [f for f in report["findings"] if LEVELS.get(f["severity"], threshold) >= threshold]
    return 1 if failing else 0
