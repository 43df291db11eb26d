"""``requirements*.txt`` as pip reads it (the line syntax, not the resolver).

Pins are ``==``/``===`` to one version (no ``*``). ``-r`` includes are followed
(relative to the including file; each file once, so cycles end); ``-c`` constraint
files are not packages and are skipped. Per-requirement options (``--hash``,
``--config-settings``/``-C``, ``--global-option``) are cut off the line as pip's
``shlex`` split does; environment markers are kept (``marker``, and ``note`` as
before) for the scan to evaluate against its target (:mod:`..markers`). Anything
not pinned to one version, a path or URL, an editable, and a line that is no
requirement at all come back with ``version=None`` and a ``note`` saying why, so the
scan reports it rather than dropping it silently. A missing ``-r`` file fails the
whole file, as it fails pip.

References: https://pip.pypa.io/en/stable/reference/requirements-file-format/
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from pynomaly_security.vulns.lockfiles._base import Package, error, read_text

__all__ = ["parse_requirements"]

_URLISH = re.compile(r"^(\.|/|[a-z+]+://|git\+)|\.(whl|zip|tar\.gz)$", re.IGNORECASE)
_ARCHIVE = re.compile(r"\.(whl|zip|tar\.gz|tgz|tar\.bz2)$", re.IGNORECASE)
# A per-requirement option starts a whitespace-separated token with - or --.
_OPTION = re.compile(r"\s+--?[A-Za-z]")
_INCLUDE = re.compile(r"^(-r|--requirement)(\s+|=|(?=\S))(?P<target>.+)$")
_COMMENT = re.compile(r"(^|\s)#.*$")
# name==1.2.3 with a PEP 508 name and a plain release number (valid for any reading).
_SIMPLE_PIN = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==([0-9]+(?:\.[0-9]+)*)")


def _logical_lines(path: Path) -> Iterator[tuple[int, str]]:
    # pip joins backslash continuations and drops " #" comments before parsing.
    pending, start = "", 0
    for number, raw in enumerate(read_text(path).splitlines(), 1):
        if not pending:
            start = number
        line = _COMMENT.sub("", raw).rstrip()
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
        include = _INCLUDE.match(line)
        if include:
            target = include.group("target").strip()
            included = path.parent / target
            if not included.is_file():
                raise error(path, number, f"-r include not found: {target}")
            packages += parse_requirements(included, _seen | {path})
            continue
        if line.startswith(("-e", "--editable")):
            packages.append(Package("PyPI", line.split()[-1], None, path, number, "editable"))
            continue
        if line.startswith("-"):
            continue  # -c, -i, --index-url, --hash on its own line: options, not packages
        packages.append(_requirement(path, number, _OPTION.split(line, maxsplit=1)[0].strip()))
    return packages


def _requirement(path: Path, number: int, spec: str) -> Package:
    simple = _SIMPLE_PIN.fullmatch(spec)
    if simple is not None and not _ARCHIVE.search(simple[1]):
        # What Requirement() gives for it, without its parser: most lines of a lock
        # are such pins, and parsing them was most of the time of reading one.
        return Package("PyPI", simple[1], simple[2], path, number)
    try:
        req = Requirement(spec)
    except InvalidRequirement as exc:
        if _URLISH.search(spec.split(";")[0].strip()):
            return Package("PyPI", spec, None, path, number, "path or URL")
        # One bad line should not hide the rest of the file: it is reported, with its line.
        first = str(exc).splitlines()[0]
        return Package("PyPI", spec, None, path, number, f"not a requirement: {first}")
    if _ARCHIVE.search(req.name):  # "pkg-1.0-py3-none-any.whl" is a valid name, and a file
        return Package("PyPI", spec, None, path, number, "path or URL")
    marker = str(req.marker) if req.marker else ""
    pins = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
    if req.url:
        return Package("PyPI", req.name, None, path, number, "URL")
    if len(pins) == 1 and len(req.specifier) == 1:
        return Package("PyPI", req.name, pins[0].version, path, number, marker, marker=marker)
    why = f"unpinned ({req.specifier or 'any version'})"
    return Package("PyPI", req.name, None, path, number, why)
