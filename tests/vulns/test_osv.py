"""OSV loading and matching on our own fixtures, then the PyPI database against itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from pynomaly_security.vulns.osv import AdvisoryError, OSVDatabase, _affects
from tests.conftest import require_shared

DATA = Path(__file__).parent / "data" / "osv"


@pytest.fixture(scope="module")
def db() -> OSVDatabase:
    return OSVDatabase.load([DATA])


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
def test_pypi_ranges(db: OSVDatabase, version: str, expected: list[str]) -> None:
    assert db.affected("PyPI", "demo.pkg", version) == expected


def test_semver_range_with_limit(db: OSVDatabase) -> None:
    assert db.affected("npm", "left-pad", "1.0.0-beta.2") == ["GHSA-npm1-0000-0000"]
    assert db.affected("npm", "left-pad", "1.2.5") == []  # past the limit
    assert db.affected("npm", "Left-Pad", "1.1.0") == []  # npm names are case-sensitive


def test_aliases_withdrawn_and_severity(db: OSVDatabase) -> None:
    assert db.withdrawn == 1
    assert db.aliases("PYSEC-0000-1") == {"PYSEC-0000-1", "GHSA-aaaa-bbbb-cccc", "CVE-0000-0001"}
    assert db.advisories["PYSEC-0000-1"].severity == "HIGH"
    assert db.advisories["PYSEC-0000-1"].fixed_versions("PyPI", "demo_pkg") == ["1.2.0"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", '{"id": "X",\n "affected": [}', r"bad\.json: line 2: invalid JSON"),
        ("bad.yaml", "id: X\naffected: [\n", r"bad\.yaml: line 3: invalid YAML"),
        ("noid.json", "[1, 2]", r"noid\.json: line 1: not an OSV record"),
    ],
)
def test_malformed_names_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(AdvisoryError, match=message):
        OSVDatabase.load([tmp_path])


def test_pypi_versions_lists_agree_with_ranges() -> None:
    """Every version a PyPI record lists is inside its ECOSYSTEM ranges (the built-in check)."""
    root = require_shared("datasets", "advisories", "pypa")
    db = OSVDatabase.load([root])
    total, disagree = 0, []
    for advisory in db.advisories.values():
        for (_ecosystem, name), entries in advisory.affected.items():
            for entry in entries:
                if not entry.ranges:
                    continue
                ranges_only = type(entry)(entry.ecosystem, entry.ranges, frozenset())
                for version in entry.versions:
                    total += 1
                    if not _affects([ranges_only], version):
                        disagree.append(f"{advisory.id} {name} {version}")
    print(f"PyPI versions-list vs ranges: {total - len(disagree)}/{total} agree; {disagree[:5]}")
    assert total > 10_000
    assert len(disagree) / total < 0.01, disagree[:20]
