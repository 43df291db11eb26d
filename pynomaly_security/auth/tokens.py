"""JWT sessions with PyJWT: short access tokens, rotating refresh tokens, sessions
kept in the shared store.

* One algorithm is pinned at construction and is the only one ``decode``
  accepts, and the header's ``alg`` is checked against it first: ``alg: none``
  and algorithm confusion (an RS256 public key used as an HS256 secret) are
  refused (RFC 8725 sections 2.1, 3.1).
* ``exp``, ``iat``, ``nbf``, ``iss``, ``aud``, ``sub``, ``jti``, ``sid`` and our
  ``typ`` are required; times are checked against the injected clock.
* A session is an allow-list entry, not a deny-list: every login starts one
  (``sid``, carried by each of its access and refresh tokens) and a token is
  valid only while its session's record exists in the shared store, has no
  tombstone, and belongs to the user's current *generation*. One ``get_many``
  per authenticated request checks all three. Logout ends the session (its
  refresh token and every access token issued in it); "log out everywhere"
  starts a new generation. A store that evicts (the bounded memory store)
  therefore logs people out; it never brings a revoked session back.
* A refresh token is single-use: the session names its one live refresh token
  and using it claims its ``jti`` (SET NX); a second use means it was stolen,
  so the session ends with every token issued in it (OAuth 2.0 Security BCP,
  refresh token rotation).
* Recent re-authentication is a stamp on the session (``mark_reauthenticated``)
  that sensitive changes ask for; it dies with the session.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from pynomaly_security._log import get_logger
from pynomaly_security.auth.errors import AuthUnavailable
from pynomaly_security.exceptions import ConfigurationError, InvalidToken, StorageError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.storage.base import CounterStore, FailurePolicy, KeyValueStore
from pynomaly_security.tenancy.context import current_overrides, current_tenant, narrowed

__all__ = ["RefreshTokenReused", "TokenPair", "TokenService"]

log = get_logger(__name__)

TOKEN_STORE_FAILED = "token_store_failed"  # noqa: S105 - a log event name
REFRESH_REUSE = "refresh_token_reuse"
# RFC 7518 3.2: an HMAC key at least as long as the hash output.
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_HMAC = tuple(_HMAC_MIN_BYTES)
_KEY_TYPES: Mapping[str, tuple[type, ...]] = {
    "RS256": (rsa.RSAPrivateKey, rsa.RSAPublicKey),
    "ES256": (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey),
    "EdDSA": (
        ed25519.Ed25519PrivateKey,
        ed25519.Ed25519PublicKey,
        ed448.Ed448PrivateKey,
        ed448.Ed448PublicKey,
    ),
}
_REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "typ", "sid"]
_MAX_SID = 64
_SESSION = "tok:sess:"  # sid -> [user id, generation, live refresh jti]
_ENDED = "tok:end:"  # sid -> tombstone
_GENERATION = "tok:gen:"  # user id -> the generation its valid sessions carry
_USED = "tok:used:"  # refresh jti -> spent
_REAUTH = "tok:reauth:"  # sid -> instant of the last re-authentication
_REAUTH_ATTEMPTS = "tok:reauthtry:"  # sid -> re-authentication attempts in the window
# A generation outlives any session started in it unless a session is rotated
# for this long; then that session ends once (fail closed, never open).
_GENERATION_TTL = 400 * 86_400


class SessionStore(KeyValueStore, CounterStore, Protocol):
    """What sessions need of the shared store."""


@dataclass(frozen=True, slots=True)
class TokenPair:
    # repr=False: a pair in a log line or a traceback shows no bearer secret.
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - RFC 6750 token type
    session_id: str = ""
    """The ``sid`` both tokens carry."""


class RefreshTokenReused(InvalidToken):
    """A spent refresh token came back: it was stolen, and its session has ended."""

    def __init__(self, user_id: str, session_id: str) -> None:
        super().__init__("token refused")
        self.user_id = user_id
        self.session_id = session_id


class TokenService:
    """Issue, verify, rotate and revoke JWTs.

    Args:
        store: sessions, spent refresh tokens, re-authentication stamps (shared
            across workers).
        algorithm: the one accepted algorithm (HS256 by default).
        secret: HMAC key (HS*), at least as long as the hash (RFC 7518 section 3.2).
        private_key, public_key: PEM keys for RS256/ES256/EdDSA; a public key
            alone verifies but cannot issue.
        issuer, audience: written into and required of every token.
        access_ttl, refresh_ttl: lifetimes in seconds.
        leeway: seconds of clock skew tolerated on exp/nbf/iat.
        clock: seconds since the epoch.
        failure_policy: when the store is down, ``fail_closed`` refuses tokens
            whose session it cannot check.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        algorithm: str = "HS256",
        secret: bytes | None = None,
        private_key: str | None = None,
        public_key: str | None = None,
        issuer: str,
        audience: str,
        access_ttl: int = 900,
        refresh_ttl: int = 1_209_600,
        leeway: int = 0,
        clock: Callable[[], float] = time.time,
        failure_policy: FailurePolicy = "fail_closed",
    ) -> None:
        self._store = store
        self.algorithm = algorithm
        self._signing_key, self._verify_key = self._load_keys(
            algorithm, secret, private_key, public_key
        )
        if access_ttl < 1 or refresh_ttl < access_ttl:
            raise ConfigurationError("need 1 <= access_ttl <= refresh_ttl")
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._leeway = leeway
        self._clock = clock
        self._policy = failure_policy
        # Session records and tombstones outlive every token of their session.
        self._ttl = refresh_ttl + leeway + 60

    @staticmethod
    def _load_keys(
        algorithm: str, secret: bytes | None, private_pem: str | None, public_pem: str | None
    ) -> tuple[Any, Any]:
        if algorithm in _HMAC:
            minimum = _HMAC_MIN_BYTES[algorithm]
            if secret is None or len(secret) < minimum:
                raise ConfigurationError(f"{algorithm} needs a secret of at least {minimum} bytes")
            return secret, secret
        if algorithm not in _KEY_TYPES:
            raise ConfigurationError(
                f"unsupported JWT algorithm {algorithm!r}; use one of {[*_HMAC, *_KEY_TYPES]}"
            )
        if private_pem is None and public_pem is None:
            raise ConfigurationError(f"{algorithm} needs jwt_private_key and/or jwt_public_key")
        private = public = None
        try:
            if private_pem is not None:
                private = load_pem_private_key(private_pem.encode(), password=None)
                public = private.public_key()
            if public_pem is not None:
                public = load_pem_public_key(public_pem.encode())
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{algorithm} key is not a valid PEM key") from exc
        for key in (private, public):
            # A key of the wrong family is how confusion attacks start; refuse it here.
            if key is not None and not isinstance(key, _KEY_TYPES[algorithm]):
                raise ConfigurationError(f"{type(key).__name__} cannot be used with {algorithm}")
        return private, public

    # -- issuing ---------------------------------------------------------------------
    def _encode(self, claims: dict[str, Any]) -> str:
        if self._signing_key is None:
            raise ConfigurationError("no private key configured: this service only verifies")
        return jwt.encode(claims, self._signing_key, algorithm=self.algorithm)

    def _pair(self, user_id: str, sid: str, amr: tuple[str, ...]) -> tuple[TokenPair, str]:
        """An access + refresh pair of session ``sid``, and the refresh token's ``jti``."""
        now = round(self._clock(), 3)
        base = {
            "sub": user_id,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "sid": sid,
            "amr": list(amr),
        }
        # Issue 21: a session started inside a tenant names it, so the tenancy layer
        # refuses the token (403) when it comes back with another tenant.
        tenant = current_tenant()
        if tenant is not None:
            base["tid"] = tenant
        access_ttl, refresh_ttl = self.access_ttl, self.refresh_ttl
        overrides = current_overrides()
        if overrides is not None:  # the tenant's shorter lifetimes (issue 21)
            access_ttl = narrowed(access_ttl, overrides.access_token_ttl)
            refresh_ttl = narrowed(refresh_ttl, overrides.refresh_token_ttl)
        refresh_jti = uuid.uuid4().hex
        access = self._encode(
            {**base, "exp": int(now) + access_ttl, "jti": uuid.uuid4().hex, "typ": "access"}
        )
        refresh = self._encode(
            {**base, "exp": int(now) + refresh_ttl, "jti": refresh_jti, "typ": "refresh"}
        )
        return TokenPair(access, refresh, access_ttl, session_id=sid), refresh_jti

    async def issue(self, user_id: str, *, amr: tuple[str, ...] = ("pwd",)) -> TokenPair:
        """Start a session: its record in the shared store and its first token pair."""
        sid = uuid.uuid4().hex
        try:
            generation = await self._generation(user_id)
            pair, refresh_jti = self._pair(user_id, sid, amr)
            await self._store.put(
                _SESSION + sid, _SessionRecord(user_id, generation, refresh_jti).dump(), self._ttl
            )
        except StorageError as exc:
            raise AuthUnavailable("sign-in temporarily unavailable") from exc
        return pair

    async def _generation(self, user_id: str) -> str:
        """The user's current session generation, created on first use (SET NX, so
        two first logins racing agree on one)."""
        key = _GENERATION + user_id
        current = await self._store.get(key)
        if current is None:
            await self._store.add(key, uuid.uuid4().hex, _GENERATION_TTL)
            current = await self._store.get(key)
        if current is None:  # evicted between the two calls: refuse rather than guess
            raise StorageError("session generation not kept")
        return current

    # -- verifying -------------------------------------------------------------------
    def decode(self, token: str, typ: str = "access") -> dict[str, Any]:
        """Signature, algorithm, registered claims and type; no session check (sync, cheap).

        Raises:
            InvalidToken: for any failure, without saying which.
        """
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != self.algorithm:
                raise InvalidToken("algorithm not accepted")
            claims: dict[str, Any] = jwt.decode(
                token,
                self._verify_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                # Times are checked below against the injected clock.
                options={
                    "require": _REQUIRED,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken("token refused") from exc
        now = self._clock()
        try:
            exp, nbf, iat = float(claims["exp"]), float(claims["nbf"]), float(claims["iat"])
        except (TypeError, ValueError) as exc:
            raise InvalidToken("token refused") from exc
        if exp <= now - self._leeway or nbf > now + self._leeway or iat > now + self._leeway:
            raise InvalidToken("token refused")
        if claims.get("typ") != typ or not isinstance(claims.get("sub"), str):
            raise InvalidToken("token refused")
        sid = claims.get("sid")
        if not isinstance(sid, str) or not 0 < len(sid) <= _MAX_SID:
            raise InvalidToken("token refused")
        return claims

    async def _session(self, claims: Mapping[str, Any]) -> _SessionRecord | None:
        """The live session record of ``claims`` (None when the store is down and the
        policy is fail-open). One round trip: the record, its tombstone and the
        user's generation.

        Raises:
            InvalidToken: the session ended, was never started here, or belongs to
                an earlier generation of the user's sessions.
            AuthUnavailable: the store is down and the policy is ``fail_closed``.
        """
        sid, user_id = str(claims["sid"]), str(claims["sub"])
        try:
            record, ended, generation = await self._store.get_many(
                [_SESSION + sid, _ENDED + sid, _GENERATION + user_id]
            )
        except StorageError as exc:
            log.warning(TOKEN_STORE_FAILED, policy=self._policy, error=safe_text(str(exc)))
            if self._policy == "fail_closed":
                raise AuthUnavailable("session check temporarily unavailable") from exc
            return None
        session = _SessionRecord.load(record)
        if (
            ended is not None
            or session is None
            or generation is None
            or session.user_id != user_id
            or not hmac.compare_digest(session.generation, generation)
        ):
            raise InvalidToken("token refused")
        return session

    async def verify(self, token: str, typ: str = "access") -> dict[str, Any]:
        """:meth:`decode` plus the session: it must exist in the shared store, not
        have ended, and belong to the user's current generation (one round trip)."""
        claims = self.decode(token, typ)
        await self._session(claims)
        return claims

    # -- rotation and revocation -----------------------------------------------------
    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: the refresh token is spent and a new pair of the same session issued.

        Raises:
            RefreshTokenReused: the token was already spent (stolen): its session
                ended, and every access token issued in it with it.
            InvalidToken: invalid, or its session ended.
        """
        claims = self.decode(refresh_token, "refresh")
        session = await self._session(claims)
        sid, jti = str(claims["sid"]), str(claims["jti"])
        try:
            # The session names its one live refresh token, so a spent token is
            # recognised even if its "used" mark were lost; SET NX settles two
            # rotations racing with the same token (the loser is a reuse).
            current = session is None or hmac.compare_digest(session.refresh_jti, jti)
            first_use = current and await self._store.add(_USED + jti, "1", self._remaining(claims))
            if not first_use:
                log.warning(REFRESH_REUSE, user_id=safe_text(str(claims["sub"])))
                await self._end(sid)
                raise RefreshTokenReused(str(claims["sub"]), sid)
            amr = tuple(str(m) for m in claims.get("amr", ("pwd",)))
            pair, refresh_jti = self._pair(str(claims["sub"]), sid, amr)
            generation = session.generation if session is not None else ""
            await self._store.put(
                _SESSION + sid,
                _SessionRecord(str(claims["sub"]), generation, refresh_jti).dump(),
                self._ttl,
            )
        except StorageError as exc:
            raise AuthUnavailable("session refresh temporarily unavailable") from exc
        return pair

    def _remaining(self, claims: Mapping[str, Any]) -> float:
        return max(1.0, float(claims["exp"]) - self._clock() + self._leeway)

    async def _end(self, sid: str) -> None:
        # The tombstone outlives every token of the session; it also beats a
        # rotation that re-writes the record while the session is being ended.
        await self._store.put(_ENDED + sid, "1", self._ttl)
        await self._store.delete(_SESSION + sid)
        await self._store.delete(_REAUTH + sid)

    async def end_session(self, sid: str) -> None:
        """End session ``sid``: its refresh token and every access token issued in it."""
        try:
            await self._end(sid)
        except StorageError as exc:
            raise AuthUnavailable("logout temporarily unavailable") from exc

    async def revoke(self, token: str, typ: str = "access") -> str | None:
        """End the session ``token`` belongs to (logout); returns its id. An
        invalid token is ignored (nothing to end)."""
        try:
            claims = self.decode(token, typ)
        except InvalidToken:
            return None
        await self.end_session(str(claims["sid"]))
        return str(claims["sid"])

    async def revoke_all(self, user_id: str) -> None:
        """End every session of ``user_id`` started until now: a new generation."""
        try:
            await self._store.put(_GENERATION + user_id, uuid.uuid4().hex, _GENERATION_TTL)
        except StorageError as exc:
            raise AuthUnavailable("revocation temporarily unavailable") from exc

    # -- counting ----------------------------------------------------------------------
    async def active_sessions(self, limit: int = 10_000) -> int:
        """Sessions live now (at most ``limit``, a bounded scan): a record in the store
        (not ended, not expired) of the user's current generation. Counted at a
        metrics scrape, not kept as a counter: sessions also end by expiry and by a
        new generation, with no event to count down on. Each live session names
        exactly one live refresh token, so this is also the refresh tokens' count.

        Raises:
            StorageError: the store did not answer.
        """
        sessions = [
            record
            for _, raw in await self._store.scan(_SESSION, limit)
            if (record := _SessionRecord.load(raw)) is not None
        ]
        users = sorted({record.user_id for record in sessions})
        current = dict(
            zip(users, await self._store.get_many([_GENERATION + u for u in users]), strict=True)
        )
        return sum(1 for record in sessions if current.get(record.user_id) == record.generation)

    # -- recent re-authentication ----------------------------------------------------
    async def mark_reauthenticated(self, sid: str, max_age: int) -> None:
        """Stamp session ``sid`` as re-authenticated now, for ``max_age`` seconds."""
        try:
            await self._store.put(_REAUTH + sid, repr(self._clock()), max_age)
            await self._store.delete(_REAUTH_ATTEMPTS + sid)
        except StorageError as exc:
            raise AuthUnavailable("re-authentication temporarily unavailable") from exc

    async def reserve_reauth_attempt(self, sid: str, window: int) -> int:
        """Count a re-authentication attempt of session ``sid`` before it is
        checked (atomic); the number of this attempt. A success resets it."""
        try:
            return await self._store.incr(_REAUTH_ATTEMPTS + sid, window)
        except StorageError as exc:
            raise AuthUnavailable("re-authentication temporarily unavailable") from exc

    async def reauthenticated_within(self, sid: str, max_age: int) -> bool:
        """Whether session ``sid`` re-authenticated in the last ``max_age`` seconds.
        A store failure answers no (a sensitive change fails closed)."""
        try:
            stamp = await self._store.get(_REAUTH + sid)
        except StorageError as exc:
            log.warning(TOKEN_STORE_FAILED, error=safe_text(str(exc)))
            return False
        try:
            age = self._clock() - float(stamp) if stamp is not None else None
        except ValueError:
            return False
        return age is not None and -self._leeway <= age <= max_age


@dataclass(frozen=True, slots=True)
class _SessionRecord:
    """What the shared store keeps per session: whose it is, the generation it
    was started in, and the ``jti`` of its one live refresh token."""

    user_id: str
    generation: str
    refresh_jti: str

    def dump(self) -> str:
        return json.dumps([self.user_id, self.generation, self.refresh_jti])

    @classmethod
    def load(cls, raw: str | None) -> _SessionRecord | None:
        if raw is None:
            return None
        try:
            user_id, generation, refresh_jti = json.loads(raw)
        except (ValueError, TypeError):
            return None
        if not all(isinstance(v, str) for v in (user_id, generation, refresh_jti)):
            return None
        return cls(user_id, generation, refresh_jti)
