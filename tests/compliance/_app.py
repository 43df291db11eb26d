"""A small app with the full stack and the compliance validator on, for these tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from pynomaly_security import SecuritySettings, add_security_endpoints, setup_security_middleware
from pynomaly_security.compliance import ComplianceValidator, UserFacts
from pynomaly_security.crypto.keys import generate_master_key
from pynomaly_security.plugin import SecurityStack

ADMIN_KEY = "compliance-admin-key-0123456789abcdef"


def settings(tmp_path: Path, **extra: Any) -> SecuritySettings:
    return SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=ADMIN_KEY,
        master_key=generate_master_key(),
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        compliance_enabled=True,
        **extra,
    )


def build(tmp_path: Path, **extra: Any) -> tuple[FastAPI, SecurityStack, ComplianceValidator]:
    app = FastAPI()

    @app.get("/items")
    async def items() -> list[str]:
        return ["a"]

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug with a secret inside")

    stack = setup_security_middleware(app, settings=settings(tmp_path, **extra))
    add_security_endpoints(app)
    assert stack.compliance is not None
    return app, stack, stack.compliance


def users(*facts: tuple[str, bool, bool]) -> Any:
    async def source() -> list[UserFacts]:
        return [UserFacts(uid, admin, mfa) for uid, admin, mfa in facts]

    return source


def status(run: dict[str, Any], check_id: str) -> str:
    return str(run["results"][check_id]["status"])
