"""What a FastAPI app reads is inspected: every header it may declare with
``Header()``, and a ``str`` body FastAPI fills with the raw text of a body whose
type is not JSON (``get_request_handler`` json-decodes only ``application/json``
and ``application/*+json``; anything else, no type included, reaches a ``str``
or ``bytes`` body parameter as it was sent)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import Body, FastAPI, Header, Request

from pynomaly_security import SecuritySettings, setup_security_middleware
from pynomaly_security.detection.exemptions import inspection_exempt

XSS = "<script>alert(1)</script>"
SQLI = "1' OR '1'='1' --"
# What a browser sends to an app on a developer's machine (Chrome 131), plus a
# Sentry trace header naming a Next.js route.
BROWSER = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    "accept-language": "en-GB,en-US;q=0.9,en;q=0.8,fr;q=0.7",
    "accept-encoding": "gzip, deflate, br, zstd",
    "cache-control": "max-age=0",
    "origin": "http://127.0.0.1:8011",
    "referer": "http://127.0.0.1:8011/items?page=2",
    "sec-ch-ua": '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"',
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Linux"',
    "sec-fetch-dest": "document",
    "sec-fetch-mode": "navigate",
    "sec-fetch-site": "same-origin",
    "sec-fetch-user": "?1",
    "upgrade-insecure-requests": "1",
    "if-none-match": 'W/"5d-8xkq0x9Q"',
    "priority": "u=0, i",
    "dnt": "1",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "baggage": "sentry-environment=production,sentry-release=6.185.0,"
    "sentry-transaction=%2Fproduct%2F%5BsaleId%5D%2F%5BitemId%5D,sentry-sampled=false",
    "authorization": "Bearer ' OR 1=1 --",
}


def _app(max_input_length: int = 1_048_576) -> FastAPI:
    app = FastAPI()
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        development_mode=True,
        enable_audit_logging=False,
        sqli_edge_mode="block",  # this test is about the edge blocking SQL injection
        max_input_length=max_input_length,
    )
    setup_security_middleware(app, settings=settings)

    @app.get("/headers")
    async def headers(
        accept_language: Annotated[str, Header()],
        custom_thing: Annotated[str, Header()] = "",
    ) -> list[str]:
        return [accept_language, custom_thing]

    @app.post("/text")
    async def text(body: Annotated[str, Body()]) -> str:
        return body

    @app.put("/upload")
    @inspection_exempt(fields=["body"])
    async def upload(request: Request) -> int:
        return len(await request.body())

    @app.put("/files")
    async def files(request: Request) -> int:
        return len(await request.body())

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = _app(max_input_length=4096)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("accept-language", XSS, id="accept-language-xss"),
        pytest.param("accept-language", SQLI, id="accept-language-sqli"),
        pytest.param("custom-thing", XSS, id="custom-header-xss"),
        pytest.param("custom-thing", SQLI, id="custom-header-sqli"),
    ],
)
@pytest.mark.anyio
async def test_a_declared_header_is_inspected(
    client: httpx.AsyncClient, name: str, value: str
) -> None:
    """A payload in a header the route declares with ``Header()`` is refused, whatever
    the header's name (standard or custom)."""
    response = await client.get("/headers", headers={"accept-language": "en", name: value})
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "request_blocked"


@pytest.mark.anyio
async def test_ordinary_browser_headers_pass(client: httpx.AsyncClient) -> None:
    """What browsers send (fetch metadata, client hints, an Origin on 127.0.0.1) scores
    nothing; credentials and trace context are not inspected at all."""
    response = await client.get("/headers", headers={**BROWSER, "custom-thing": "v2; q=1"})
    assert response.status_code == 200, response.text
    assert response.json() == [BROWSER["accept-language"], "v2; q=1"]


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/x-json", id="x-json"),
        pytest.param("application/jsonx", id="jsonx"),
        pytest.param("application/json, text/plain", id="two-types-in-one"),
        pytest.param("application/octet-stream", id="octet-stream"),
        pytest.param("text/plain", id="text-plain"),
        pytest.param("image/png", id="image"),
        pytest.param("foo/bar", id="unknown"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
    ],
)
@pytest.mark.anyio
async def test_a_str_body_of_any_type_is_inspected(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    """FastAPI hands a ``str`` body the raw text of a non-JSON body; that text is
    inspected whatever the type, and ordinary text still passes byte for byte."""
    headers = {} if content_type is None else {"content-type": content_type}
    for payload in (XSS, f'{{"q": "{XSS}"}}', SQLI):
        response = await client.post("/text", content=payload.encode(), headers=headers)
        assert response.status_code == 403, (payload, response.text)
    ordinary = '{"note": "see you at 5 pm"}'
    response = await client.post("/text", content=ordinary.encode(), headers=headers)
    assert response.status_code == 200 and response.json() == ordinary


@pytest.mark.anyio
async def test_bodies_past_the_cap_are_refused_unless_the_route_is_exempt(
    client: httpx.AsyncClient,
) -> None:
    """A binary upload is read like any body (413 past the cap: never passed unread),
    except on a route exempt from body inspection, where it streams through."""
    blob = bytes(range(256)) * 64
    headers = {"content-type": "application/octet-stream"}
    refused = await client.put("/files", content=blob, headers=headers)
    assert (refused.status_code, refused.json()["error"]) == (413, "request_too_large")
    small = await client.put("/files", content=blob[:1024], headers=headers)
    assert small.status_code == 200 and small.json() == 1024
    exempt = await client.put("/upload", content=blob, headers=headers)
    assert exempt.status_code == 200 and exempt.json() == len(blob)
