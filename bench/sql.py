"""Speed of the SQL tools (issue 15 targets).

    PYTHONPATH=. .venv/bin/python bench/sql.py [--number 20000] [--repeat 7]

- ``analyze_query`` in statements per second on one core, over typical statements:
  what ORMs send (placeholders, no literal: ruled out before tokenizing) and a mix
  where a quarter carry string literals (tokenized and read). Target >= 50,000/s.
- ``check_statement`` in microseconds per statement, with the request values of a
  typical request (query parameters, path, a few headers and cookies): when no
  value occurs in the statement (target <= 5 µs) and when one does (<= 30 µs), the
  statement then being tokenized once.
- the driver hook end to end: ``execute`` on a ``ProtectedSQLiteConnection`` inside
  a request bound by the sink middleware, minus the same ``execute`` on a plain
  sqlite3 connection (in-memory table, the statement above); and what reading a
  request's values costs once per request (at its first statement).
- ``tokenize`` alone, for reference, and sqlparse on the same statement.

Prints the median of ``--repeat`` runs (and the best). Timings move by several
percent on a shared machine; compare runs on the same machine only.

    PYTHONPATH=. .venv/bin/python bench/sql.py --instructions

counts instead the instructions per statement under valgrind (cachegrind), which
do not depend on the machine's load: each case runs ``--number`` and twice as many
times in a fresh interpreter and the difference is divided by ``--number``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

import sqlparse

from pynomaly_security.sql import SQLInjectionProtector, check_statement, tokenize
from pynomaly_security.sql.guard import RequestSink, SinkPolicy, bind, unbind
from pynomaly_security.sql.hooks import ProtectedSQLiteConnection

ORM = [
    "SELECT users.id, users.name, users.email FROM users WHERE users.id = ?",
    "SELECT users.id AS users_id, users.name AS users_name FROM users "
    "WHERE users.active = ? AND users.role = ? ORDER BY users.id LIMIT ? OFFSET ?",
    "INSERT INTO users (name, email, created_at) VALUES (?, ?, ?)",
    "UPDATE users SET name=?, updated_at=? WHERE users.id = ?",
    "DELETE FROM sessions WHERE sessions.expires_at < ?",
    "SELECT count(*) AS count_1 FROM (SELECT users.id AS users_id FROM users "
    "WHERE users.active = ?) AS anon_1",
    "SELECT orders.id, orders.total FROM orders JOIN users ON users.id = orders.user_id "
    "WHERE users.id IN (?, ?, ?) ORDER BY orders.created DESC",
    "SELECT id FROM t WHERE x = :x AND y = :y",
]
LITERALS = [
    "SELECT * FROM orders WHERE status = 'shipped' AND total > ? ORDER BY id DESC",
    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'",
]
# The values a typical request hands the sink: query parameters, path, headers, cookies.
VALUES = [
    "bob",
    "20",
    "/api/orders",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "gzip, deflate, br",
    "en-US,en;q=0.5",
    "2b7f3c1e9a0d4e8f",
    "keep-alive",
]
SINK_STATEMENT = (
    "SELECT orders.id, orders.total FROM orders WHERE orders.owner = 'alice' "
    "AND orders.status = 'open' ORDER BY orders.id LIMIT 50"
)
SINK_STATEMENT_WITH_VALUE = SINK_STATEMENT.replace("alice", "bob")
# The same typical request as an ASGI scope, for the hook measured end to end.
SCOPE = {
    "type": "http",
    "method": "GET",
    "path": "/api/orders",
    "raw_path": b"/api/orders",
    "query_string": b"owner=bob%20smith&limit=20",
    "headers": [
        (b"host", b"shop.example"),
        (b"user-agent", VALUES[3].encode()),
        (b"accept", VALUES[4].encode()),
        (b"accept-encoding", VALUES[5].encode()),
        (b"accept-language", VALUES[6].encode()),
        (b"cookie", b"session=" + VALUES[7].encode()),
        (b"connection", b"keep-alive"),
    ],
}


def _measure(func: Callable[[], object], number: int, repeat: int) -> tuple[float, float]:
    runs = timeit.repeat(func, number=number, repeat=repeat)
    per_op = [r / number * 1e6 for r in runs]
    return statistics.median(per_op), min(per_op)


def _cases() -> dict[str, tuple[Callable[[], object], int]]:
    """What ``--instructions`` counts: name -> (one call, statements per call)."""
    analyze = SQLInjectionProtector().analyze_query

    def run_all(statements: list[str]) -> Callable[[], object]:
        return lambda: [analyze(statement) for statement in statements]

    return {
        "analyze_query, ORM statements (placeholders)": (run_all(ORM), len(ORM)),
        "analyze_query, statements with literals only": (run_all(LITERALS), len(LITERALS)),
        "check_statement, no value occurs": (lambda: check_statement(SINK_STATEMENT, VALUES), 1),
        "check_statement, one value occurs": (
            lambda: check_statement(SINK_STATEMENT_WITH_VALUE, VALUES), 1
        ),
        "tokenize (sink statement)": (lambda: tokenize(SINK_STATEMENT), 1),
    }


def _count_run(name: str, number: int) -> None:
    """Run case ``name`` ``number`` times (the process valgrind counts)."""
    func, _ = _cases()[name]
    func()  # warm: imports, regex compilation and caches are not counted twice
    for _ in range(number):
        func()


def instructions(number: int) -> None:
    """Instructions per statement of each case, under cachegrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    print(f"# instructions per statement (cachegrind; runs of {number} and {2 * number})")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (_, per_call) in _cases().items():
            counts = []
            for runs in (number, 2 * number):
                log = Path(tmp) / "valgrind.log"
                subprocess.run(
                    [valgrind, "--tool=cachegrind", "--cache-sim=no",
                     "--cachegrind-out-file=/dev/null", f"--log-file={log}", sys.executable,
                     str(Path(__file__).resolve()), "--count-run", name, "--number", str(runs)],
                    check=True,
                )  # fmt: skip
                counts.append(_instructions_in(log))
            per_statement = (counts[1] - counts[0]) / number / per_call
            print(f"  {name:48s} {per_statement:10,.0f}")


def _instructions_in(log: Path) -> int:
    for line in log.read_text().splitlines():
        if "I" in line and "refs:" in line:
            return int(line.split("refs:")[1].strip().replace(",", ""))
    sys.exit("valgrind printed no instruction count")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per statement under valgrind instead")
    parser.add_argument("--count-run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_run:
        _count_run(args.count_run, args.number)
        return 0
    if args.instructions:
        instructions(args.number if args.number != 20_000 else 200)
        return 0
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"pid {os.getpid()}, number={args.number}, repeat={args.repeat}")

    protector = SQLInjectionProtector()
    analyze = protector.analyze_query
    mixed = ORM * 3 + LITERALS * 4  # 24 + 8: a quarter with literals

    def orm() -> None:
        for statement in ORM:
            analyze(statement)

    def mix() -> None:
        for statement in mixed:
            analyze(statement)

    def literal() -> None:
        for statement in LITERALS:
            analyze(statement)

    print("\nanalyze_query                       statements/s (median)   best")
    for label, func, count in (("ORM statements (placeholders)", orm, len(ORM)),
                               ("mix, 1/4 with literals", mix, len(mixed)),
                               ("statements with literals only", literal, len(LITERALS))):
        median, best = _measure(func, max(1, args.number // count), args.repeat)
        print(f"  {label:34s} {count / median * 1e6:12,.0f}     {count / best * 1e6:12,.0f}")

    assert check_statement(SINK_STATEMENT, VALUES) is None
    assert check_statement(SINK_STATEMENT_WITH_VALUE, VALUES) is None  # "bob" in one literal
    print(f"\ncheck_statement ({len(VALUES)} request values)  µs/statement (median)   best")
    for label, statement in (("no value occurs", SINK_STATEMENT),
                             ("one value occurs (tokenized)", SINK_STATEMENT_WITH_VALUE)):
        median, best = _measure(lambda s=statement: check_statement(s, VALUES),  # type: ignore[misc]
                                args.number, args.repeat)
        print(f"  {label:34s} {median:12.2f}     {best:12.2f}")

    print("\ndriver hook, sqlite3 execute          µs/statement (median)   best")
    plain = sqlite3.connect(":memory:")
    protected = sqlite3.connect(":memory:", factory=ProtectedSQLiteConnection)
    for db in (plain, protected):
        db.execute("CREATE TABLE orders (id INTEGER, total REAL, owner TEXT, status TEXT)")
    sink = RequestSink(SCOPE, SinkPolicy())
    token = bind(sink)
    try:
        with_value = SINK_STATEMENT.replace("alice", "bob smith")  # the query's owner
        for label, statement in (("no value occurs", SINK_STATEMENT),
                                 ("one value occurs", with_value)):
            base, _ = _measure(lambda s=statement: plain.execute(s), args.number, args.repeat)  # type: ignore[misc]
            with_hook, best = _measure(lambda s=statement: protected.execute(s),  # type: ignore[misc]
                                       args.number, args.repeat)
            print(f"  {label + ', added':34s} {with_hook - base:12.2f}     (execute alone "
                  f"{base:.2f})")
    finally:
        unbind(token)
    print(f"  {'values read (' + str(len(sink.values())) + ')':34s}", end="")

    def read_values() -> None:
        RequestSink(SCOPE, SinkPolicy()).values()

    median, best = _measure(read_values, max(1, args.number // 4), args.repeat)
    print(f" {median:12.2f}     {best:12.2f}   once per request, at its first statement")

    print("\ntokenize, for reference              µs/statement (median)   best")
    for label, func in (("ours", lambda: tokenize(SINK_STATEMENT)),
                        ("sqlparse", lambda: list(sqlparse.parse(SINK_STATEMENT)[0].flatten()))):
        number = args.number if label == "ours" else max(1, args.number // 20)
        median, best = _measure(func, number, args.repeat)
        print(f"  {label:34s} {median:12.2f}     {best:12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
