"""``pnpm-lock.yaml`` (lockfileVersion 5.x, 6.x and 9.x), read with ``yaml.safe_load``.

Every installed package is a key of ``packages``; the key spells name and version
differently per version, and the peer-dependency suffix that makes one package
several keys is cut off:

- 5.x: ``/name/1.2.3``, ``/@scope/name/1.2.3_peer@1+other@2`` (suffix after ``_``),
  optionally behind a registry host (``registry.example.com/name/1.2.3``);
- 6.x: ``/name@1.2.3(peer@1)(other@2)``;
- 9.x: ``name@1.2.3`` (peers live in ``snapshots``, which repeat ``packages``).

An entry's own ``name``/``version`` fields win over the key (tarball and git
dependencies, whose key is a URL). A git source (``resolution.commit`` or a
codeload tarball) keeps its commit. ``dev`` as pnpm 5/6 mark it; ``direct`` when
an importer names the package. A key that is none of these shapes is an error,
as it is for pnpm.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pynomaly_security.vulns.lockfiles._base import (
    LineFinder,
    Package,
    error,
    mapping,
    read_text,
    read_yaml,
)

__all__ = ["parse_pnpm_lock"]

_SHA = re.compile(r"/([0-9a-f]{40})(?:$|[/?#])")


def _major(data: dict[str, Any]) -> int:
    # "5.3", "5.4-inlineSpecifiers", "6.0", "9.0": the major number picks the key syntax
    major = str(data.get("lockfileVersion", "5")).split(".", 1)[0]
    return int(major) if major.isdigit() else 5


def _split_key(key: str, major: int) -> tuple[str, str]:
    """(name, version) of a ``packages`` key; ValueError when it is no pnpm path."""
    body = key[1:] if key.startswith("/") else key
    body = body.split("(", 1)[0]
    if major >= 6:
        at = body.rfind("@")
        if at <= 0:
            raise ValueError(key)
        return body[:at], body[at + 1 :]
    parts = body.split("/")
    if len(parts) >= 3 and "." in parts[0] and not parts[0].startswith("@"):
        parts = parts[1:]  # a registry host in front
    if len(parts) == 3 and parts[0].startswith("@"):
        name, version = f"{parts[0]}/{parts[1]}", parts[2]
    elif len(parts) == 2 and not parts[0].startswith("@"):
        name, version = parts
    else:
        raise ValueError(key)
    return name, version.split("_", 1)[0]


def _commit(entry: dict[str, Any], key: str) -> str:
    resolution = entry.get("resolution")
    if isinstance(resolution, dict):
        if isinstance(resolution.get("commit"), str):
            return str(resolution["commit"])
        tarball = resolution.get("tarball")
        if isinstance(tarball, str) and "codeload" in tarball:
            match = _SHA.search(tarball)
            return match.group(1) if match else ""
    match = _SHA.search(key) if "codeload" in key or "github" in key else None
    return match.group(1) if match else ""


def _direct_names(data: dict[str, Any]) -> set[str]:
    holders = [data, *mapping(data.get("importers")).values()]
    names: set[str] = set()
    for holder in holders:
        if not isinstance(holder, dict):
            continue
        for field in ("dependencies", "devDependencies", "optionalDependencies"):
            if isinstance(holder.get(field), dict):
                names |= {str(n) for n in holder[field]}
    return names


def parse_pnpm_lock(path: Path) -> list[Package]:
    text = read_text(path)
    data = read_yaml(path, "pnpm-lock.yaml")
    major = _major(data)
    lines = LineFinder(text)
    direct = _direct_names(data)
    packages: dict[tuple[str, str, str], Package] = {}
    for key, entry in mapping(data.get("packages")).items():
        key = str(key)
        entry = entry if isinstance(entry, dict) else {}
        line = lines.find(key)
        try:
            name, version = _split_key(key, major)
        except ValueError:
            if not (entry.get("name") and entry.get("version")):
                raise error(path, line, f"not a pnpm package path: {key!r}") from None
            name, version = str(entry["name"]), str(entry["version"])
        name = str(entry.get("name") or name)
        version = str(entry.get("version") or version)
        if "://" in version or version.startswith(("link:", "file:")):
            raise error(path, line, f"{key!r}: no version for a non-registry package")
        package = Package(
            "npm",
            name,
            version,
            path,
            line,
            dev=entry.get("dev") is True,
            direct=name in direct,
            commit=_commit(entry, key),
        )
        packages.setdefault((name, version, package.commit), package)
    return list(packages.values())
