"""Issue 12, beyond the list: an audit record has a bounded size whatever the request's
size, and user-controlled text is never copied into a record more than once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from pynomaly_security.audit import AuditLogger, SecurityEventType

from .conftest import make_settings
from .test_truncation import _app

# The largest ciphertext a record may have: the record bound plus the envelope
# (controls, nonce, tag) and an access batch of a few bounded rows.
BOUND = 16_384 + 4_096


async def _huge_requests(db: Path) -> None:
    settings = make_settings(f"sqlite:///{db}")
    app = _app(settings)
    big = 60_000  # httpx refuses URLs over 64 kB; the user agent is 1 MB
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            # A 60 kB path, a 60 kB query carrying an attack, a 1 MB user agent.
            await c.get("/page/" + "p" * big)
            blocked = await c.get(
                "/page/1",
                params={"q": "<script>alert(1)</script>" + "q" * big},
                headers={"user-agent": "Mozilla/5.0 " + "u" * 1_000_000},
            )
            # The 1 MB user agent is past the inspected header bytes (64 KiB) first.
            assert blocked.status_code == 431
            assert blocked.json()["error"] == "headers_too_large"
            assert (await c.post("/orders/1")).status_code == 200


def test_a_huge_request_makes_bounded_records(tmp_path: Path) -> None:
    """Whatever the request's size, no stored record (ciphertext) passes the bound, the
    cut is marked, and the trail still verifies."""
    db = tmp_path / "audit.db"
    asyncio.run(_huge_requests(db))
    with sqlite3.connect(db) as conn:
        sizes = conn.execute(
            "SELECT max(length(payload)), max(coalesce(length(personal), 0)), count(*)"
            " FROM audit_records"
        ).fetchone()
    assert sizes[2] == 5  # three requests, the 431's request_refused, one audit action
    assert sizes[0] < BOUND and sizes[1] < BOUND, sizes

    async def read() -> tuple[list[dict[str, object]], bool]:
        async with AuditLogger.from_settings(make_settings(f"sqlite:///{db}")) as audit:
            return await audit.query(limit=100), (await audit.verify()).ok

    rows, ok = asyncio.run(read())
    assert ok
    paths = [str(r["path"]) for r in rows if r.get("kind") == "request"]
    assert any(p.startswith("/page/ppp") and p.endswith("chars]") for p in paths), paths
    assert all(len(p) < 1200 for p in paths)
    kinds = sorted((str(r["kind"]), str(r["event_type"]), r.get("status_code")) for r in rows)
    assert kinds == [
        ("audit", "audit_action", None),
        ("request", "http_request", 200),
        ("request", "http_request", 422),  # the 60 kB path is no valid item id
        ("request", "http_request", 431),
        ("security", "request_refused", None),
    ]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def _record(db: Path, **event: object) -> dict[str, object]:
    async def run() -> dict[str, object]:
        async with AuditLogger.from_settings(make_settings(f"sqlite:///{db}")) as audit:
            await audit.log_security_event(SecurityEventType.SUSPICIOUS_ACTIVITY, **event)  # type: ignore[arg-type]
            return (await audit.query(event_type="suspicious_activity"))[-1]

    return asyncio.run(run())


def test_user_text_is_stored_once(db_path: Path) -> None:
    """The same attacker text in the message, two details and the user id is kept once;
    the other places refer to where it is."""
    text = "ZQZQ-" + "attacker text " * 20
    row = _record(
        db_path,
        message=f"suspicious: {text}",
        details={"path": text, "nested": {"query": text, "list": [text]}, "user_agent": text},
        user_id=text,
    )
    blob = json.dumps(row)
    assert blob.count("ZQZQ") == 1, blob
    assert row["user_id"] == text  # the identity field keeps it
    assert row["message"] == "suspicious: [= user_id]"
    details = row["details"]
    assert isinstance(details, dict)
    assert details["path"] == "[= user_id]"
    assert details["nested"] == {"query": "[= user_id]", "list": ["[= user_id]"]}


def test_long_deep_and_wide_details_are_cut_with_markers(db_path: Path) -> None:
    """A long string is cut and says how much was dropped; depth and item counts are bounded;
    a record still over the byte bound keeps only its detail names."""
    deep: dict[str, object] = {"leaf": "x"}
    for _ in range(20):
        deep = {"d": deep}
    row = _record(
        db_path,
        message="m" * 5000,
        details={"long": "L" * 5000, "deep": deep, "wide": list(range(1000))},
    )
    assert row["message"] == "m" * 1024 + "…[+3976 chars]"
    details = row["details"]
    assert isinstance(details, dict)
    assert details["long"] == "L" * 1024 + "…[+3976 chars]"
    assert "[too deep]" in json.dumps(details["deep"])
    wide = details["wide"]
    assert isinstance(wide, list) and len(wide) == 101 and wide[-1] == "[900 more items]"

    many = {f"k{i}": f"{i:04d}" + "v" * 1000 for i in range(60)}
    row = _record(db_path, message="wide", details=many)
    details = row["details"]
    assert isinstance(details, dict)
    assert "[truncated]" in details and len(details["[keys]"]) == 60  # type: ignore[arg-type]
    assert len(json.dumps(row)) < 20_000


def test_odd_text_never_fails_a_commit(db_path: Path) -> None:
    """A lone surrogate (JSON ``"\\ud800"`` decodes to one) in a login name, request id,
    event type, path or detail is stored, escaped where a column needs it; it never fails
    the group commit it shares with other records (which lost them all before)."""
    odd = "eve\ud800"

    async def run() -> tuple[list[dict[str, object]], bool, list[int]]:
        async with AuditLogger.from_settings(make_settings(f"sqlite:///{db_path}")) as audit:
            audit.log_request(
                method="GET", path="/p\udc80", status_code=200, duration_ms=1.0,
                request_id=odd, user_id=odd,
            )  # fmt: skip
            seqs = list(
                await asyncio.gather(
                    audit.log_security_event(
                        f"custom{odd}",
                        "x",
                        details={"username": odd, "n": float("nan")},
                        user_id=odd,
                        request_id=odd,
                    ),
                    audit.log_security_event(SecurityEventType.LOGIN_SUCCESS, "ok", user_id="bo"),
                )
            )
            rows = await audit.query(user_id=odd)
            return rows, (await audit.verify()).ok, seqs

    rows, ok, seqs = asyncio.run(run())
    assert ok and len(seqs) == 2
    assert {r["user_id"] for r in rows} == {odd}
    assert len(rows) == 2  # the access row and the event, found by the same user id
