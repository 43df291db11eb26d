"""JWT sessions: pinned algorithm, claim checks, rotation, reuse detection, revocation."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pynomaly_security.auth.errors import AuthUnavailable
from pynomaly_security.auth.tokens import RefreshTokenReused, TokenService
from pynomaly_security.exceptions import ConfigurationError, InvalidToken
from pynomaly_security.storage import create_store
from pynomaly_security.storage.memory import MemoryStore

from .conftest import SECRET, Clock


def service(clock: Clock, store: MemoryStore | None = None, **kwargs: Any) -> TokenService:
    options: dict[str, Any] = {"secret": SECRET, "issuer": "iss", "audience": "aud"}
    options.update(kwargs)
    store = store if store is not None else MemoryStore(clock=clock)  # an empty store is falsy
    return TokenService(store, clock=clock, **options)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forge(claims: dict[str, Any], key: Any, algorithm: str) -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def good_claims(clock: Clock, **changes: Any) -> dict[str, Any]:
    claims = {
        "sub": "u1",
        "iss": "iss",
        "aud": "aud",
        "iat": clock.now,
        "nbf": clock.now,
        "exp": clock.now + 60,
        "jti": "j1",
        "typ": "access",
        "sid": "s1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def rsa_pems() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.mark.anyio
async def test_issue_and_verify(clock: Clock) -> None:
    """An issued access token verifies and carries the required claims."""
    tokens = service(clock)
    pair = await tokens.issue("u1", amr=("pwd", "otp"))
    claims = await tokens.verify(pair.access_token)
    assert claims["sub"] == "u1" and claims["typ"] == "access" and claims["amr"] == ["pwd", "otp"]
    assert jwt.get_unverified_header(pair.access_token)["alg"] == "HS256"


def test_forged_alg_none_refused(clock: Clock) -> None:
    """An unsigned token (alg: none) is refused."""
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good_claims(clock))}."
    with pytest.raises(InvalidToken):
        service(clock).decode(token)


def test_wrong_key_refused(clock: Clock) -> None:
    """A token signed with another key is refused."""
    token = forge(good_claims(clock), b"x" * 32, "HS256")
    with pytest.raises(InvalidToken):
        service(clock).decode(token)


def test_other_hmac_algorithm_refused(clock: Clock) -> None:
    """Even with the right secret, an algorithm other than the pinned one is refused."""
    secret = b"s" * 64
    token = forge(good_claims(clock), secret, "HS512")
    with pytest.raises(InvalidToken):
        service(clock, secret=secret).decode(token)


@pytest.mark.anyio
async def test_algorithm_confusion_refused(clock: Clock) -> None:
    """An HS256 token keyed with the RS256 public key (the classic confusion) is refused."""
    private, public = rsa_pems()
    tokens = service(clock, algorithm="RS256", private_key=private, secret=None)
    # PyJWT itself refuses to HMAC with a PEM, so build the forged signature by hand.
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(good_claims(clock))}"
    signature = hmac.new(public.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        tokens.decode(forged)
    assert tokens.decode((await tokens.issue("u1")).access_token)["sub"] == "u1"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"exp": 1_699_999_999.0}, id="expired"),
        pytest.param({"nbf": 1_700_000_100.0}, id="not-yet-valid"),
        pytest.param({"iat": 1_700_000_100.0}, id="issued-in-future"),
        pytest.param({"aud": "someone-else"}, id="wrong-audience"),
        pytest.param({"iss": "evil"}, id="wrong-issuer"),
        pytest.param({"typ": "refresh"}, id="refresh-as-access"),
        pytest.param({"exp": None}, id="missing-exp"),
        pytest.param({"jti": None}, id="missing-jti"),
        pytest.param({"sub": None}, id="missing-sub"),
        pytest.param({"nbf": None}, id="missing-nbf"),
        pytest.param({"sid": None}, id="missing-sid"),
        pytest.param({"sid": ""}, id="empty-sid"),
        pytest.param({"sid": "s" * 65}, id="long-sid"),
    ],
)
def test_claims_checked(clock: Clock, changes: dict[str, Any]) -> None:
    """exp, nbf, iat, aud, iss, typ and required claims are enforced."""
    with pytest.raises(InvalidToken):
        service(clock).decode(forge(good_claims(clock, **changes), SECRET, "HS256"))


@pytest.mark.anyio
async def test_access_token_expires(clock: Clock) -> None:
    """An access token stops verifying at its expiry (by the injected clock)."""
    tokens = service(clock, access_ttl=60)
    token = (await tokens.issue("u1")).access_token
    clock.now += 61
    with pytest.raises(InvalidToken):
        tokens.decode(token)


@pytest.mark.anyio
async def test_logout_ends_the_session(clock: Clock) -> None:
    """Revoking the access token ends its session: the refresh token and every
    access token of that session are refused; another session of the user is not.
    The records are bounded in time: gone once every token of the session expired."""
    store = MemoryStore(clock=clock)
    tokens = service(clock, store, access_ttl=60, refresh_ttl=600)
    pair, other = await tokens.issue("u1"), await tokens.issue("u1")
    rotated = await tokens.refresh(pair.refresh_token)
    assert await tokens.revoke(pair.access_token) == pair.session_id
    for token, typ in ((pair.access_token, "access"), (rotated.access_token, "access")):
        with pytest.raises(InvalidToken):
            await tokens.verify(token, typ)
    with pytest.raises(InvalidToken):
        await tokens.refresh(rotated.refresh_token)
    assert (await tokens.verify(other.access_token))["sid"] == other.session_id
    clock.now += 600 + 61
    assert await store.get(f"tok:end:{pair.session_id}") is None


@pytest.mark.anyio
async def test_token_without_a_session_record_refused(clock: Clock) -> None:
    """A validly signed token whose session the store does not hold (never started
    here, or evicted from a bounded store) is refused: sessions are an allow-list,
    so losing a record logs out and never revives a revoked session."""
    store = MemoryStore(clock=clock, max_keys=4)
    tokens = service(clock, store)
    pair = await tokens.issue("u1")
    assert (await tokens.verify(pair.access_token))["sub"] == "u1"
    for i in range(10):  # a flood of other keys evicts the session record
        await store.put(f"flood:{i}", "x", 60)
    with pytest.raises(InvalidToken):
        await tokens.verify(pair.access_token)
    with pytest.raises(InvalidToken):
        await tokens.verify(forge(good_claims(clock), SECRET, "HS256"))


@pytest.mark.anyio
async def test_revoke_all_sessions(clock: Clock) -> None:
    """Revoke-all refuses every earlier token of the user, not later ones or other users."""
    tokens = service(clock)
    old, other = await tokens.issue("u1"), await tokens.issue("u2")
    clock.now += 1
    await tokens.revoke_all("u1")
    clock.now += 1
    new = await tokens.issue("u1")
    for token in (old.access_token,):
        with pytest.raises(InvalidToken):
            await tokens.verify(token)
    with pytest.raises(InvalidToken):
        await tokens.refresh(old.refresh_token)
    assert (await tokens.verify(new.access_token))["sub"] == "u1"
    assert (await tokens.verify(other.access_token))["sub"] == "u2"


@pytest.mark.anyio
async def test_refresh_rotates_and_reuse_revokes_family(clock: Clock) -> None:
    """A refresh token works once; reusing it ends its session: the family's refresh
    token and every access token already issued in it are refused."""
    tokens = service(clock)
    first = await tokens.issue("u1")
    second = await tokens.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.session_id == first.session_id
    assert (await tokens.verify(second.access_token))["sub"] == "u1"
    with pytest.raises(RefreshTokenReused):
        await tokens.refresh(first.refresh_token)  # stolen copy replayed
    with pytest.raises(InvalidToken):
        await tokens.refresh(second.refresh_token)  # the family is gone
    for access in (first.access_token, second.access_token):
        with pytest.raises(InvalidToken):
            await tokens.verify(access)
    with pytest.raises(InvalidToken):
        await tokens.refresh(first.access_token)  # wrong type


@pytest.mark.anyio
async def test_eddsa_keys(clock: Clock) -> None:
    """EdDSA with a PEM key pair issues and verifies; a verify-only service cannot issue."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    issuer = service(clock, algorithm="EdDSA", private_key=private, secret=None)
    verifier = service(clock, algorithm="EdDSA", public_key=public, secret=None)
    assert verifier.decode((await issuer.issue("u1")).access_token)["sub"] == "u1"
    with pytest.raises(ConfigurationError, match="only verifies"):
        await verifier.issue("u1")


@pytest.mark.anyio
async def test_store_down_fails_closed(clock: Clock) -> None:
    """When sessions cannot be read (or started), tokens are refused (fail_closed)."""
    store = create_store("redis://127.0.0.1:1/0", socket_timeout=0.5)
    tokens = TokenService(store, secret=SECRET, issuer="iss", audience="aud", clock=clock)
    try:
        with pytest.raises(AuthUnavailable):
            await tokens.issue("u1")
        with pytest.raises(AuthUnavailable):
            await tokens.verify(forge(good_claims(clock), SECRET, "HS256"))
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"secret": b"short"}, "32 bytes", id="short-secret"),
        pytest.param({"algorithm": "none"}, "unsupported", id="alg-none"),
        pytest.param({"algorithm": "RS256", "secret": None}, "jwt_private_key", id="no-keys"),
        pytest.param({"algorithm": "RS256", "public_key": "junk"}, "PEM", id="bad-pem"),
        pytest.param({"access_ttl": 10, "refresh_ttl": 5}, "access_ttl", id="ttl-order"),
    ],
)
def test_bad_configuration(clock: Clock, kwargs: dict[str, Any], message: str) -> None:
    """Bad algorithms, keys and lifetimes fail at construction."""
    with pytest.raises(ConfigurationError, match=message):
        service(clock, **kwargs)


def test_key_of_wrong_family_refused(clock: Clock) -> None:
    """An RSA key offered for EdDSA is refused at construction."""
    private, _ = rsa_pems()
    with pytest.raises(ConfigurationError, match="cannot be used with EdDSA"):
        service(clock, algorithm="EdDSA", private_key=private)
