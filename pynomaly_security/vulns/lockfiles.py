"""Lockfile parsers: ``parse(path) -> list[Package]`` and ``scan_tree(dir)``.

Built so far: ``requirements*.txt`` (``==``/``===`` pins, ``-r`` includes, hashes
and options stripped, markers kept but not evaluated; anything not pinned to one
version, and a line that is no requirement, comes back with ``version=None`` and a
``note`` saying why, so the caller reports it instead of losing the file),
``package-lock.json`` v1-v3, ``poetry.lock`` and ``composer.lock``. A malformed
file raises :class:`LockfileError` naming the file and line. The other formats of
issue 18 (yarn, pnpm, Pipfile.lock, uv, pdm, pylock, pom.xml, Gradle) are not
built yet; ``scan_tree`` does not look for them.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from pynomaly_security.exceptions import SecurityError

__all__ = ["LockfileError", "Package", "parse", "scan_tree"]


class LockfileError(SecurityError, ValueError):
    """A lockfile that cannot be read; the message is ``FILE: line N: what``."""


@dataclass(frozen=True)
class Package:
    ecosystem: str
    name: str
    version: str | None  # None: not pinned to one version (requirements.txt)
    source: Path
    line: int | None = None
    note: str = ""  # why it is unpinned, or the environment marker


def _error(path: Path, line: int | None, what: str) -> LockfileError:
    return LockfileError(f"{path}: line {line or 1}: {what}")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _error(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise _error(path, None, f"not UTF-8: {exc.reason}") from None


# --- requirements.txt -------------------------------------------------------

_URLISH = re.compile(r"^(\.|/|[a-z+]+://|git\+)|\.(whl|zip|tar\.gz)$", re.IGNORECASE)


def _logical_lines(path: Path) -> Iterator[tuple[int, str]]:
    # pip joins backslash continuations and drops " #" comments before parsing.
    pending, start = "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not pending:
            start = number
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield start, (pending + line).strip()
        pending = ""
    if pending.strip():
        yield start, pending.strip()


def parse_requirements(path: Path, _seen: frozenset[Path] = frozenset()) -> list[Package]:
    path = path.resolve()
    if path in _seen:
        return []  # an include cycle: each file once
    packages: list[Package] = []
    for number, line in _logical_lines(path):
        if not line:
            continue
        if line.startswith(("-r ", "--requirement", "-r")):
            target = re.sub(r"^(-r|--requirement)[ =]?", "", line).strip()
            include = path.parent / target
            if not include.is_file():
                raise _error(path, number, f"-r include not found: {target}")
            packages += parse_requirements(include, _seen | {path})
            continue
        if line.startswith("-e") or line.startswith("--editable"):
            packages.append(Package("PyPI", line.split()[-1], None, path, number, "editable"))
            continue
        if line.startswith("-"):
            continue  # -c, -i, --index-url, --hash on its own line: options, not packages
        spec = re.split(r"\s+--", line, maxsplit=1)[0].strip()  # drop --hash=... options
        if _URLISH.search(spec.split(";")[0].strip()):
            packages.append(Package("PyPI", spec, None, path, number, "path or URL"))
            continue
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            # One bad line should not hide the rest of the file: it is reported, with its line.
            first = str(exc).splitlines()[0]
            packages.append(
                Package("PyPI", spec, None, path, number, f"not a requirement: {first}")
            )
            continue
        marker = str(req.marker) if req.marker else ""
        pins = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if req.url:
            packages.append(Package("PyPI", req.name, None, path, number, "URL"))
        elif len(pins) == 1 and len(req.specifier) == 1:
            packages.append(Package("PyPI", req.name, pins[0].version, path, number, marker))
        else:
            why = f"unpinned ({req.specifier or 'any version'})"
            packages.append(Package("PyPI", req.name, None, path, number, why))
    return packages


# --- npm, poetry, composer --------------------------------------------------


def parse_package_lock(path: Path) -> list[Package]:
    data = _json(path)
    if not isinstance(data, dict):
        raise _error(path, 1, "not a package-lock.json object")
    found: dict[tuple[str, str], Package] = {}
    packages = data.get("packages")
    if isinstance(packages, dict):  # lockfileVersion 2 and 3
        for key, entry in packages.items():
            if not key or not isinstance(entry, dict) or entry.get("link"):
                continue  # "" is the project itself; links point at workspace folders
            name = entry.get("name") or key.rsplit("node_modules/", 1)[-1]
            if isinstance(entry.get("version"), str):
                found[(name, entry["version"])] = Package("npm", name, entry["version"], path)
    else:  # lockfileVersion 1: nested "dependencies"

        def walk(deps: Any) -> None:
            for name, entry in (deps or {}).items():
                if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                    version = entry["version"]
                    if not re.match(r"^(file:|git|https?:|github:)", version):
                        found[(name, version)] = Package("npm", name, version, path)
                    walk(entry.get("dependencies"))

        walk(data.get("dependencies"))
    return list(found.values())


def parse_poetry_lock(path: Path) -> list[Package]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise _error(path, int(match.group(1)) if match else None, f"invalid TOML: {exc}") from None
    out = []
    for entry in data.get("package") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            out.append(Package("PyPI", entry["name"], str(entry.get("version")), path))
    return out


def parse_composer_lock(path: Path) -> list[Package]:
    data = _json(path)
    if not isinstance(data, dict):
        raise _error(path, 1, "not a composer.lock object")
    out = []
    for section in ("packages", "packages-dev"):
        for entry in data.get(section) or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                out.append(Package("Packagist", entry["name"], str(entry.get("version")), path))
    return out


_PARSERS: dict[str, Callable[[Path], list[Package]]] = {
    "package-lock.json": parse_package_lock,
    "poetry.lock": parse_poetry_lock,
    "composer.lock": parse_composer_lock,
}


def _parser(path: Path) -> Callable[[Path], list[Package]] | None:
    if path.name in _PARSERS:
        return _PARSERS[path.name]
    if path.suffix == ".txt" and "requirements" in path.name:
        return parse_requirements
    return None


def parse(path: Path) -> list[Package]:
    """The packages of one lockfile; :class:`LockfileError` for unknown or malformed files."""
    parser = _parser(path)
    if parser is None:
        raise LockfileError(f"{path}: not a lockfile this version reads")
    try:
        return parser(path)
    except OSError as exc:
        raise LockfileError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise LockfileError(f"{path}: line 1: not UTF-8: {exc.reason}") from None


def scan_tree(root: Path) -> tuple[list[Package], list[str]]:
    """Packages of every known lockfile under ``root``; the errors of files it could not read."""
    files = (
        [root]
        if root.is_file()
        else sorted(p for p in root.rglob("*") if p.is_file() and _parser(p))
    )
    packages: list[Package] = []
    errors: list[str] = []
    for path in files:
        try:
            packages += parse(path)
        except LockfileError as exc:
            errors.append(str(exc))
    return packages, errors
