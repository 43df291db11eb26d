"""Playbooks: named, versioned lists of containment steps (issue 16, item 4).

Pure data (no I/O): ``actions.py`` does what a step says, ``runner.py`` runs a
playbook against an incident (guardrails, idempotency, approvals, the timeline).

A playbook is YAML or Python data of the same shape, validated when loaded (a bad
one raises :class:`~pynomaly_security.exceptions.ConfigurationError` naming it)::

    name: brute_force_response
    version: 2
    max_targets: 10              # a step with more targets is refused whole
    steps:
      - id: ban_source
        action: decision         # via stack.decisions
        params: {scope: ip, action: ban, ttl: 1h}
      - id: lock
        action: lock_account     # scope user, ban (origin playbook:<name>)
        approval: {approvers: [alice], ttl: 15m}
      - id: tell
        action: notify
        params: {channel: slack}

Actions (``ACTIONS``): ``decision`` (``scope`` ip / cidr / user / session / route;
``action`` ban / throttle / require_mfa / raise_detection_level / read_only; ``ttl``;
``prefix`` for cidr: the incident's addresses widened to that network),
``lock_account``, ``revoke_sessions`` (every session and refresh token of the
incident's users), ``rotate_key`` (those users' sessions ended, and a message on
``channel``, default webhook, asking the operator to rotate the key version: see
``actions.py`` for why a run cannot rotate it itself), ``notify`` (``channel``
webhook / slack / email) and ``open_ticket``. Targets come from the incident's
observables: ip and cidr from ``ips``, user from ``users``, session from
``sessions``, route from ``routes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.monitor.correlation.rules import parse_duration

__all__ = [
    "ACTIONS",
    "BUILTIN_PLAYBOOKS",
    "ApprovalSpec",
    "Playbook",
    "PlaybookLibrary",
    "PlaybookStep",
]

_ID = r"^[a-z][a-z0-9_]{0,63}$"
ActionName = Literal[
    "decision", "lock_account", "revoke_sessions", "rotate_key", "notify", "open_ticket"
]
ACTIONS: tuple[str, ...] = ActionName.__args__  # type: ignore[attr-defined]
_SCOPES = ("ip", "cidr", "user", "session", "route")
_DECISION_ACTIONS = ("ban", "throttle", "require_mfa", "raise_detection_level", "read_only")
_CHANNELS = ("webhook", "slack", "email")


class ApprovalSpec(BaseModel):
    """A step that waits for a person: who may approve, and for how long the request
    stands (an approval is single use and bound to the step's exact parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approvers: list[str] = Field(min_length=1, max_length=50)
    ttl: int = 900

    @field_validator("ttl", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)


class PlaybookStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID)
    action: ActionName
    params: dict[str, Any] = Field(default_factory=dict)
    approval: ApprovalSpec | None = None
    description: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _params(self) -> PlaybookStep:
        p = self.params
        allowed: set[str] = {"ttl"}
        if self.action == "decision":
            allowed |= {"scope", "action", "prefix"}
            if p.get("scope") not in _SCOPES:
                raise ValueError(f"step {self.id}: params.scope must be one of {_SCOPES}")
            if p.get("action") not in _DECISION_ACTIONS:
                raise ValueError(
                    f"step {self.id}: params.action must be one of {_DECISION_ACTIONS}"
                )
            prefix = p.get("prefix", 24)
            if p["scope"] == "cidr" and not (isinstance(prefix, int) and 8 <= prefix <= 128):
                raise ValueError(f"step {self.id}: params.prefix must be 8..128")
        elif self.action == "notify":
            allowed = {"channel"}
            if p.get("channel") not in _CHANNELS:
                raise ValueError(f"step {self.id}: params.channel must be one of {_CHANNELS}")
        elif self.action == "rotate_key":
            allowed = {"channel"}
            if p.get("channel", "webhook") not in _CHANNELS:
                raise ValueError(f"step {self.id}: params.channel must be one of {_CHANNELS}")
        elif self.action in ("revoke_sessions", "open_ticket"):
            allowed = set()
        extra = set(p) - allowed
        if extra:
            raise ValueError(f"step {self.id}: unknown params {sorted(extra)} for {self.action}")
        if "ttl" in p:
            parse_duration(p["ttl"])
        return self


class Playbook(BaseModel):
    """A named, versioned playbook (see the module docstring).

    Args:
        max_targets: most targets one step may act on; a step with more is refused.
        max_actions_per_minute: changes (decisions, revocations, messages) all runs of
            this playbook may make per minute, across workers; beyond, steps are refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_ID)
    version: int = Field(default=1, ge=1)
    description: str = Field(default="", max_length=2000)
    steps: list[PlaybookStep] = Field(min_length=1, max_length=20)
    max_targets: int = Field(default=10, ge=1, le=1000)
    max_actions_per_minute: int = Field(default=60, ge=1, le=100_000)

    @model_validator(mode="after")
    def _unique_steps(self) -> Playbook:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must be unique within a playbook")
        return self


def _steps(*rows: tuple[str, str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": i, "action": a, "params": p} for i, a, p in rows]


BUILTIN_PLAYBOOKS: tuple[dict[str, Any], ...] = (
    {
        "name": "sql_injection_response",
        "description": "Ban the source, inspect the targeted routes at the paranoid level, "
        "tell the team and open a ticket.",
        "steps": _steps(
            ("ban_source", "decision", {"scope": "ip", "action": "ban", "ttl": "24h"}),
            (
                "raise_routes",
                "decision",
                {"scope": "route", "action": "raise_detection_level", "ttl": "1h"},
            ),
            ("notify_team", "notify", {"channel": "webhook"}),
            ("open_ticket", "open_ticket", {}),
        ),
    },
    {
        "name": "brute_force_response",
        "description": "Ban the guessing address, require MFA of the targeted accounts, notify.",
        "steps": _steps(
            ("ban_source", "decision", {"scope": "ip", "action": "ban", "ttl": "1h"}),
            ("require_mfa", "decision", {"scope": "user", "action": "require_mfa", "ttl": "24h"}),
            ("notify_team", "notify", {"channel": "webhook"}),
        ),
    },
    {
        "name": "credential_stuffing_response",
        "description": "Ban the address, throttle its network, require MFA of the accounts.",
        "steps": _steps(
            ("ban_source", "decision", {"scope": "ip", "action": "ban", "ttl": "24h"}),
            (
                "throttle_network",
                "decision",
                {"scope": "cidr", "action": "throttle", "prefix": 24, "ttl": "1h"},
            ),
            ("require_mfa", "decision", {"scope": "user", "action": "require_mfa", "ttl": "24h"}),
            ("notify_team", "notify", {"channel": "webhook"}),
        ),
    },
    {
        "name": "account_takeover_response",
        "description": "Ban the address, revoke the accounts' sessions and refresh tokens, "
        "require MFA, notify (webhook, Slack, e-mail).",
        "steps": _steps(
            ("ban_source", "decision", {"scope": "ip", "action": "ban", "ttl": "24h"}),
            ("revoke_sessions", "revoke_sessions", {}),
            ("require_mfa", "decision", {"scope": "user", "action": "require_mfa", "ttl": "7d"}),
            ("notify_team", "notify", {"channel": "webhook"}),
            ("notify_slack", "notify", {"channel": "slack"}),
            ("notify_email", "notify", {"channel": "email"}),
        ),
    },
    {
        "name": "scanner_response",
        "description": "Throttle the scanning address and notify.",
        "steps": _steps(
            ("throttle_source", "decision", {"scope": "ip", "action": "throttle", "ttl": "1h"}),
            ("notify_team", "notify", {"channel": "webhook"}),
        ),
    },
)
"""The built-in playbooks as data (the shape a YAML file has)."""


def load_playbook(raw: Mapping[str, Any] | Playbook) -> Playbook:
    if isinstance(raw, Playbook):
        return raw
    try:
        return Playbook.model_validate(raw)
    except ValidationError as exc:
        name = raw.get("name", "?") if isinstance(raw, Mapping) else "?"
        raise ConfigurationError(f"playbook {name!r}: {exc}") from exc


class PlaybookLibrary:
    """The playbooks an app runs: the built-in ones, then a YAML file's (a playbook with
    a built-in's name replaces it), then any given in Python.

    Args:
        playbooks: extra playbooks (dicts or :class:`Playbook`).
        file: a YAML file with a ``playbooks:`` list (``PLAYBOOKS_FILE``).
        builtin: include the built-in playbooks.
    """

    def __init__(
        self,
        playbooks: Iterable[Mapping[str, Any] | Playbook] = (),
        *,
        file: str | Path | None = None,
        builtin: bool = True,
    ) -> None:
        self._by_name: dict[str, Playbook] = {}
        for builtin_raw in BUILTIN_PLAYBOOKS if builtin else ():
            self.add(builtin_raw)
        if file is not None:
            for file_raw in _from_yaml(Path(file)):
                self.add(file_raw)
        for raw in playbooks:
            self.add(raw)

    def add(self, raw: Mapping[str, Any] | Playbook) -> Playbook:
        playbook = load_playbook(raw)
        self._by_name[playbook.name] = playbook
        return playbook

    def get(self, name: str) -> Playbook | None:
        return self._by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def all(self) -> list[Playbook]:
        return sorted(self._by_name.values(), key=lambda p: p.name)


def _from_yaml(path: Path) -> list[Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"playbooks file {path.name}: {exc}") from exc
    found = data.get("playbooks") if isinstance(data, dict) else data
    if not isinstance(found, list):
        raise ConfigurationError(f"playbooks file {path.name}: expected a list of playbooks")
    return found
