"""What not to scan: route and field exclusions, and typed fields.

A :class:`RoutePolicy` describes one route. The middleware (or any caller)
builds it from what it knows about the matched endpoint and passes it as
``Inspector.inspect(parts, route_policy=...)``:

- ``exempt``: the whole route is not inspected (a SQL console);
- ``exempt_fields``: field paths not inspected, with prefix semantics
  (``body.content`` also covers ``body.content.0.text``);
- ``typed_fields``: field path -> declared type (``int``, ``float``,
  ``bool``, ``uuid``, ``date``, ``datetime``, ``enum``). A value that
  conforms to its declared type is not scanned as free text; one that does
  not conform is scanned (the framework will reject it anyway, and the
  attempt is still worth reporting).

Settings-level exclusions (``detection_exclusions``: route path, exact or a
prefix ending in ``*`` -> field names, ``["*"]`` = whole route) are merged
in by the inspector through :class:`ExclusionTable`.

:class:`CredentialFields` names the fields that hold credentials (passwords,
one-time codes, tokens): opaque data the app hashes or compares, never
markup or SQL it runs. A body field with such a key is not inspected; in any
other field (a query parameter, a header, a body read whole as text) a finding
is kept without its excerpt, so no piece of a credential reaches an alert, a
log line or the audit trail.

:func:`context_score` weighs a rule hit by the field it was found in: some
families cannot apply to some fields (a URL in a ``Referer`` or ``Origin`` is
where the browser came from; the server never fetches it, so it is no SSRF or
remote include).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

import re2

__all__ = [
    "DEFAULT_CREDENTIAL_FIELDS",
    "FIELD_TYPES",
    "REDACTED",
    "CredentialFields",
    "ExclusionTable",
    "RoutePolicy",
    "conforms",
    "context_score",
    "field_excluded",
]

# Field -> families whose rules mean nothing there. Referer and Origin name the
# page the browser came from (http://127.0.0.1:8011 on a developer's machine);
# the server never fetches them.
_NOT_APPLICABLE: dict[str, frozenset[str]] = {
    "header.referer": frozenset({"ssrf", "rfi"}),
    "header.origin": frozenset({"ssrf", "rfi"}),
}
# Names of fields that hold a file name or path (show=, content_dir=, file=):
# there an absolute, drive or remote path is the attack itself.
# Compound names only by their last word (content_dir, not page_url).
_FILE_FIELD = re2.compile(
    r"(?i)^(?:file|filename|filepath|path|page|include|inc|dir|folder|template|tpl|show|doc"
    r"|document|module|load|view|conf|config|root|prefix|download|read|lang)$"
    r"|[_-](?:file|filename|path|dir|folder|template|include|inc)$"
)
_IN_FILE_FIELDS = frozenset({"pt-windows-drive", "rfi-remote-value", "pt-dotenv"})
# Markup in a URL (query, path, cookie, header) is reflected into pages; in a
# body field it is content (comments, docs).
_IN_URL_FIELDS = frozenset({"xss-html-named-element"})
# Rules that are evidence only in their context (a URL is an ordinary value).
_CONTEXT_ONLY = frozenset({"rfi-remote-value", "xss-html-named-element"})
_URL_FIELD_PREFIXES = ("query.", "path", "cookie.", "header.")
_CRITICAL = 5

_TYPE_PATTERNS: dict[str, object] = {
    "int": re2.compile(r"\s*[+-]?\d{1,40}\s*"),
    "float": re2.compile(
        r"\s*[+-]?(?:\d{1,40}(?:\.\d{0,40})?|\.\d{1,40})(?:e[+-]?\d{1,4})?\s*|\s*(?:inf|-inf|nan)\s*"
    ),
    "bool": re2.compile(r"(?i)true|false|[01]|yes|no|on|off"),
    "uuid": re2.compile(
        r"(?i)\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?"
    ),
    "date": re2.compile(r"\d{4}-\d{2}-\d{2}"),
    "datetime": re2.compile(
        r"(?i)\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:z|[+-]\d{2}:?\d{2})?)?"
        r"|\d{1,12}(?:\.\d{1,9})?"
    ),
    "enum": re2.compile(r"[\w.:-]{1,64}"),
}
FIELD_TYPES = frozenset(_TYPE_PATTERNS)


def conforms(value: str, field_type: str) -> bool:
    """Is ``value`` a well-formed ``field_type``? Unknown types never conform."""
    pattern = _TYPE_PATTERNS.get(field_type)
    return pattern is not None and pattern.fullmatch(value) is not None  # type: ignore[attr-defined]


def context_score(field: str, family: str, score: int, rule_id: str = "") -> int:
    """The score a hit of ``family`` (rule ``rule_id``) is worth in ``field``
    (0: none): families that cannot apply to a field count nothing; a drive,
    remote or ``.env`` path in a file-name field and named markup in a URL
    count as critical, and the last two count nothing elsewhere."""
    if family in _NOT_APPLICABLE.get(field, ()):
        return 0
    if rule_id in _IN_FILE_FIELDS:
        name = field.rpartition(".")[2]
        if _FILE_FIELD.search(name) is not None:
            return max(score, _CRITICAL)
    elif rule_id in _IN_URL_FIELDS and field.startswith(_URL_FIELD_PREFIXES):
        return max(score, _CRITICAL)
    return 0 if rule_id in _CONTEXT_ONLY else score


def field_excluded(name: str, excluded: frozenset[str]) -> bool:
    """``name`` is excluded itself or lies under an excluded prefix."""
    if not excluded:
        return False
    if name in excluded:
        return True
    head = name
    while "." in head:
        head = head.rpartition(".")[0]
        if head in excluded:
            return True
    return False


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """Per-route inspection policy (see the module docstring)."""

    exempt: bool = False
    exempt_fields: frozenset[str] = frozenset()
    typed_fields: Mapping[str, str] = field(default_factory=dict)

    def merged(self, other: RoutePolicy | None) -> RoutePolicy:
        if other is None:
            return self
        return RoutePolicy(
            exempt=self.exempt or other.exempt,
            exempt_fields=self.exempt_fields | other.exempt_fields,
            typed_fields={**self.typed_fields, **other.typed_fields},
        )


class ExclusionTable:
    """Settings exclusions: route path (exact, or prefix with ``*``) -> fields."""

    def __init__(self, exclusions: Mapping[str, Sequence[str]] | None) -> None:
        self._exact: dict[str, RoutePolicy] = {}
        self._prefixes: list[tuple[str, RoutePolicy]] = []
        for route, names in (exclusions or {}).items():
            fields = frozenset(n.strip() for n in names if n.strip())
            policy = RoutePolicy(exempt="*" in fields, exempt_fields=fields - {"*"})
            if route.endswith("*"):
                self._prefixes.append((route[:-1], policy))
            else:
                self._exact[route] = policy
        self._prefixes.sort(key=lambda item: -len(item[0]))

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefixes)

    def lookup(self, route: str | None, path: str) -> RoutePolicy | None:
        """The policy for a route template or, failing that, the decoded path."""
        result: RoutePolicy | None = None
        for key in (route, unquote(path.partition("?")[0])):
            if key is None:
                continue
            policy = self._exact.get(key)
            if policy is None:
                policy = next((p for prefix, p in self._prefixes if key.startswith(prefix)), None)
            if policy is not None:
                result = policy if result is None else result.merged(policy)
        return result


DEFAULT_CREDENTIAL_FIELDS: tuple[str, ...] = (
    *("password", "passwd", "passphrase", "password1", "password2", "new_password"),
    *("current_password", "old_password", "password_confirm", "password_confirmation"),
    *("confirm_password", "secret", "client_secret", "token", "access_token"),
    *("refresh_token", "id_token", "api_key", "otp", "totp", "otp_code", "totp_code"),
    *("mfa_code", "recovery_code", "backup_code"),
)
"""Keys of credential fields, matched whatever their case and ``_``/``-``
(``newPassword``, ``new-password``); the ``CREDENTIAL_FIELDS`` setting."""
REDACTED = "[redacted]"
"""The excerpt of a finding in a field that may hold a credential."""
_KEY_NOISE = str.maketrans("", "", "_-")


def _folded(key: str) -> str:
    return key.lower().translate(_KEY_NOISE)


class CredentialFields:
    """Which fields hold credentials, by their own key (the last part of the field
    name: ``body.user.password``, ``query.api_key``, ``header.x-api-key`` without
    its ``x-``)."""

    def __init__(self, names: Sequence[str]) -> None:
        self._keys = frozenset(_folded(name.strip()) for name in names if name.strip())
        self._needles = tuple(key.encode("utf-8") for key in sorted(self._keys))

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __call__(self, field: str) -> bool:
        """Whether ``field`` (``body.password``, ``query.token``...) holds a credential."""
        kind, _, rest = field.partition(".")
        key = rest.rpartition(".")[2]
        if kind == "header" and key[:2] in ("x-", "x_"):
            key = key[2:]
        return _folded(key) in self._keys

    def named_in(self, text: bytes) -> bool:
        """Whether ``text`` (a body read whole) names a credential field, in any case
        or spelling: then none of it may be quoted."""
        folded = text.lower().translate(None, b"_-")
        return any(needle in folded for needle in self._needles)
