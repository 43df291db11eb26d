"""The coarse rule layer (issue 17, item 3): a deny on method and route refuses before
the app (403, generic code, explanation in the audit trail), only outside its
exceptions; requests no coarse rule names pass; dry-run and warn rules never refuse;
a shadow coarse rule is counted, not enforced; without coarse rules the layer is out
of the path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pynomaly_security import setup_security_middleware
from pynomaly_security.plugin import SecurityStack
from pynomaly_security.policy import Principal
from pynomaly_security.policy.middleware import PolicyMiddleware
from pynomaly_security.settings import SecuritySettings

SATURDAY = 1_796_472_000.0  # 2026-12-05 12:00 UTC
MONDAY = SATURDAY + 2 * 86_400


def late_delete(mode: str = "enforce") -> dict[str, Any]:
    office = {"start": "09:00", "end": "18:00", "days": ["mon", "tue", "wed", "thu", "fri"]}
    return {
        "id": "office",
        "rules": [
            {"id": "late-delete", "effect": "deny", "principals": ["*"], "actions": ["DELETE"],
             "resources": ["/items/*"], "mode": mode,
             "unless": [{"time": office}, {"user": {"roles": ["admin"], "mfa": True}}]},
        ],
    }  # fmt: skip


class Clock:
    now = SATURDAY

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = FastAPI()
    setup_security_middleware(
        application,
        settings=SecuritySettings(
            _env_file=None,
            development_mode=True,
            audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        ),
    )

    @application.delete("/items/{item_id}", status_code=204)
    async def delete_item(item_id: int) -> None:
        return None

    @application.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    async with application.router.lifespan_context(application):
        stack: SecurityStack = application.state.pynomaly_security
        assert stack.policies is not None
        stack.policies.clock = Clock()
        yield application


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.anyio
async def test_coarse_deny_refuses_before_the_app(app: FastAPI) -> None:
    """Saturday DELETE is 403 ``forbidden`` with the rule in the audit trail; GET
    passes; an admin with MFA passes; on Monday at noon everyone passes."""
    stack: SecurityStack = app.state.pynomaly_security
    engine = stack.policies
    assert engine is not None
    async with _client(app) as client:
        assert (await client.delete("/items/1")).status_code == 204
        assert engine.coarse is None
        await engine.add_policy(late_delete())
        await engine.activate("office", 1)
        refused = await client.delete("/items/1")
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        assert "late-delete" not in refused.text
        assert (await client.get("/items/1")).status_code == 200
        engine.principal_of = lambda scope: Principal("root", roles=frozenset({"admin"}), mfa=True)
        assert (await client.delete("/items/1")).status_code == 204
        engine.principal_of = lambda scope: None
        engine.clock.now = MONDAY  # type: ignore[attr-defined]
        assert (await client.delete("/items/1")).status_code == 204
    assert stack.audit_logger is not None
    await stack.audit_logger.flush()
    denials = await stack.audit_logger.query(event_type="access_denied")
    assert len(denials) == 1 and "office@v1/late-delete" in str(denials[0])


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["dry_run", "warn"])
async def test_dry_run_and_warn_never_refuse(app: FastAPI, mode: str) -> None:
    """A coarse rule in dry-run or warn mode is counted, not enforced."""
    engine = app.state.pynomaly_security.policies
    await engine.add_policy(late_delete(mode))
    await engine.activate("office", 1)
    async with _client(app) as client:
        assert (await client.delete("/items/1")).status_code == 204
    assert engine.stats.rules.get(("office", 1, "late-delete")).applied == 1


@pytest.mark.anyio
async def test_shadow_coarse_rule_counts_disagreements(app: FastAPI) -> None:
    """A coarse deny in shadow is evaluated beside the (empty) active set: the
    request passes and the disagreement is listed."""
    engine = app.state.pynomaly_security.policies
    await engine.add_policy(late_delete())
    await engine.shadow_version("office", 1)
    assert engine.coarse is not None
    async with _client(app) as client:
        assert (await client.delete("/items/1")).status_code == 204
    assert engine.stats.shadow_disagreements == 1
    assert engine.stats.disagreements[0]["shadow"]["rule_id"] == "late-delete"


@pytest.mark.anyio
async def test_no_coarse_rule_no_frame(app: FastAPI) -> None:
    """Without coarse rules the layer returns the inner app's awaitable itself (a
    route-level policy is not coarse)."""
    engine = app.state.pynomaly_security.policies
    await engine.add_policy(
        {
            "id": "orders",
            "rules": [
                {"id": "r", "effect": "deny", "principals": ["*"], "actions": ["orders:read"]}
            ],
        }
    )
    await engine.activate("orders", 1)
    assert engine.coarse is None
    calls: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])

    layer = PolicyMiddleware(inner, engine=engine)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    awaitable = layer(scope, None, None)  # type: ignore[arg-type]
    assert awaitable.cr_code is inner.__code__  # type: ignore[attr-defined]
    await awaitable
    assert calls == ["/"]


@pytest.mark.anyio
async def test_layer_leaves_and_rejoins_the_path_with_decisions(app: FastAPI) -> None:
    """While no coarse rule is active the layer is out of the built stack; it comes back
    on activation whether a decision is in force or not, and a decision made or reverted
    meanwhile never makes the tracking layer skip it."""
    stack: SecurityStack = app.state.pynomaly_security
    engine, decisions = stack.policies, stack.decisions
    assert engine is not None and decisions is not None

    def in_path() -> bool:
        node: Any = app.middleware_stack
        for _ in range(64):
            if isinstance(node, PolicyMiddleware):
                return True
            node = getattr(node, "app", None)
            if node is None:
                return False
        return False

    assert not in_path()
    await engine.add_policy(late_delete())
    await engine.activate("office", 1)
    assert in_path()
    made = await decisions.add("ip", "203.0.113.9", "ban", actor="tester")
    assert in_path()
    await engine.remove_policy("office")
    assert not in_path()
    await engine.add_policy(late_delete())
    await engine.activate("office", 2)
    assert in_path()
    from pynomaly_security.health import component_states

    assert component_states(stack)["policies"] == {
        "enabled": True,
        "active": {"office": 2},
        "rules": 1,
        "shadowing": False,
        "coarse_layer_in_path": True,
    }
    await decisions.revert(made.decision_id, actor="tester")
    assert in_path()
    async with _client(app) as client:
        assert (await client.delete("/items/1")).status_code == 403
    await engine.remove_policy("office")
    assert not in_path()
    async with _client(app) as client:
        assert (await client.delete("/items/1")).status_code == 204
