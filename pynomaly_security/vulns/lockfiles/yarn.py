"""``yarn.lock``: classic (v1) and Berry (v2+, ``__metadata``).

Berry's file is YAML and is read with ``yaml.safe_load``. The classic format is
not YAML (``version "1.2.3"``, unquoted ``name@range, name@range2:`` headers) and no
maintained Python parser for it exists, so the few rules it has are read here:
a header line at column 0 ending in ``:``, then indented ``key value`` fields.

Names come from what was installed, not from the range the project asked for:
an alias ``"string-width-cjs@npm:string-width@^4"`` is ``string-width``; Berry's
``resolution`` (``"@babel/cli@npm:7.16.8"``) names the package and its source.
Workspace and ``link:``/``portal:`` entries are the project's own folders and are
skipped; a git source keeps its commit. Yarn records no dev flag.
"""

from __future__ import annotations

import re
from pathlib import Path

from pynomaly_security.vulns.lockfiles._base import (
    LineFinder,
    Package,
    error,
    read_text,
    read_yaml,
)

__all__ = ["parse_yarn_lock"]

_NAME_AT = re.compile(r"^(?P<name>@?[^@]+)@(?P<rest>.*)$")
_COMMIT = re.compile(r"(?:#commit=|#)(?P<sha>[0-9a-f]{7,40})\b")
_LOCAL = ("workspace:", "link:", "portal:", "file:")


def parse_yarn_lock(path: Path) -> list[Package]:
    text = read_text(path)
    if re.search(r"^__metadata:", text, re.MULTILINE):
        return _berry(path, text)
    return _classic(path, text)


def _commit(source: str) -> str:
    if "git" not in source and "codeload" not in source:
        return ""
    match = _COMMIT.search(source)
    return match.group("sha") if match else ""


def _spec_name(spec: str) -> str:
    """The installed package's name from one header spec (``a@npm:b@^1`` is ``b``)."""
    match = _NAME_AT.match(spec.strip().strip('"'))
    if not match:
        return spec.strip().strip('"')
    rest = match.group("rest")
    inner = _NAME_AT.match(rest[4:]) if rest.startswith("npm:") else None
    return inner.group("name") if inner else match.group("name")


def _classic(path: Path, text: str) -> list[Package]:
    packages: list[Package] = []
    header: tuple[int, str] | None = None
    fields: dict[str, str] = {}

    def flush() -> None:
        if header is None:
            return
        line, spec = header
        first = spec.split(",")[0]
        if any(local in first for local in _LOCAL):
            return
        name = _spec_name(first)
        version = fields.get("version")
        if not version:
            raise error(path, line, f"entry {first.strip()!r} has no version")
        resolved = fields.get("resolved", "")
        packages.append(Package("npm", name, version, path, line, commit=_commit(resolved)))

    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if not raw[0].isspace():
            flush()
            if not raw.rstrip().endswith(":"):
                raise error(path, number, "expected a `name@range:` entry header")
            header, fields = (number, raw.rstrip()[:-1]), {}
            continue
        if header is None:
            raise error(path, number, "an indented field before any entry")
        key, _, value = raw.strip().partition(" ")
        if raw.startswith("  ") and not raw.startswith("    ") and value:
            fields[key.strip('"')] = value.strip().strip('"')
    flush()
    return packages


def _berry(path: Path, text: str) -> list[Package]:
    data = read_yaml(path, "yarn.lock")
    lines = LineFinder(text)
    packages: list[Package] = []
    for key, entry in data.items():
        if key == "__metadata" or not isinstance(entry, dict):
            continue
        line = lines.find(str(key))
        resolution = str(entry.get("resolution") or str(key).split(",")[0])
        match = _NAME_AT.match(resolution.strip('"'))
        if match is None:
            raise error(path, line, f"entry {key!r}: unreadable resolution {resolution!r}")
        source = match.group("rest")
        if source.startswith(_LOCAL) or entry.get("linkType") == "soft":
            continue
        version = entry.get("version")
        if version is None:
            raise error(path, line, f"entry {key!r} has no version")
        packages.append(
            Package("npm", match.group("name"), str(version), path, line, commit=_commit(source))
        )
    return packages
