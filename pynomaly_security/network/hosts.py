"""Trusted hosts: which ``Host`` header values the app answers to.

Starlette builds ``request.url`` (and so ``url_for``, the ``Location`` of its
trailing-slash redirect and of ``HTTPSRedirectMiddleware``, and any absolute
link a page prints) from the request's ``Host`` header. A client that names
another host gets answers that point to it: a redirect to
``http://evil.example/items``, a password-reset link or a cached page naming
it. So a request whose ``Host`` is not one of the app's names is refused with
``400`` before the app sees it, with the semantics of Starlette's
``TrustedHostMiddleware``: patterns are exact names or ``*.example.com``
(any subdomain, not the domain itself), ``*`` allows every host, the port is
not part of the match, and a request without a ``Host`` header is refused.
Beyond Starlette: names compare case-insensitively and without a trailing dot,
IPv6 literals (``[::1]:8000``) parse, a value that is not a host name is
refused (``evil.example/x``, ``a@b``), and so is a request with two ``Host``
headers (RFC 9112 §3.2: a server must answer 400), which Starlette's
``request.url`` would read as the first.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from pynomaly_security.exceptions import ConfigurationError

__all__ = ["DEFAULT_ALLOWED_HOSTS", "TrustedHosts"]

DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]", "testserver")
"""Local names only: the demo and a development server on this machine, and the
host name of Starlette's ``TestClient`` and of httpx's ASGI examples, so an
app's own test suite keeps passing. A deployed app names its hosts."""

# A Host header value: a name (letters, digits, '.', '-', '_') or a bracketed IPv6
# literal, and an optional port (RFC 9110 §7.2, RFC 3986 §3.2.2, minus the
# percent-encoded and sub-delims forms no real client sends).
_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?")
_NAME = re.compile(r"[a-z0-9._-]+|\[[0-9a-f:.]+\]")
_MAX_SEEN = 256


class TrustedHosts:
    """The allowed ``Host`` names, checked once per distinct header value.

    Args:
        allowed: names (``api.example.com``, ``127.0.0.1``, ``[::1]``), wildcard
            domains (``*.example.com``) or ``*`` for any host. Raises
            :class:`~pynomaly_security.ConfigurationError` for an empty list, a
            pattern with a port or a scheme, or a malformed wildcard.
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        patterns = [p.strip() for p in allowed]
        if not patterns:
            raise ConfigurationError(
                "PYNOMALY_SECURITY__ALLOWED_HOSTS is empty, which would refuse every "
                "request: name the app's hosts (e.g. api.example.com,*.example.com) "
                "or set it to * to accept any Host header"
            )
        self.allow_any = "*" in patterns
        exact: set[str] = set()
        suffixes: list[str] = []
        for pattern in patterns:
            if pattern == "*":
                continue
            name = _normalise(pattern.removeprefix("*."))
            if name is None or (pattern.startswith("*") and not pattern.startswith("*.")):
                raise ConfigurationError(
                    f"PYNOMALY_SECURITY__ALLOWED_HOSTS: {pattern!r} is not a host name: "
                    "use a name or IP without scheme or port (api.example.com, 10.0.0.5, "
                    "[::1]), '*.example.com' for its subdomains, or '*' for any host"
                )
            if pattern.startswith("*."):
                suffixes.append("." + name)
            else:
                exact.add(name)
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes)
        self.seen: set[bytes] = set()
        """Raw header values already allowed (bounded): the usual request's check is
        this one set lookup."""
        self._refused: set[bytes] = set()

    def allows(self, raw: bytes | None) -> bool:
        """Whether a request whose (only) ``Host`` header is ``raw`` may proceed."""
        if self.allow_any:
            return True
        if raw is None:
            return False
        if raw in self.seen:
            return True
        if _HOST.fullmatch(raw) is None:
            return False
        host = raw.decode("ascii").lower()
        if host.startswith("["):
            host = host[: host.index("]") + 1]
        else:
            host = host.partition(":")[0].removesuffix(".")
        if host in self._exact or host.endswith(self._suffixes):
            if len(self.seen) >= _MAX_SEEN:
                self.seen.clear()  # bounded: the app's few names fill it again at once
            self.seen.add(raw)
            return True
        return False

    def first_refusal(self, raw: bytes | None) -> bool:
        """Whether ``raw`` is refused for the first time (bounded): the refusal is
        then worth a log line naming it (a missing name in the settings shows at
        once), and a flood of made-up hosts is not a flood of log lines."""
        key = b"" if raw is None else raw[:256]
        if key in self._refused or len(self._refused) >= _MAX_SEEN:
            return False
        self._refused.add(key)
        return True


def _normalise(pattern: str) -> str | None:
    """A configured name in the form :meth:`TrustedHosts.allows` compares, or None."""
    name = pattern.lower().removesuffix(".")
    if ":" in name and not name.startswith("["):
        try:  # a bare IPv6 literal: written in brackets in a Host header
            name = f"[{ipaddress.IPv6Address(name).compressed}]"
        except ValueError:
            return None  # a name with a port, or a URL
    return name if _NAME.fullmatch(name) else None
