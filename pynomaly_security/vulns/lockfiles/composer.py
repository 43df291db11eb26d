"""``composer.lock``: ``packages`` and ``packages-dev`` (marked ``dev``).

Versions are kept as Composer writes them (``v1.2.3``, ``2.0.0-alpha4``); the
Packagist comparator reads the leading ``v``. Packages from a repository other
than packagist.org (Drupal's ``packages.drupal.org/8``) are still ``Packagist``
names: OSV spells their ecosystem ``Packagist:https://packages.drupal.org/8`` and
:mod:`..osv` matches on the part before ``:``. A ``dev-<branch>`` version is a
branch, not a release: it comes back unpinned with its ``source.reference`` commit.
"""

from __future__ import annotations

from pathlib import Path

from pynomaly_security.vulns.lockfiles._base import (
    LineFinder,
    Package,
    error,
    mapping,
    read_json,
    read_text,
)

__all__ = ["parse_composer_lock"]


def parse_composer_lock(path: Path) -> list[Package]:
    data = read_json(path, "composer.lock")
    lines = LineFinder(read_text(path))
    out = []
    for section in ("packages", "packages-dev"):
        entries = data.get(section) or []
        if not isinstance(entries, list):
            raise error(path, None, f"`{section}` is not an array")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            name = entry["name"]
            line = lines.find(f'"name": "{name}"')
            if not isinstance(entry.get("version"), str):
                raise error(path, line, f"package {name!r} has no version")
            source = mapping(entry.get("source"))
            version: str | None = entry["version"]
            commit, note = "", ""
            if entry["version"].startswith("dev-"):  # a branch, not a release
                commit = str(source.get("reference") or "")
                version, note = None, f"branch {entry['version']} {commit[:12]}".rstrip()
            out.append(
                Package(
                    "Packagist",
                    name,
                    version,
                    path,
                    line,
                    note,
                    dev=section == "packages-dev",
                    scope=section,
                    commit=commit,
                )
            )
    return out
