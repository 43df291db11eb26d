"""The SQLite advisory database: import from directories, zips and checkouts; matching
as the in-memory loader does; aliases, withdrawn records, re-imports; the shared data."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from pynomaly_security.vulns.lockfiles import scan_tree
from pynomaly_security.vulns.osv import AdvisoryError, OSVDatabase
from pynomaly_security.vulns.sources import OSVSource
from pynomaly_security.vulns.store import AdvisoryDB, _entry
from tests.conftest import require_shared

DATA = Path(__file__).parent / "data" / "osv"


def _ids(db: AdvisoryDB, eco: str, name: str, version: str) -> list[str]:
    return sorted({db.vulnerability(a.id) for a in db.matching(eco, name, version)})


@pytest.fixture
def db(tmp_path: Path) -> AdvisoryDB:
    found = AdvisoryDB(tmp_path / "advisories.db")
    found.import_sources([OSVSource(DATA)])
    return found


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.1", ["GHSA-aaaa-bbbb-cccc"]),  # PYSEC and GHSA are one vulnerability
        ("1.1.9", ["GHSA-aaaa-bbbb-cccc"]),
        ("1.2.0", []),  # fixed
        ("2.1", ["GHSA-aaaa-bbbb-cccc"]),  # last_affected is inclusive
        ("2.1.1", []),
        ("0.9-legacy-1", ["GHSA-aaaa-bbbb-cccc"]),  # from the versions list
        ("3.0", []),  # only the withdrawn record names it
    ],
)
def test_pypi_ranges_match_the_memory_loader(
    db: AdvisoryDB, version: str, expected: list[str]
) -> None:
    """The database answers exactly what OSVDatabase answers on the same records."""
    assert _ids(db, "PyPI", "Demo.Pkg", version) == expected
    assert OSVDatabase.load([DATA]).affected("PyPI", "demo.pkg", version) == expected


def test_semver_limit_aliases_and_withdrawn(db: AdvisoryDB) -> None:
    """SEMVER limit, case-sensitive npm names, alias groups both ways, withdrawn kept out."""
    assert _ids(db, "npm", "left-pad", "1.0.0-beta.2") == ["GHSA-npm1-0000-0000"]
    assert _ids(db, "npm", "left-pad", "1.2.5") == []
    assert _ids(db, "npm", "Left-Pad", "1.1.0") == []
    everyone = {"PYSEC-0000-1", "GHSA-aaaa-bbbb-cccc", "CVE-0000-0001"}
    assert db.aliases("PYSEC-0000-1") == everyone == db.aliases("GHSA-aaaa-bbbb-cccc")
    assert db.is_withdrawn("WITHDRAWN-1")
    stats = db.stats()
    assert (stats["advisories"], stats["withdrawn"]) == (3, 1)
    assert stats["sources"][0]["kind"] == "directory" and len(stats["sources"][0]["sha256"]) == 64


def test_zip_export_and_git_checkout(tmp_path: Path) -> None:
    """An all.zip export and a git checkout import the same records as the directory;
    the zip's digest is of its bytes, the checkout names its HEAD commit."""
    export = tmp_path / "all.zip"
    with zipfile.ZipFile(export, "w") as archive:
        for path in sorted(DATA.iterdir()):
            archive.write(path, path.name)
        archive.writestr("broken.json", '{"id": "X",\n "affected": [}')
    checkout = tmp_path / "checkout"
    shutil.copytree(DATA, checkout / "vulns")
    (checkout / ".git" / "refs" / "heads").mkdir(parents=True)
    (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (checkout / ".git" / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    (checkout / ".git" / "config.json").write_text("{}")  # never read as a record

    with AdvisoryDB(tmp_path / "zip.db") as from_zip:
        source = OSVSource(export)
        result = from_zip.import_sources([source])
        assert (source.kind, result["imported"], source.error_count) == ("zip", 3, 1)
        assert (
            str(source.errors[0]) == f"{export}!broken.json: line 2: invalid JSON: Expecting value"
        )
        import hashlib

        assert source.sha256 == hashlib.sha256(export.read_bytes()).hexdigest()
        assert _ids(from_zip, "PyPI", "demo-pkg", "1.1.0") == ["GHSA-aaaa-bbbb-cccc"]
    with AdvisoryDB(tmp_path / "git.db") as from_git:
        source = OSVSource(checkout)
        from_git.import_sources([source])
        assert (source.kind, source.commit, source.error_count) == ("git", "a" * 40, 0)
        assert _ids(from_git, "PyPI", "demo-pkg", "2.0") == ["GHSA-aaaa-bbbb-cccc"]


def test_reimport_replaces_and_withdrawal_removes(tmp_path: Path) -> None:
    """A later copy of a record replaces the earlier one (no duplicate rows); a record
    withdrawn later is removed."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    record = {
        "id": "GHSA-re00-0000-0000",
        "affected": [{"package": {"ecosystem": "npm", "name": "x"}, "versions": ["1.0.0"]}],
    }
    (first / "r.json").write_text(json.dumps(record))
    with AdvisoryDB(tmp_path / "db") as db:
        db.import_sources([OSVSource(first), OSVSource(first)])
        assert len(db.candidates("npm", "x")[0].entries) == 1
        (second / "r.json").write_text(json.dumps({**record, "withdrawn": "2026-01-01T00:00:00Z"}))
        db.import_sources([OSVSource(second)])
        assert db.candidates("npm", "x") == []


def test_bad_files(tmp_path: Path) -> None:
    """A missing path and a file that is no database are clear errors."""
    with pytest.raises(AdvisoryError, match="no such file or directory"):
        OSVSource(tmp_path / "nope")
    with pytest.raises(AdvisoryError, match="no advisory database"):
        AdvisoryDB(tmp_path / "missing.db", create=False)
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(AdvisoryError, match="not an advisory database"):
        AdvisoryDB(tmp_path / "junk.db")


def test_shared_lockfiles_same_findings_as_memory(tmp_path: Path) -> None:
    """On every shared lockfile, the SQLite database finds exactly what the in-memory
    loader finds from the same shared advisories (aliases merged)."""
    advisories = require_shared("datasets", "advisories")
    packages, _ = scan_tree(require_shared("datasets", "lockfiles"))
    memory = OSVDatabase.load([advisories])
    with AdvisoryDB(tmp_path / "all.db") as db:
        result = db.import_sources([OSVSource(advisories)])
        assert result["imported"] == len(memory.advisories)
        differences = []
        checked = 0
        for p in packages:
            if p.version is None:
                continue
            try:
                expected = memory.affected(p.ecosystem, p.name, p.version)
            except ValueError:
                continue
            checked += 1
            if _ids(db, p.ecosystem, p.name, p.version) != expected:
                differences.append((p.name, p.version))
        print(f"\nshared lockfiles: {checked} pinned packages compared, {len(differences)} differ")
        assert checked > 200 and differences == []


TRICKY = ["1.0", "1.0.1", "", ",", '","', "a", '1.0"', 'a"1.0', "1.0\\", "\\", "1.0é", "1.0\x7f"]


@pytest.mark.parametrize(
    "listed",
    [
        [],
        ["1.0.1", "2.0"],
        ["1.0", "1.0.1", "", ","],
        ['a"1.0', "2.0"],  # an escape in the list: read as a set
        ["1.0\\"],
        ["1.0é"],
        ["x,1.0", "1.0,y"],
    ],
)
def test_listed_versions_searched_as_text_exactly(listed: list[str]) -> None:
    """A ``versions`` list kept as its stored JSON text answers ``in`` as the set of its
    strings does, whatever characters the versions carry."""
    blob = json.dumps([[], listed], separators=(",", ":"))  # as the import stores it
    entry = _entry("PyPI", blob)
    for version in TRICKY + listed:
        assert (version in entry.versions) == (version in set(listed)), version
    assert set(entry.versions) == set(listed) and len(entry.versions) == len(set(listed))
