"""``package-lock.json`` (lockfileVersion 1, 2 and 3).

v2/v3 list every installed copy under ``packages`` keyed by its ``node_modules``
path; v1 nests ``dependencies`` (v2 carries both; ``packages`` is read). What this
keeps, and why:

- an aliased install (``"node_modules/string-width-cjs": {"name": "string-width"}``)
  is the real package ``name``; the key is only the folder;
- every distinct (name, version) once: nested duplicates of one version are one
  package, two versions are two;
- bundled copies (``inBundle``) are real code in the tree and are kept;
- ``dev`` as npm marks it; ``direct`` when the root (``""``) names it;
- a git dependency (``resolved`` ``git+...#sha``; v1 puts the URL in ``version``)
  keeps its commit; v1 has no registry version for it, so it comes back unpinned;
- ``link`` entries (workspace folders) are not packages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pynomaly_security.vulns.lockfiles._base import (
    LineFinder,
    Package,
    mapping,
    read_json,
    read_text,
)

__all__ = ["parse_package_lock"]

_GITISH = re.compile(r"^(git\+|git:|github:|gitlab:|bitbucket:|https?://.*\.git)")
_NOT_REGISTRY = re.compile(r"^(file:|link:|https?:|git|github:|gitlab:|bitbucket:)")


def _commit(resolved: Any) -> str:
    if isinstance(resolved, str) and _GITISH.match(resolved) and "#" in resolved:
        return resolved.rsplit("#", 1)[1]
    return ""


def _root_names(data: dict[str, Any]) -> set[str]:
    root = mapping(mapping(data.get("packages")).get(""))
    names: set[str] = set()
    for field in ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies"):
        if isinstance(root.get(field), dict):
            names |= set(root[field])
    return names


def parse_package_lock(path: Path) -> list[Package]:
    data = read_json(path, "package-lock.json")
    lines = LineFinder(read_text(path))
    found: dict[tuple[str, str | None, str], Package] = {}
    packages = data.get("packages")
    if isinstance(packages, dict):  # lockfileVersion 2 and 3
        direct = _root_names(data)
        for key, entry in packages.items():
            if not key or not isinstance(entry, dict) or entry.get("link"):
                continue  # "" is the project itself; links point at workspace folders
            folder = key.rsplit("node_modules/", 1)[-1]
            name = entry.get("name") or folder
            version = entry.get("version")
            if not isinstance(version, str) or not isinstance(name, str):
                continue  # an extraneous folder without package.json
            top = key == f"node_modules/{folder}"
            package = Package(
                "npm",
                name,
                version,
                path,
                lines.find(f'"{key}"'),
                "bundled" if entry.get("inBundle") else "",
                dev=bool(entry.get("dev")),
                direct=top and folder in direct,
                commit=_commit(entry.get("resolved")),
            )
            found.setdefault((name, version, package.commit), package)
    else:  # lockfileVersion 1: nested "dependencies"
        requires = data.get("dependencies")

        def walk(deps: Any) -> None:
            for name, entry in mapping(deps).items():
                if not isinstance(entry, dict) or not isinstance(entry.get("version"), str):
                    continue
                version: str = entry["version"]
                line = lines.find(f'"{name}": {{')
                # v1 aliases put "npm:real-name@1.2.3" in version
                if version.startswith("npm:") and "@" in version[5:]:
                    name, version = version[4:].rsplit("@", 1)
                commit = _commit(version) or _commit(entry.get("resolved"))
                pinned = None if _NOT_REGISTRY.match(version) else version
                note = "" if pinned else f"not from the registry: {version}"
                package = Package(
                    "npm",
                    name,
                    pinned,
                    path,
                    line,
                    "bundled" if entry.get("bundled") else note,
                    dev=bool(entry.get("dev")),
                    commit=commit,
                )
                found.setdefault((name, pinned, commit), package)
                walk(entry.get("dependencies"))

        walk(requires)
    return list(found.values())
