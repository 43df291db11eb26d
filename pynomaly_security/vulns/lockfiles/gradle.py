"""Gradle: ``gradle.lockfile`` / ``buildscript-gradle.lockfile`` and ``verification-metadata.xml``.

A lockfile line is ``group:artifact:version=configuration,configuration``; ``#``
comments and ``empty=`` (the configurations with no dependency) are skipped. The
configurations go to ``scope``; a dependency only in test configurations is
``dev``. A line of any other shape is kept as an unreadable entry (``version=None``
and a note naming the line) rather than failing the file, so the good lines of a
damaged lockfile are still scanned. ``buildscript-gradle.lockfile`` has the same
format and locks the build's own plugins.

``gradle/verification-metadata.xml`` lists every component Gradle verified
(``<component group= name= version=>``); a component missing one of the three is
reported the same way. The XML is read through :mod:`._xml` (no DTD).

Both are Maven coordinates, ecosystem ``Maven`` (what OSV uses for Gradle).
"""

from __future__ import annotations

import re
from pathlib import Path

from pynomaly_security.vulns.lockfiles._base import Package, error, read_text
from pynomaly_security.vulns.lockfiles._xml import children, parse_xml

__all__ = ["parse_gradle_lockfile", "parse_verification_metadata"]

_LINE = re.compile(
    r"^(?P<group>[^:=\s]+):(?P<artifact>[^:=\s]+):(?P<version>[^:=\s]+)=(?P<conf>\S*)$"
)


def parse_gradle_lockfile(path: Path) -> list[Package]:
    packages = []
    for number, raw in enumerate(read_text(path).splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("empty="):
            continue
        match = _LINE.match(line)
        if match is None:
            packages.append(
                Package("Maven", line[:80], None, path, number, "not a gradle lockfile entry")
            )
            continue
        configurations = [c for c in match.group("conf").split(",") if c]
        packages.append(
            Package(
                "Maven",
                f"{match.group('group')}:{match.group('artifact')}",
                match.group("version"),
                path,
                number,
                dev=bool(configurations) and all("test" in c.lower() for c in configurations),
                scope=",".join(configurations),
            )
        )
    return packages


def parse_verification_metadata(path: Path) -> list[Package]:
    root, lines = parse_xml(path)
    if root.tag != "verification-metadata":
        raise error(path, lines.get(id(root)), f"not verification metadata: <{root.tag}>")
    packages = []
    seen: set[tuple[str, str]] = set()
    for component in children(root, "components", "component"):
        group, name, version = (component.get(k) for k in ("group", "name", "version"))
        line = lines.get(id(component))
        if not (group and name and version):
            given = {"group": group, "name": name, "version": version}
            missing = [key for key, value in given.items() if not value]
            shown = f"{group or '?'}:{name or '?'}"
            note = f"component without {', '.join(missing)}: skipped"
            packages.append(Package("Maven", shown, None, path, line, note))
            continue
        if (f"{group}:{name}", version) in seen:
            continue  # Gradle rejects duplicates; scanning one copy is enough
        seen.add((f"{group}:{name}", version))
        packages.append(Package("Maven", f"{group}:{name}", version, path, line))
    return packages
