"""Playbooks as data: YAML validated at start-up with errors naming the playbook, a rule
naming an unknown playbook refused at start-up, the rate guardrail, reverting a
playbook's decisions, and incidents on SQLite state (issue 16, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from pynomaly_security import IncidentResponseAutomation, setup_security_middleware
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.incidents.playbooks import PlaybookLibrary
from pynomaly_security.settings import SecuritySettings

YAML = """
playbooks:
  - name: scanner_response
    version: 2
    max_actions_per_minute: 2
    steps:
      - id: ban_source
        action: decision
        params: {scope: ip, action: ban, ttl: 10m}
  - name: lock_them
    steps:
      - id: lock
        action: lock_account
"""


def _settings(tmp_path: Path, **extra: object) -> SecuritySettings:
    return SecuritySettings(
        _env_file=None,
        enable_audit_logging=False,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("playbook", "message"),
    [
        pytest.param({"name": "x", "steps": []}, "at least 1 item", id="no-steps"),
        pytest.param(
            {"name": "x", "steps": [{"id": "a", "action": "decision", "params": {"scope": "planet"}}]},  # noqa: E501
            "params.scope", id="bad-scope",
        ),
        pytest.param(
            {"name": "x", "steps": [{"id": "a", "action": "notify", "params": {"channel": "fax"}}]},
            "params.channel", id="bad-channel",
        ),
        pytest.param(
            {"name": "x", "steps": [{"id": "a", "action": "open_ticket", "params": {"to": "me"}}]},
            "unknown params", id="unknown-param",
        ),
        pytest.param(
            {"name": "x", "steps": [{"id": "a", "action": "lock_account", "approval": {"approvers": []}}]},  # noqa: E501
            "approvers", id="no-approvers",
        ),
    ],
)  # fmt: skip
def test_a_bad_playbook_is_refused_naming_it(playbook: dict[str, object], message: str) -> None:
    """Each mistake is a ConfigurationError naming the playbook and the problem."""
    with pytest.raises(ConfigurationError, match=message) as caught:
        PlaybookLibrary([playbook])
    assert "playbook 'x'" in str(caught.value)


def test_yaml_playbooks_replace_and_add(tmp_path: Path) -> None:
    """A YAML file's playbook with a built-in's name replaces it; others are added."""
    path = tmp_path / "playbooks.yaml"
    path.write_text(YAML)
    library = PlaybookLibrary(file=path)
    scanner = library.get("scanner_response")
    assert scanner is not None and scanner.version == 2 and len(scanner.steps) == 1
    assert "lock_them" in library and "sql_injection_response" in library


def test_a_rule_naming_an_unknown_playbook_fails_at_start_up(tmp_path: Path) -> None:
    """A correlation rules file whose rule runs a playbook nobody defined: refused when
    the app is set up, not when the rule matches."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {id: mine, title: t, type: event_count, severity: high, window: 60,\n"
        "     match: {kind: login_failure}, response: 'on', playbook: nobody_wrote_it}\n"
    )
    settings = SecuritySettings(
        _env_file=None, development_mode=True, correlation_rules_file=str(rules)
    )
    with pytest.raises(ConfigurationError, match="nobody_wrote_it"):
        setup_security_middleware(FastAPI(), settings=settings)


def test_rate_guardrail_lock_and_revert_on_sqlite_state(tmp_path: Path) -> None:
    """On SQLite state: two bans a minute at most (the third address's step is refused
    ``rate_limited``); ``lock_account`` is a user ban; reverting the playbook lifts
    its decisions."""
    path = tmp_path / "playbooks.yaml"
    path.write_text(YAML)
    automation = IncidentResponseAutomation(_settings(tmp_path, playbooks_file=str(path)))
    try:
        run = automation.execute_containment_playbook
        first = automation.create_incident("a", observables={"ips": ["203.0.113.1", "203.0.113.2"]})
        assert run(first, "scanner_response")["steps"][0]["status"] == "done"
        second = automation.create_incident("b", observables={"ips": ["203.0.113.3"]})
        refused = run(second, "scanner_response")["steps"][0]
        assert refused["status"] == "refused" and refused["code"] == "rate_limited"

        locked = automation.create_incident("c", observables={"users": ["mallory"]})
        [made] = run(locked, "lock_them")["steps"][0]["results"]
        assert made["target"] == "mallory" and made["done"]
        assert automation.decisions is not None

        reverted = automation.revert_containment_playbook(first, "scanner_response")
        assert [len(s["reverted"]) for s in reverted["steps"]] == [2]
        assert all(r["reverted"] for r in reverted["steps"][0]["reverted"])
    finally:
        automation.close()
