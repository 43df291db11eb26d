"""Version ordering: our own table, then every shared case of PyPI, npm, Maven and Packagist."""

from __future__ import annotations

from pathlib import Path

import pytest

from pynomaly_security.vulns.versions import UnknownEcosystem, VersionError, compare, sort_key
from tests.conftest import require_shared

OPS = {"<": -1, "=": 0, ">": 1}

TABLE = [
    ("PyPI", "1.0.dev0", "<", "1.0a1"),
    ("PyPI", "1.0+local", ">", "1.0"),
    ("PyPI", "1!0.1", ">", "2.0"),
    ("PyPI", "2.0-final-1", "<", "0.1"),  # legacy sorts before every PEP 440 version
    ("PyPI", "dev", "<", "final"),
    ("npm", "1.0.0-alpha", "<", "1.0.0-alpha.1"),
    ("npm", "1.0.0-beta.2", "<", "1.0.0-beta.11"),
    ("npm", "1.0.0+build.1", "=", "1.0.0+build.2"),
    ("npm", "v1.2.3", "=", "1.2.3"),
    ("npm", "1.2.3-rc.1", "<", "1.2.3"),
    ("Maven", "1.0-alpha-1", "<", "1.0"),
    ("Maven", "1.0-SNAPSHOT", "<", "1.0"),
    ("Maven", "1.0.RELEASE", "=", "1.0"),
    ("Maven", "1.0-sp-1", ">", "1.0"),
    ("Maven", "2.0.1-xyz", "<", "2.0.1-123"),
    ("Maven", "1-1", "=", "1-ga-1"),
    ("Packagist", "1.0-dev", "<", "1.0a1"),
    ("Packagist", "1.0RC1", "=", "1.0rc1"),
    ("Packagist", "1.0", "<", "1.0pl1"),
    ("Packagist", "v1.0.0", "=", "1.0.0"),
    ("Packagist", "1.0.0", ">", "1.0"),
]


@pytest.mark.parametrize(("ecosystem", "a", "op", "b"), TABLE)
def test_table(ecosystem: str, a: str, op: str, b: str) -> None:
    assert compare(ecosystem, a, b) == OPS[op]
    assert compare(ecosystem, b, a) == -OPS[op]


def test_sort_key_sorts() -> None:
    versions = ["1.10.0", "1.2.0", "1.2.0-rc.1"]
    assert sorted(versions, key=sort_key("npm")) == ["1.2.0-rc.1", "1.2.0", "1.10.0"]


def test_errors_are_clear() -> None:
    with pytest.raises(VersionError, match="not a SemVer version"):
        compare("npm", "banana", "1.0.0")
    with pytest.raises(UnknownEcosystem, match="Debian"):
        compare("Debian", "1", "2")


FILES = {
    "npm": ["semver-versions.txt"],
    "PyPI": ["pypi-versions.txt", "pypi-versions-generated.txt"],
    "Maven": ["maven-versions.txt", "maven-versions-generated.txt"],
    "Packagist": ["packagist-versions.txt", "packagist-versions-generated.txt"],
}


def _cases(path: Path) -> list[tuple[int, str, str, str]]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line or line.startswith(("# ", "// ")):
            continue
        a, op, b = line.split(" ")
        out.append((number, a, op, b))
    return out


@pytest.mark.parametrize("ecosystem", sorted(FILES))
def test_shared_version_ordering(ecosystem: str) -> None:
    """Every case of ../shared/datasets/version-ordering for the ecosystem, both directions."""
    root = require_shared("datasets", "version-ordering")
    failures: list[str] = []
    total = 0
    for name in FILES[ecosystem]:
        for number, a, op, b in _cases(root / name):
            total += 1
            try:
                good = compare(ecosystem, a, b) == OPS[op] and compare(ecosystem, b, a) == -OPS[op]
            except VersionError as exc:
                good, op = False, f"{op} ({exc})"
            if not good:
                failures.append(f"{name}:{number}: {a} {op} {b}")
    rate = (total - len(failures)) / total
    print(f"{ecosystem}: {total - len(failures)}/{total} = {rate:.2%}")
    assert not failures, f"{ecosystem}: {rate:.2%} pass; first failures: {failures[:10]}"


def test_pypi_key_without_packagings_comparison_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should packaging drop ``Version._key``, the key keeps the Version itself and orders
    the same."""
    import pynomaly_security.vulns.versions as versions

    texts = ["1.0.dev0", "1.0a1", "1.0", "1.0+local", "1.0.post1", "1!0.1", "2.0-final-1", "dev"]
    fast = sorted(texts, key=versions.sort_key("PyPI"))
    monkeypatch.setattr(versions, "_HAS_KEY", False)
    assert sorted(reversed(texts), key=versions.sort_key("PyPI")) == fast
    assert fast[:2] == ["dev", "2.0-final-1"] and fast[-1] == "1!0.1"
