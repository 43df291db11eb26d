"""The control catalogue: frameworks, their controls, and the checks evidencing them.

The package ships ``catalogue.yaml``; an application adds its own file
(``COMPLIANCE_CATALOGUE_FILE``) with more checks (of a built-in kind, or of a kind it
registers in Python) and more controls, in existing frameworks or new ones. A check
the package defines may be given again with tighter thresholds only: a loosened
threshold (a smaller ``min_*``, a larger ``max_*``, fewer ``forbidden`` or ``required``
items, more ``public_paths``) stops start-up with a :class:`ConfigurationError`.
Everything is validated when loaded: a malformed file never half-applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pynomaly_security.exceptions import ConfigurationError

__all__ = ["Catalogue", "CheckSpec", "Control", "Framework", "load_catalogue"]

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.()\-]{0,79}$"


class CheckSpec(BaseModel):
    """A check instance: a kind (the function) and its parameters (the thresholds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    asvs: list[str] = Field(default_factory=list)
    """OWASP ASVS 5.0.0 requirement ids the check's test covers."""


class Control(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1, max_length=200)
    checks: list[str] = Field(min_length=1)
    description: str = ""


class Framework(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    controls: list[Control] = Field(default_factory=list)


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: int = 1
    checks: dict[str, CheckSpec] = Field(default_factory=dict)
    frameworks: dict[str, Framework] = Field(default_factory=dict)

    def framework(self, key: str) -> Framework:
        try:
            return self.frameworks[key]
        except KeyError:
            known = ", ".join(sorted(self.frameworks))
            raise KeyError(f"unknown framework {key!r} (known: {known})") from None

    def asvs_of(self, control: Control) -> list[str]:
        """The ASVS ids of a control's checks, in order, once each."""
        out: list[str] = []
        for check_id in control.checks:
            for item in self.checks[check_id].asvs:
                if item not in out:
                    out.append(item)
        return out


def _read(path: Path | None) -> dict[str, Any]:
    if path is None:
        text = resources.files("pynomaly_security.compliance").joinpath("catalogue.yaml")
        raw = yaml.safe_load(text.read_text(encoding="utf-8"))
    else:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"COMPLIANCE_CATALOGUE_FILE {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigurationError(f"compliance catalogue {path or 'built-in'}: not a mapping")
    return raw


def _parse(raw: Mapping[str, Any], where: str) -> Catalogue:
    try:
        return Catalogue.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigurationError(f"compliance catalogue {where}:\n  " + "\n  ".join(lines)) from exc


def _looser(name: str, old: Any, new: Any) -> bool:
    """Whether ``new`` loosens the threshold ``old`` (by the parameter's name)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return set(old) - set(new) != set() or any(
            _looser(name, old[k], new[k]) for k in old if k in new
        )
    if name.startswith("min_") or name == "min":
        return bool(float(new) < float(old))
    if name.startswith("max_") or name.startswith("deadline"):
        return bool(float(new) > float(old))
    if name in ("forbidden", "required"):
        return not set(old) <= set(new)
    if name == "public_paths":
        return not set(new) <= set(old) and "*" not in old
    return bool(new != old)


def _merge(base: Catalogue, extra: Catalogue, where: str) -> Catalogue:
    checks = dict(base.checks)
    for check_id, spec in extra.checks.items():
        old = checks.get(check_id)
        if old is not None:
            if spec.kind != old.kind:
                raise ConfigurationError(
                    f"compliance catalogue {where}: check {check_id!r} is a {old.kind}; "
                    "give a new id for another kind"
                )
            merged = {**old.params, **spec.params}
            for name, value in old.params.items():
                if _looser(name, value, merged[name]):
                    raise ConfigurationError(
                        f"compliance catalogue {where}: check {check_id!r} loosens {name} "
                        f"({value!r} -> {merged[name]!r}); a built-in threshold can only be "
                        "tightened (waive the check instead, with a justification)"
                    )
            spec = spec.model_copy(update={"params": merged, "asvs": spec.asvs or old.asvs})
        checks[check_id] = spec
    frameworks = dict(base.frameworks)
    for key, fw in extra.frameworks.items():
        old_fw = frameworks.get(key)
        if old_fw is None:
            frameworks[key] = fw
            continue
        by_id = {c.id: c for c in old_fw.controls}
        for control in fw.controls:
            if control.id in by_id:  # more checks for a shipped control, never fewer
                prior = by_id[control.id]
                added = [c for c in control.checks if c not in prior.checks]
                by_id[control.id] = prior.model_copy(update={"checks": [*prior.checks, *added]})
            else:
                by_id[control.id] = control
        frameworks[key] = old_fw.model_copy(update={"controls": list(by_id.values())})
    return Catalogue(version=base.version, checks=checks, frameworks=frameworks)


def load_catalogue(extra_file: str | Path | None = None) -> Catalogue:
    """The shipped catalogue, with the application's file merged in when given.

    Raises:
        ConfigurationError: a malformed file, a loosened threshold, or a control
            naming a check that no catalogue defines.
    """
    catalogue = _parse(_read(None), "built-in")
    if extra_file is not None:
        path = Path(extra_file)
        catalogue = _merge(catalogue, _parse(_read(path), str(path)), str(path))
    for key, fw in catalogue.frameworks.items():
        for control in fw.controls:
            unknown = [c for c in control.checks if c not in catalogue.checks]
            if unknown:
                raise ConfigurationError(
                    f"compliance catalogue: control {key}/{control.id} names unknown checks "
                    f"{unknown}"
                )
    return catalogue
