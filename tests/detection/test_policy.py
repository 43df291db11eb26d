"""Levels, modes, exclusions, the route decorator and typed fields."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

import pytest
from fastapi import FastAPI, Query

from pynomaly_security.detection import Inspector, RequestParts
from pynomaly_security.detection.exemptions import (
    inspection_exempt,
    match_route_policy,
    route_policy_for,
    typed_fields_of,
)
from pynomaly_security.detection.policy import RoutePolicy
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.settings import SecuritySettings

from ._helpers import json_body, query

ATTACK = "x' OR 'b'='b"


def test_detect_mode_reports_without_blocking() -> None:
    """In detect mode the findings are reported and the request passes."""
    verdict = Inspector(mode="detect").inspect(query(ATTACK))
    assert verdict.findings and not verdict.blocked


def test_family_override_to_detect() -> None:
    """A family in detect mode does not block; the others still do."""
    inspector = Inspector(mode_overrides={"sqli": "detect"})
    assert not inspector.inspect(query(ATTACK)).blocked
    assert inspector.inspect(query("<script>go()</script>")).blocked


def test_one_weak_signal_does_not_block() -> None:
    """A lone notice-level signal stays under the threshold (anomaly scoring)."""
    verdict = Inspector(level=4).inspect(query("see <b>this</b>"))
    assert (verdict.rules, verdict.score) == (("xss-lt-alpha",), 2)  # one notice
    assert not Inspector(level=2).inspect(query("see <b>this</b>")).blocked


def test_levels_order_thresholds() -> None:
    """Paranoid levels block at lower scores than lenient ones."""
    assert (
        Inspector(level=1).threshold > Inspector(level=2).threshold > Inspector(level=4).threshold
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"level": 5}, {"mode": "log"}, {"mode_overrides": {"xss": "off"}}, {"max_input_length": 0}],
)
def test_invalid_configuration_fails_at_construction(kwargs: dict[str, object]) -> None:
    """Bad options raise ConfigurationError when the inspector is built."""
    with pytest.raises(ConfigurationError):
        Inspector(**kwargs)  # type: ignore[arg-type]


def test_from_settings() -> None:
    """The inspector takes level, mode, exclusions and headers from the settings."""
    settings = SecuritySettings(
        _env_file=None,
        detection_level=3,
        detection_mode="detect",
        detection_exclusions={"/cms/*": ["body.content"]},
    )
    inspector = Inspector.from_settings(settings)
    assert inspector.level == 3 and inspector.mode == "detect"


def test_settings_exclusions_by_route_and_field() -> None:
    """Settings exclusions exempt a field of a route (prefix match) or a whole route."""
    inspector = Inspector(exclusions={"/cms/*": ["body.content"], "/sql-console": ["*"]})
    body = json_body({"content": "<script>go()</script>", "title": "ok"})
    cms = RequestParts("POST", "/cms/pages", b"", body.headers, body.body)
    assert not inspector.inspect(cms).blocked
    other = RequestParts("POST", "/blog", b"", body.headers, body.body)
    assert inspector.inspect(other).blocked
    console = RequestParts("GET", "/sql-console", b"q=select+*+from+users+where+1%3D1")
    assert inspector.inspect(console).findings == ()


def test_decorator_exempts_fields_and_routes() -> None:
    """@inspection_exempt stores metadata the middleware turns into a RoutePolicy."""

    @inspection_exempt(fields=["body.content"])
    async def save_page() -> None: ...

    @inspection_exempt()
    async def console() -> None: ...

    page_policy = route_policy_for(save_page)
    assert page_policy == RoutePolicy(exempt_fields=frozenset({"body.content"}))
    inspector = Inspector()
    parts = json_body({"content": {"html": "<script>go()</script>"}})
    assert inspector.inspect(parts).blocked
    assert not inspector.inspect(parts, route_policy=page_policy).blocked
    assert inspector.inspect(query(ATTACK), route_policy=route_policy_for(console)).findings == ()
    assert route_policy_for(None) is None


class Color(StrEnum):
    RED = "red"


def test_typed_fields_from_a_fastapi_route() -> None:
    """Declared int/UUID/enum query parameters become typed fields; conforming values
    are not scanned."""
    app = FastAPI()

    @app.get("/items")
    async def items(
        limit: int = 10,
        owner: UUID | None = None,
        color: Color = Color.RED,
        q: Annotated[str, Query()] = "",
    ) -> None: ...

    route = next(r for r in app.routes if getattr(r, "path", "") == "/items")
    typed = typed_fields_of(route)
    assert typed == {"query.limit": "int", "query.owner": "uuid", "query.color": "enum"}
    policy = route_policy_for(items, typed_fields=typed)
    assert policy is not None
    inspector = Inspector()
    assert not inspector.inspect(query("2024", name="limit"), route_policy=policy).findings
    # A value that does not conform is still scanned (the app would reject it anyway).
    assert inspector.inspect(query("1 OR 1=1--", name="limit"), route_policy=policy).blocked


def test_match_route_policy_resolves_the_decorated_route() -> None:
    """The middleware can find the matched route's template and policy before routing."""
    app = FastAPI()

    @app.post("/cms/pages/{page_id}")
    @inspection_exempt(fields=["body.content"])
    async def save_page(page_id: int) -> None: ...

    @app.get("/items")
    async def items(limit: int = 10) -> None: ...

    scope = {"type": "http", "method": "POST", "path": "/cms/pages/7", "root_path": ""}
    template, policy = match_route_policy(app.router.routes, scope)
    assert template == "/cms/pages/{page_id}"
    assert policy is not None and policy.exempt_fields == frozenset({"body.content"})
    scope = {"type": "http", "method": "GET", "path": "/items", "root_path": ""}
    template, policy = match_route_policy(app.router.routes, scope)
    assert template == "/items" and policy is not None
    assert policy.typed_fields == {"query.limit": "int"}
    assert match_route_policy(app.router.routes, {**scope, "path": "/nope"}) == (None, None)


def test_sessions_and_api_keys_are_never_remembered() -> None:
    """A request carrying a cookie or an API key is inspected every time and its
    value is not in the value memo (which would hold the secret). An app's own
    API-key header (API_KEY_HEADERS) too. The inspection layer's memory of clean
    requests: tests/middleware/test_clean_memory.py."""
    inspector = Inspector(secret_headers=["X-Tenant-Key"])
    secret = "s3cr3t-session-9f8e7d"
    for headers in (
        ((b"cookie", f"sid={secret}".encode()),),
        ((b"x-api-key", secret.encode()),),
        ((b"x-tenant-key", secret.encode()),),
    ):
        parts = RequestParts("GET", "/items", b"page=2", headers)
        for _ in range(2):
            assert not inspector.inspect(parts).findings
    assert secret not in repr(vars(inspector))
    attack = RequestParts("GET", "/items", b"", ((b"cookie", b"sid=' OR '1'='1 --"),))
    assert inspector.inspect(attack).blocked and inspector.inspect(attack).blocked
