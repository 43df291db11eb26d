"""TOTP: enrolment URI, drift window, replay refusal across workers, recovery codes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from cryptography.fernet import Fernet, MultiFernet

from pynomaly_security.auth.errors import AuthUnavailable
from pynomaly_security.auth.totp import TOTPManager
from pynomaly_security.exceptions import ConfigurationError, InvalidToken
from pynomaly_security.storage import create_store
from pynomaly_security.storage.memory import MemoryStore

from .conftest import Clock

KEY = Fernet.generate_key()


def manager(store: MemoryStore, clock: Clock, **kwargs: object) -> TOTPManager:
    return TOTPManager(store, MultiFernet([Fernet(KEY)]), b"r" * 32, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_enrolment_secret_uri_and_encryption(clock: Clock) -> None:
    """Enrolment gives a base32 secret, an otpauth:// URI, and stores only ciphertext."""
    enrollment = manager(MemoryStore(), clock, issuer="Acme").enroll("alice")
    uri = urlparse(enrollment.provisioning_uri)
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    query = parse_qs(uri.query)
    assert query["secret"] == [enrollment.secret]
    assert query["issuer"] == ["Acme"]
    assert enrollment.secret not in enrollment.encrypted_secret
    assert Fernet(KEY).decrypt(enrollment.encrypted_secret.encode()).decode() == enrollment.secret


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        pytest.param(0, True, id="current-step"),
        pytest.param(-30, True, id="one-step-behind"),
        pytest.param(30, True, id="one-step-ahead"),
        pytest.param(-60, False, id="two-steps-behind"),
        pytest.param(60, False, id="two-steps-ahead"),
    ],
)
async def test_drift_window(clock: Clock, offset: int, accepted: bool) -> None:
    """Codes are accepted at most one 30 s step away from now."""
    totp = manager(MemoryStore(clock=clock), clock)
    enrollment = totp.enroll("alice")
    code = pyotp.TOTP(enrollment.secret).at(clock.now + offset)
    assert await totp.verify("u1", enrollment.encrypted_secret, code) is accepted


@pytest.mark.anyio
async def test_replayed_code_is_refused(clock: Clock) -> None:
    """A code, once accepted, is refused for its time step; the next step's code works."""
    totp = manager(MemoryStore(clock=clock), clock)
    enrollment = totp.enroll("alice")
    code = pyotp.TOTP(enrollment.secret).at(clock.now)
    assert await totp.verify("u1", enrollment.encrypted_secret, code) is True
    assert await totp.verify("u1", enrollment.encrypted_secret, code) is False
    clock.now += 30
    next_code = pyotp.TOTP(enrollment.secret).at(clock.now)
    assert await totp.verify("u1", enrollment.encrypted_secret, next_code) is True


@pytest.mark.anyio
@pytest.mark.redis
async def test_replay_refused_across_workers(redis_url: str, clock: Clock) -> None:
    """Two workers sharing Redis: the code accepted by one is refused by the other."""
    stores = [create_store(redis_url, key_prefix="pns-totp:", clock=clock) for _ in range(2)]
    try:
        workers = [
            TOTPManager(s, MultiFernet([Fernet(KEY)]), b"r" * 32, clock=clock) for s in stores
        ]
        enrollment = workers[0].enroll("alice")
        code = pyotp.TOTP(enrollment.secret).at(clock.now)
        assert await workers[0].verify("u1", enrollment.encrypted_secret, code) is True
        assert await workers[1].verify("u1", enrollment.encrypted_secret, code) is False
    finally:
        for s in stores:
            await s.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
async def test_malformed_codes(clock: Clock, code: str) -> None:
    """Codes of the wrong shape are refused without touching the store."""
    totp = manager(MemoryStore(clock=clock), clock)
    assert await totp.verify("u1", totp.enroll("a").encrypted_secret, code) is False


@pytest.mark.anyio
async def test_store_down_fails_closed(clock: Clock) -> None:
    """With the store unreachable a right code is refused (no replay check, no entry)."""
    store = create_store("redis://127.0.0.1:1/0", socket_timeout=0.5)
    totp = TOTPManager(store, MultiFernet([Fernet(KEY)]), b"r" * 32, clock=clock)
    enrollment = totp.enroll("alice")
    try:
        with pytest.raises(AuthUnavailable):
            await totp.verify(
                "u1", enrollment.encrypted_secret, totp.now_code(enrollment.encrypted_secret)
            )
    finally:
        await store.aclose()


def test_secret_under_another_key_is_invalid(clock: Clock) -> None:
    """A secret encrypted with a key not in the ring does not decrypt (opaque error)."""
    other = Fernet(Fernet.generate_key()).encrypt(b"JBSWY3DPEHPK3PXP").decode()
    with pytest.raises(InvalidToken):
        manager(MemoryStore(), clock).now_code(other)


@pytest.mark.anyio
async def test_recovery_codes_hashed_and_single_use(clock: Clock) -> None:
    """Recovery codes are stored as digests and each can be claimed once."""
    totp = manager(MemoryStore(clock=clock), clock)
    codes, digests = totp.new_recovery_codes(5)
    assert len(set(codes)) == 5
    assert not any(code.replace("-", "") in "".join(digests) for code in codes)
    digest = totp.match_recovery_code(digests, codes[2].lower())  # case and dash tolerant
    assert digest == digests[2]
    assert await totp.claim_recovery_code(digest) is True
    assert await totp.claim_recovery_code(digest) is False
    assert totp.match_recovery_code(digests, "AAAAA-BBBBB") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"digits": 7}, "digits"), ({"interval": 5}, "interval")],
)
def test_bad_configuration(clock: Clock, kwargs: dict[str, int], message: str) -> None:
    """Unsupported digits or intervals fail at construction."""
    with pytest.raises(ConfigurationError, match=message):
        manager(MemoryStore(), clock, **kwargs)
