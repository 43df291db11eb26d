"""Waivers: a check or a control accepted as failing, by someone, for a while.

A YAML file (``COMPLIANCE_WAIVERS_FILE``)::

    waivers:
      - check: mfa.users                # or  control: pci-dss/8.4.2
        justification: customers sign in with the bank's SSO, MFA enforced there
        owner: security@example.com
        expires: 2027-03-31             # the end of that day, UTC

A waived check that fails counts as passing, shown ``waived`` with the waiver, until
its expiry; an expired waiver stops counting and is listed as expired. A malformed
file (unknown field, empty justification or owner, a missing or unparsable expiry,
an id the catalogue does not have) stops start-up with a :class:`ConfigurationError`
naming the entry: a waiver silently ignored would hide a failure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pynomaly_security.compliance.catalogue import Catalogue
from pynomaly_security.exceptions import ConfigurationError

__all__ = ["Waiver", "Waivers", "load_waivers"]


class Waiver(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    check: str | None = None
    control: str | None = Field(default=None, pattern=r"^[^/\s]+/[^/\s]+$")
    """``framework/control-id``."""
    justification: str = Field(min_length=10, max_length=2000)
    owner: str = Field(min_length=1, max_length=200)
    expires: dt.date

    @model_validator(mode="after")
    def _one_target(self) -> Waiver:
        if (self.check is None) == (self.control is None):
            raise ValueError("a waiver names exactly one of check or control")
        return self

    @property
    def target(self) -> str:
        return f"check:{self.check}" if self.check else f"control:{self.control}"

    def expires_at(self) -> float:
        """The end of the expiry day, UTC (Unix seconds)."""
        end = dt.datetime.combine(self.expires, dt.time.max, dt.UTC)
        return end.timestamp()

    def active(self, now: float) -> bool:
        return now <= self.expires_at()

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "justification": self.justification,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    waivers: list[Waiver] = Field(default_factory=list)


class Waivers:
    """The waivers in force at a time, looked up by check or control."""

    def __init__(self, waivers: Sequence[Waiver] = ()) -> None:
        self.all = tuple(waivers)

    def for_check(self, check_id: str, now: float) -> tuple[Waiver | None, Waiver | None]:
        """(the active waiver, an expired one) of a check."""
        return self._find(lambda w: w.check == check_id, now)

    def for_control(self, key: str, now: float) -> tuple[Waiver | None, Waiver | None]:
        return self._find(lambda w: w.control == key, now)

    def _find(self, match: Any, now: float) -> tuple[Waiver | None, Waiver | None]:
        active = expired = None
        for waiver in self.all:
            if match(waiver):
                if waiver.active(now):
                    active = active or waiver
                else:
                    expired = expired or waiver
        return active, expired


def load_waivers(path: str | Path | None, catalogue: Catalogue) -> Waivers:
    """The waivers of ``path`` (none without a file), checked against the catalogue.

    Raises:
        ConfigurationError: the file is unreadable or malformed, or names a check or
            control the catalogue does not have.
    """
    if path is None:
        return Waivers()
    where = f"COMPLIANCE_WAIVERS_FILE {path}"
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc
    try:
        parsed = _File.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        lines = [
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigurationError(f"{where} is malformed:\n  " + "\n  ".join(lines)) from exc
    controls = {f"{fw}/{c.id}" for fw, f in catalogue.frameworks.items() for c in f.controls}
    for i, waiver in enumerate(parsed.waivers):
        if waiver.check is not None and waiver.check not in catalogue.checks:
            raise ConfigurationError(f"{where}: waivers.{i}: unknown check {waiver.check!r}")
        if waiver.control is not None and waiver.control not in controls:
            raise ConfigurationError(f"{where}: waivers.{i}: unknown control {waiver.control!r}")
    return Waivers(parsed.waivers)
