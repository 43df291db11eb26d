"""Environment markers decide which locked requirements the target installs: evaluated
for the running interpreter or a named Python and platform; undecidable ones are scanned;
a requirement whose marker is false is listed, not matched (API and CLI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pynomaly_security.__main__ import main
from pynomaly_security.vulns.assessment import AutomatedVulnerabilityAssessment
from pynomaly_security.vulns.lockfiles import parse
from pynomaly_security.vulns.markers import TargetEnvironment
from pynomaly_security.vulns.sources import OSVSource
from pynomaly_security.vulns.store import AdvisoryDB

OSV = Path(__file__).parent / "data" / "osv"
LOCKS = Path(__file__).parent / "data" / "locks"

WINDOWS_38 = TargetEnvironment.of(python_version="3.8", platform="win32")


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("", True),
        ('sys_platform == "win32"', True),
        ("sys_platform == 'linux'", False),
        ('platform_system == "Windows" and os_name == "nt"', True),
        ('python_version < "3.9"', True),
        ('python_full_version >= "3.8.1"', False),  # 3.8 is 3.8.0
        ('python_version >= "3.9" or sys_platform == "darwin"', False),
        ('extra == "socks"', None),  # which extras were installed is not in the file
        ('"dev" in dependency_groups', None),
        ('platform_machine == "x86_64"', None),  # a named platform does not fix the machine
        ("python_version >>> '3'", None),  # unreadable
        ("sys_platform == 'platform_machine'", False),  # a literal, not the variable
    ],
)
def test_markers_for_a_named_target(marker: str, expected: bool | None) -> None:
    assert WINDOWS_38.applies(marker) is expected
    assert WINDOWS_38.applies(marker) is expected  # remembered, same answer


def test_running_interpreter_by_default() -> None:
    here = TargetEnvironment.running()
    assert here.applies(f'sys_platform == "{sys.platform}"') is True
    assert here.applies(f'python_version == "{sys.version_info[0]}.{sys.version_info[1]}"')
    assert here.applies('platform_machine == "no-such-machine"') is False  # known here
    assert here.describe().startswith(f"Python {sys.version_info[0]}.{sys.version_info[1]}.")


@pytest.mark.parametrize(
    ("python_version", "platform", "message"),
    [
        ("3", None, r"python version '3': expected X\.Y or X\.Y\.Z"),
        ("three.eight", None, "python version 'three.eight'"),
        (None, "beos", "platform 'beos': expected one of darwin, linux, win32"),
    ],
)
def test_a_bad_target_is_refused_at_construction(
    python_version: str | None, platform: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TargetEnvironment.of(python_version, platform)


def test_parsers_keep_the_marker() -> None:
    by_name = {p.name: p for p in parse(LOCKS / "py" / "requirements.txt")}
    assert by_name["colorama"].marker == 'sys_platform == "win32"'
    assert by_name["demo-pkg"].marker == ""
    pipfile = {p.name: p for p in parse(LOCKS / "pipenv" / "Pipfile.lock")}
    assert pipfile["plain"].marker == "python_version >= '3.8'"
    pylock = [p for p in parse(LOCKS / "pylock" / "pylock.toml") if p.marker]
    assert [p.marker for p in pylock] == ["python_version >= '3.8'"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "advisories.db"
    with AdvisoryDB(path) as built:
        built.import_sources([OSVSource(OSV)])
    return path


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "requirements.txt").write_text(
        "# our own fixture: demo-pkg 1.1.0 is affected (PYSEC-0000-1)\n"
        'demo-pkg==1.1.0 ; sys_platform == "win32"\n'
        "demo_pkg==1.1.0 ; python_version < '3.0'\n"
        "demo.pkg==1.1.0 ; extra == 'demo'\n"
    )
    return folder


def test_scan_matches_only_what_the_target_installs(db: Path, lock: Path) -> None:
    linux = AutomatedVulnerabilityAssessment(
        db, environment=TargetEnvironment.of("3.11", "linux")
    ).scan_path(lock)
    # The extra cannot be decided: scanned. The other two are not installed on Linux.
    assert [(f.package, f.vulnerability) for f in linux.findings] == [
        ("demo.pkg", "GHSA-aaaa-bbbb-cccc")
    ]
    assert len(linux.not_installed) == 2 and linux.packages == 3
    assert 'demo-pkg 1.1.0 (marker: sys_platform == "win32")' in linux.not_installed[0]
    assert linux.environment == "Python 3.11.0 on linux"
    windows = AutomatedVulnerabilityAssessment(
        db, environment=TargetEnvironment.of("3.11", "win32")
    ).scan_path(lock)
    assert sorted(f.package for f in windows.findings) == ["demo-pkg", "demo.pkg"]
    assert len(windows.not_installed) == 1  # python_version < '3.0'


def test_cli_target_options(db: Path, lock: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["vulns", "scan", str(lock), "--db", str(db)]
    assert main([*args, "--platform", "linux", "--python-version", "3.12", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["findings"]) == 1 and len(report["not_installed"]) == 2
    assert report["environment"] == "Python 3.12.0 on linux"
    assert main([*args, "--platform", "win32"]) == 0
    table = capsys.readouterr().out
    assert "not installed here (marker false for Python" in table and "on win32) (1):" in table
    assert main([*args, "--python-version", "3.x"]) == 2
    assert "error: python version '3.x'" in capsys.readouterr().err
