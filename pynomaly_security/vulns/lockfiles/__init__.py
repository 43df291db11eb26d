"""Lockfile and manifest parsers: ``parse(path) -> list[Package]`` and ``scan_tree(root)``.

One module per ecosystem family; a file is recognised by its name, as the
package managers themselves find them:

| file | module | ecosystem |
|---|---|---|
| ``package-lock.json`` (v1-v3) | :mod:`.npm` | npm |
| ``yarn.lock`` (classic v1, Berry) | :mod:`.yarn` | npm |
| ``pnpm-lock.yaml`` (5.x, 6.x, 9.x) | :mod:`.pnpm` | npm |
| ``*requirements*.txt`` | :mod:`.requirements` | PyPI |
| ``poetry.lock``, ``Pipfile.lock``, ``uv.lock``, ``pdm.lock``, ``pylock.toml`` | `.pypi` | PyPI |
| ``composer.lock`` | :mod:`.composer` | Packagist |
| ``pom.xml`` (direct dependencies only) | :mod:`.maven` | Maven |
| ``[buildscript-]gradle.lockfile``, ``verification-metadata.xml`` | :mod:`.gradle` | Maven |

A malformed file raises :class:`LockfileError` ``FILE: line N: what``, never
another exception; ``scan_tree`` collects those messages and goes on with the
other files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from pynomaly_security.vulns.lockfiles._base import LockfileError, Package
from pynomaly_security.vulns.lockfiles.composer import parse_composer_lock
from pynomaly_security.vulns.lockfiles.gradle import (
    parse_gradle_lockfile,
    parse_verification_metadata,
)
from pynomaly_security.vulns.lockfiles.maven import parse_pom
from pynomaly_security.vulns.lockfiles.npm import parse_package_lock
from pynomaly_security.vulns.lockfiles.pnpm import parse_pnpm_lock
from pynomaly_security.vulns.lockfiles.pypi import (
    parse_pdm_lock,
    parse_pipfile_lock,
    parse_poetry_lock,
    parse_pylock,
    parse_uv_lock,
)
from pynomaly_security.vulns.lockfiles.requirements import parse_requirements
from pynomaly_security.vulns.lockfiles.yarn import parse_yarn_lock

__all__ = ["PARSERS", "LockfileError", "Package", "parse", "parser_for", "scan_tree"]

Parser = Callable[[Path], list[Package]]

PARSERS: dict[str, Parser] = {
    "package-lock.json": parse_package_lock,
    "yarn.lock": parse_yarn_lock,
    "pnpm-lock.yaml": parse_pnpm_lock,
    "poetry.lock": parse_poetry_lock,
    "Pipfile.lock": parse_pipfile_lock,
    "uv.lock": parse_uv_lock,
    "pdm.lock": parse_pdm_lock,
    "pylock.toml": parse_pylock,
    "composer.lock": parse_composer_lock,
    "pom.xml": parse_pom,
    "gradle.lockfile": parse_gradle_lockfile,
    "buildscript-gradle.lockfile": parse_gradle_lockfile,
    "verification-metadata.xml": parse_verification_metadata,
}

_PYLOCK = re.compile(r"^pylock\.[^.]+\.toml$")  # PEP 751 named locks: pylock.<name>.toml
# Directories that hold installed or vendored copies, not the project's own locks.
_SKIP_DIRS = frozenset({"node_modules", ".git", ".venv", "venv", "__pycache__", ".tox"})


def parser_for(path: Path) -> Parser | None:
    """The parser for a file name, or ``None`` when it is no format read here."""
    if path.name in PARSERS:
        return PARSERS[path.name]
    if _PYLOCK.match(path.name):
        return parse_pylock
    if path.suffix == ".txt" and "requirements" in path.name:
        return parse_requirements
    return None


def parse(path: Path) -> list[Package]:
    """The packages of one file; :class:`LockfileError` for unknown or malformed files."""
    parser = parser_for(path)
    if parser is None:
        raise LockfileError(f"{path}: not a lockfile this version reads")
    try:
        return parser(path)
    except OSError as exc:
        raise LockfileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except RecursionError:
        raise LockfileError(f"{path}: line 1: nested too deeply to read") from None
    except LockfileError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        # A well-formed file of an unexpected shape (a list where the format has a
        # table...): the parsers check the shapes they rely on, and this net keeps any
        # they missed from becoming a traceback in a scan.
        raise LockfileError(
            f"{path}: line 1: unexpected structure ({type(exc).__name__}: {exc})"
        ) from None


def _files(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if _SKIP_DIRS & set(path.relative_to(root).parts[:-1]):
            continue
        if path.is_file() and parser_for(path):
            found.append(path)
    return sorted(found)


def scan_tree(root: Path) -> tuple[list[Package], list[str]]:
    """Packages of every known file under ``root``; the errors of files it could not read.

    A package reached twice (a requirements file included by another that is also
    scanned) is listed once.
    """
    files = [root] if root.is_file() else _files(root)
    packages: dict[Package, None] = {}
    errors: list[str] = []
    for path in files:
        try:
            packages.update(dict.fromkeys(parse(path)))
        except LockfileError as exc:
            errors.append(str(exc))
    return list(packages), errors
