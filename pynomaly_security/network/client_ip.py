"""One resolver of the client IP, used by every component.

``X-Forwarded-For`` (or RFC 7239 ``Forwarded``) is believed only when the direct
peer is a configured proxy, and then read right to left: each hop appended by a
trusted proxy is skipped, and the first address not in the trusted set is the
client. Reading the left-most entry (what many rate limiters do, e.g. slowapi,
and fastapi-guard before CVE-2025-46814) lets any client pick its own IP.

References: MDN "X-Forwarded-For" (Security and privacy concerns), RFC 7239
(``Forwarded``), RFC 9110 section 5.3 (repeated field lines form one list),
uvicorn ``ProxyHeadersMiddleware`` / ``_TrustedHosts``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from starlette.types import Scope

from pynomaly_security.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = ["ClientIPResolver", "ForwardedHeader"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
ForwardedHeader = Literal["x-forwarded-for", "forwarded"]

# A chain longer than this is cut from the left: only the right-most entries can
# have been written by our proxies, and parsing an attacker's 10k-entry header
# would cost CPU for nothing.
_MAX_HOPS = 64


def _parse_ip(text: str) -> _Address | None:
    """An address from a chain entry or peer, or None for garbage/obfuscated ids.

    Accepts ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``, ``[2001:db8::1]:443``
    and RFC 7239 quoted forms; ``unknown`` and ``_hidden`` identifiers give None.
    """
    text = text.strip().strip('"').strip()
    if not text:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 has two or more colons
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        # ::ffff:1.2.3.4 and 1.2.3.4 are one client; keying them apart halves every limit.
        return addr.ipv4_mapped
    return addr


def _split_quoted(value: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes (RFC 7239 values may be quoted)."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _forwarded_param(element: str, name: str) -> str:
    """The value of parameter ``name`` (lower case) in one ``Forwarded`` element
    (RFC 7239: ``for=...;proto=...``), its last occurrence, or ``""``."""
    found = ""
    for pair in _split_quoted(element, ";"):
        key, _, val = pair.strip().partition("=")
        if key.strip().lower() == name:
            found = val
    return found


class ClientIPResolver:
    """Resolve the client address of an ASGI request.

    Args:
        trusted_proxies: CIDRs (or single addresses) of proxies whose forwarding
            headers are believed.
        trusted_hops: alternatively, the number of proxies in front of the app
            (each appends one entry); used when no CIDRs are given, and the way
            to trust a proxy on a Unix socket (it has no address to match).
            0 means forwarding headers are ignored.
        header: which header the proxies write. Only one is read: if the
            proxies write ``Forwarded``, an ``X-Forwarded-For`` sent by the
            client would otherwise pass through untouched and be believed.

    References:
        RFC 7239; MDN X-Forwarded-For "Selecting an IP address".
    """

    def __init__(
        self,
        trusted_proxies: Iterable[str] = (),
        trusted_hops: int = 0,
        *,
        header: ForwardedHeader = "x-forwarded-for",
    ) -> None:
        networks: list[_Network] = []
        for item in trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"trusted proxy {item!r} is not an IP address or CIDR"
                ) from exc
        if trusted_hops < 0:
            raise ConfigurationError(f"trusted_hops must be >= 0, got {trusted_hops}")
        if header not in ("x-forwarded-for", "forwarded"):
            raise ConfigurationError(
                f"header must be 'x-forwarded-for' or 'forwarded', got {header!r}"
            )
        self._networks = tuple(networks)
        self._hops = trusted_hops
        self._header = header.encode("latin-1")

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> ClientIPResolver:
        """The resolver the settings describe (proxies and hop count)."""
        return cls(settings.trusted_proxies, settings.trusted_proxy_hops)

    @property
    def trusts_forwarding(self) -> bool:
        """Whether any forwarding header can ever be believed (proxies or hops set)."""
        return bool(self._networks or self._hops)

    def is_trusted(self, addr: _Address | None) -> bool:
        return addr is not None and any(addr in net for net in self._networks)

    def resolve(self, scope: Scope) -> str | None:
        """The client IP as a string, or ``None`` when unknown (e.g. a Unix socket
        peer without a trusted proxy in front)."""
        client = scope.get("client")
        # Unix sockets: uvicorn gives client None; others give ("", 0) or a path.
        peer = _parse_ip(str(client[0])) if client else None
        peer_text = str(peer) if peer is not None else None
        if not self._networks and not self._hops:
            return peer_text
        if self._networks and not self.is_trusted(peer):
            return peer_text  # headers from an untrusted peer are the client's own words
        chain = self._forwarded_chain(scope)
        if not chain:
            return peer_text
        if self._networks:
            return self._walk_trusted(chain, peer_text)
        # Hop count: each of our `hops` proxies appended one entry on the right.
        hop = chain[-self._hops] if len(chain) >= self._hops else chain[0]
        # A short chain means a proxy was bypassed; its left-most entry is still one
        # of ours. Garbage where a proxy should have written: fall back to the peer.
        return str(hop) if hop is not None else peer_text

    def forwarded_https(self, scope: Scope) -> bool:
        """Whether the nearest trusted proxy says the client used HTTPS
        (``X-Forwarded-Proto`` or ``Forwarded: proto=``, its right-most entry)."""
        if not self._networks and not self._hops:
            return False
        if self._networks:
            client = scope.get("client")
            if not self.is_trusted(_parse_ip(str(client[0])) if client else None):
                return False
        proto = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-proto":
                proto = value.decode("latin-1").rsplit(",", 1)[-1]
            elif name == b"forwarded":
                element = _split_quoted(value.decode("latin-1"), ",")[-1]
                proto = _forwarded_param(element, "proto") or proto
        return proto.strip().strip('"').lower() == "https"

    def _walk_trusted(self, chain: list[_Address | None], peer_text: str | None) -> str | None:
        nearest = peer_text  # the closest address we have reason to believe
        for hop in reversed(chain):
            if hop is None:
                # A trusted proxy never writes garbage, so everything from here
                # leftwards is client-supplied: stop at the last believed hop.
                return nearest
            if not self.is_trusted(hop):
                return str(hop)
            nearest = str(hop)
        # Every hop is one of our proxies: the left-most is as far as we can see.
        return nearest

    def _forwarded_chain(self, scope: Scope) -> list[_Address | None]:
        entries: list[str] = []
        for name, value in scope.get("headers", ()):
            if name != self._header:
                continue
            text = value.decode("latin-1")
            # Repeated header lines are one list, in order (RFC 9110 5.3).
            if self._header == b"x-forwarded-for":
                entries.extend(text.split(","))
            else:
                for element in _split_quoted(text, ","):
                    # An element without for= is still a hop (an obfuscated one).
                    entries.append(_forwarded_param(element, "for") or "unknown")
        entries = [e for e in entries if e.strip()][-_MAX_HOPS:]
        return [_parse_ip(e) for e in entries]
