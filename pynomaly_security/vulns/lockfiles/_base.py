"""What every lockfile parser shares: the ``Package`` it returns, its error, safe readers.

Each reader turns a decoding failure into :class:`LockfileError` ``FILE: line N: what``
so a malformed file never surfaces as a traceback. YAML is read with ``safe_load``
only; XML lives in :mod:`._xml`.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynomaly_security.exceptions import SecurityError

__all__ = [
    "LineFinder",
    "LockfileError",
    "Package",
    "error",
    "mapping",
    "read_json",
    "read_toml",
    "read_yaml",
]


class LockfileError(SecurityError, ValueError):
    """A lockfile that cannot be read; the message is ``FILE: line N: what``."""


@dataclass(frozen=True)
class Package:
    """One locked (or declared) package.

    ``version`` is ``None`` when the file does not pin one version (an unpinned
    requirement, a Maven version range, a git dependency without a version); ``note``
    then says why, so the caller reports it instead of losing it. ``direct`` is
    ``None`` where the format does not say; ``dev`` is true for development-only
    packages (npm ``dev``, ``packages-dev``, Pipfile ``develop``, poetry/pdm/uv dev
    groups, Maven ``test`` scope); ``scope`` keeps the format's own word (Maven scope,
    Gradle configurations, dependency groups); ``commit`` the VCS commit of a git
    dependency; ``marker`` the PEP 508 environment marker the format gives (evaluated
    for the scan's target by :mod:`pynomaly_security.vulns.markers`).
    """

    ecosystem: str
    name: str
    version: str | None
    source: Path
    line: int | None = None
    note: str = ""
    dev: bool = False
    direct: bool | None = None
    scope: str = ""
    commit: str = ""
    marker: str = ""


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a table/object, else an empty one (absent or mistyped fields)."""
    return value if isinstance(value, dict) else {}


def error(path: Path, line: int | None, what: str) -> LockfileError:
    return LockfileError(f"{path}: line {line or 1}: {what}")


def read_text(path: Path, encoding: str = "utf-8") -> str:
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise error(path, None, f"not {encoding}: {exc.reason}") from None


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object, or :class:`LockfileError` (``what`` names the format in the message)."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise error(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise error(path, 1, f"not a {what} object")
    return data


_TOML_LINE = re.compile(r"line (\d+)")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_LINE.search(str(exc))
        raise error(path, int(match.group(1)) if match else None, f"invalid TOML: {exc}") from None


def read_yaml(path: Path, what: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise error(path, line, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise error(path, 1, f"not a {what} mapping")
    return data


class LineFinder:
    """Line numbers for parsers whose decoder keeps none (JSON, TOML, YAML).

    ``find(text)`` is the first line at or after the previous hit that contains
    ``text`` (``starts=True``: that begins with it). Entries come out of these files
    in file order, so one forward scan places each of them (a cheap approximation;
    ``None`` when not found).
    """

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()
        self._at = 0

    def find(self, needle: str, *, starts: bool = False) -> int | None:
        for index in range(self._at, len(self._lines)):
            line = self._lines[index]
            if line.startswith(needle) if starts else needle in line:
                self._at = index
                return index + 1
        return None
