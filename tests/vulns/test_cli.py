"""``vulndb`` and ``vulns scan`` end to end: import, EPSS/KEV, refresh from a real local
HTTP server (audited, swapped atomically), scan formats (SARIF validated against the
SARIF 2.1.0 schema, CycloneDX), exit codes."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

from pynomaly_security.__main__ import main
from pynomaly_security.audit import AuditLogger
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.vulns.store import AdvisoryDB

HERE = Path(__file__).parent
OSV = HERE / "data" / "osv"
LOCKS = HERE / "data" / "locks"
INTEL = HERE / "data" / "intel"
SARIF_SCHEMA = HERE / "data" / "schemas" / "sarif-2.1.0.json"


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "vulns.db"
    assert main(["vulndb", "import", str(OSV), "--db", str(path)]) == 0
    result = json.loads(_out(capsys))
    assert (result["imported"], result["withdrawn"], result["advisories"]) == (3, 1, 3)
    return path


def test_import_intel_and_info(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """EPSS and KEV files go into the database; info shows counts and source digests."""
    assert main(["vulndb", "import-epss", str(INTEL / "epss_scores.csv"), "--db", str(db)]) == 0
    assert json.loads(_out(capsys)) == {"epss": 2}
    kev = INTEL / "known_exploited_vulnerabilities.json"
    assert main(["vulndb", "import-kev", str(kev), "--db", str(db)]) == 0
    assert json.loads(_out(capsys)) == {"kev": 1}
    assert main(["vulndb", "info", "--db", str(db)]) == 0
    info = json.loads(_out(capsys))
    assert (info["advisories"], info["epss"], info["kev"]) == (3, 2, 1)
    assert info["sources"][0]["records"] == 4 and info["imported_at"] is not None
    # The KEV listing makes the finding P1 with the catalogue's due date.
    assert main(["vulns", "scan", str(LOCKS / "py"), "--db", str(db), "--format", "json"]) == 0
    found = json.loads(_out(capsys))["findings"]
    demo = next(f for f in found if f["package"] == "demo-pkg")
    assert (demo["priority"], demo["kev_due"], demo["epss"]) == ("P1", "2026-12-11", 0.91234)


def test_import_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing path exits 2 and creates nothing; a bad record is skipped, named, exit 1."""
    target = tmp_path / "x.db"
    assert main(["vulndb", "import", str(tmp_path / "nope"), "--db", str(target)]) == 2
    assert not target.exists()
    bad = tmp_path / "records"
    bad.mkdir()
    (bad / "X.yaml").write_text("id: X\naffected: [\n")
    assert main(["vulndb", "import", str(bad), str(OSV), "--db", str(target)]) == 1
    assert "X.yaml: line 3: invalid YAML" in capsys.readouterr().err
    assert (
        main(["vulndb", "import-epss", str(OSV / "GHSA-aaaa-bbbb-cccc.json"), "--db", str(target)])
        == 2
    )
    assert "not an EPSS CSV" in capsys.readouterr().err


@pytest.mark.parametrize("use_dir", [False, True], ids=["sqlite-db", "osv-dir"])
def test_scan_table(db: Path, use_dir: bool, capsys: pytest.CaptureFixture[str]) -> None:
    """The table lists severities and the remediation plan; --db takes the SQLite file
    or OSV records; exit 1 at --fail-on."""
    source = OSV if use_dir else db
    code = main(["vulns", "scan", str(LOCKS), "--db", str(source), "--fail-on", "critical"])
    text = _out(capsys)
    assert code == 1
    assert "SEVERITY" in text and "CRITICAL  9.8" in text
    assert "Remediation plan:" in text
    assert "upgrade to 1.2.0" in text and "no fix: mitigate or remove" in text
    assert "unpinned (" in text


def test_scan_sarif_validates(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format sarif is valid SARIF 2.1.0 (the OASIS schema), with relative paths and the
    CVSS score as security-severity."""
    assert main(["vulns", "scan", str(LOCKS), "--db", str(db), "--format", "sarif"]) == 0
    log = json.loads(_out(capsys))
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(log)
    run = log["runs"][0]
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "GHSA-aaaa-bbbb-cccc")
    assert rule["properties"]["security-severity"] == "9.8"
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    }
    assert "py/requirements.txt" in uris


def test_scan_shared_lockfiles_sarif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Done-when check: the shared lockfiles against the shared advisories give valid SARIF."""
    from tests.conftest import require_shared

    advisories = require_shared("datasets", "advisories")
    locks = require_shared("datasets", "lockfiles")
    target = tmp_path / "all.db"
    assert main(["vulndb", "import", str(advisories), "--db", str(target)]) == 0
    _out(capsys)
    assert main(["vulns", "scan", str(locks), "--db", str(target), "--format", "sarif"]) == 0
    log = json.loads(_out(capsys))
    jsonschema.Draft202012Validator(json.loads(SARIF_SCHEMA.read_text())).validate(log)
    assert len(log["runs"][0]["results"]) > 40


def test_scan_cyclonedx(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format cyclonedx is a CycloneDX BOM whose vulnerabilities affect the components."""
    assert main(["vulns", "scan", str(LOCKS), "--db", str(db), "--format", "cyclonedx"]) == 0
    bom = json.loads(_out(capsys))
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    refs = {c["bom-ref"] for c in bom["components"]}
    assert "pkg:pypi/demo-pkg@1.1.0" in refs
    vuln = next(v for v in bom["vulnerabilities"] if v["id"] == "GHSA-aaaa-bbbb-cccc")
    assert vuln["ratings"][0]["score"] == 9.8 and vuln["analysis"]["state"] == "in_triage"
    assert {a["ref"] for a in vuln["affects"]} <= refs


def test_scan_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing path, a missing database, a broken record: exit 2 with the reason."""
    assert main(["vulns", "scan", str(tmp_path / "nope"), "--db", str(OSV)]) == 2
    assert main(["vulns", "scan", str(LOCKS), "--db", str(tmp_path / "none.db")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "none.db").write_text("")
    assert main(["vulns", "scan", str(LOCKS), "--db", str(tmp_path / "none.db")]) == 2
    assert "none.db: line 1: not an OSV record" in capsys.readouterr().err


# -- refresh against a real HTTP server on 127.0.0.1 (the outside world: osv.dev's bucket) --


@pytest.fixture
def osv_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP server serving ``<ECOSYSTEM>/all.zip`` from a directory."""
    root = tmp_path / "bucket"
    (root / "PyPI").mkdir(parents=True)
    with zipfile.ZipFile(root / "PyPI" / "all.zip", "w") as archive:
        for path in sorted(OSV.iterdir()):
            archive.write(path, path.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[method-assign,assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db: Path) -> None:
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", base64.urlsafe_b64encode(b"m" * 32).decode())
    monkeypatch.setenv("PYNOMALY_SECURITY__AUDIT_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("PYNOMALY_SECURITY__AUDIT_ANCHOR_FILE", str(tmp_path / "anchors"))
    monkeypatch.setenv("PYNOMALY_SECURITY__VULNS_DB_PATH", str(db))


def test_refresh_downloads_swaps_and_audits(
    tmp_path: Path,
    osv_server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """refresh downloads each ecosystem's all.zip, builds a new file with the EPSS/KEV
    tables carried over, swaps it in, and audits the sources' SHA-256 and the time."""
    url, bucket = osv_server
    target = tmp_path / "live.db"
    _env(monkeypatch, tmp_path, target)
    with AdvisoryDB(target) as old:  # an older database with intel to keep
        old.replace_kev([("CVE-0000-0001", "2026-11-20", "2026-12-11", "x")])
    code = main(["vulndb", "refresh", "--url", url, "--ecosystem", "PyPI", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(_out(capsys))
    digest = hashlib.sha256((bucket / "PyPI" / "all.zip").read_bytes()).hexdigest()
    assert summary["sources"][0]["sha256"] == digest
    assert summary["sources"][0]["url"] == f"{url}/PyPI/all.zip"
    assert (summary["advisories"], summary["withdrawn"]) == (3, 1)
    with AdvisoryDB(target, create=False) as db:
        assert db.stats()["kev"] == 1 and db.stats()["advisories"] == 3
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(("live.db.", ".vulndb-"))]
    assert leftovers == []

    settings = SecuritySettings(
        _env_file=None,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        audit_anchor_file=str(tmp_path / "anchors"),
    )

    async def audited() -> list[dict[str, Any]]:
        async with AuditLogger.from_settings(settings) as audit:
            return await audit.query(event_type="data_import", limit=10)

    records = anyio.run(audited)
    assert len(records) == 1
    details = records[0]["details"]
    assert details["sources"][0]["sha256"] == digest and details["imported_at"] > 0


def test_refresh_failure_keeps_the_old_database(
    tmp_path: Path,
    osv_server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 404 for one ecosystem fails the refresh (exit 2) and leaves the old file as it was."""
    url, _ = osv_server
    target = tmp_path / "live.db"
    _env(monkeypatch, tmp_path, target)
    assert main(["vulndb", "import", str(OSV), "--db", str(target)]) == 0
    before = target.read_bytes()
    code = main(
        [
            "vulndb",
            "refresh",
            "--url",
            url,
            "--ecosystem",
            "PyPI",
            "--ecosystem",
            "npm",
            "--no-progress",
        ]
    )
    assert code == 2
    assert "npm/all.zip: HTTP 404" in capsys.readouterr().err
    assert target.read_bytes() == before
