"""``python -m pynomaly_security compliance verify REPORT`` against the audit trail."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pynomaly_security.__main__ import main

from ._app import build


def test_verify_a_report_against_the_trail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report verifies (digest, verdicts, audit head, the record at the head); an
    edited verdict, or an audit trail edited behind it, does not."""
    _app, stack, validator = build(tmp_path, state_url=f"sqlite:///{tmp_path / 'state.db'}")
    assert stack.settings.master_key is not None

    async def produce() -> dict[str, Any]:
        async with stack:
            await validator.run("full")
            return await validator.report("pci-dss")

    report = asyncio.run(produce())
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", stack.settings.master_key.get_secret_value())
    monkeypatch.setenv("PYNOMALY_SECURITY__AUDIT_DB_URL", stack.settings.audit_db_url)
    monkeypatch.setenv("PYNOMALY_SECURITY__STATE_URL", str(stack.settings.state_url))
    # The CLI's report, read from the state backend the app wrote, is the app's report.
    cli_report = tmp_path / "cli.json"
    args = ["compliance", "report", "--framework", "pci-dss", "--out", str(cli_report)]
    assert main(args) == 0
    assert json.loads(cli_report.read_text()) == json.loads(json.dumps(report))
    assert main(["compliance", "verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "binding: the audit record at the head is run" in out and "VERIFIED" in out

    edited = dict(report, score=100.0)
    path.write_text(json.dumps(edited))
    assert main(["compliance", "verify", str(path)]) == 1
    assert "FAIL verdicts" in capsys.readouterr().out

    path.write_text(json.dumps(report))
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        conn.execute("UPDATE audit_records SET level = 'debug' WHERE seq = ?",
                     (report["audit_head"]["seq"],))  # fmt: skip
    assert main(["compliance", "verify", str(path)]) == 1
    assert "FAIL head" in capsys.readouterr().out
