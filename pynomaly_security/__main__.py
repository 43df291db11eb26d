"""``python -m pynomaly_security <command>``.

Each command lives in ``pynomaly_security/cli/<command>.py`` and exposes
``register(subparsers)`` (adds its parser, sets ``func``), imported lazily so
one command's optional dependencies never break another.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "replay": "Replay captured requests through the inspection stack (JSON Lines).",
    "audit": "Verify or export the audit trail.",
    "keys": "Generate and rotate encryption keys.",
    "intel": "Import, list and remove IP reputation lists (threat intelligence).",
    "vulns": "Scan lockfiles for known vulnerabilities (OSV records).",
    "vulndb": "Import and refresh the advisory database (OSV, EPSS, CISA KEV).",
    "compliance": "Compliance reports (JSON, HTML, OSCAL, CSV) and their verification.",
    "anomaly": "Train and evaluate behavioural anomaly models (JSON Lines).",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m pynomaly_security")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        if argv and argv[0] == name:
            module = importlib.import_module(f"pynomaly_security.cli.{name}")
            module.register(sub)
        else:
            sub.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args))


if __name__ == "__main__":
    raise SystemExit(main())
