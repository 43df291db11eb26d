"""Lockfile parsers on our own fixtures, the shared lockfiles, and the scan command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pynomaly_security.__main__ import main
from pynomaly_security.vulns.lockfiles import LockfileError, parse, scan_tree

LOCKS = Path(__file__).parent / "data" / "locks"
OSV = Path(__file__).parent / "data" / "osv"


def _pins(path: Path) -> set[tuple[str, str | None]]:
    return {(p.name, p.version) for p in parse(path)}


def test_requirements() -> None:
    packages = parse(LOCKS / "py" / "requirements.txt")
    pins = {(p.name, p.version) for p in packages}
    assert {
        ("demo-pkg", "1.1.0"),
        ("requests", "2.31.0"),
        ("colorama", "0.4.6"),
        ("flask", None),
    } <= pins
    notes = {p.name: p.note for p in packages}
    assert notes["flask"] == "unpinned (>=2.0)"
    assert notes["colorama"] == 'sys_platform == "win32"'  # kept, not evaluated
    assert notes["./local/wheel-1.0-py3-none-any.whl"] == "path or URL"
    bad = next(p for p in packages if p.note.startswith("not a requirement"))
    assert bad.line == 9 and bad.version is None
    assert next(p for p in packages if p.name == "demo-pkg").line == 4  # continuation starts there


def test_package_lock_v1_v3_composer_poetry() -> None:
    assert _pins(LOCKS / "npm3" / "package-lock.json") == {
        ("left-pad", "1.1.0"),
        ("@scope/b", "2.0.0"),
    }
    assert _pins(LOCKS / "npm1" / "package-lock.json") == {
        ("left-pad", "1.0.0-beta.2"),
        ("inner", "0.1.0"),
        ("gitdep", None),  # a git dependency names no registry version: reported, unpinned
    }
    assert _pins(LOCKS / "php" / "composer.lock") == {
        ("vendor/lib", "v1.2.3"),
        ("vendor/dev", "0.1.0"),
    }
    assert _pins(LOCKS / "poetry" / "poetry.lock") == {("demo-pkg", "2.0"), ("other", "1.0.0")}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("package-lock.json", '{\n "packages": [\n', r"package-lock\.json: line 3: invalid JSON"),
        ("composer.lock", "null", r"composer\.lock: line 1: not a composer\.lock object"),
        ("poetry.lock", "[[package]]\nname =\n", r"poetry\.lock: line 2: invalid TOML"),
        (
            "requirements.txt",
            "-r missing.txt\n",
            r"requirements\.txt: line 1: -r include not found",
        ),
    ],
)
def test_malformed(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(LockfileError, match=message):
        parse(tmp_path / name)
    packages, errors = scan_tree(tmp_path)  # a directory scan reports it and goes on
    assert packages == [] and len(errors) == 1


def test_scan_command(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["vulns", "scan", str(LOCKS), "--db", str(OSV), "--format", "json", "--fail-on", "high"]
    )
    report = json.loads(capsys.readouterr().out)
    found = {(f["package"], f["version"]): f for f in report["findings"]}
    assert set(found) == {
        ("demo-pkg", "1.1.0"),
        ("demo-pkg", "2.0"),
        ("left-pad", "1.1.0"),
        ("left-pad", "1.0.0-beta.2"),
    }
    assert found[("demo-pkg", "1.1.0")]["vulnerability"] == "GHSA-aaaa-bbbb-cccc"
    assert found[("demo-pkg", "1.1.0")]["severity"] == "CRITICAL"  # the GHSA's CVSS 9.8
    plan = {(s["package"], s["version"]): s for s in report["plan"]}
    assert plan[("demo-pkg", "1.1.0")]["target"] == "1.2.0"
    assert plan[("left-pad", "1.1.0")]["target"] == "1.3.0"
    assert code == 1  # HIGH (and the unranked npm advisory) reach --fail-on high
    assert main(["vulns", "scan", str(LOCKS / "php"), "--db", str(OSV), "--fail-on", "low"]) == 0
    assert "0 vulnerable of 2 packages" in capsys.readouterr().out


def test_scan_command_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "X.json").write_text("{", encoding="utf-8")
    assert main(["vulns", "scan", str(LOCKS / "php"), "--db", str(tmp_path)]) == 2
    assert "X.json: line 1: invalid JSON" in capsys.readouterr().err
    assert main(["vulns", "scan", str(tmp_path / "nope"), "--db", str(OSV)]) == 2
