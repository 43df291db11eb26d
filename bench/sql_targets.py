"""The SQL sink's target table (issue 15, "Targets"), reproducible by one command.

    PYTHONPATH=. .venv/bin/python bench/sql_targets.py [--skip-sqlmap] [--markdown]

1. sqlmap (Debian's package) against the example app's deliberately vulnerable
   ``/demo/users?name=`` route under uvicorn on 127.0.0.1, the edge inspection in
   detect mode (only the sink stands in the way): one run per technique (boolean
   B, error E, union U, stacked S, time T, inline query Q) at ``--level 5 --risk 3``,
   plain and with ``--tamper=space2comment,between,randomcase,charencode``, with
   the sink blocking; and the same plain run with the sink off, to show which
   techniques find the route when nothing stops it.
   A row is "stopped" when sqlmap reports the parameter not injectable and no
   probe got a 500 (a database error tells a scanner the parameter reaches SQL).
2. Every benign row of ``../shared/corpora/*.jsonl`` (its ``payload``) and every
   parameter value of the CSIC 2010 normal requests (query and form fields,
   decoded as the app reads them) sent as the vulnerable parameter's value, in
   process through the sink's decision (``check_statement`` on the demo's
   statement): each flagged value is listed by whether it holds a quote (it then
   really does end the demo's literal: an app pasting it fails or is injectable)
   or not (a false block).

The server runs in this process (the sqlmap test's helpers), so PYTHONPATH
decides which code is measured.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pynomaly_security.sql import check_statement

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TECHNIQUES = {
    "B": "boolean-based blind",
    "E": "error-based",
    "U": "UNION query",
    "S": "stacked queries",
    "T": "time-based blind",
    "Q": "inline query",
}
# The demo's statement (examples/vulnerable.py, /demo/users?name=).
DEMO_STATEMENT = "SELECT id, name, email FROM users WHERE name = '{}'"
# Against the unprotected demo, sqlmap's SQLite payloads of E, S and Q find nothing
# (it has no SQLite error-based or inline-query payloads, and sqlite3 runs one
# statement per execute); its SQLite time-based probe is a heavy query whose delay
# depends on the machine's load. These are also run with the payloads of every
# database, whose shapes the sink must stop too.
DBMS_ANY = "ESTQ"
_ERRORS = re.compile(r"^(\d{3}) \([^)]*\) - (\d+) times", re.MULTILINE)


def sqlmap_rows(markdown: bool, only: str) -> None:
    from tests.sql.test_sqlmap import TAMPER, demo_server, sqlmap

    runs: list[tuple[str, str, bool, tuple[str, ...], str | None]] = []
    for letter in TECHNIQUES:
        options = (f"--technique={letter}", "--level=5", "--risk=3")
        tampered = (*options, f"--tamper={TAMPER}")
        runs.append((letter, "none", False, options, "SQLite"))
        runs.append((letter, "none", True, options, "SQLite"))
        runs.append((letter, "all four", True, tampered, "SQLite"))
        if letter in DBMS_ANY:
            runs.append((letter, "none", True, options, None))
            runs.append((letter, "all four", True, tampered, None))
    rows = []
    for letter, tamper, protected, options, dbms in runs:
        if only and letter not in only:
            continue
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp, demo_server(
            Path(tmp), protected=protected
        ) as base:
            output = sqlmap(Path(tmp), f"{base}/demo/users?name=alice", *options, dbms=dbms)
        codes = {code: int(times) for code, times in _ERRORS.findall(output)}
        found = "identified the following injection point" in output
        row = (
            f"{letter} {TECHNIQUES[letter]}",
            " ".join(o for o in options if not o.startswith("--tamper"))
            + (f" --dbms={dbms}" if dbms else " (every DBMS)"),
            tamper,
            "on" if protected else "off",
            "injectable" if found else "not injectable",
            codes.get("403", 0),
            codes.get("500", 0),
            time.monotonic() - started,
        )
        rows.append(row)
        print("  " + " | ".join(str(c) if not isinstance(c, float) else f"{c:.0f}s" for c in row),
              flush=True)
    if markdown:
        print("\n| technique | sqlmap options | tamper | sink | sqlmap says | 403s | 500s |")
        print("|---|---|---|---|---|---:|---:|")
        for row in rows:
            print("| " + " | ".join(str(c) for c in row[:7]) + " |")


def _leaves(data: object) -> Iterator[str]:
    if isinstance(data, dict):
        for item in data.values():
            yield from _leaves(item)
    elif isinstance(data, list):
        for item in data:
            yield from _leaves(item)
    elif data is not None:
        yield str(data)


def request_values(row: dict[str, Any]) -> list[str]:
    """The query and body values of a real-traffic row (its ``payload`` is null)."""
    values = [value for _, value in parse_qsl(urlsplit(row["uri"]).query)]
    body = row.get("body") or ""
    if body:
        try:
            values.extend(_leaves(json.loads(body)))
        except ValueError:
            pairs = parse_qsl(body)
            values.extend(value for _, value in pairs) if pairs else values.append(body)
    return values


def corpus_values(directory: Path) -> Iterator[tuple[str, str]]:
    """(file, value) for every benign row of the corpora: its payload, or for real
    traffic (no payload) each of its query and body values."""
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():  # bytes: no Unicode line breaks
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("label") != "benign":
                continue
            if isinstance(row.get("payload"), str):
                yield path.name, row["payload"]
            else:
                for value in request_values(row):
                    yield path.name, value


def csic_values(path: Path) -> Iterator[tuple[str, str]]:
    """(set, value) of every query and form value of the CSIC normal requests."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if row["label"] != "normal":
                continue
            fields = parse_qsl(urlsplit(row["url"]).query, encoding="latin-1")
            if row.get("body"):
                fields += parse_qsl(row["body"], encoding="latin-1")
            for _, value in fields:
                yield f"CSIC normal, {row['set']}", value


def benign_rows(markdown: bool) -> None:
    counts: dict[str, list[int]] = {}
    quoted_examples: dict[str, list[str]] = {}
    unquoted: list[tuple[str, str, str]] = []
    sources = [
        *corpus_values(SHARED / "corpora"),
        *csic_values(SHARED / "datasets" / "csic2010" / "csic2010_dev.jsonl.gz"),
    ]
    for source, value in sources:
        count = counts.setdefault(source, [0, 0, 0])
        count[2] += 1
        finding = check_statement(DEMO_STATEMENT.format(value), [value])
        if finding is None:
            continue
        if "'" in value:
            count[1] += 1
            quoted_examples.setdefault(source, []).append(value)
        else:
            count[0] += 1
            unquoted.append((source, finding.reason, value))
    print("\nbenign values as /demo/users?name=<value>, through the sink's decision")
    print(f"  {'source':34} {'values':>8} {'false blocks':>12} {'flagged, quote':>15}")
    total = [0, 0, 0]
    for source, (false, quoted, n) in counts.items():
        total = [total[0] + false, total[1] + quoted, total[2] + n]
        print(f"  {source:34} {n:8} {false:12} {quoted:15}")
    print(f"  {'total':34} {total[2]:8} {total[0]:12} {total[1]:15}")
    for source, reason, value in unquoted[:20]:
        print(f"  FALSE BLOCK {source} {reason}: {value[:100]!r}")
    for source, values in quoted_examples.items():
        print(f"  with a quote, {source}: " + ", ".join(repr(v[:40]) for v in values[:3]))
    if markdown:
        print("\n| benign source | values | false blocks (no quote) | flagged, holds a quote |")
        print("|---|---:|---:|---:|")
        for source, (false, quoted, n) in counts.items():
            print(f"| {source} | {n} | {false} | {quoted} |")
        print(f"| total | {total[2]} | {total[0]} | {total[1]} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-sqlmap", action="store_true", help="only the benign rows")
    parser.add_argument("--skip-benign", action="store_true", help="only the sqlmap rows")
    parser.add_argument("--markdown", action="store_true", help="also print markdown tables")
    parser.add_argument("--techniques", default="", help="only these sqlmap techniques (BEUSTQ)")
    args = parser.parse_args()
    if not args.skip_benign:
        benign_rows(args.markdown)
    if not args.skip_sqlmap:
        print("\nsqlmap against /demo/users?name= (edge in detect mode)")
        sqlmap_rows(args.markdown, args.techniques)
    return 0


if __name__ == "__main__":
    sys.exit(main())
