"""Policies and rules: the typed form, read from YAML or JSON and validated at load.

A policy is an id and a set of rules; a rule says who (``principals``) may or may not
(``effect``) do what (``actions``) to what (``resources``), when its ``when``
conditions hold and none of its ``unless`` blocks does. The semantics are those of
AWS IAM and Cedar: nothing is allowed unless a rule allows it, an applicable deny
wins over any allow, and the order of rules never matters.

Names:

* principals: ``user:<id>``, ``role:<r>``, ``group:<g>``, ``tenant:<t>``,
  ``api_key:<key id>``, or ``*``;
* actions: a named action (``orders:read``), a namespace (``orders:*``), an HTTP
  method (``DELETE``), or ``*``;
* resources: a route template (``/items/{id}``, ``/items/*``: one segment each;
  ``/files/**``: the rest), a type (``order:*``) or a type and id (``order:42``),
  or ``*``.

A rule's ``mode``: ``enforce`` applies it; ``dry_run`` only records that it would
have decided (statistics, the decision's ``dry_run``); ``warn`` records it and logs a
warning. Errors name the rule and the field (``rules[2] (id 'late-delete') ->
when.time.tz: unknown time zone``).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pynomaly_security.policy.conditions import Conditions

__all__ = [
    "Effect",
    "Mode",
    "Policy",
    "PolicyError",
    "PolicyRule",
    "body_hash",
    "load_policy",
    "route_pattern",
]

MAX_RULES = 200_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_PRINCIPAL = re.compile(r"^(\*|(user|role|group|tenant|api_key):[^\s]{1,200})$")


class PolicyError(ValueError):
    """A policy that does not validate; the message names the rule and field."""


class Effect(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Mode(enum.StrEnum):
    ENFORCE = "enforce"
    DRY_RUN = "dry_run"
    WARN = "warn"


def route_pattern(template: str) -> re.Pattern[str]:
    """The regex of a route template: ``{name}`` and ``*`` one segment, ``**`` the rest."""
    parts = []
    for segment in template.strip("/").split("/"):
        if segment == "**":
            parts.append(r"(?:/.*)?")
            continue
        if segment == "*" or (segment.startswith("{") and segment.endswith("}")):
            parts.append(r"/[^/]+")
        else:
            parts.append("/" + re.escape(segment))
    if template.strip("/") == "":
        return re.compile(r"/")
    return re.compile("".join(parts) + r"/?")


class PolicyRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    effect: Effect
    principals: list[str] = Field(min_length=1, max_length=1024)
    actions: list[str] = Field(min_length=1, max_length=256)
    resources: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=256)
    when: Conditions | None = None
    unless: list[Conditions] = Field(default_factory=list, max_length=32)
    """Blocks of conditions; when any holds, the rule does not apply (the exceptions of
    "deny ... except admins with MFA")."""
    mode: Mode = Mode.ENFORCE
    description: str = Field("", max_length=1000)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("letters, digits, _ . : - (at most 128)")
        return value

    @field_validator("principals")
    @classmethod
    def _principals(cls, value: list[str]) -> list[str]:
        for p in value:
            if not _PRINCIPAL.match(p):
                raise ValueError(f"{p!r}: user:, role:, group:, tenant:, api_key:<name> or *")
        return value

    @field_validator("actions")
    @classmethod
    def _actions(cls, value: list[str]) -> list[str]:
        for a in value:
            if a != "*" and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*(:([A-Za-z0-9_.-]+|\*))?", a):
                raise ValueError(f"{a!r}: a method, name:verb, name:* or *")
        return value

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: list[str]) -> list[str]:
        for r in value:
            if r == "*":
                continue
            if r.startswith("/"):
                if "**" in r.rstrip("/").removesuffix("/**"):
                    raise ValueError(f"{r!r}: ** only as the last segment")
                route_pattern(r)
            elif not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*:[^\s/]{1,200}", r):
                raise ValueError(f"{r!r}: a route (/items/{{id}}), type:id, type:* or *")
        return value


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    description: str = Field("", max_length=2000)
    rules: list[PolicyRule] = Field(min_length=1, max_length=MAX_RULES)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("letters, digits, _ . : - (at most 128)")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Policy:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise ValueError(f"rules[{i}]: rule id {rule.id!r} appears twice")
            seen.add(rule.id)
        return self


def _where(loc: tuple[int | str, ...], data: Any) -> str:
    """``rules[2] (id 'x') -> when.time.tz`` for pydantic's location."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule_id = None
        rules = data.get("rules") if isinstance(data, Mapping) else None
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], Mapping):
            rule_id = rules[loc[1]].get("id")
        rest = ".".join(str(part) for part in loc[2:]) or "(rule)"
        named = f" (id {rule_id!r})" if isinstance(rule_id, str) else ""
        return f"rules[{loc[1]}]{named} -> {rest}"
    return ".".join(str(part) for part in loc) or "(policy)"


def load_policy(source: str | bytes | Mapping[str, Any]) -> Policy:
    """A policy from YAML or JSON text (JSON is YAML) or a mapping.

    Raises:
        PolicyError: unreadable text, or the first problems, each naming rule and field.
    """
    data: Any = source
    if isinstance(source, (str, bytes)):
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise PolicyError(f"not YAML or JSON: {type(exc).__name__}") from None
    if not isinstance(data, Mapping):
        raise PolicyError("a policy is a mapping with id and rules")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_where(e['loc'], data)}: {e['msg']}" for e in exc.errors()[:5]]
        raise PolicyError("; ".join(problems)) from None


def body_hash(policy: Policy) -> str:
    """SHA-256 of the policy's canonical JSON: two versions with one body, one hash."""
    canonical = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
