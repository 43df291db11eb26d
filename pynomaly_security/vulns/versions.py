"""Version ordering per OSV ecosystem: ``compare(ecosystem, a, b) -> -1 | 0 | 1``.

- ``PyPI``: PEP 440 through ``packaging.version``. A version PEP 440 cannot parse
  (``2.0-final-1``, ``dev``) is a *legacy* version: it sorts before every valid one
  and among legacy versions by the key the old ``packaging.version.LegacyVersion``
  used (setuptools' historical rule), because PyPI still serves such releases and an
  advisory's ``versions`` list can name them.
- ``npm`` (and the other SemVer ecosystems: crates.io, Go, Hex): SemVer 2.0; a
  leading ``v`` is accepted, build metadata is ignored, components past the third
  count as build metadata (as osv-scalibr does) and missing ones are ``0``.
- ``Maven``: Maven's ``ComparableVersion`` (lists split at ``-`` and at digit/letter
  changes, trailing null items trimmed, the qualifier order alpha < beta <
  milestone < rc < snapshot < "" < sp, unknown qualifiers after them).
- ``Packagist``: PHP's ``version_compare`` after its canonicalisation.

Each comparator is a sort key, so sorting a package's versions parses each once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from packaging.version import InvalidVersion, Version

__all__ = [
    "ECOSYSTEMS",
    "UnknownEcosystem",
    "VersionError",
    "compare",
    "sort_key",
    "version_key",
]


class VersionError(ValueError):
    """A version string that the ecosystem's rules cannot read."""


class UnknownEcosystem(ValueError):
    """An ecosystem without a comparator here."""


def _cmp(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


# --- PyPI -------------------------------------------------------------------

_LEGACY_RE = re.compile(r"(\d+|[a-z]+|\.|-)")
_LEGACY_MAP = {"pre": "c", "preview": "c", "-": "final-", "rc": "c", "dev": "@"}


def _legacy_parts(version: str) -> tuple[str, ...]:
    # The key of packaging < 22's LegacyVersion, kept so legacy versions still order.
    parts: list[str] = []
    for raw in _LEGACY_RE.split(version.lower()):
        part = _LEGACY_MAP.get(raw, raw)
        if not part or part == ".":
            continue
        part = part.zfill(8) if part[:1].isdigit() else "*" + part
        if part.startswith("*"):
            if part < "*final":
                while parts and parts[-1] == "*final-":
                    parts.pop()
            while parts and parts[-1] == "00000000":
                parts.pop()
        parts.append(part)
    parts.append("*final")
    return tuple(parts)


# packaging's Version compares its private ``_key`` tuples (``Version.__lt__`` is
# ``self._key < other._key``); a key made of them compares in C, without two Python
# calls per comparison. Should a packaging release drop it, the Version itself still
# orders correctly inside the tuple, only slower.
_HAS_KEY = isinstance(getattr(Version, "_key", None), property)


def _pypi_key(text: str) -> tuple[int, Any]:
    try:
        version = Version(text)
    except InvalidVersion:
        return (0, _legacy_parts(text))  # legacy sorts before every valid version
    return (1, version._key if _HAS_KEY else version)


# --- SemVer -----------------------------------------------------------------

_SEMVER_RE = re.compile(r"^[vV]?(\d+)(?:\.(\d+))?(?:\.(\d+))?([^+]*)?(?:\+.*)?$")


def _semver_key(text: str) -> tuple[Any, ...]:
    match = _SEMVER_RE.match(text)
    if match is None:
        raise VersionError(f"not a SemVer version: {text!r}")
    major, minor, patch, rest = match.groups()
    rest = rest or ""
    if rest.startswith("."):
        # 1.1.3.4.5: extra numeric components are build metadata (osv-scalibr's reading).
        extra = re.match(r"^(\.[0-9A-Za-z.]*)(.*)$", rest)
        rest = extra.group(2) if extra else rest
    core = (int(major), int(minor or 0), int(patch or 0))
    if not rest:
        return (core, 1, ())  # a release sorts after all of its pre-releases
    pre = rest[1:] if rest.startswith("-") else rest
    # Numeric identifiers sort before alphanumeric ones, numerically; others in ASCII order.
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (core, 0, ids)


# --- Maven ------------------------------------------------------------------

_QUALIFIERS = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"]
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_RELEASE_INDEX = str(_QUALIFIERS.index(""))


def _qualifier_rank(value: str) -> str:
    # Maven compares these strings: known qualifiers by index, unknown ones after all.
    return str(_QUALIFIERS.index(value)) if value in _QUALIFIERS else f"{len(_QUALIFIERS)}-{value}"


class _MInt:
    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value

    def is_null(self) -> bool:
        return self.value == 0

    def compare(self, other: _MItem | None) -> int:
        if other is None:
            return 0 if self.value == 0 else 1
        if isinstance(other, _MInt):
            return _cmp(self.value, other.value)
        return 1  # a number sorts after a qualifier and after a sub-list


class _MStr:
    __slots__ = ("value",)

    def __init__(self, value: str, followed_by_digit: bool) -> None:
        if followed_by_digit and len(value) == 1:
            value = {"a": "alpha", "b": "beta", "m": "milestone"}.get(value, value)
        self.value = _ALIASES.get(value, value)

    def is_null(self) -> bool:
        return self.value == ""

    def compare(self, other: _MItem | None) -> int:
        if other is None:
            return _cmp(_qualifier_rank(self.value), _RELEASE_INDEX)
        if isinstance(other, _MStr):
            return _cmp(_qualifier_rank(self.value), _qualifier_rank(other.value))
        return -1


class _MList:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[_MItem] = []

    def is_null(self) -> bool:
        return not self.items

    def normalize(self) -> None:
        for i in range(len(self.items) - 1, -1, -1):
            item = self.items[i]
            if item.is_null():
                del self.items[i]
            elif not isinstance(item, _MList):
                break

    def compare(self, other: _MItem | None) -> int:
        if other is None:
            return 0 if not self.items else self.items[0].compare(None)
        if isinstance(other, _MInt):
            return -1
        if isinstance(other, _MStr):
            return 1
        for i in range(max(len(self.items), len(other.items))):
            left = self.items[i] if i < len(self.items) else None
            right = other.items[i] if i < len(other.items) else None
            if left is None:
                result = 0 if right is None else -right.compare(None)
            else:
                result = left.compare(right)
            if result:
                return result
        return 0


_MItem = _MInt | _MStr | _MList


def _maven_item(is_digit: bool, text: str, followed_by_digit: bool = False) -> _MItem:
    return _MInt(int(text)) if is_digit else _MStr(text, followed_by_digit)


def _maven_parse(text: str) -> _MList:
    version = text.lower()
    root = current = _MList()
    stack = [root]
    is_digit = False
    start = 0

    def push() -> _MList:
        nested = _MList()
        current.items.append(nested)
        stack.append(nested)
        return nested

    for i, char in enumerate(version):
        if char in ".-":
            if i == start:
                current.items.append(_MInt(0))
            else:
                current.items.append(_maven_item(is_digit, version[start:i]))
            start = i + 1
            if char == "-":
                if current is not root and len(current.items) == 1 and current.items[0].is_null():
                    # "1-ga-1" = "1-1": a null qualifier between hyphens is no level of its own.
                    current.items.clear()
                    continue
                current = push()
        elif char.isdigit():
            if not is_digit and i > start:
                current.items.append(_MStr(version[start:i], True))
                start = i
                current = push()
            is_digit = True
        else:
            if is_digit and i > start:
                current.items.append(_MInt(int(version[start:i])))
                start = i
                current = push()
            is_digit = False
    if len(version) > start:
        current.items.append(_maven_item(is_digit, version[start:]))
    while stack:
        stack.pop().normalize()
    return root


@functools.total_ordering
class _MavenKey:
    __slots__ = ("items",)

    def __init__(self, text: str) -> None:
        self.items = _maven_parse(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _MavenKey) and self.items.compare(other.items) == 0

    def __lt__(self, other: _MavenKey) -> bool:
        return self.items.compare(other.items) < 0

    __hash__ = None  # type: ignore[assignment]


# --- Packagist (PHP version_compare) ----------------------------------------

_PHP_FORMS = [
    ("dev", 0),
    ("alpha", 1),
    ("a", 1),
    ("beta", 2),
    ("b", 2),
    ("RC", 3),
    ("rc", 3),
    ("#", 4),
    ("pl", 5),
    ("p", 5),
]


def _php_form(part: str) -> int:
    # PHP matches by prefix ("patch" is "p"); unknown words sort before "dev".
    for name, order in _PHP_FORMS:
        if part.startswith(name):
            return order
    return -1


def _php_canonical(text: str) -> list[str]:
    if text[:1] in ("v", "V") and text[1:2].isdigit():
        text = text[1:]  # Composer's leading "v" (osv-scalibr strips it too)
    out: list[str] = []
    for char in text:
        prev = out[-1] if out else "."
        if char in "-_+.":
            if prev != ".":
                out.append(".")
            continue
        if prev != "." and (prev.isdigit() != char.isdigit()):
            out.append(".")
        out.append(char)
    return [p for p in "".join(out).split(".") if p != ""]


def _php_compare(left: list[str], right: list[str]) -> int:
    for a, b in zip(left, right, strict=False):
        if a.isdigit() and b.isdigit():
            result = _cmp(int(a), int(b))
        elif not a.isdigit() and not b.isdigit():
            result = _cmp(_php_form(a), _php_form(b))
        elif a.isdigit():
            result = _cmp(4, _php_form(b))  # a number is the "#" form
        else:
            result = _cmp(_php_form(a), 4)
        if result:
            return result
    if len(left) > len(right):
        rest = left[len(right)]
        return 1 if rest.isdigit() else _php_compare(left[len(right) :], ["#"])
    if len(right) > len(left):
        rest = right[len(left)]
        return -1 if rest.isdigit() else _php_compare(["#"], right[len(left) :])
    return 0


@functools.total_ordering
class _PackagistKey:
    __slots__ = ("parts",)

    def __init__(self, text: str) -> None:
        self.parts = _php_canonical(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _PackagistKey) and _php_compare(self.parts, other.parts) == 0

    def __lt__(self, other: _PackagistKey) -> bool:
        return _php_compare(self.parts, other.parts) < 0

    __hash__ = None  # type: ignore[assignment]


ECOSYSTEMS: dict[str, Callable[[str], Any]] = {
    "PyPI": _pypi_key,
    "npm": _semver_key,
    "crates.io": _semver_key,
    "Go": _semver_key,
    "Hex": _semver_key,
    "Maven": _MavenKey,
    "Packagist": _PackagistKey,
}
"""OSV ecosystem name -> sort key. Gradle locks Maven coordinates, so it is ``Maven``."""


def sort_key(ecosystem: str) -> Callable[[str], Any]:
    """The key function that orders versions of ``ecosystem`` (``sorted(vs, key=...)``)."""
    try:
        return ECOSYSTEMS[ecosystem.split(":", 1)[0]]
    except KeyError:
        raise UnknownEcosystem(f"no version ordering for ecosystem {ecosystem!r}") from None


@functools.lru_cache(maxsize=65_536)
def version_key(ecosystem: str, version: str) -> Any:
    """``sort_key(ecosystem)(version)``, remembered: parsing a version (PEP 440, Maven)
    costs more than comparing it, and a scan and its fix loop compare the same bounds
    many times."""
    return sort_key(ecosystem)(version)


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, with or after ``b`` under the ecosystem's rules."""
    key = sort_key(ecosystem)
    return _cmp(key(a), key(b))
