"""The guide's audit example as a new user runs it: a script with no event loop of its
own, in a fresh process, that exits without closing anything. Every record, the one
queued on a short-lived loop and never awaited included, is in the trail afterwards
and the chain verifies (the self-started logger closes itself before the interpreter
stops its thread pools)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from pynomaly_security import AuditLogger, load_settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import asyncio
from pynomaly_security import (AuditLogger, SecurityEventType, AuditLevel, audit_context,
    audit_action)

audit_logger = AuditLogger()
audit_logger.log_security_event(
    event_type=SecurityEventType.AUTH_LOGIN_SUCCESS,
    message="User logged in successfully",
    level=AuditLevel.INFO,
    details={"user_id": "123", "ip_address": "192.168.1.100"},
    compliance_standards=["SOX", "GDPR"]
)
with audit_context(
    correlation_id="req_12345",
    user_id="user_123",
    ip_address="192.168.1.100"
):
    audit_logger.log_audit_event(
        event_type="data_access",
        action="read",
        resource="user_profile",
        message="User accessed profile data"
    )

@audit_action("update_profile", "user_profile")
async def update_user_profile(user_id: str, data: dict):
    pass

async def main():
    await update_user_profile("user_123", {})
    audit_logger.log_security_event(SecurityEventType.SYSTEM_SHUTDOWN, "queued, never awaited")

asyncio.run(main())
"""


def test_a_script_that_never_closes_the_logger_loses_nothing(guide_env: Path) -> None:
    """Four calls, four records, a verified chain, and a clean exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "audit_flush_failed" not in done.stdout

    async def read() -> tuple[list[str], bool]:
        async with AuditLogger.from_settings(load_settings()) as trail:
            records = await trail.query(limit=10)
            return [r.get("message") or r["action"] for r in records], (await trail.verify()).ok

    messages, verified = asyncio.run(read())
    assert verified
    assert messages == [
        "User logged in successfully",
        "User accessed profile data",
        "update_profile",
        "queued, never awaited",
    ]
