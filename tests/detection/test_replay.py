"""The replay tool gives the verdicts ``Inspector.inspect`` gives."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pynomaly_security.__main__ import main
from pynomaly_security.detection import Inspector
from pynomaly_security.detection.records import request_parts_from_record

RECORDS = [
    {
        "id": "r1",
        "method": "GET",
        "uri": "/search?q=%27%20or%20%27a%27%3D%27a",
        "headers": {"Host": "x"},
        "body": "",
    },
    {
        "id": "r2",
        "method": "POST",
        "uri": "/c",
        "headers": {"Content-Type": "application/json"},
        "body": '{"t": "<svg onload=go()>"}',
    },
    {
        "id": "r3",
        "method": "GET",
        "uri": "/files/..%2f..%2fetc%2fpasswd",
        "headers": {},
        "body": "",
    },
    {
        "id": "r4",
        "method": "GET",
        "uri": "/search?q=shoes&page=2",
        "headers": {"User-Agent": "Mozilla/5.0"},
        "body": "",
    },
    {
        "id": "r5",
        "method": "POST",
        "uri": "/f",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "body": "name=O%27Neil&city=Cork",
    },
]


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "capture.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS) + "not json\n")
    return path


def test_replay_matches_direct_inspection(
    capture: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each replayed line carries the verdict Inspector.inspect gives the same request."""
    monkeypatch.delenv("PYNOMALY_SECURITY__DETECTION_MODE", raising=False)
    monkeypatch.delenv("PYNOMALY_SECURITY__DETECTION_LEVEL", raising=False)
    monkeypatch.setenv("PYNOMALY_SECURITY__SQLI_EDGE_MODE", "block")  # as Inspector's default
    status = main(["replay", str(capture), "--level", "2", "--mode", "block"])
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert status == 1  # the unreadable line is reported
    assert "not a JSON object" in err
    summary = json.loads(err.strip().splitlines()[-1])
    assert summary["requests"] == len(RECORDS)
    inspector = Inspector(level=2, mode="block")
    for record, line in zip(RECORDS, lines, strict=True):
        verdict = inspector.inspect(request_parts_from_record(record))
        assert line["id"] == record["id"]
        assert line["verdict"] == ("block" if verdict.blocked else "allow")
        assert line["score"] == verdict.score
        assert line["families"] == sorted(verdict.families)
        assert line["rules"] == list(verdict.rules)
    assert [line["verdict"] for line in lines] == ["block", "block", "block", "allow", "allow"]


def test_replay_detect_mode_allows(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --mode detect nothing is blocked but findings are still listed."""
    main(["replay", str(capture), "--mode", "detect"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["verdict"] for line in lines} == {"allow"}
    assert any(line["rules"] for line in lines)


def test_request_parts_match_the_middleware_shape() -> None:
    """Records become raw path, raw query bytes, lower-case header names and body bytes."""
    parts = request_parts_from_record(
        {"method": "post", "uri": "/a%20b/c?x=1&y=%27", "headers": {"X-Thing": "v"}, "body": "k=v"}
    )
    assert parts.method == "POST"
    assert parts.path == "/a%20b/c"
    assert parts.query_string == b"x=1&y=%27"
    assert parts.headers == ((b"x-thing", b"v"),)
    assert parts.body == b"k=v"


def test_replay_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """'-' reads the capture from standard input."""
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(RECORDS[0]) + "\n"))
    assert main(["replay", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "r1"


def test_replay_marks_sql_injection_for_the_sink_by_default(
    capture: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SQLI_EDGE_MODE=auto and the SQL sink on (the defaults) a request only SQL
    injection findings would block is "sink"; the others keep their verdicts."""
    for name in ("DETECTION_MODE", "DETECTION_LEVEL", "SQLI_EDGE_MODE", "SQL_INJECTION_MODE"):
        monkeypatch.delenv(f"PYNOMALY_SECURITY__{name}", raising=False)
    main(["replay", str(capture)])
    out, err = capsys.readouterr()
    verdicts = {line["id"]: line for line in map(json.loads, out.splitlines())}
    inspector = Inspector(level=2, sqli_edge="sink_confirmed")
    for record in RECORDS:
        verdict = inspector.inspect(request_parts_from_record(record))
        expected = "block" if verdict.blocked else "sink" if verdict.sink_confirmed else "allow"
        assert verdicts[record["id"]]["verdict"] == expected
    assert "sink" in {line["verdict"] for line in verdicts.values()}
    summary = json.loads(err.strip().splitlines()[-1])
    assert summary["sqli_edge"] == "sink_confirmed" and summary["sink_confirmed"] >= 1
