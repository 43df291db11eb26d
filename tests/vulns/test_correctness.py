"""Findings on the shared lockfiles are exactly the advisories that include each locked version.

The expected answer is computed here, independently of the scanner's matching
code: the OSV records are read again from disk (``json`` / ``yaml.safe_load``),
names are compared with ``packaging.utils.canonicalize_name`` for PyPI, and

- for **PyPI** the truth is the explicit ``versions`` list each PyPA record carries
  (PEP 440 equality, so ``1.0`` is ``1.0.0``);
- for the **other ecosystems** the ranges are turned into intervals
  (each ``introduced`` opens one, the next ``fixed`` closes it before, the next
  ``last_affected`` after, an open one runs to the ``limit`` or forever), and the
  locked version is looked up in them; plus the record's ``versions`` list.

Only the version order is shared with the scanner (``versions.compare``), and it is
checked on its own by the 71,818 ordering cases of ``test_versions.py``.

``MATCHERS`` is the one place that names the database under test: add the SQLite
database there and every check runs over it too. A matcher takes (ecosystem, name,
version) and returns the **record** ids (aliases not merged) that include it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pynomaly_security.vulns.lockfiles import Package, scan_tree
from pynomaly_security.vulns.osv import OSVDatabase
from pynomaly_security.vulns.versions import VersionError, compare
from tests.conftest import require_shared

Matcher = Callable[[str, str, str], set[str]]


@cache
def _osv_database() -> OSVDatabase:
    return OSVDatabase.load([require_shared("datasets", "advisories")])


def _osv_matcher(ecosystem: str, name: str, version: str) -> set[str]:
    return {a.id for a in _osv_database().matching(ecosystem, name, version)}


MATCHERS: dict[str, Callable[[], Matcher]] = {"osv-memory": lambda: _osv_matcher}


# --- the independent expectation ----------------------------------------------


@dataclass(frozen=True)
class _Entry:
    record: str
    ecosystem: str
    versions: tuple[str, ...]
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # ECOSYSTEM/SEMVER events, as written


def _records(root: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(root.rglob("*")):
        if path.suffix == ".json":
            yield json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in (".yaml", ".yml"):
            yield yaml.safe_load(path.read_text(encoding="utf-8"))


def _key(ecosystem: str, name: str) -> tuple[str, str]:
    if ecosystem == "PyPI":
        return ecosystem, canonicalize_name(name)
    return ecosystem, name.lower() if ecosystem == "Packagist" else name


@cache
def _index() -> dict[tuple[str, str], list[_Entry]]:
    index: dict[tuple[str, str], list[_Entry]] = {}
    for record in _records(require_shared("datasets", "advisories")):
        if record.get("withdrawn"):
            continue
        for affected in record.get("affected") or []:
            package = affected.get("package") or {}
            if "ecosystem" not in package or "name" not in package:
                continue
            # "Packagist:https://packages.drupal.org/8" is Composer too (the Drupal repository)
            ecosystem = package["ecosystem"].split(":")[0]
            ranges = tuple(
                tuple((k, str(v)) for event in r.get("events") or [] for k, v in event.items())
                for r in affected.get("ranges") or []
                if r.get("type") in ("ECOSYSTEM", "SEMVER")
            )
            versions = tuple(str(v) for v in affected.get("versions") or [])
            entry = _Entry(record["id"], ecosystem, versions, ranges)
            index.setdefault(_key(ecosystem, package["name"]), []).append(entry)
    return index


def _same(ecosystem: str, a: str, b: str) -> bool:
    if ecosystem == "PyPI":
        try:
            return Version(a) == Version(b)
        except InvalidVersion:
            return a == b
    return a == b


def _intervals(ecosystem: str, events: tuple[tuple[str, str], ...]) -> list[tuple[str, str, str]]:
    """(low, high, kind) spans of one range: kind "fixed" excludes high, "last" includes it."""

    # by version order, the "0" sentinel first; equal versions keep the record's order
    def order(a: tuple[str, str], b: tuple[str, str]) -> int:
        if a[1] == "0" and a[0] == "introduced":
            return -1
        if b[1] == "0" and b[0] == "introduced":
            return 1
        return compare(ecosystem, a[1], b[1])

    ordered = sorted((e for e in events if e[0] != "limit"), key=functools.cmp_to_key(order))
    spans, low = [], None
    for kind, version in ordered:
        if kind == "introduced" and low is None:
            low = version
        elif kind in ("fixed", "last_affected") and low is not None:
            spans.append((low, version, "fixed" if kind == "fixed" else "last"))
            low = None
    limits = [v for k, v in events if k == "limit" and v != "*"]
    if low is not None:
        spans.append((low, limits[0] if limits else "", "fixed" if limits else "open"))
    return spans


def _in_spans(ecosystem: str, version: str, spans: list[tuple[str, str, str]]) -> bool:
    for low, high, kind in spans:
        if low != "0" and compare(ecosystem, version, low) < 0:
            continue
        if kind == "open":
            return True
        c = compare(ecosystem, version, high)
        if c < 0 or (kind == "last" and c == 0):
            return True
    return False


def expected(ecosystem: str, name: str, version: str) -> set[str]:
    """Record ids whose data include the version (PyPI: the versions lists only)."""
    found = set()
    for entry in _index().get(_key(ecosystem, name), []):
        if any(_same(ecosystem, listed, version) for listed in entry.versions):
            found.add(entry.record)
        elif ecosystem != "PyPI":
            for events in entry.ranges:
                try:
                    if _in_spans(ecosystem, version, _intervals(ecosystem, events)):
                        found.add(entry.record)
                except (VersionError, ValueError):
                    continue  # no order for this ecosystem or bound: the list is all there is
    return found


# --- the check -----------------------------------------------------------------


@cache
def _locked() -> tuple[list[Package], int]:
    packages, _errors = scan_tree(require_shared("datasets", "lockfiles"))
    files = {p.source for p in packages}
    return [p for p in packages if p.version is not None], len(files)


@pytest.mark.parametrize("matcher_name", sorted(MATCHERS))
def test_findings_are_exactly_the_affected_advisories(matcher_name: str) -> None:
    """No false positive and no miss on any pinned package of the shared lockfiles."""
    matcher = MATCHERS[matcher_name]()
    packages, files = _locked()
    distinct = sorted({(p.ecosystem, p.name, p.version or "") for p in packages})
    findings, mismatches = 0, []
    for ecosystem, name, version in distinct:
        got, want = matcher(ecosystem, name, version), expected(ecosystem, name, version)
        findings += len(got)
        if got != want:
            mismatches.append(
                f"{ecosystem} {name} {version}: extra {sorted(got - want)} missing "
                f"{sorted(want - got)}"
            )
    print(
        f"\n[{matcher_name}] files parsed {files}, pinned packages {len(packages)} "
        f"({len(distinct)} distinct), findings {findings}, mismatches {len(mismatches)}"
    )
    assert not mismatches, "\n".join(mismatches)
