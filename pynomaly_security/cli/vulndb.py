"""``python -m pynomaly_security vulndb <import|refresh|import-epss|import-kev|info>``.

- ``import PATH... [--db FILE] [--replace]``: OSV records from directories (JSON/YAML),
  ``all.zip`` exports, git checkouts or files, streamed into the SQLite database
  (default ``VULNS_DB_PATH``); ``--replace`` builds a new file and swaps it in.
- ``refresh [--url BASE] [--ecosystem ECO ...]``: download OSV's exports and swap in a
  database built from them (:mod:`pynomaly_security.vulns.refresh`), audited.
- ``import-epss FILE`` (FIRST.org CSV, gzipped or not), ``import-kev FILE`` (CISA's KEV
  JSON or CSV): the scores and due dates the priority and the deadlines use.
- ``info``: counts, sources with their SHA-256, import time.

Output: one JSON object on stdout. Exit 0; 1 when some records were skipped (listed
on stderr, ``FILE: line N: what``); 2 on bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from pynomaly_security.exceptions import SecurityError
from pynomaly_security.settings import load_settings
from pynomaly_security.vulns.osv import AdvisoryError
from pynomaly_security.vulns.scoring import read_epss, read_kev
from pynomaly_security.vulns.sources import OSVSource
from pynomaly_security.vulns.store import AdvisoryDB

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("vulndb", help="Build and refresh the advisory database.")
    sub = parser.add_subparsers(dest="vulndb_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="Import OSV records (directories, all.zip, checkouts).")
    imp.add_argument("paths", type=Path, nargs="+")
    imp.add_argument("--replace", action="store_true", help="build a new file, then swap it in")
    imp.set_defaults(func=_import)
    ref = sub.add_parser("refresh", help="Download the OSV exports and swap in a new database.")
    ref.add_argument("--url", help="base URL of the exports (default: VULNS_OSV_URL)")
    ref.add_argument("--ecosystem", action="append", help="default: VULNS_OSV_ECOSYSTEMS")
    ref.add_argument("--no-progress", action="store_true")
    ref.set_defaults(func=_refresh)
    epss = sub.add_parser("import-epss", help="Import FIRST.org EPSS scores (CSV).")
    epss.add_argument("file", type=Path)
    epss.set_defaults(func=_import_epss)
    kev = sub.add_parser("import-kev", help="Import the CISA KEV catalogue (JSON or CSV).")
    kev.add_argument("file", type=Path)
    kev.set_defaults(func=_import_kev)
    info = sub.add_parser("info", help="What the database holds.")
    info.set_defaults(func=_info)
    for p in (imp, ref, epss, kev, info):
        p.add_argument("--db", type=Path, help="the database file (default: VULNS_DB_PATH)")


def _fail(message: str) -> int:
    print(f"vulndb: {message}", file=sys.stderr)
    return 2


def _db_path(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else Path(load_settings().vulns.db_path)


def _import(args: argparse.Namespace) -> int:
    target = _db_path(args)
    try:
        sources = [OSVSource(p) for p in args.paths]
    except AdvisoryError as exc:
        return _fail(str(exc))
    building = target.with_name(target.name + ".new") if args.replace else target
    building.parent.mkdir(parents=True, exist_ok=True)
    if args.replace:
        building.unlink(missing_ok=True)
    try:
        with AdvisoryDB(building, building=args.replace) as db:
            result = db.import_sources(sources)
            result["advisories"] = db.stats()["advisories"]
        if args.replace:
            os.replace(building, target)
    except (AdvisoryError, OSError) as exc:
        if args.replace:
            with contextlib.suppress(FileNotFoundError):
                building.unlink()
        return _fail(str(exc))
    result["database"] = str(target)
    print(json.dumps(result))
    skipped = [e for s in sources for e in s.errors]
    for error in skipped:
        print(f"skipped: {error}", file=sys.stderr)
    total = sum(s.error_count for s in sources)
    if total > len(skipped):
        print(f"skipped: {total - len(skipped)} more", file=sys.stderr)
    return 1 if total else 0


def _refresh(args: argparse.Namespace) -> int:
    import anyio
    import anyio.to_thread

    from pynomaly_security.vulns.refresh import audit_refresh, refresh

    settings = load_settings()

    def build() -> dict[str, Any]:
        return refresh(
            _db_path(args),
            base_url=args.url or settings.vulns.osv_url,
            ecosystems=args.ecosystem or settings.vulns.osv_ecosystems,
            progress=not args.no_progress,
        )

    async def run() -> dict[str, Any]:
        if not settings.enable_audit_logging:
            return build()
        from pynomaly_security.audit import AuditLogger

        # Fail closed: the audit trail is opened first; a refresh it cannot record is not made.
        async with AuditLogger.from_settings(settings) as audit:
            summary = await anyio.to_thread.run_sync(build)
            await audit_refresh(audit, summary)
            return summary

    try:
        summary = anyio.run(run)
    except (AdvisoryError, OSError) as exc:
        return _fail(str(exc))
    except SecurityError as exc:
        return _fail(f"audit trail: {exc}")
    print(json.dumps(summary))
    return 1 if any(s["errors"] for s in summary["sources"]) else 0


def _with_db(args: argparse.Namespace, work: Any) -> int:
    try:
        with AdvisoryDB(_db_path(args)) as db:
            print(json.dumps(work(db)))
    except (AdvisoryError, OSError) as exc:
        return _fail(str(exc))
    return 0


def _import_epss(args: argparse.Namespace) -> int:
    try:
        rows = list(read_epss(args.file))  # read whole first: a bad line changes nothing
    except (AdvisoryError, OSError) as exc:
        return _fail(str(exc))
    return _with_db(args, lambda db: {"epss": db.replace_epss(rows)})


def _import_kev(args: argparse.Namespace) -> int:
    try:
        rows = read_kev(args.file)
    except (AdvisoryError, OSError) as exc:
        return _fail(str(exc))
    return _with_db(args, lambda db: {"kev": db.replace_kev(rows)})


def _info(args: argparse.Namespace) -> int:
    try:
        with AdvisoryDB(_db_path(args), create=False) as db:
            print(json.dumps(db.stats(), indent=2))
    except AdvisoryError as exc:
        return _fail(str(exc))
    return 0
