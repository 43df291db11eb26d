"""Spoofing table for ClientIPResolver: who is the client, whatever the headers say."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.settings import SecuritySettings

PROXY = "10.0.0.1"
Headers = list[tuple[str, str]]


def _scope(client: tuple[str, int] | None, headers: Headers) -> dict[str, object]:
    return {
        "type": "http",
        "client": client,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
    }


CIDR_CASES = [
    # -- no proxy in front: headers are the client's own words ---------------------------
    pytest.param(
        "198.51.100.9",
        [("X-Forwarded-For", "1.1.1.1")],
        "198.51.100.9",
        id="untrusted-peer-xff-ignored",
    ),
    pytest.param(
        "198.51.100.9",
        [("Forwarded", "for=1.1.1.1")],
        "198.51.100.9",
        id="untrusted-peer-forwarded-ignored",
    ),
    pytest.param("198.51.100.9", [], "198.51.100.9", id="untrusted-peer-no-header"),
    # -- one trusted proxy ---------------------------------------------------------------
    pytest.param(PROXY, [("X-Forwarded-For", "203.0.113.5")], "203.0.113.5", id="proxy-one-hop"),
    pytest.param(PROXY, [], PROXY, id="proxy-without-header-is-the-client"),
    pytest.param(
        PROXY,
        [("X-Forwarded-For", "6.6.6.6, 203.0.113.5")],
        "203.0.113.5",
        id="spoof-leftmost-ignored",
    ),
    pytest.param(
        PROXY,
        [("X-Forwarded-For", "127.0.0.1, 203.0.113.5")],
        "203.0.113.5",
        id="spoof-localhost-ignored",
    ),
    pytest.param(
        PROXY,
        [("X-Forwarded-For", "10.0.0.2, 203.0.113.5")],
        "203.0.113.5",
        id="spoof-proxy-address-ignored",
    ),
    pytest.param(
        PROXY, [("X-Forwarded-For", "203.0.113.5, 10.0.0.3")], "203.0.113.5", id="two-trusted-hops"
    ),
    pytest.param(
        PROXY, [("X-Forwarded-For", "10.0.0.4, 10.0.0.3")], "10.0.0.4", id="all-hops-trusted"
    ),
    # -- repeated header lines form one list (RFC 9110 5.3) ------------------------------
    pytest.param(
        PROXY,
        [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.5")],
        "203.0.113.5",
        id="repeated-lines-last-wins",
    ),
    pytest.param(
        PROXY,
        [("X-Forwarded-For", "203.0.113.5"), ("X-Forwarded-For", "10.0.0.3")],
        "203.0.113.5",
        id="repeated-lines-trusted-last",
    ),
    # -- garbage ---------------------------------------------------------------------
    pytest.param(PROXY, [("X-Forwarded-For", "not-an-ip")], PROXY, id="garbage-falls-back-to-peer"),
    pytest.param(
        PROXY,
        [("X-Forwarded-For", "6.6.6.6, garbage, 10.0.0.3")],
        "10.0.0.3",
        id="garbage-stops-the-walk",
    ),
    pytest.param(
        PROXY, [("X-Forwarded-For", " , 203.0.113.5 ,")], "203.0.113.5", id="empty-entries-skipped"
    ),
    pytest.param(
        PROXY,
        [("X-Forwarded-For", ", ".join(["6.6.6.6"] * 5000 + ["203.0.113.5"]))],
        "203.0.113.5",
        id="huge-chain",
    ),
    # -- ports and IPv6 --------------------------------------------------------------------
    pytest.param(
        PROXY, [("X-Forwarded-For", "203.0.113.5:4711")], "203.0.113.5", id="ipv4-with-port"
    ),
    pytest.param(PROXY, [("X-Forwarded-For", "2001:db8::1")], "2001:db8::1", id="ipv6-bare"),
    pytest.param(
        PROXY, [("X-Forwarded-For", "[2001:db8::1]:443")], "2001:db8::1", id="ipv6-bracket-port"
    ),
    pytest.param(
        PROXY, [("X-Forwarded-For", "2001:0db8:0000::0001")], "2001:db8::1", id="ipv6-normalised"
    ),
    pytest.param(
        PROXY, [("X-Forwarded-For", "::ffff:203.0.113.5")], "203.0.113.5", id="ipv4-mapped-ipv6"
    ),
    pytest.param("fd00::1", [("X-Forwarded-For", "203.0.113.5")], "203.0.113.5", id="ipv6-proxy"),
    pytest.param(
        "::ffff:10.0.0.1",
        [("X-Forwarded-For", "203.0.113.5")],
        "203.0.113.5",
        id="ipv4-mapped-proxy",
    ),
    pytest.param(
        "2001:db8::99", [("X-Forwarded-For", "1.1.1.1")], "2001:db8::99", id="ipv6-untrusted-peer"
    ),
]


@pytest.mark.parametrize(("peer", "headers", "expected"), CIDR_CASES)
def test_trusted_cidrs(peer: str, headers: Headers, expected: str) -> None:
    """Only hops appended by trusted proxies are skipped, right to left."""
    resolver = ClientIPResolver(["10.0.0.0/8", "fd00::/8"])
    assert resolver.resolve(_scope((peer, 50000), headers)) == expected


FORWARDED_CASES = [
    pytest.param([("Forwarded", "for=203.0.113.5")], "203.0.113.5", id="simple"),
    pytest.param(
        [("Forwarded", 'for="[2001:db8:cafe::17]:4711"')],
        "2001:db8:cafe::17",
        id="quoted-ipv6-port",
    ),
    pytest.param(
        [("Forwarded", "For=6.6.6.6, for=203.0.113.5;proto=https;by=10.0.0.1")],
        "203.0.113.5",
        id="case-and-params",
    ),
    pytest.param(
        [("Forwarded", "for=6.6.6.6"), ("Forwarded", 'for="203.0.113.5:80"')],
        "203.0.113.5",
        id="repeated-lines",
    ),
    pytest.param([("Forwarded", "for=unknown")], PROXY, id="unknown-falls-back"),
    pytest.param(
        [("Forwarded", "for=_hidden, for=10.0.0.2")], "10.0.0.2", id="obfuscated-stops-walk"
    ),
    pytest.param(
        [("Forwarded", 'for="6.6.6.6,7.7.7.7", for=203.0.113.5')], "203.0.113.5", id="quoted-comma"
    ),
    pytest.param([("X-Forwarded-For", "6.6.6.6")], PROXY, id="xff-ignored-in-forwarded-mode"),
]


@pytest.mark.parametrize(("headers", "expected"), FORWARDED_CASES)
def test_forwarded_header(headers: Headers, expected: str) -> None:
    """RFC 7239 Forwarded is parsed with quotes, ports and parameters; only it is read."""
    resolver = ClientIPResolver(["10.0.0.0/8"], header="forwarded")
    assert resolver.resolve(_scope((PROXY, 1), headers)) == expected


def test_xff_mode_ignores_forwarded() -> None:
    """In X-Forwarded-For mode a client-sent Forwarded header changes nothing."""
    resolver = ClientIPResolver(["10.0.0.0/8"])
    assert resolver.resolve(_scope((PROXY, 1), [("Forwarded", "for=6.6.6.6")])) == PROXY


HOP_CASES = [
    pytest.param(1, "203.0.113.5", "203.0.113.5", id="one-hop"),
    pytest.param(1, "6.6.6.6, 203.0.113.5", "203.0.113.5", id="one-hop-spoof"),
    pytest.param(2, "6.6.6.6, 203.0.113.5, 10.1.1.1", "203.0.113.5", id="two-hops-spoof"),
    pytest.param(2, "203.0.113.5", "203.0.113.5", id="short-chain"),
    pytest.param(1, "garbage", "192.0.2.1", id="garbage-at-hop"),
]


@pytest.mark.parametrize(("hops", "xff", "expected"), HOP_CASES)
def test_hop_count(hops: int, xff: str, expected: str) -> None:
    """With a hop count the client is that many entries from the right."""
    resolver = ClientIPResolver(trusted_hops=hops)
    assert resolver.resolve(_scope(("192.0.2.1", 1), [("X-Forwarded-For", xff)])) == expected


NO_ADDRESS_CASES = [
    pytest.param(None, 0, None, id="no-client"),
    pytest.param(("", 0), 0, None, id="empty-client"),
    pytest.param(("/run/app.sock", 0), 0, None, id="unix-socket-path"),
    pytest.param(None, 1, "203.0.113.5", id="unix-socket-behind-proxy-hops"),
]


@pytest.mark.parametrize(("client", "hops", "expected"), NO_ADDRESS_CASES)
def test_missing_or_unix_client(
    client: tuple[str, int] | None, hops: int, expected: str | None
) -> None:
    """A peer without an IP resolves to None unless a hop count trusts the proxy."""
    resolver = ClientIPResolver(trusted_hops=hops)
    scope = _scope(client, [("X-Forwarded-For", "203.0.113.5")])
    assert resolver.resolve(scope) == expected


def test_unix_socket_not_trusted_by_cidr() -> None:
    """A Unix-socket peer never matches a CIDR, so its headers are not believed."""
    resolver = ClientIPResolver(["10.0.0.0/8"])
    assert resolver.resolve(_scope(None, [("X-Forwarded-For", "203.0.113.5")])) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"trusted_proxies": ["10.0.0.0/33"]}, "10.0.0.0/33", id="bad-cidr"),
        pytest.param({"trusted_hops": -1}, "trusted_hops", id="negative-hops"),
        pytest.param({"header": "x-real-ip"}, "x-real-ip", id="bad-header"),
    ],
)
def test_bad_configuration(kwargs: dict[str, object], message: str) -> None:
    """Invalid configuration fails at construction with a message naming the value."""
    with pytest.raises(ConfigurationError, match=message):
        ClientIPResolver(**kwargs)  # type: ignore[arg-type]


def test_from_settings() -> None:
    """The settings' proxies and hop count build the resolver."""
    settings = SecuritySettings(_env_file=None, trusted_proxies=["10.0.0.0/8"])
    resolver = ClientIPResolver.from_settings(settings)
    assert (
        resolver.resolve(_scope((PROXY, 1), [("X-Forwarded-For", "203.0.113.5")])) == "203.0.113.5"
    )


@pytest.mark.anyio
async def test_through_a_real_app() -> None:
    """A spoofed X-Forwarded-For from an untrusted peer changes nothing in an app."""
    resolver = ClientIPResolver(["10.0.0.0/8"])

    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(resolver.resolve(request.scope) or "-")

    app = Starlette(routes=[Route("/", whoami)])
    for peer, expected in (("203.0.113.7", "203.0.113.7"), (PROXY, "1.2.3.4")):
        transport = httpx.ASGITransport(app=app, client=(peer, 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/", headers={"X-Forwarded-For": "6.6.6.6, 1.2.3.4"})
        assert response.text == expected
