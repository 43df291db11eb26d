"""Render ``.env.example`` from :class:`SecuritySettings`, so the file lists
every setting with its default and meaning and cannot drift from the code
(a test compares them; ``make env-example`` rewrites the file)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from pynomaly_security.settings import ENV_PREFIX, MASTER_KEY_ENV, SecuritySettings

__all__ = ["render_env_example"]

_HEADER = """\
# Every setting of pynomaly-security, with its default and meaning.
# Generated from pynomaly_security/settings.py by `make env-example`; do not edit by hand.
# Lists take JSON ('["a","b"]') or commas ('a,b'); maps take JSON or nested names
# (PYNOMALY_SECURITY__DETECTION_MODE_OVERRIDES__XSS=detect).
"""


def _default_text(value: Any) -> str:
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value) if value else ""
    return str(getattr(value, "value", value))


def render_env_example() -> str:
    lines = [_HEADER]
    for name, field in SecuritySettings.model_fields.items():
        env = MASTER_KEY_ENV if name == "master_key" else ENV_PREFIX + name.upper()
        default = field.get_default(call_default_factory=True)
        description = " ".join((field.description or "").split())
        lines.append(f"# {description}" if description else f"# {name}")
        lines.append(f"# {env}={_default_text(default)}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_env_example(), end="")
