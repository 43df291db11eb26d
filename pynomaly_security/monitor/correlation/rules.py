"""Correlation rules: declarative, validated at start-up (pydantic), in YAML or Python.

In the spirit of Sigma's correlation rules (https://sigmahq.io/docs/meta/correlations.html):

- ``event_count``: at least ``threshold`` events matching ``match`` per group within ``window``;
- ``value_count``: at least ``threshold`` distinct values of ``field`` per group within ``window``
  (one IP trying many user names, one user name from many IPs);
- ``temporal``: every step seen for the group within ``window``, in any order;
- ``temporal_ordered``: the steps in the order given within ``window`` (many failed sign-ins,
  then a success from the same IP).

A step is an event selector or ``rule: <id>`` of an ``event_count``/``value_count`` rule: that
rule's condition holding for the group counts as the step (Sigma's rule chaining). A rule with
``alert: false`` only serves as such a step.

A selector names event kinds and conditions on fields: ``where: {"path|startswith": ["/admin"],
"status_code|gte": 200, "status_code|lt": 300}``. Fields are a :class:`SecurityEvent`'s
(``source_ip``, ``user_id``, ``path``, ``method``, ``status_code``, ``request_id``), its
``details.<name>``, and two derived ones: ``user_name`` (the login name a sign-in claimed, else
the user id) and ``source_net`` (the /24 of an IPv4 address, the /64 of an IPv6 one).

``response`` (``off`` | ``dry_run`` | ``on``) and ``playbook`` are validated and stored, and
handed to match handlers with every match: ``incidents/respond.py`` opens the incident and
runs the playbook per the mode (``CORRELATION_RESPONSES`` overrides it per rule).
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.monitor.events import EventKind, SecurityEvent, ThreatLevel

__all__ = [
    "DERIVED_FIELDS",
    "EVENT_FIELDS",
    "MAX_DISTINCT",
    "CorrelationRule",
    "RuleType",
    "Selector",
    "Step",
    "event_value",
    "load_rules",
    "parse_duration",
    "rules_from_yaml",
]

RuleType = Literal["event_count", "value_count", "temporal", "temporal_ordered"]
Response = Literal["off", "dry_run", "on"]

EVENT_FIELDS = ("kind", "source_ip", "user_id", "path", "method", "status_code", "request_id")
DERIVED_FIELDS = ("user_name", "source_net")
MAX_DISTINCT = 1000
"""Most distinct values a ``value_count`` rule can count: the store keeps at most this many
members per set (``BackendOptions.max_members``), so a higher threshold could never be met."""

_ID = r"^[a-z][a-z0-9_]{0,63}$"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_MODIFIERS = ("eq", "startswith", "endswith", "contains", "gte", "gt", "lte", "lt")


def parse_duration(value: object) -> int:
    """Seconds from ``300``, ``"300"``, ``"30s"``, ``"5m"``, ``"1h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '5m'")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"a duration is a number of seconds or text like '5m', got {value!r}")
    if not 1 <= seconds <= 30 * 86_400:
        raise ValueError(f"a duration must be between 1 s and 30 days, got {seconds} s")
    return seconds


def _source_net(ip: str | None) -> str | None:
    if ip is None:
        return None
    head, dot, last = ip.rpartition(".")
    if dot and last.isdigit() and head.count(".") == 2 and ":" not in head:
        # A dotted quad's /24 without ipaddress (a hot spot at thousands of events/s);
        # anything unusual takes the exact path below.
        return f"{head}.0/24"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 64
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def event_value(event: SecurityEvent, name: str) -> Any:
    """The value of field ``name`` (validated by :func:`check_field`) in ``event``."""
    if name == "user_name":
        claimed = event.details.get("username")
        return claimed if claimed is not None else event.user_id
    if name == "source_net":
        return _source_net(event.source_ip)
    if name == "kind":
        return event.kind.value
    if name.startswith("details."):
        return event.details.get(name[8:])
    return getattr(event, name)


def check_field(name: str) -> str:
    if name in EVENT_FIELDS or name in DERIVED_FIELDS:
        return name
    if name.startswith("details.") and len(name) > 8:
        return name
    raise ValueError(
        f"unknown field {name!r}; fields are {', '.join(EVENT_FIELDS + DERIVED_FIELDS)} "
        "and details.<name>"
    )


Scalar = str | int | float | bool | None
Conditions = Scalar | list[Scalar]
Predicate = Callable[[SecurityEvent], bool]


def _condition(key: str, expected: Scalar | list[Scalar]) -> Predicate:
    name, _, modifier = key.partition("|")
    name = check_field(name)
    modifier = modifier or "eq"
    if modifier not in _MODIFIERS:
        raise ValueError(f"unknown modifier {modifier!r} in {key!r}; use one of {_MODIFIERS}")
    values = tuple(expected) if isinstance(expected, list) else (expected,)
    if not values:
        raise ValueError(f"{key!r} needs at least one value")

    def get(event: SecurityEvent) -> Any:
        return event_value(event, name)

    if modifier == "eq":
        allowed = frozenset(values)
        return lambda e: get(e) in allowed
    if modifier in ("startswith", "endswith", "contains"):
        texts = tuple(str(v) for v in values)
        if modifier == "startswith":
            return lambda e: isinstance(v := get(e), str) and v.startswith(texts)
        if modifier == "endswith":
            return lambda e: isinstance(v := get(e), str) and v.endswith(texts)
        return lambda e: isinstance(v := get(e), str) and any(t in v for t in texts)
    if len(values) != 1 or isinstance(values[0], bool) or not isinstance(values[0], int | float):
        raise ValueError(f"{key!r} compares with one number")
    bound = values[0]
    compare: Callable[[float, float], bool] = {
        "gte": operator.ge,
        "gt": operator.gt,
        "lte": operator.le,
        "lt": operator.lt,
    }[modifier]

    def numeric(e: SecurityEvent) -> bool:
        v = get(e)
        return isinstance(v, int | float) and not isinstance(v, bool) and compare(float(v), bound)

    return numeric


class Selector(BaseModel):
    """Which events a rule (or a step) takes: one of ``kind``, with every ``where`` condition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: list[EventKind]
    where: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)

    @field_validator("kind", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("where")
    @classmethod
    def _conditions(cls, value: dict[str, Conditions]) -> dict[str, Conditions]:
        for key, expected in value.items():
            _condition(key, expected)  # raises with the key named
        return value

    def predicate(self) -> Predicate:
        checks = tuple(_condition(k, v) for k, v in self.where.items())
        kinds = frozenset(self.kind)
        if not checks:
            return lambda e: e.kind in kinds
        return lambda e: e.kind in kinds and all(check(e) for check in checks)


class Step(BaseModel):
    """One step of a temporal rule: an event selector, or ``rule: <id>`` of a count rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str | None = Field(default=None, pattern=_ID)
    kind: list[EventKind] | None = None
    where: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)

    @field_validator("kind", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _either(self) -> Step:
        if (self.rule is None) == (self.kind is None):
            raise ValueError("a step names either a rule (rule: <id>) or event kinds (kind: ...)")
        if self.rule is not None and self.where:
            raise ValueError("a step naming a rule takes no 'where' (put it in that rule)")
        if self.kind is not None:
            Selector(kind=self.kind, where=self.where)  # validates the conditions
        return self

    @property
    def selector(self) -> Selector | None:
        return None if self.kind is None else Selector(kind=self.kind, where=self.where)


class CorrelationRule(BaseModel):
    """One correlation rule (see the module docstring for the four types).

    ``window`` and ``suppress`` take seconds or ``"30s"``/``"5m"``/``"1h"``; ``suppress``
    (default: the window) is how long one group raises at most one match, across workers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1, max_length=200)
    type: RuleType
    severity: ThreatLevel
    window: int
    group_by: list[str] = Field(default_factory=list, max_length=4)
    match: Selector | None = None
    field: str | None = None
    threshold: int = Field(default=1, ge=1)
    steps: list[Step] = Field(default_factory=list, max_length=8)
    suppress: int | None = None
    alert: bool = True
    response: Response = "off"
    playbook: str | None = Field(default=None, pattern=_ID)
    description: str = Field(default="", max_length=2000)
    recommended_actions: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("window", "suppress", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return None if value is None else parse_duration(value)

    @field_validator("severity", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return ThreatLevel(value) if isinstance(value, str) else value

    @field_validator("group_by")
    @classmethod
    def _group_fields(cls, value: list[str]) -> list[str]:
        return [check_field(name) for name in value]

    @field_validator("field")
    @classmethod
    def _counted_field(cls, value: str | None) -> str | None:
        return None if value is None else check_field(value)

    @model_validator(mode="after")
    def _by_type(self) -> CorrelationRule:
        counting = self.type in ("event_count", "value_count")
        if counting and self.match is None:
            raise ValueError(f"a {self.type} rule needs 'match' (the events it counts)")
        if counting and self.steps:
            raise ValueError(f"a {self.type} rule takes no 'steps'")
        if self.type == "value_count":
            if self.field is None:
                raise ValueError("a value_count rule needs 'field' (whose distinct values count)")
            if self.threshold > MAX_DISTINCT:
                raise ValueError(
                    f"a value_count threshold above {MAX_DISTINCT} can never be met "
                    "(member sets keep at most that many values)"
                )
        elif self.field is not None:
            raise ValueError(f"'field' belongs to value_count rules, not {self.type}")
        if not counting:
            if self.match is not None:
                raise ValueError(f"a {self.type} rule takes 'steps', not 'match'")
            if len(self.steps) < 2:
                raise ValueError(f"a {self.type} rule needs at least two steps")
            if self.threshold != 1:
                raise ValueError(f"a {self.type} rule takes no 'threshold'")
        if self.response != "off" and self.playbook is None:
            raise ValueError(f"response {self.response!r} needs a 'playbook' to run")
        return self

    @property
    def suppression(self) -> int:
        return self.suppress if self.suppress is not None else self.window


def _rule_error(index: int, raw: object, exc: ValidationError) -> ConfigurationError:
    rule_id = raw.get("id") if isinstance(raw, Mapping) else None
    name = f"correlation rule {rule_id!r}" if rule_id else f"correlation rule #{index + 1}"
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(rule)"
        problems.append(f"field {where!r}: {err['msg']}")
    return ConfigurationError(f"{name}: " + "; ".join(problems))


def load_rules(
    rules: Iterable[CorrelationRule | Mapping[str, Any]],
) -> tuple[CorrelationRule, ...]:
    """Validate rules (models or mappings, e.g. from YAML) as one set: each rule's fields,
    unique ids, and that every ``rule:`` step names a count rule of the set whose
    ``group_by`` covers the temporal rule's. Raises :class:`ConfigurationError` naming the
    rule and the field."""
    checked: list[CorrelationRule] = []
    for index, raw in enumerate(rules):
        if isinstance(raw, CorrelationRule):
            checked.append(raw)
            continue
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"correlation rule #{index + 1}: expected a mapping")
        try:
            checked.append(CorrelationRule.model_validate(dict(raw)))
        except ValidationError as exc:
            raise _rule_error(index, raw, exc) from None
    by_id: dict[str, CorrelationRule] = {}
    for rule in checked:
        if rule.id in by_id:
            raise ConfigurationError(f"correlation rule {rule.id!r}: the id is used twice")
        by_id[rule.id] = rule
    for rule in checked:
        for n, step in enumerate(rule.steps):
            if step.rule is None:
                continue
            target = by_id.get(step.rule)
            if target is None:
                raise ConfigurationError(
                    f"correlation rule {rule.id!r}: field 'steps.{n}.rule': "
                    f"no rule {step.rule!r} in the set"
                )
            if target.type not in ("event_count", "value_count"):
                raise ConfigurationError(
                    f"correlation rule {rule.id!r}: field 'steps.{n}.rule': {step.rule!r} is "
                    f"{target.type}; a step can name only event_count or value_count rules"
                )
            if not set(rule.group_by) <= set(target.group_by):
                raise ConfigurationError(
                    f"correlation rule {rule.id!r}: field 'steps.{n}.rule': {step.rule!r} groups "
                    f"by {target.group_by}, which must include this rule's group_by {rule.group_by}"
                )
    return tuple(checked)


def rules_from_yaml(source: str | Path) -> tuple[CorrelationRule, ...]:
    """Rules from YAML text or a ``.yaml``/``.yml`` file: a list of rules, or a mapping
    with a ``rules`` list. Read with ``yaml.safe_load`` only."""
    import yaml

    where = "correlation rules"
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
    ):
        path = Path(source)
        where = f"correlation rules file {path.name!r}"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"{where}: cannot be read ({exc.strerror})") from None
    else:
        text = str(source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{where}: not valid YAML ({exc})") from None
    if isinstance(data, Mapping):
        data = data.get("rules")
    if not isinstance(data, Sequence) or isinstance(data, str):
        raise ConfigurationError(f"{where}: expected a list of rules (or 'rules:' with one)")
    return load_rules(data)
