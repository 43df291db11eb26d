"""One resolver of the client IP, used by every component.

``X-Forwarded-For`` is believed only when the direct peer is a configured
proxy, and then read right to left: each hop appended by a trusted proxy is
skipped, and the first address not in the trusted set is the client. Reading
the left-most entry (what many rate limiters do) lets any client pick its own
IP. References: MDN "X-Forwarded-For" (Security and privacy concerns),
uvicorn ``ProxyHeadersMiddleware`` / ``_TrustedHosts``, RFC 7239.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

from pynomaly_security.exceptions import ConfigurationError

__all__ = ["ClientIPResolver"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(text: str) -> _Address | None:
    text = text.strip().strip('"')
    if not text:
        return None
    if text.startswith("["):  # RFC 7239 quoted IPv6, possibly with a port: "[::1]:443"
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class ClientIPResolver:
    """Resolve the client address of an ASGI request.

    Args:
        trusted_proxies: CIDRs (or single addresses) of proxies whose forwarding
            headers are believed.
        trusted_hops: alternatively, the number of proxies in front of the app
            (each appends one ``X-Forwarded-For`` entry); used when no CIDRs
            are given. 0 means forwarding headers are ignored.
    """

    def __init__(self, trusted_proxies: Iterable[str] = (), trusted_hops: int = 0) -> None:
        networks: list[_Network] = []
        for item in trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"trusted proxy {item!r} is not an IP address or CIDR"
                ) from exc
        if trusted_hops < 0:
            raise ConfigurationError("trusted_hops must be >= 0")
        self._networks = tuple(networks)
        self._hops = trusted_hops

    def is_trusted(self, addr: _Address | None) -> bool:
        return addr is not None and any(addr in net for net in self._networks)

    def resolve(self, scope: Scope) -> str | None:
        """The client IP as a string, or ``None`` when unknown (e.g. a Unix socket)."""
        client = scope.get("client")
        peer = _parse_ip(client[0]) if client else None
        if not self._networks and not self._hops:
            return str(peer) if peer is not None else None
        if self._networks and not self.is_trusted(peer):
            return str(peer) if peer is not None else None
        chain = self._forwarded_chain(scope)
        if not chain:
            return str(peer) if peer is not None else None
        if self._networks:
            # Walk right to left past trusted proxies; the first untrusted hop is the client.
            for hop in reversed(chain):
                if hop is None:
                    break  # garbage in the chain: stop believing it
                if not self.is_trusted(hop):
                    return str(hop)
            # Every hop is a trusted proxy: the left-most is as far as we can see.
            first = chain[0]
            return str(first) if first is not None else (str(peer) if peer else None)
        # Hop count: the client is the entry `hops` positions from the right.
        if len(chain) < self._hops:
            return str(peer) if peer is not None else None
        hop = chain[-self._hops]
        return str(hop) if hop is not None else (str(peer) if peer else None)

    @staticmethod
    def _forwarded_chain(scope: Scope) -> list[_Address | None]:
        xff: list[str] = []
        forwarded: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                # Repeated header lines are one list, in order (RFC 9110 5.3).
                xff.extend(value.decode("latin-1").split(","))
            elif name == b"forwarded":
                for element in value.decode("latin-1").split(","):
                    for pair in element.split(";"):
                        key, _, val = pair.strip().partition("=")
                        if key.lower() == "for":
                            forwarded.append(val)
        entries = xff if xff else forwarded
        return [_parse_ip(e) for e in entries if e.strip()]
