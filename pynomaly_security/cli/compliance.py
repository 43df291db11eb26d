"""``python -m pynomaly_security compliance <report|verify|run>``.

``compliance report --framework pci-dss --format json|html|oscal|csv [--from T --to T]
[--out FILE]`` writes a framework's report of the newest run (with ``--to``, the newest
full run kept before it; with a period, whether each control held throughout it) from
the state backend the app writes to (``STATE_URL``, else ``REDIS_URL``). With
``--app module:attribute`` the app is started in this process instead (its lifespan:
the start-up run), which also works with in-memory state.

``compliance verify REPORT`` (a JSON report) checks the report's digest and verdicts,
that the audit trail verifies and holds the report's audit head, and, with the master
key, that the record at the head is this run's. Exit 0 when all hold, 1 when one fails,
2 on a usage error. ``--db``, ``--public-key``, ``--anchor`` as for ``audit verify``.

``compliance run [--app ...]``: one full run now, printed as the status summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pynomaly_security.exceptions import SecurityError

__all__ = ["register"]

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    from pynomaly_security.cli.audit import _time

    parser = subparsers.add_parser("compliance", help="Compliance reports and their verification.")
    sub = parser.add_subparsers(dest="compliance_command", metavar="ACTION", required=True)

    report = sub.add_parser("report", help="Write a framework's report.")
    report.add_argument("--framework", required=True, help="e.g. pci-dss, gdpr, hipaa, soc2")
    report.add_argument("--format", choices=["json", "html", "oscal", "csv"], default="json")
    report.add_argument("--from", dest="since", type=_time, help="ISO 8601 or Unix seconds")
    report.add_argument("--to", dest="until", type=_time, help="ISO 8601 or Unix seconds")
    report.add_argument("--out", type=Path, help="file to write (default: standard output)")
    report.add_argument("--app", help="module:attribute of the ASGI app to start in-process")
    report.set_defaults(func=_report)

    run = sub.add_parser("run", help="Run every check now and print the scores.")
    run.add_argument("--app", help="module:attribute of the ASGI app to start in-process")
    run.set_defaults(func=_run)

    verify = sub.add_parser("verify", help="Check a JSON report against the audit trail.")
    verify.add_argument("report", type=Path)
    verify.add_argument("--db", help="audit store URL (default: PYNOMALY_SECURITY__AUDIT_DB_URL)")
    verify.add_argument("--prefix", default="audit", help="table prefix (default: audit)")
    verify.add_argument("--public-key", type=Path, help="PEM file of trusted public key(s)")
    verify.add_argument("--anchor", dest="anchors", type=Path, action="append")
    verify.set_defaults(func=_verify)


@contextlib.asynccontextmanager
async def _validator(app_ref: str | None) -> AsyncIterator[Any]:
    from pynomaly_security.compliance import ComplianceValidator
    from pynomaly_security.settings import load_settings
    from pynomaly_security.storage import StorageRegistry

    if app_ref:
        module, _, attr = app_ref.partition(":")
        app = getattr(importlib.import_module(module), attr or "app")
        if callable(app) and not hasattr(app, "router"):
            app = app()  # a factory (create_app)
        stack = getattr(app.state, "pynomaly_security", None)
        if stack is None or stack.compliance is None:
            raise SecurityError(f"{app_ref}: no security stack with compliance enabled")
        async with app.router.lifespan_context(app):
            await stack.compliance.wait_first_run(timeout=120.0)
            yield stack.compliance
        return
    settings = load_settings()
    url = settings.state_url or settings.redis_url
    if not url or url.startswith("memory:"):
        raise SecurityError(
            "the app keeps compliance results in memory: set PYNOMALY_SECURITY__STATE_URL "
            "(sqlite:///..., postgresql://...) or REDIS_URL for the app and this command, "
            "pass --app module:attribute, or use GET /api/security/compliance/report"
        )
    registry = StorageRegistry.from_settings(settings)
    state = registry.state(url, setting="STATE_URL")
    await registry.start()
    try:
        yield ComplianceValidator(settings, state=state)
    finally:
        await registry.aclose()


def _render(report: dict[str, Any], fmt: str) -> str:
    from pynomaly_security.compliance.html import to_html
    from pynomaly_security.compliance.oscal import to_oscal
    from pynomaly_security.compliance.report import to_csv, to_json

    return {"json": to_json, "html": to_html, "oscal": to_oscal, "csv": to_csv}[fmt](report)


def _report(args: argparse.Namespace) -> int:
    async def go() -> str:
        async with _validator(args.app) as validator:
            report = await validator.report(args.framework, since=args.since, until=args.until)
            return _render(report, args.format)

    try:
        text = asyncio.run(go())
    except (SecurityError, KeyError, LookupError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    async def go() -> dict[str, Any]:
        async with _validator(args.app) as validator:
            await validator.run("full")
            scores: dict[str, Any] = await validator.latest_scores()
            return scores

    try:
        scores = asyncio.run(go())
    except (SecurityError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(scores, indent=2, sort_keys=True))
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from pynomaly_security.compliance.catalogue import load_catalogue
    from pynomaly_security.compliance.verify import (
        ReportCheck,
        check_report_content,
    )
    from pynomaly_security.settings import load_settings

    out = ReportCheck()
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
        if not isinstance(report, dict) or "results" not in report or "run" not in report:
            raise SecurityError(f"{args.report}: not a JSON compliance report (--format json)")
        settings = load_settings()
        catalogue = load_catalogue(settings.compliance.catalogue_file)
        check_report_content(report, catalogue, out)
        head = report.get("audit_head")
        if not head or not head.get("hash"):
            out.fail("head: the report names no audit head (the audit trail was off)")
        else:
            asyncio.run(_check_trail(args, settings, report, head, out))
    except (SecurityError, OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(out.lines))
    print("VERIFIED" if out.ok else "NOT VERIFIED")
    return EXIT_OK if out.ok else EXIT_FAULT


async def _check_trail(
    args: argparse.Namespace, settings: Any, report: dict[str, Any], head: dict[str, Any], out: Any
) -> None:
    from pynomaly_security.audit import AuditTrail, verify_store
    from pynomaly_security.audit.anchor import default_anchor_path, load_anchor_file
    from pynomaly_security.audit.verify import Expectations
    from pynomaly_security.cli.audit import _keys_from_env, _reader, load_public_keys
    from pynomaly_security.compliance.verify import check_report_record

    keys = _keys_from_env()
    pinned = load_public_keys(args.public_key) if args.public_key else None
    if pinned is None and keys is not None:
        pinned = keys.public_keys
    url = str(args.db) if args.db else settings.audit_db_url
    paths: list[Path] = list(args.anchors or [])
    if not paths:
        default = default_anchor_path(settings.model_copy(update={"audit_db_url": url}))
        if default is not None and default.exists():
            paths.append(default)
    expect = Expectations(
        anchors=[cp for p in paths for cp in load_anchor_file(p)],
        anchor_given=bool(paths),
        expect_head=(int(head["seq"]), bytes.fromhex(str(head["hash"]))),
        retention_days=float(settings.audit_retention_days),
    )
    store = _reader(url, args.prefix)
    await store.open()
    try:
        result = await verify_store(store, public_keys=pinned, keys=keys, expect=expect)
        if not result.ok:
            out.fail(f"head: the audit trail fails at seq {result.first_bad_seq}: "
                     f"{result.problem}: {result.message}")  # fmt: skip
            return
        out.good(
            f"head: the audit trail verifies ({result.count} records"
            f"{', keys pinned' if result.pinned_keys else ', keys NOT pinned'}"
            f"{', anchored' if result.anchored else ''}) and holds seq {head['seq']} "
            f"{head['hash']}"
        )
        if keys is None:
            out.note("binding: not checked (reading the record needs PYNOMALY_MASTER_KEY)")
            return
        trail = AuditTrail(store, keys)
        records = await trail.records_at([int(head["seq"])])
        check_report_record(report, records.get(int(head["seq"])), out)
    finally:
        await store.aclose()
