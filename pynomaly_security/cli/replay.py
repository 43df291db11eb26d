"""``python -m pynomaly_security replay FILE.jsonl [--level N] [--mode block|detect]``.

Reads captured requests, one JSON object per line in the corpora format
(``method``, ``uri``, ``headers``, ``body``; ``id`` optional), builds the
same :class:`~pynomaly_security.detection.RequestParts` the inspection
middleware builds, runs them through ``Inspector.from_settings`` (the
settings come from the environment, as in the application, with ``--level``
and ``--mode`` on top) and writes one verdict per line on stdout::

    {"id": "...", "verdict": "block"|"allow"|"sink", "score": 9, "families": [...], "rules": [...]}

``sink``: only SQL injection findings, passed to the SQL sink (``SQLI_EDGE_MODE``
auto with the sink blocking, the default): the edge lets it through and the sink
blocks it at any statement it would change.

A summary goes to stderr. Operators use it to tune exclusions and levels on
real traffic before switching from ``detect`` to ``block``. Values of the
requests are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any, TextIO

from pynomaly_security.detection import Inspector
from pynomaly_security.detection.records import request_parts_from_record
from pynomaly_security.detection.types import Verdict

__all__ = ["register", "replay", "verdict_record"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="Replay captured requests through the inspection stack (JSON Lines)."
    )
    parser.add_argument("file", help="JSON Lines file ('-' for stdin)")
    parser.add_argument("--level", type=int, choices=(1, 2, 3, 4), default=None)
    parser.add_argument("--mode", choices=("block", "detect"), default=None)
    parser.set_defaults(func=_run)


def verdict_record(record_id: Any, verdict: Verdict) -> dict[str, Any]:
    """The JSON line for one verdict (``reject_reason`` only when set)."""
    out: dict[str, Any] = {
        "id": record_id,
        "verdict": (
            "block"
            if verdict.blocked or verdict.reject_status
            else "sink"
            if verdict.sink_confirmed
            else "allow"
        ),
        "score": verdict.score,
        "families": sorted(verdict.families),
        "rules": list(verdict.rules),
    }
    if verdict.reject_reason:
        out["reject_reason"] = verdict.reject_reason
    return out


def replay(lines: TextIO, inspector: Inspector, out: TextIO, err: TextIO) -> int:
    """Replay every line; returns the exit status (1 if a line was unreadable)."""
    totals: Counter[str] = Counter()
    families: Counter[str] = Counter()
    bad = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            bad += 1
            print(f"line {number}: not a JSON object, skipped", file=err)
            continue
        verdict = inspector.inspect(request_parts_from_record(record))
        result = verdict_record(record.get("id", number), verdict)
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        totals[result["verdict"]] += 1
        if record.get("label") in ("attack", "benign"):
            totals[f"{record['label']}:{result['verdict']}"] += 1
        families.update(verdict.families)
    total = totals["block"] + totals["allow"] + totals["sink"]
    summary = {
        "requests": total,
        "blocked": totals["block"],
        "allowed": totals["allow"],
        "sink_confirmed": totals["sink"],
        "families": dict(families.most_common()),
        "level": inspector.level,
        "mode": inspector.mode,
        "sqli_edge": inspector.sqli_edge,
    }
    labelled = {k: v for k, v in totals.items() if ":" in k}
    if labelled:
        summary["by_label"] = labelled
    if bad:
        summary["unreadable_lines"] = bad
    print(json.dumps(summary), file=err)
    return 1 if bad else 0


def _run(args: argparse.Namespace) -> int:
    from pynomaly_security.settings import load_settings

    overrides: dict[str, Any] = {}
    if args.level is not None:
        overrides["detection_level"] = args.level
    if args.mode is not None:
        overrides["detection_mode"] = args.mode
    inspector = Inspector.from_settings(load_settings(**overrides))
    if args.file == "-":
        return replay(sys.stdin, inspector, sys.stdout, sys.stderr)
    with open(args.file, encoding="utf-8") as lines:
        return replay(lines, inspector, sys.stdout, sys.stderr)
