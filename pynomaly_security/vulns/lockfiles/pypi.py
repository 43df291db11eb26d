"""Python lock formats other than requirements files.

``poetry.lock`` (lock-version 1.x ``category``, 2.x ``groups``), ``Pipfile.lock``
(``default`` / ``develop``), ``uv.lock``, ``pdm.lock`` and ``pylock.toml``
(PEP 751). TOML is read with the standard ``tomllib``, JSON with ``json``.

Development packages: poetry's ``category = "dev"`` or groups without ``main``;
Pipfile's ``develop``; pdm's groups without ``default``; uv's dev groups of the
project entry. A git source keeps its commit. The project's own entry (uv
``virtual``/``editable``, pylock ``directory``) is not a dependency and is
skipped. A Pipfile.lock entry without ``version`` is an error, as osv-scalibr makes it
(git entries included: the lock then names no release to match).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pynomaly_security.vulns.lockfiles._base import (
    LineFinder,
    Package,
    error,
    mapping,
    read_json,
    read_text,
    read_toml,
)

__all__ = [
    "parse_pdm_lock",
    "parse_pipfile_lock",
    "parse_poetry_lock",
    "parse_pylock",
    "parse_uv_lock",
]


def _entries(data: dict[str, Any], table: str, path: Path) -> list[dict[str, Any]]:
    entries = data.get(table) or []
    if not isinstance(entries, list):
        raise error(path, 1, f"`{table}` is not an array of tables")
    return [e for e in entries if isinstance(e, dict)]


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _named(
    path: Path, entries: list[dict[str, Any]]
) -> Iterator[tuple[dict[str, Any], str, int | None]]:
    """Each TOML package entry with its name and the line that names it (a nameless
    entry is an error)."""
    lines = LineFinder(read_text(path))
    for entry in entries:
        name = entry.get("name")
        line = lines.find(f'name = "{name}"', starts=True)
        if not isinstance(name, str) or not name:
            raise error(path, line, "a package entry without a name")
        yield entry, name, line


def _marker(value: Any) -> str:
    # poetry writes a table of markers per group when they differ: no single one applies.
    return value if isinstance(value, str) else ""


def _versioned(path: Path, entry: dict[str, Any], name: str, line: int | None) -> str:
    version = entry.get("version")
    if not isinstance(version, str) or not version:
        raise error(path, line, f"package {name!r} has no version")
    return version


def parse_poetry_lock(path: Path) -> list[Package]:
    out = []
    for entry, name, line in _named(path, _entries(read_toml(path), "package", path)):
        groups = _strings(entry.get("groups"))
        dev = entry.get("category") == "dev" or bool(groups and "main" not in groups)
        source = mapping(entry.get("source"))
        commit = str(source.get("resolved_reference") or "") if source.get("type") == "git" else ""
        out.append(
            Package(
                "PyPI",
                name,
                _versioned(path, entry, name, line),
                path,
                line,
                dev=dev,
                scope=",".join(groups) or str(entry.get("category") or ""),
                commit=commit,
                marker=_marker(entry.get("markers")),
            )
        )
    return out


def parse_pipfile_lock(path: Path) -> list[Package]:
    data = read_json(path, "Pipfile.lock")
    lines = LineFinder(read_text(path))
    out = []
    for section in ("default", "develop"):
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            raise error(path, None, f"`{section}` is not an object")
        for name, entry in entries.items():
            line = lines.find(f'"{name}": {{')
            if not isinstance(entry, dict) or not isinstance(entry.get("version"), str):
                where = f" (git {entry.get('git')})" if isinstance(entry, dict) else ""
                raise error(path, line, f"package {name!r} has no version{where}")
            version = entry["version"]
            out.append(
                Package(
                    "PyPI",
                    name,
                    version[2:] if version.startswith("==") else version,
                    path,
                    line,
                    str(entry.get("markers") or ""),
                    marker=str(entry.get("markers") or ""),
                    dev=section == "develop",
                    scope=section,
                    commit=str(entry.get("ref") or "") if entry.get("git") else "",
                )
            )
    return out


def _uv_groups(entries: list[dict[str, Any]]) -> dict[str, set[str]]:
    # The project's own entry names its dev groups and extras; the packages they pull in
    # directly are marked with the group (as uv's own `--no-dev` would drop them).
    groups: dict[str, set[str]] = {}
    for entry in entries:
        if not {"virtual", "editable"} & set(mapping(entry.get("source"))):
            continue
        for field in ("dev-dependencies", "optional-dependencies"):
            for group, deps in mapping(entry.get(field)).items():
                for dep in deps if isinstance(deps, list) else []:
                    if isinstance(dep, dict) and isinstance(dep.get("name"), str):
                        groups.setdefault(dep["name"], set()).add(f"{field[:3]}:{group}")
    return groups


def parse_uv_lock(path: Path) -> list[Package]:
    entries = _entries(read_toml(path), "package", path)
    groups = _uv_groups(entries)
    out = []
    for entry, name, line in _named(path, entries):
        source = mapping(entry.get("source"))
        if {"virtual", "editable", "directory"} & set(source):
            continue  # the project itself, or a local folder: no release to match
        git = str(source.get("git") or "")
        mine = sorted(groups.get(name, ()))
        out.append(
            Package(
                "PyPI",
                name,
                _versioned(path, entry, name, line),
                path,
                line,
                dev=any(g.startswith("dev:") for g in mine),
                scope=",".join(g.split(":", 1)[1] for g in mine),
                commit=git.rsplit("#", 1)[1] if "#" in git else "",
            )
        )
    return out


def parse_pdm_lock(path: Path) -> list[Package]:
    out = []
    for entry, name, line in _named(path, _entries(read_toml(path), "package", path)):
        groups = _strings(entry.get("groups"))
        out.append(
            Package(
                "PyPI",
                name,
                _versioned(path, entry, name, line),
                path,
                line,
                dev=bool(groups) and "default" not in groups,
                scope=",".join(groups),
                commit=str(entry.get("revision") or "") if entry.get("git") else "",
                marker=_marker(entry.get("marker")),
            )
        )
    return out


def parse_pylock(path: Path) -> list[Package]:
    """PEP 751: ``[[packages]]`` with ``version`` (optional for VCS and local sources)."""
    data = read_toml(path)
    if "lock-version" not in data:
        raise error(path, 1, "not a pylock.toml (no `lock-version`)")
    out = []
    for entry, name, line in _named(path, _entries(data, "packages", path)):
        vcs = mapping(entry.get("vcs"))
        if isinstance(entry.get("directory"), dict):
            continue  # a local folder (usually the project itself): no release to match
        version = entry.get("version")
        marker = str(entry.get("marker") or "")
        commit = str(vcs.get("commit-id") or "")
        if isinstance(version, str) and version:
            out.append(
                Package("PyPI", name, version, path, line, marker, commit=commit, marker=marker)
            )
        else:
            why = f"no version (vcs {vcs.get('url')})" if vcs else "no version in the lock"
            out.append(Package("PyPI", name, None, path, line, why, commit=commit))
    return out
