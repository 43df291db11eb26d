"""Which locked requirements the scanned target installs: PEP 508 environment markers.

A lockfile line such as ``pywin32==305 ; sys_platform == "win32"`` is not installed on
Linux, and its advisories are not the Linux deployment's. :class:`TargetEnvironment`
evaluates such markers (``packaging.markers``) for the running interpreter by default,
or for another target (``python_version``, ``platform``). A marker the scan cannot
decide is treated as true, so the package is matched as before: one naming an extra
or a dependency group (which of them were installed is not in the file), one on a
value the target does not fix (``platform_machine`` and the like when a platform is
given: the host's would be a guess), and one that does not parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.markers import (
    InvalidMarker,
    Marker,
    UndefinedComparison,
    UndefinedEnvironmentName,
    default_environment,
)

__all__ = ["PLATFORMS", "TargetEnvironment"]

PLATFORMS: dict[str, tuple[str, str]] = {
    "linux": ("Linux", "posix"),
    "darwin": ("Darwin", "posix"),
    "win32": ("Windows", "nt"),
}
"""``sys_platform`` -> (``platform_system``, ``os_name``) of the platforms a target can name."""

_PYTHON = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_SELECTED = frozenset({"extra", "extras", "dependency_groups"})  # chosen at install time
# What a named platform does not fix: the host's value would be a guess.
_HOST_ONLY = frozenset({"platform_machine", "platform_release", "platform_version"})
_CACHE_MAX = 4096


def _host() -> dict[str, str]:
    return {name: str(value) for name, value in default_environment().items()}


@dataclass
class TargetEnvironment:
    """The marker values of the target a scan is for (see :meth:`running`, :meth:`of`)."""

    values: dict[str, str]
    unknown: frozenset[str] = frozenset()  # variables whose value the target does not fix
    _seen: dict[str, bool | None] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def running(cls) -> TargetEnvironment:
        """The interpreter this process runs on."""
        return cls(_host())

    @classmethod
    def of(
        cls, python_version: str | None = None, platform: str | None = None
    ) -> TargetEnvironment:
        """The running interpreter's values with ``python_version`` (``3.9`` or
        ``3.9.7``) and ``platform`` (a ``sys_platform``: ``linux``, ``darwin``,
        ``win32``) replaced. Raises :class:`ValueError` naming the bad value."""
        values = _host()
        unknown: set[str] = set()
        if python_version is not None:
            match = _PYTHON.fullmatch(python_version.strip())
            if match is None:
                raise ValueError(f"python version {python_version!r}: expected X.Y or X.Y.Z")
            major, minor, micro = match.groups()
            full = f"{major}.{minor}.{micro or 0}"
            values["python_version"] = f"{major}.{minor}"
            values["python_full_version"] = full
            if values.get("implementation_name") == "cpython":
                values["implementation_version"] = full
            else:
                unknown.add("implementation_version")
        if platform is not None:
            if platform not in PLATFORMS:
                raise ValueError(
                    f"platform {platform!r}: expected one of {', '.join(sorted(PLATFORMS))}"
                )
            values["sys_platform"] = platform
            values["platform_system"], values["os_name"] = PLATFORMS[platform]
            unknown |= _HOST_ONLY
        return cls(values, frozenset(unknown))

    def describe(self) -> str:
        """``Python 3.11.7 on linux``: what the markers were evaluated for."""
        return (
            f"Python {self.values.get('python_full_version')} on {self.values.get('sys_platform')}"
        )

    def applies(self, marker: str) -> bool | None:
        """Whether a requirement with ``marker`` is installed on this target; None when
        the marker cannot be decided here (the caller then scans the package)."""
        if not marker.strip():
            return True
        if marker in self._seen:
            return self._seen[marker]
        found = self._evaluate(marker)
        if len(self._seen) >= _CACHE_MAX:
            self._seen.clear()  # bounded: a scan has few distinct markers
        self._seen[marker] = found
        return found

    def _evaluate(self, marker: str) -> bool | None:
        names = set(_NAME.findall(_LITERAL.sub(" ", marker)))
        if names & _SELECTED or names & self.unknown:
            return None
        try:
            return bool(Marker(marker).evaluate(dict(self.values)))
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName, ValueError):
            return None
