"""The orchestrator's part of the policy engine (issue 17): ``evaluate_policy`` answers
as the enforcers do, and the dashboard shows the active versions, counts, every
worker's statistics and the compliance score."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi import FastAPI

from pynomaly_security import (
    AdvancedSecurityOrchestrator,
    ConfigurationError,
    SecuritySettings,
    setup_security_middleware,
)
from tests.policy.test_engine import OFFICE_ONLY, OPEN, SATURDAY

KEY = "orchestrator-admin-key-0123456789abcdef"
ADMIN_WITH_MFA = {"id": "root", "roles": ["admin"], "mfa": True}


def _settings(tmp_path: Path, **extra: object) -> SecuritySettings:
    return SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        **extra,
    )


@pytest.mark.anyio
async def test_evaluate_policy_and_the_dashboard(tmp_path: Path) -> None:
    """Before any policy: default deny. With v1 active and v2 in shadow, a Saturday
    delete is allowed and the shadow's refusal is beside it; an admin with MFA is
    allowed by both. The awaited dashboard names v1, counts the recorded decision and
    scores the one app route as covered."""
    app = FastAPI()

    @app.delete("/items/{item_id}")
    async def remove(item_id: int) -> dict[str, int]:
        return {"removed": item_id}

    stack = setup_security_middleware(app, settings=_settings(tmp_path))
    orchestrator = AdvancedSecurityOrchestrator.from_stack(stack, app=app)
    engine = orchestrator.policies
    assert engine is stack.policies and engine is not None
    async with app.router.lifespan_context(app):
        context = {"method": "DELETE", "now": SATURDAY}
        first = orchestrator.evaluate_policy("alice", "DELETE", "/items/3", context)
        assert (first["allowed"], first["shadow"]) == (False, None)
        assert first["code"] == "no_matching_rule"  # default deny
        await engine.add_policy(OPEN, author="admin")
        await engine.activate("items", 1)
        await engine.update_policy(OFFICE_ONLY, author="admin")
        await engine.shadow_version("items", 2)
        decision = orchestrator.evaluate_policy(
            {"id": "alice", "roles": ["staff"]}, "DELETE", {"path": "/items/3"}, context,
            record=True,
        )  # fmt: skip
        assert (decision["allowed"], decision["version"], decision["rule_id"]) == (True, 1, "all")
        assert decision["shadow"]["allowed"] is False
        assert decision["shadow"]["rule_id"] == "late-delete"
        admin = orchestrator.evaluate_policy(ADMIN_WITH_MFA, "DELETE", "/items/3", context)
        assert admin["allowed"] and admin["shadow"]["allowed"]

        before = orchestrator.get_comprehensive_security_dashboard()["policies"]
        assert before["active_versions"] == {"items": 1} and before["shadowing"] is True
        assert before["compliance_score"] is None  # not read from the state yet
        section = (await orchestrator.get_comprehensive_security_dashboard())["policies"]
        assert (section["policies"], section["rules"]) == (1, 1)
        assert section["statistics"]["evaluations"] == 1
        assert section["statistics"]["shadow_disagreements"] == 1
        assert section["compliance"]["routes"] == section["compliance"]["routes_covered"] == 1
        assert 0 < section["compliance_score"] <= 100


@pytest.mark.anyio
async def test_without_the_engine_evaluate_policy_says_so(tmp_path: Path) -> None:
    """With policies disabled the dashboard says so and ``evaluate_policy`` raises a
    ConfigurationError naming the setting (never a decision made up)."""
    app = FastAPI()
    stack = setup_security_middleware(app, settings=_settings(tmp_path, policies_enabled=False))
    orchestrator = AdvancedSecurityOrchestrator.from_stack(stack)
    async with app.router.lifespan_context(app):
        assert orchestrator.get_comprehensive_security_dashboard()["policies"] == {"enabled": False}
        with pytest.raises(ConfigurationError, match="POLICIES_ENABLED"):
            orchestrator.evaluate_policy("alice", "GET", "/items/1")


def test_a_standalone_orchestrator_loads_policies_before_deciding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From sync code a standalone facade starts its stack (loading the policies in
    its store) before deciding; without a policy the answer is default deny."""
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
    with AdvancedSecurityOrchestrator() as orchestrator:
        decision = orchestrator.evaluate_policy("alice", "GET", "/items/1")
        assert decision["allowed"] is False and decision["code"] == "no_matching_rule"
        dashboard = orchestrator.get_comprehensive_security_dashboard()
        assert dashboard["policies"]["enabled"] is True
        assert dashboard["policies"]["compliance"]["routes"] == 0
