"""OSV advisories in memory: ``OSVDatabase.load(paths)`` then ``affected(eco, name, version)``.

Reads a directory tree (or files) of OSV records, JSON or YAML (``.json``, ``.yaml``,
``.yml``). Withdrawn records are skipped. Records that name each other in
``aliases`` (PYSEC / GHSA / CVE) are one vulnerability: ``affected`` reports each
once, under its smallest record id, and ``aliases(id)`` gives the rest.

A version is affected when it is listed in an ``affected[].versions`` list or falls
in an ``ECOSYSTEM`` or ``SEMVER`` range (``introduced`` / ``fixed`` /
``last_affected`` / ``limit``, evaluated as the OSV schema says: events sorted by
version, the last one at or below the version decides). ``GIT`` ranges are ignored:
a lockfile names versions, not commits. Ecosystems without a comparator in
:mod:`.versions`, a range with a bound its comparator cannot read, and a queried
version it cannot read are matched by the ``versions`` lists only.

The SQLite database (:mod:`.store`) stores the same records and evaluates them with
this module's ``_affects``, so both answer alike (``tests/vulns/test_store.py``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pynomaly_security.exceptions import SecurityError
from pynomaly_security.vulns.versions import UnknownEcosystem, VersionError
from pynomaly_security.vulns.versions import version_key as _key

__all__ = ["Advisory", "AdvisoryError", "OSVDatabase", "normalize_name"]

_SUFFIXES = (".json", ".yaml", ".yml")


class AdvisoryError(SecurityError, ValueError):
    """An OSV file that cannot be read; the message names the file (and line)."""


@functools.lru_cache(maxsize=65_536)  # a scan asks for each name several times
def normalize_name(ecosystem: str, name: str) -> str:
    """The name as the ecosystem compares it (PEP 503 for PyPI, lower case for Packagist)."""
    if ecosystem == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    if ecosystem == "Packagist":
        return name.lower()
    return name


# Named tuples, not frozen dataclasses: a scan builds thousands of them from the
# database, and a tuple is built in C (a frozen dataclass sets each field through
# object.__setattr__).
class _Range(NamedTuple):
    kind: str
    events: tuple[tuple[str, str], ...]  # (event kind, version), in record order


class _Affected(NamedTuple):
    ecosystem: str
    ranges: tuple[_Range, ...]
    versions: Collection[str]  # a frozenset, or the store's listed text


@dataclass
class Advisory:
    """The parts of an OSV record the scanner uses."""

    id: str
    aliases: frozenset[str]
    summary: str
    severity: str | None  # database_specific.severity, else the first severity[] score
    source: Path
    affected: dict[tuple[str, str], list[_Affected]] = field(default_factory=dict)

    def fixed_versions(self, ecosystem: str, name: str) -> list[str]:
        """Every ``fixed`` event for the package (unsorted)."""
        key = (ecosystem, normalize_name(ecosystem, name))
        return [
            v
            for a in self.affected.get(key, [])
            for r in a.ranges
            for k, v in r.events
            if k == "fixed"
        ]


def _severity(record: dict[str, Any]) -> str | None:
    specific = record.get("database_specific")
    if isinstance(specific, dict) and isinstance(specific.get("severity"), str):
        return str(specific["severity"]).upper()
    for entry in record.get("severity") or []:
        if isinstance(entry, dict) and entry.get("score"):
            # A CVSS vector, not a label: scoring it needs the `cvss` library (not installed yet).
            return str(entry["score"])
    return None


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AdvisoryError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise AdvisoryError(
                f"{path}: {where}invalid YAML: {getattr(exc, 'problem', exc)}"
            ) from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise AdvisoryError(f"{path}: line 1: not an OSV record (no top-level `id`)")
    return data


def _parse(record: dict[str, Any], path: Path) -> Advisory:
    advisory = Advisory(
        id=record["id"],
        aliases=frozenset(a for a in record.get("aliases") or [] if isinstance(a, str)),
        summary=str(record.get("summary") or record.get("details") or "")[:200],
        severity=_severity(record),
        source=path,
    )
    for entry in record.get("affected") or []:
        package = entry.get("package") or {}
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str):
            continue  # affected entries without a package (OSS-Fuzz style) name nothing to match
        ecosystem = ecosystem.split(":", 1)[0]  # "Debian:11" -> "Debian"
        ranges = tuple(
            _Range(
                str(r.get("type")),
                tuple((k, str(v)) for ev in r.get("events") or [] for k, v in ev.items()),
            )
            for r in entry.get("ranges") or []
            if r.get("type") in ("ECOSYSTEM", "SEMVER")
        )
        versions = frozenset(str(v) for v in entry.get("versions") or [])
        key = (ecosystem, normalize_name(ecosystem, name))
        advisory.affected.setdefault(key, []).append(_Affected(ecosystem, ranges, versions))
    return advisory


@functools.lru_cache(maxsize=16_384)
def _prepared(rng: _Range, ecosystem: str) -> tuple[list[Any], list[tuple[Any, str]]]:
    eco = "npm" if rng.kind == "SEMVER" else ecosystem
    limits = [_key(eco, v) for k, v in rng.events if k == "limit" and v != "*"]
    return limits, _sorted_events(rng, functools.partial(_key, eco))


def _in_range(rng: _Range, ecosystem: str, version: str) -> bool:
    target = _key("npm" if rng.kind == "SEMVER" else ecosystem, version)
    limits, events = _prepared(rng, ecosystem)
    if limits and not any(target < limit for limit in limits):
        return False
    status = False
    # The last event at or below the version decides; "introduced: 0" is below everything.
    # Events are sorted, so the first one above the version ends the walk; only ``<`` is
    # asked of the keys (the total_ordering fallbacks cost a call each).
    for bound, kind in events:
        if bound is None:
            status = True
        elif target < bound:
            break
        elif kind == "introduced":
            status = True
        elif kind == "fixed":
            status = False  # fixed excludes its own version
        elif kind == "last_affected" and bound < target:
            status = False  # last_affected includes it
    return status


def _sorted_events(rng: _Range, key: Any) -> list[tuple[Any, str]]:
    low = [(None, k) for k, v in rng.events if k == "introduced" and v == "0"]
    rest = [
        (key(v), k) for k, v in rng.events if k != "limit" and not (k == "introduced" and v == "0")
    ]
    rest.sort(key=lambda e: e[0])
    return low + rest


class OSVDatabase:
    """Advisories in memory, indexed by (ecosystem, normalised package name)."""

    def __init__(self) -> None:
        self.advisories: dict[str, Advisory] = {}
        self._by_package: dict[tuple[str, str], list[Advisory]] = {}
        self._group: dict[str, str] = {}  # record id or alias -> the vulnerability's id
        self.withdrawn = 0

    @classmethod
    def load(cls, paths: Iterable[Path | str]) -> OSVDatabase:
        db = cls()
        for path in _files(paths):
            db.add(_read(path), path)
        return db

    def add(self, record: dict[str, Any], path: Path) -> None:
        if record.get("withdrawn"):
            self.withdrawn += 1
            return
        advisory = _parse(record, path)
        self.advisories[advisory.id] = advisory
        for key in advisory.affected:
            self._by_package.setdefault(key, []).append(advisory)
        self._group.clear()  # recomputed on the next query

    def _canonical(self, advisory_id: str) -> str:
        if not self._group:
            self._group = _alias_groups(self.advisories.values())
        return self._group.get(advisory_id, advisory_id)

    def aliases(self, advisory_id: str) -> set[str]:
        """Every id of the vulnerability: record ids and their aliases."""
        canonical = self._canonical(advisory_id)
        return {name for name, group in self._group.items() if group == canonical}

    def affected(self, ecosystem: str, name: str, version: str) -> list[str]:
        """The vulnerabilities whose records include ``version`` of the package, sorted."""
        found = {self._canonical(a.id) for a in self.matching(ecosystem, name, version)}
        return sorted(found)

    def key(self, ecosystem: str, name: str) -> tuple[str, str]:
        """The index key of a package: (ecosystem, normalised name)."""
        return (ecosystem, normalize_name(ecosystem, name))

    def matching_candidates(self, ecosystem: str, name: str) -> list[Advisory]:
        """Every record that names the package, whatever the version."""
        return list(self._by_package.get(self.key(ecosystem, name), []))

    def matching(self, ecosystem: str, name: str, version: str) -> list[Advisory]:
        """The records (aliases not merged) that include ``version`` of the package."""
        key = (ecosystem, normalize_name(ecosystem, name))
        return [a for a in self._by_package.get(key, []) if _affects(a.affected[key], version)]


def _affects(entries: Iterable[_Affected], version: str) -> bool:
    for entry in entries:
        if version in entry.versions:
            return True
        for rng in entry.ranges:
            try:
                if _in_range(rng, entry.ecosystem, version):
                    return True
            except (UnknownEcosystem, VersionError):
                # No comparator (or an unreadable bound): the versions list is all we trust.
                continue
    return False


def _alias_groups(advisories: Iterable[Advisory]) -> dict[str, str]:
    # Union-find over record ids and aliases; a group is named by its smallest record id.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    records = list(advisories)
    for advisory in records:
        for alias in advisory.aliases:
            parent[find(alias)] = find(advisory.id)
    names: dict[str, str] = {}
    for advisory in sorted(records, key=lambda a: a.id):
        names.setdefault(find(advisory.id), advisory.id)
    return {x: names.get(find(x), find(x)) for x in list(parent) + [a.id for a in records]}


def _files(paths: Iterable[Path | str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
        elif path.is_file():
            yield path
        else:
            raise AdvisoryError(f"{path}: no such file or directory")
