"""TrustedHosts: which Host header values the app answers to (issue 12)."""

from __future__ import annotations

import pytest

from pynomaly_security import SecuritySettings
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.network.hosts import DEFAULT_ALLOWED_HOSTS, TrustedHosts


@pytest.mark.parametrize(
    ("raw", "allowed"),
    [
        (b"localhost", True),
        (b"localhost:8000", True),
        (b"LocalHost:8000", True),
        (b"localhost.", True),
        (b"127.0.0.1:1", True),
        (b"[::1]:8000", True),
        (b"[::1]", True),
        (b"testserver", True),
        (b"evil.example", False),
        (b"localhost.evil.example", False),
        (b"evil.localhost", False),
        (b"localhost@evil.example", False),
        (b"localhost:80@evil.example", False),
        (b"localhost/evil", False),
        (b"localhost:", False),
        (b"localhost:123456", False),
        (b"localhost\r\nx", False),
        (b"local host", False),
        (b"[::2]", False),
        (b"[::1", False),
        (b"\xfflocalhost", False),
        (b"", False),
        (None, False),
    ],
)
def test_default_hosts_are_local_names(raw: bytes | None, allowed: bool) -> None:
    hosts = TrustedHosts(DEFAULT_ALLOWED_HOSTS)
    assert hosts.allows(raw) is allowed
    assert hosts.allows(raw) is allowed  # and again, from the memory of allowed values


def test_wildcards_follow_starlette() -> None:
    """``*.example.com`` is any subdomain, not the domain itself; ``*`` is any host."""
    hosts = TrustedHosts(["*.example.com", "example.org", "::1"])
    assert hosts.allows(b"api.example.com") and hosts.allows(b"a.b.example.com:443")
    assert not hosts.allows(b"example.com") and not hosts.allows(b"evilexample.com")
    assert hosts.allows(b"EXAMPLE.ORG") and not hosts.allows(b"www.example.org")
    assert hosts.allows(b"[::1]:8443")  # a bare IPv6 pattern matches its bracketed form
    any_host = TrustedHosts(["*"])
    assert any_host.allow_any and any_host.allows(b"anything.at.all") and any_host.allows(None)


@pytest.mark.parametrize(
    "pattern",
    ["http://example.com", "example.com:8000", "*example.com", "ex ample.com", "a/b", "ex*.com"],
)
def test_bad_patterns_fail_at_construction(pattern: str) -> None:
    with pytest.raises(ConfigurationError, match="ALLOWED_HOSTS"):
        TrustedHosts([pattern])
    with pytest.raises(ValueError, match=r"allowed_hosts|ALLOWED_HOSTS"):
        SecuritySettings(_env_file=None, allowed_hosts=[pattern])  # type: ignore[call-arg]


def test_an_empty_list_is_refused_with_the_way_out() -> None:
    with pytest.raises(ConfigurationError, match=r"set it to \*"):
        TrustedHosts([])


def test_settings_read_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNOMALY_SECURITY__ALLOWED_HOSTS", "api.example.com, *.example.net")
    settings = SecuritySettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.allowed_hosts == ["api.example.com", "*.example.net"]


def test_memory_and_refusal_log_are_bounded() -> None:
    """1000 distinct allowed names and 1000 refused ones: the memory of allowed names
    is emptied when full, and only the first 256 refused names are worth a log line."""
    hosts = TrustedHosts(["*.example.com"])
    first = []
    for i in range(1000):
        assert hosts.allows(b"h%d.example.com" % i)
        first.append(hosts.first_refusal(b"h%d.evil" % i))
    assert len(hosts.seen) == 1000 % 256  # emptied at 256, three times
    assert first == [True] * 256 + [False] * 744
    assert hosts.first_refusal(b"h0.evil") is False  # already named once
