"""``make demo``'s incident story (``examples/incident_demo.py``) runs as it says: one
incident opened by the correlation, contained by its playbook, closed by alice, the ban
lifted, the audit trail verified."""

from __future__ import annotations

import pytest

from examples.incident_demo import story


@pytest.mark.anyio
async def test_the_demo_story_opens_contains_and_closes_an_incident() -> None:
    """Each step of the story, as printed."""
    lines: list[str] = []
    seen = await story(lines.append)
    assert seen["refused"] == 403 and seen["back"] == 200
    assert seen["incident"]["status"] == "contained"
    assert seen["timeline"]["verified"] is True
    steps = [e["details"].get("step") for e in seen["timeline"]["entries"]]
    assert "ban_source" in steps and "revoke_sessions" in steps
    assert seen["closed"]["status"] == "closed" and seen["verify"] is True
    assert lines[0].startswith("1. ") and lines[-1].startswith("6. audit verify: OK")
