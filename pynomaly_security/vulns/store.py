"""The local advisory database: OSV records in one SQLite file (issue 18, item 1).

``AdvisoryDB(path).import_sources([OSVSource(...)])`` streams records in (batches of
executemany in one transaction; one record in memory at a time), and
``matching(ecosystem, name, version)`` answers from the index on
``(ecosystem, normalized name)``, evaluating ranges exactly as :mod:`.osv` does
(ECOSYSTEM/SEMVER events with ``last_affected`` and ``limit``, and ``versions`` lists).

Aliases are rows ``(record id, alias)`` indexed both ways; PYSEC, GHSA and CVE records
that name each other are one vulnerability, named by its smallest record id
(:meth:`AdvisoryDB.vulnerability`), found by a bounded walk over those rows at query
time, so an import never holds the alias graph of a whole ecosystem in memory.
A withdrawn record is not stored, and removes an earlier import of the same id.

EPSS scores and the CISA KEV catalogue live in the same file (``epss``, ``kev``),
imported by ``vulndb import-epss`` / ``import-kev``; a refresh carries them over.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynomaly_security.vulns.osv import AdvisoryError, _Affected, _affects, _Range, normalize_name
from pynomaly_security.vulns.sources import OSVSource

__all__ = ["SCHEMA_VERSION", "AdvisoryDB", "Intel", "StoredAdvisory"]

SCHEMA_VERSION = "1"
_BATCH = 2000
_ALIAS_WALK_LIMIT = 256  # ids visited per vulnerability; real groups have a handful
_GROUP_CACHE = 20_000  # alias groups kept between scans
_PACKAGE_CACHE = 20_000  # packages whose parsed records are kept between scans
_IN_CHUNK = 400  # ids or names per ``IN (...)`` query

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS advisory (
    id TEXT PRIMARY KEY, summary TEXT NOT NULL, label TEXT, vectors TEXT NOT NULL,
    published TEXT, modified TEXT, source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alias (id TEXT NOT NULL, alias TEXT NOT NULL, PRIMARY KEY (id, alias))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alias_by_alias ON alias (alias);
CREATE TABLE IF NOT EXISTS affected (
    id TEXT NOT NULL, ecosystem TEXT NOT NULL, name TEXT NOT NULL, entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS affected_by_package ON affected (ecosystem, name);
CREATE INDEX IF NOT EXISTS affected_by_id ON affected (id);
CREATE TABLE IF NOT EXISTS withdrawn (id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS source (
    path TEXT NOT NULL, kind TEXT NOT NULL, sha256 TEXT NOT NULL, commit_id TEXT,
    records INTEGER NOT NULL, errors INTEGER NOT NULL, imported_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS epss (cve TEXT PRIMARY KEY, score REAL NOT NULL, percentile REAL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kev (
    cve TEXT PRIMARY KEY, date_added TEXT, due_date TEXT, name TEXT
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class StoredAdvisory:
    """One OSV record as the scanner reads it back (aliases not merged)."""

    id: str
    summary: str
    label: str | None  # database_specific.severity (GHSA: LOW/MODERATE/HIGH/CRITICAL)
    vectors: tuple[tuple[str, str], ...]  # severity[]: (CVSS_V3 | CVSS_V4 | ..., vector)
    published: str | None
    entries: tuple[_Affected, ...]  # for the package it was looked up by

    def fixed_versions(self) -> list[str]:
        return [v for e in self.entries for r in e.ranges for k, v in r.events if k == "fixed"]

    def affects(self, version: str) -> bool:
        """Whether a range or versions list of the record includes ``version``."""
        return _affects(self.entries, version)


@dataclass(frozen=True)
class Intel:
    """EPSS scores and KEV due dates read for a set of CVEs (:meth:`AdvisoryDB.intel`)."""

    scores: dict[str, float]  # EPSS probability by CVE
    due_dates: dict[str, str]  # KEV due date by CVE, "" when listed without one

    def epss(self, ids: Iterable[str]) -> float | None:
        """The highest EPSS probability among ``ids``, None when none has one."""
        return max((self.scores[i] for i in ids if i in self.scores), default=None)

    def kev_due(self, ids: Iterable[str]) -> str | None:
        """The earliest KEV due date among ``ids``; ``""`` when listed only without one;
        None when none is on the list."""
        listed = [self.due_dates[i] for i in ids if i in self.due_dates]
        if not listed:
            return None
        return min((d for d in listed if d), default="")


def _severities(record: dict[str, Any]) -> tuple[str | None, list[list[str]]]:
    label = None
    specific = record.get("database_specific")
    if isinstance(specific, dict) and isinstance(specific.get("severity"), str):
        label = str(specific["severity"]).upper()
    vectors: list[list[str]] = []
    scores = list(record.get("severity") or [])
    for entry in record.get("affected") or []:  # OSV allows severity per affected package too
        if isinstance(entry, dict):
            scores += entry.get("severity") or []
    for score in scores:
        if isinstance(score, dict) and isinstance(score.get("score"), str):
            pair = [str(score.get("type") or ""), score["score"]]
            if pair not in vectors:
                vectors.append(pair)
    return label, vectors


def _affected_rows(record: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for entry in record.get("affected") or []:
        if not isinstance(entry, dict):
            continue
        package = entry.get("package") or {}
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str):
            continue  # no package (OSS-Fuzz style): nothing a lockfile could match
        ecosystem = ecosystem.split(":", 1)[0]  # "Debian:11" -> "Debian"
        ranges = [
            [
                str(r.get("type")),
                [[k, str(v)] for ev in r.get("events") or [] for k, v in ev.items()],
            ]
            for r in entry.get("ranges") or []
            if isinstance(r, dict) and r.get("type") in ("ECOSYSTEM", "SEMVER")
        ]
        versions = [str(v) for v in entry.get("versions") or []]
        if ranges or versions:
            blob = json.dumps([ranges, versions], separators=(",", ":"))
            yield ecosystem, normalize_name(ecosystem, name), blob


def _chunks(items: list[str]) -> Iterator[list[str]]:
    # SQLite builds before 3.32 bind at most 999 parameters; stay well under.
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _marks(chunk: list[str]) -> str:
    return ",".join("?" * len(chunk))


_DECODER = json.JSONDecoder()


def _plain(text: str) -> bool:
    # What json.dumps writes as is: printable ASCII (space to ~) but " and \.
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


class _ListedVersions(Collection[str]):
    """An entry's ``versions`` list as stored (its JSON text), searched as text.

    A PyPI record lists every affected release, and building a set of those strings
    for each record a scan reads was most of a first scan's time. The JSON text of a
    list of strings with no backslash holds only strings without ``"``, ``\\`` or
    characters JSON escapes, each as ``"value"`` between ``[``, ``,`` and ``]``: with
    the brackets made commas, ``,"version",`` occurs in it exactly when the version is
    in the list. A list with an escape in it is read into a set instead.
    """

    __slots__ = ("_listed", "_text")

    def __init__(self, text: str) -> None:
        self._text = "," + text[1:-1] + ","
        self._listed: frozenset[str] | None = frozenset(json.loads(text)) if "\\" in text else None

    def __contains__(self, version: object) -> bool:
        if self._listed is not None:
            return version in self._listed
        if not isinstance(version, str) or not _plain(version):
            return False  # it would be escaped, and this list has no escape
        return f',"{version}",' in self._text

    def _all(self) -> frozenset[str]:
        if self._listed is None:
            return frozenset(json.loads("[" + self._text[1:-1] + "]"))
        return self._listed

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Collection) and self._all() == frozenset(other)

    def __hash__(self) -> int:
        return hash(self._all())


def _entry(ecosystem: str, blob: str) -> _Affected:
    # blob: [ranges, versions] (compact JSON); the ranges are small, the versions list
    # is kept as text (see _ListedVersions).
    ranges, end = _DECODER.raw_decode(blob, 1)
    return _Affected(
        ecosystem,
        tuple(_Range(kind, tuple((k, v) for k, v in events)) for kind, events in ranges),
        _ListedVersions(blob[end + 1 : -1]),
    )


class AdvisoryDB:
    """An advisory database file; ``AdvisoryDB(":memory:")`` for a one-off scan.

    Args:
        path: the SQLite file (created with its schema when absent unless ``create``
            is false, which raises :class:`AdvisoryError` instead).
        building: a new file that nobody reads before it is complete and swapped in
            (``vulndb refresh``, ``vulndb import --replace``): written without a
            rollback journal and without syncs (a failed build is thrown away, not
            rolled back), then synced once by :meth:`close`, before the swap.
    """

    def __init__(self, path: str | Path, *, create: bool = True, building: bool = False) -> None:
        self.path = str(path)
        self._building = building
        if not create and self.path != ":memory:" and not Path(self.path).is_file():
            raise AdvisoryError(
                f"{self.path}: no advisory database (python -m pynomaly_security vulndb import)"
            )
        self._groups: dict[str, tuple[set[str], str]] = {}  # record id -> its alias group
        self._packages: dict[tuple[str, str], list[StoredAdvisory]] = {}  # parsed records
        # Scans run in a worker thread of the app; one connection, guarded by the caller.
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        try:
            if building:
                self._conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")
            self._conn.executescript(_SCHEMA)
            found = self._conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise AdvisoryError(f"{self.path}: not an advisory database: {exc}") from None
        if found is None:
            self._conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            self._conn.commit()
        elif found[0] != SCHEMA_VERSION:
            self._conn.close()
            raise AdvisoryError(
                f"{self.path}: schema {found[0]}, this version reads {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self._conn.close()
        if self._building and self.path != ":memory:":
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)  # on disk before it is renamed over the old file
            finally:
                os.close(fd)

    def __enter__(self) -> AdvisoryDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- import ---------------------------------------------------------------------

    def import_sources(
        self,
        sources: Iterable[OSVSource],
        *,
        progress: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> dict[str, Any]:
        """Stream every record of ``sources`` in; returns counts and each source's digest."""
        conn = self._conn
        self._groups.clear()
        self._packages.clear()
        conn.execute("PRAGMA synchronous=OFF")
        imported = withdrawn = 0
        described = []
        for source in sources:
            advisories: list[tuple[Any, ...]] = []
            aliases: list[tuple[str, str]] = []
            affected: list[tuple[str, str, str, str]] = []
            pending: set[str] = set()  # ids in the batch not yet written
            for where, record in source.iter_records():
                rid = record["id"]
                if (
                    rid in pending
                    or conn.execute("SELECT 1 FROM advisory WHERE id=?", (rid,)).fetchone()
                ):
                    self._flush(advisories, aliases, affected)
                    pending.clear()
                    self._delete(rid)  # a later copy of a record replaces the earlier one
                if record.get("withdrawn"):
                    withdrawn += 1
                    conn.execute("INSERT OR IGNORE INTO withdrawn VALUES (?)", (rid,))
                    continue
                label, vectors = _severities(record)
                advisories.append(
                    (
                        rid,
                        str(record.get("summary") or record.get("details") or "")[:300],
                        label,
                        json.dumps(vectors),
                        _text(record.get("published")),
                        _text(record.get("modified")),
                        where,
                    )
                )
                aliases += [(rid, a) for a in record.get("aliases") or [] if isinstance(a, str)]
                affected += [(rid, *row) for row in _affected_rows(record)]
                imported += 1
                pending.add(rid)
                if len(advisories) >= _BATCH:
                    self._flush(advisories, aliases, affected)
                    pending.clear()
                    if progress is not None:
                        progress(imported)
            self._flush(advisories, aliases, affected)
            desc = source.describe()
            described.append(desc)
            conn.execute(
                "INSERT INTO source VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    desc["path"],
                    source.kind,
                    source.sha256,
                    source.commit,
                    source.records,
                    source.error_count,
                    clock(),
                ),
            )
        # A record withdrawn in one source stays out even if another still carries it.
        conn.execute("DELETE FROM advisory WHERE id IN (SELECT id FROM withdrawn)")
        conn.execute("DELETE FROM affected WHERE id IN (SELECT id FROM withdrawn)")
        conn.execute("DELETE FROM alias WHERE id IN (SELECT id FROM withdrawn)")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('imported_at', ?)", (str(clock()),))
        conn.commit()
        if not self._building:
            conn.execute("PRAGMA synchronous=FULL")
        if progress is not None:
            progress(imported)
        return {"imported": imported, "withdrawn": withdrawn, "sources": described}

    def _flush(
        self,
        advisories: list[tuple[Any, ...]],
        aliases: list[tuple[str, str]],
        affected: list[tuple[str, str, str, str]],
    ) -> None:
        conn = self._conn
        conn.executemany("INSERT OR REPLACE INTO advisory VALUES (?, ?, ?, ?, ?, ?, ?)", advisories)
        conn.executemany("INSERT OR IGNORE INTO alias VALUES (?, ?)", aliases)
        conn.executemany("INSERT INTO affected VALUES (?, ?, ?, ?)", affected)
        advisories.clear()
        aliases.clear()
        affected.clear()

    def _delete(self, rid: str) -> None:
        for table in ("advisory", "alias", "affected"):
            self._conn.execute(f"DELETE FROM {table} WHERE id=?", (rid,))  # noqa: S608 (fixed names)

    # -- queries --------------------------------------------------------------------

    def candidates(self, ecosystem: str, name: str) -> list[StoredAdvisory]:
        """Every record naming the package, whatever the version."""
        key = normalize_name(ecosystem, name)
        cached = self._packages.get((ecosystem, key))
        if cached is None:
            self.prefetch(ecosystem, [key])
            cached = self._packages[(ecosystem, key)]
        return list(cached)

    def prefetch(self, ecosystem: str, names: Iterable[str]) -> None:
        """Read the records of many packages at once (a scan: one query per few hundred
        names, not one per package) into the bounded cache :meth:`candidates` reads."""
        keys = sorted({normalize_name(ecosystem, n) for n in names} - self._cached(ecosystem))
        for chunk in _chunks(keys):
            if len(self._packages) + len(chunk) > _PACKAGE_CACHE:
                self._packages.clear()  # bounded; a scan touches far fewer packages
            grouped: dict[str, dict[str, StoredAdvisory]] = {key: {} for key in chunk}
            rows = self._conn.execute(
                "SELECT f.name, a.id, a.summary, a.label, a.vectors, a.published, f.entry"  # noqa: S608
                " FROM affected f JOIN advisory a ON a.id = f.id"
                f" WHERE f.ecosystem=? AND f.name IN ({_marks(chunk)})"
                " ORDER BY f.name, a.id, f.rowid",
                (ecosystem, *chunk),
            )
            for key, rid, summary, label, vectors, published, blob in rows:
                package, entry = grouped[key], _entry(ecosystem, blob)
                old = package.get(rid)
                if old is not None:
                    package[rid] = StoredAdvisory(
                        rid, summary, label, old.vectors, published, (*old.entries, entry)
                    )
                else:
                    pairs = tuple((t, v) for t, v in json.loads(vectors))
                    package[rid] = StoredAdvisory(rid, summary, label, pairs, published, (entry,))
            for key, package in grouped.items():
                self._packages[(ecosystem, key)] = list(package.values())

    def _cached(self, ecosystem: str) -> set[str]:
        return {key for eco, key in self._packages if eco == ecosystem}

    def matching(
        self,
        ecosystem: str,
        name: str,
        version: str,
        candidates: list[StoredAdvisory] | None = None,
    ) -> list[StoredAdvisory]:
        """The records whose ranges or versions lists include ``version``."""
        found = self.candidates(ecosystem, name) if candidates is None else candidates
        return [a for a in found if a.affects(version)]

    def aliases(self, record_id: str) -> set[str]:
        """Every id of the vulnerability: record ids and the aliases they name."""
        return self._walk(record_id)[0]

    def vulnerability(self, record_id: str) -> str:
        """The vulnerability's name: the smallest record id among those that name each other."""
        return self._walk(record_id)[1]

    def _walk(self, record_id: str) -> tuple[set[str], str]:
        found = self._groups.get(record_id)
        if found is None:
            self.prefetch_groups([record_id])
            found = self._groups[record_id]
        return found

    def prefetch_groups(self, record_ids: Iterable[str]) -> None:
        """The alias groups of many records at once, into the bounded cache
        :meth:`aliases` and :meth:`vulnerability` read: a walk over the alias rows one
        level at a time for all of them together (a query per level and few hundred
        ids, not two per id visited), then each record's group within what was read."""
        starts = sorted(set(record_ids) - self._groups.keys())
        if not starts:
            return
        if len(self._groups) + len(starts) > _GROUP_CACHE:
            self._groups.clear()  # bounded; rebuilt from the index as scans need it
        linked: dict[str, set[str]] = {}
        records: set[str] = set()  # an alias row's own id is a stored record's
        seen, frontier = set(starts), starts
        budget = _ALIAS_WALK_LIMIT * len(starts)  # as walking each group on its own
        while frontier and len(seen) < budget:
            for chunk in _chunks(frontier):
                marks = _marks(chunk)
                for one, other in self._conn.execute(
                    f"SELECT id, alias FROM alias WHERE id IN ({marks})"  # noqa: S608 (marks)
                    f" UNION ALL SELECT id, alias FROM alias WHERE alias IN ({marks})",
                    (*chunk, *chunk),
                ):
                    records.add(one)
                    linked.setdefault(one, set()).add(other)
                    linked.setdefault(other, set()).add(one)
            frontier = sorted({o for r in frontier for o in linked.get(r, ()) if o not in seen})
            seen.update(frontier)
        for chunk in _chunks(sorted(seen - records)):  # named only as aliases: records too?
            records.update(
                rid
                for (rid,) in self._conn.execute(
                    f"SELECT id FROM advisory WHERE id IN ({_marks(chunk)})",  # noqa: S608
                    chunk,
                )
            )
        for start in starts:
            if start in self._groups:
                continue  # in the group of an earlier start
            group, todo = {start}, [start]
            while todo and len(group) < _ALIAS_WALK_LIMIT:
                for other in linked.get(todo.pop(), ()):
                    if other not in group:
                        group.add(other)
                        todo.append(other)
            members = group & records
            self._groups[start] = (group, min(members | {start}))
            if members and len(group) < _ALIAS_WALK_LIMIT:  # complete: each member's walk
                named = (group, min(members))
                for member in members:
                    self._groups.setdefault(member, named)

    def severities(self, ids: Iterable[str]) -> list[tuple[str, str, str | None, list[list[str]]]]:
        """``(id, summary, label, vectors)`` of the records among ``ids`` (a vulnerability's
        severity is its records', whichever of them matched a version), by id."""
        out = []
        for chunk in _chunks(sorted(set(ids))):
            rows = self._conn.execute(
                "SELECT id, summary, label, vectors FROM advisory"  # noqa: S608 (marks)
                f" WHERE id IN ({_marks(chunk)}) ORDER BY id",
                chunk,
            )
            out += [(rid, summary, label, json.loads(v)) for rid, summary, label, v in rows]
        return out

    def is_withdrawn(self, record_id: str) -> bool:
        found = self._conn.execute("SELECT 1 FROM withdrawn WHERE id=?", (record_id,)).fetchone()
        return found is not None

    def stats(self) -> dict[str, Any]:
        """Counts, import time and sources: what ``vulndb info`` prints."""
        one = self._conn.execute
        imported_at = one("SELECT value FROM meta WHERE key='imported_at'").fetchone()
        return {
            "path": self.path,
            "advisories": one("SELECT count(*) FROM advisory").fetchone()[0],
            "packages": one(
                "SELECT count(*) FROM (SELECT DISTINCT ecosystem, name FROM affected)"
            ).fetchone()[0],
            "withdrawn": one("SELECT count(*) FROM withdrawn").fetchone()[0],
            "epss": one("SELECT count(*) FROM epss").fetchone()[0],
            "kev": one("SELECT count(*) FROM kev").fetchone()[0],
            "imported_at": float(imported_at[0]) if imported_at else None,
            "sources": [
                dict(
                    zip(
                        ("path", "kind", "sha256", "commit", "records", "errors", "imported_at"),
                        row,
                        strict=True,
                    )
                )
                for row in one("SELECT * FROM source ORDER BY imported_at")
            ],
        }

    # -- EPSS and KEV ---------------------------------------------------------------

    def replace_epss(self, rows: Iterable[tuple[str, float, float | None]]) -> int:
        with self._conn:
            self._conn.execute("DELETE FROM epss")
            self._conn.executemany("INSERT OR REPLACE INTO epss VALUES (?, ?, ?)", rows)
        return int(self._conn.execute("SELECT count(*) FROM epss").fetchone()[0])

    def replace_kev(self, rows: Iterable[tuple[str, str | None, str | None, str | None]]) -> int:
        with self._conn:
            self._conn.execute("DELETE FROM kev")
            self._conn.executemany("INSERT OR REPLACE INTO kev VALUES (?, ?, ?, ?)", rows)
        return int(self._conn.execute("SELECT count(*) FROM kev").fetchone()[0])

    def intel(self, cves: Iterable[str]) -> Intel:
        """The EPSS scores and KEV due dates of many CVEs at once (a scan asks for all
        of its vulnerabilities' CVEs together)."""
        wanted = sorted(set(cves))
        epss: dict[str, float] = {}
        kev: dict[str, str] = {}
        for chunk in _chunks(wanted):
            marks = _marks(chunk)
            for cve, score in self._conn.execute(
                f"SELECT cve, score FROM epss WHERE cve IN ({marks})",  # noqa: S608 (marks)
                chunk,
            ):
                epss[cve] = float(score)
            for cve, due in self._conn.execute(
                f"SELECT cve, due_date FROM kev WHERE cve IN ({marks})",  # noqa: S608 (marks)
                chunk,
            ):
                kev[cve] = due or ""
        return Intel(epss, kev)

    def epss(self, ids: Iterable[str]) -> float | None:
        """The highest EPSS probability among ``ids`` (CVE aliases), if any was imported."""
        ids = list(ids)
        return self.intel(ids).epss(ids)

    def kev_due(self, ids: Iterable[str]) -> str | None:
        """The earliest KEV due date (ISO date) among ``ids``; ``""`` when listed without one."""
        ids = list(ids)
        return self.intel(ids).kev_due(ids)

    def copy_intel_to(self, other: AdvisoryDB) -> None:
        """Carry the EPSS and KEV tables into a freshly built database (refresh)."""
        other.replace_epss(self._conn.execute("SELECT cve, score, percentile FROM epss"))
        other.replace_kev(self._conn.execute("SELECT cve, date_added, due_date, name FROM kev"))


def _text(value: Any) -> str | None:
    # PyYAML returns datetime for unquoted timestamps; keep the text form.
    return None if value is None else str(value)
