"""Render ``.env.example`` from :class:`SecuritySettings`, so the file lists
every setting with its default and meaning and cannot drift from the code
(a test compares them; ``make env-example`` rewrites the file)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from pynomaly_security.settings import ENV_PREFIX, MASTER_KEY_ENV, SECTIONS, SecuritySettings

__all__ = ["env_names", "render_env_example"]

_HEADER = """\
# Every setting of pynomaly-security, with its default and meaning.
# Generated from pynomaly_security/settings.py by `make env-example`; do not edit by hand.
# Lists take JSON ('["a","b"]') or commas ('a,b'); maps take JSON or nested names
# (PYNOMALY_SECURITY__DETECTION_MODE_OVERRIDES__XSS=detect).
# PYNOMALY_SECURITY_CONFIG=settings.json reads these settings from a JSON object too
# (lower-case names, {"detection_mode": "detect"}); these variables win over it.
"""


def _default_text(value: Any) -> str:
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value) if value else ""
    return str(getattr(value, "value", value))


def env_names() -> dict[str, FieldInfo]:
    """Every environment variable of the settings -> its field, in declaration order
    (a section's fields under their flat names, ``..._INSPECTION_MAX_FIELDS``)."""
    names: dict[str, FieldInfo] = {}
    for name, field in SecuritySettings.model_fields.items():
        if name in SECTIONS:
            for inner, inner_field in SECTIONS[name].model_fields.items():
                names[f"{ENV_PREFIX}{name}_{inner}".upper()] = inner_field
        else:
            names[MASTER_KEY_ENV if name == "master_key" else ENV_PREFIX + name.upper()] = field
    return names


def render_env_example() -> str:
    lines = [_HEADER]
    for env, field in env_names().items():
        default = field.get_default(call_default_factory=True)
        description = " ".join((field.description or "").split())
        lines.append(f"# {description or env.removeprefix(ENV_PREFIX).lower()}")
        lines.append(f"# {env}={_default_text(default)}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_env_example(), end="")
