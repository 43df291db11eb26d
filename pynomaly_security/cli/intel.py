"""``python -m pynomaly_security intel <import|list|remove>``: reputation lists.

``intel import FILE --name NAME --action ban|require_mfa|flag --ttl 24h`` reads a
list (FireHOL netset, Spamhaus DROP, Tor exit list, CrowdSec-style CSV; see
:mod:`pynomaly_security.intel.parse`), merges it into ranges and stores it in the
app's shared state (``STATE_URL``, else ``REDIS_URL``; the same environment as the
app), replacing a list of that name; every worker enforces it within a poll
(``DECISION_POLL_SECONDS``). ``flag`` enforces nothing: alerts and incidents name
the list. ``--state URL`` overrides the environment (``memory://`` is refused: no
app would see it).

Output: one JSON line (name, action, entries, merged ranges, expiry). A malformed
line exits 2 with ``line N: ...`` on stderr and stores nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio

from pynomaly_security.decisions.model import parse_duration
from pynomaly_security.exceptions import SecurityError
from pynomaly_security.intel.parse import IntelParseError, parse_list
from pynomaly_security.intel.ranges import IPRangeSet
from pynomaly_security.intel.store import INTEL_ACTIONS, IntelStore, check_list_name
from pynomaly_security.settings import load_settings
from pynomaly_security.storage import StorageRegistry

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("intel", help="Import, list and remove reputation lists.")
    sub = parser.add_subparsers(dest="intel_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="Import an IP reputation list.")
    imp.add_argument("file", type=Path)
    imp.add_argument("--name", required=True)
    imp.add_argument("--action", choices=INTEL_ACTIONS, default="ban")
    imp.add_argument("--ttl", default="24h", help="how long it applies: 90s, 15m, 24h, 7d")
    imp.set_defaults(func=_import)
    lst = sub.add_parser("list", help="The imported lists.")
    lst.set_defaults(func=_list)
    rem = sub.add_parser("remove", help="Remove a list.")
    rem.add_argument("name")
    rem.set_defaults(func=_remove)
    for p in (imp, lst, rem):
        p.add_argument("--state", metavar="URL", help="default: STATE_URL, else REDIS_URL")


def _fail(message: str) -> int:
    print(f"intel: {message}", file=sys.stderr)
    return 2


def _state_url(args: argparse.Namespace) -> str:
    if args.state:
        url = str(args.state)
    else:
        settings = load_settings()
        url = settings.state_url or settings.redis_url or ""
    if not url or url.startswith("memory:"):
        raise SecurityError(
            "no shared state: set PYNOMALY_SECURITY__STATE_URL or REDIS_URL (or --state URL)"
        )
    return url


def _with_store(args: argparse.Namespace, work: Any) -> Any:
    url = _state_url(args)

    async def run() -> Any:
        registry = StorageRegistry()
        state = registry.state(url, setting="STATE_URL")
        await registry.start()
        try:
            return await work(IntelStore(state))
        finally:
            await registry.aclose()

    return anyio.run(run)


def _import(args: argparse.Namespace) -> int:
    try:
        check_list_name(args.name)
        ttl = parse_duration(args.ttl)
        with args.file.open(encoding="utf-8", errors="strict") as handle:
            ranges = IPRangeSet(parse_list(handle))
    except IntelParseError as exc:
        return _fail(f"{args.file}: {exc}")
    except UnicodeDecodeError:
        return _fail(f"{args.file}: not UTF-8 text")
    except OSError as exc:
        return _fail(f"{args.file}: {exc.strerror}")
    except ValueError as exc:
        return _fail(str(exc))
    try:
        imported = _with_store(
            args, lambda store: store.import_list(args.name, ranges, action=args.action, ttl=ttl)
        )
    except SecurityError as exc:
        return _fail(str(exc))
    print(json.dumps(imported.summary()))
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        found = _with_store(args, lambda store: store.summaries())
    except SecurityError as exc:
        return _fail(str(exc))
    for summary in found:
        print(json.dumps(summary))
    return 0


def _remove(args: argparse.Namespace) -> int:
    try:
        removed = _with_store(args, lambda store: store.remove(args.name))
    except SecurityError as exc:
        return _fail(str(exc))
    if not removed:
        return _fail(f"no list named {args.name!r}")
    print(json.dumps({"removed": args.name}))
    return 0
