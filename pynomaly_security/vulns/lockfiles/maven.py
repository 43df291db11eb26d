"""``pom.xml``: the project's **direct** dependencies, with versions as Maven would fill them.

A pom is a manifest, not a lockfile: the versions of transitive dependencies come
from resolving the other poms in a repository, which this offline reader does not
do. Each package is marked ``direct=True`` and the scan says so.

What is resolved, as Maven's model builder does it:

- **parents** found locally: ``<relativePath>`` (default ``../pom.xml``; a folder
  means its ``pom.xml``), used only when that file's coordinates are the ones the
  ``<parent>`` names; their ``properties``, ``dependencies`` (inherited) and
  ``dependencyManagement`` apply, the child overriding. A parent not found
  locally is named in the ``note`` of every package whose version it could have
  given;
- **properties and interpolation**: ``${name}`` from ``<properties>`` (child over
  parent), ``project.*``/``pom.*`` (groupId, artifactId, version, parent.*),
  repeated until stable, in group, artifact, version and scope;
- **dependencyManagement** gives the version (and scope) of a dependency that
  has none; an explicit version wins, as in Maven; ``import`` BOMs are not
  fetched, so a version only they give is reported unresolved;
- **profiles** with ``<activeByDefault>true`` add their properties, dependencies
  and management; other activations (JDK, OS, property) are not evaluated;
- **scopes**: ``scope`` as written (default ``compile``); ``test`` is ``dev``;
- a version range (``[1.0,2.0)``) or an unresolved property is no pin: the package
  comes back with ``version=None`` and the reason.

Plugin dependencies (``build/plugins``) are build tools, not the application's
dependencies, and are left out. Parsing is in :mod:`._xml` (no DTD, so no XXE).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

from pynomaly_security.vulns.lockfiles._base import LockfileError, Package, error
from pynomaly_security.vulns.lockfiles._xml import children, parse_xml, text_of

__all__ = ["parse_pom"]

_PROPERTY = re.compile(r"\$\{([^}]+)\}")
_MAX_PARENTS = 16


@dataclass
class _Pom:
    path: Path
    root: Element
    lines: dict[int, int]
    parent: _Pom | None = None
    missing_parent: str = ""  # coordinates of a parent that is not available locally
    properties: dict[str, str] = field(default_factory=dict)

    def coordinate(self, tag: str) -> str | None:
        own = text_of(self.root, tag)
        return own if own else text_of(self.root.find("parent"), tag)

    def active_profiles(self) -> list[Element]:
        return [
            p
            for p in children(self.root, "profiles", "profile")
            if (text_of(p.find("activation"), "activeByDefault") or "").lower() == "true"
        ]

    def sections(self) -> list[Element]:
        """The project element and its active profiles: where dependencies may be declared."""
        return [self.root, *self.active_profiles()]


def _load(path: Path, depth: int = 0) -> _Pom:
    root, lines = parse_xml(path)
    if root.tag != "project":
        raise error(path, lines.get(id(root)), f"not a pom: root element <{root.tag}>")
    pom = _Pom(path, root, lines)
    parent = root.find("parent")
    if parent is not None:
        wanted = f"{text_of(parent, 'groupId')}:{text_of(parent, 'artifactId')}"
        relative = text_of(parent, "relativePath")
        candidate = path.parent / (relative if relative is not None else "../pom.xml")
        if candidate.is_dir():
            candidate = candidate / "pom.xml"
        found: _Pom | None = None
        if relative != "" and candidate.is_file() and depth < _MAX_PARENTS:
            try:
                found = _load(candidate.resolve(), depth + 1)
            except (LockfileError, OSError):
                found = None  # an unreadable parent is reported like a missing one
            if found is not None:
                have = f"{found.coordinate('groupId')}:{found.coordinate('artifactId')}"
                found = found if have == wanted else None
        pom.parent = found
        pom.missing_parent = "" if found else f"{wanted}:{text_of(parent, 'version')}"
    return pom


def _chain(pom: _Pom) -> list[_Pom]:
    """Root ancestor first, the pom itself last."""
    out: list[_Pom] = []
    node: _Pom | None = pom
    while node is not None:
        out.append(node)
        node = node.parent
    return out[::-1]


def _properties(pom: _Pom) -> dict[str, str]:
    props: dict[str, str] = {}
    for node in _chain(pom):
        for section in node.sections():
            for holder in children(section, "properties"):
                for prop in holder:
                    props[prop.tag] = (prop.text or "").strip()
    for key in ("groupId", "artifactId", "version"):
        value = pom.coordinate(key) or ""
        for prefix in ("project.", "pom.", ""):
            props.setdefault(f"{prefix}{key}", value)
        parent_value = text_of(pom.root.find("parent"), key)
        if parent_value:
            props.setdefault(f"project.parent.{key}", parent_value)
            props.setdefault(f"parent.{key}", parent_value)
    return props


def _interpolate(value: str | None, props: dict[str, str]) -> str | None:
    if value is None:
        return None
    for _ in range(10):  # nested properties; a cycle stops here unresolved
        new = _PROPERTY.sub(lambda m: props.get(m.group(1), m.group(0)), value)
        if new == value:
            break
        value = new
    return value


@dataclass
class _Declared:
    group: str
    artifact: str
    version: str | None
    scope: str | None
    pom: _Pom
    element: Element


def _declared(pom: _Pom, props: dict[str, str], *path: str) -> list[_Declared]:
    out = []
    for node in _chain(pom):
        for section in node.sections():
            for dep in children(section, *path):
                group = _interpolate(text_of(dep, "groupId"), props) or ""
                artifact = _interpolate(text_of(dep, "artifactId"), props) or ""
                out.append(
                    _Declared(
                        group,
                        artifact,
                        _interpolate(text_of(dep, "version"), props),
                        _interpolate(text_of(dep, "scope"), props),
                        node,
                        dep,
                    )
                )
    return out


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start.parent)


def parse_pom(path: Path) -> list[Package]:
    pom = _load(path.resolve())
    props = _properties(pom)
    managed: dict[tuple[str, str], _Declared] = {}
    for entry in _declared(pom, props, "dependencyManagement", "dependencies", "dependency"):
        managed[(entry.group, entry.artifact)] = entry  # later (the child) wins
    # A test-jar or classified artifact is a separate dependency of the same coordinates.
    direct: dict[tuple[str, str, str, str], _Declared] = {}
    for entry in _declared(pom, props, "dependencies", "dependency"):
        kind = text_of(entry.element, "type") or "jar"
        classifier = text_of(entry.element, "classifier") or ""
        direct[(entry.group, entry.artifact, kind, classifier)] = entry
    packages = []
    for (group, artifact, _kind, _classifier), entry in direct.items():
        rule = managed.get((group, artifact))
        version = entry.version or (rule.version if rule else None)
        scope = entry.scope or (rule.scope if rule else None) or "compile"
        if scope == "import":
            continue
        note = ""
        if not version:
            parent = f" (its parent {pom.missing_parent} is not available locally)"
            note = "no version in this pom" + (parent if pom.missing_parent else "")
            version = None
        elif "${" in version:
            note, version = f"unresolved property in version {version}", None
        elif version[:1] in "[(" or "," in version:
            note, version = f"version range {version}", None
        inherited = entry.pom is not pom
        if inherited:
            where = f"declared in the parent {_relative(entry.pom.path, pom.path)}"
            note = f"{note}; {where}" if note else where
        packages.append(
            Package(
                "Maven",
                f"{group}:{artifact}",
                version,
                pom.path,
                None if inherited else pom.lines.get(id(entry.element)),
                note,
                dev=scope == "test",
                direct=True,
                scope=scope,
            )
        )
    return packages
