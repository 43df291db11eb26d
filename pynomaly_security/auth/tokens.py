"""JWT sessions with PyJWT: short access tokens, rotating refresh tokens, revocation.

* One algorithm is pinned at construction and is the only one ``decode``
  accepts, and the header's ``alg`` is checked against it first: ``alg: none``
  and algorithm confusion (an RS256 public key used as an HS256 secret) are
  refused (RFC 8725 sections 2.1, 3.1).
* ``exp``, ``iat``, ``nbf``, ``iss``, ``aud``, ``sub``, ``jti`` and our ``typ``
  are required; times are checked against the injected clock.
* Revocation is a deny-list in the shared store: a token's ``jti`` is denied
  for the rest of its lifetime (then it expires anyway), and "revoke all" stores
  a per-user instant before which every token is refused.
* A refresh token is single-use: using it claims its ``jti`` (SET NX); a second
  use means it was stolen, so its whole family (every token rotated from the
  same login) is revoked (OAuth 2.0 Security BCP, refresh token rotation).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from pynomaly_security.auth.errors import AuthUnavailable
from pynomaly_security.exceptions import ConfigurationError, InvalidToken, StorageError
from pynomaly_security.storage.base import FailurePolicy, KeyValueStore

__all__ = ["TokenPair", "TokenService"]

log = structlog.get_logger(__name__)

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
_REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "typ"]


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - RFC 6750 token type


class TokenService:
    """Issue, verify, rotate and revoke JWTs.

    Args:
        store: deny-list and used refresh tokens (shared across workers).
        algorithm: the one accepted algorithm (HS256 by default).
        secret: HMAC key (HS*), at least as long as the hash (RFC 7518 section 3.2).
        private_key, public_key: PEM keys for RS256/ES256/EdDSA; a public key
            alone verifies but cannot issue.
        issuer, audience: written into and required of every token.
        access_ttl, refresh_ttl: lifetimes in seconds.
        leeway: seconds of clock skew tolerated on exp/nbf/iat.
        clock: seconds since the epoch.
        failure_policy: when the store is down, ``fail_closed`` refuses tokens
            it cannot check against the deny-list.
    """

    def __init__(
        self,
        store: KeyValueStore,
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

    def issue(
        self, user_id: str, *, amr: tuple[str, ...] = ("pwd",), family: str | None = None
    ) -> TokenPair:
        """A new access + refresh pair; ``family`` links rotations of one login."""
        now = round(self._clock(), 3)  # sub-second iat: "revoke all" then log in, same second
        family = family or uuid.uuid4().hex
        base = {"sub": user_id, "iss": self.issuer, "aud": self.audience, "iat": now, "nbf": now}
        access = self._encode(
            {
                **base,
                "exp": int(now) + self.access_ttl,
                "jti": uuid.uuid4().hex,
                "typ": "access",
                "amr": list(amr),
            }
        )
        refresh = self._encode(
            {
                **base,
                "exp": int(now) + self.refresh_ttl,
                "jti": uuid.uuid4().hex,
                "typ": "refresh",
                "fam": family,
                "amr": list(amr),
            }
        )
        return TokenPair(access, refresh, self.access_ttl)

    # -- verifying -------------------------------------------------------------------
    def decode(self, token: str, typ: str = "access") -> dict[str, Any]:
        """Signature, algorithm, registered claims and type; no deny-list (sync, cheap).

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
        return claims

    async def verify(self, token: str, typ: str = "access") -> dict[str, Any]:
        """:meth:`decode` plus the deny-list and the user's revoke-all instant."""
        claims = self.decode(token, typ)
        family = claims.get("fam")
        try:
            # One round trip for the three revocation records.
            denied, cutoff, fam_revoked = await self._store.get_many(
                [
                    f"tok:deny:{claims['jti']}",
                    f"tok:cutoff:{claims['sub']}",
                    f"tok:fam:{family}" if isinstance(family, str) else "tok:fam:-",
                ]
            )
        except StorageError as exc:
            log.warning(TOKEN_STORE_FAILED, policy=self._policy, error=str(exc))
            if self._policy == "fail_closed":
                raise AuthUnavailable("session check temporarily unavailable") from exc
            return claims
        if denied is not None or fam_revoked is not None:
            raise InvalidToken("token refused")
        if cutoff is not None and float(claims["iat"]) <= float(cutoff):
            raise InvalidToken("token refused")
        return claims

    # -- rotation and revocation -----------------------------------------------------
    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: the refresh token is spent and a new pair of the same family issued.

        Raises:
            InvalidToken: invalid, revoked or already used (the family is revoked).
        """
        claims = await self.verify(refresh_token, "refresh")
        ttl = self._remaining(claims)
        try:
            first_use = await self._store.add(f"tok:used:{claims['jti']}", "1", ttl)
            if not first_use:
                log.warning(REFRESH_REUSE, user_id=claims["sub"])
                await self._store.put(f"tok:fam:{claims['fam']}", "1", self.refresh_ttl)
        except StorageError as exc:
            raise AuthUnavailable("session refresh temporarily unavailable") from exc
        if not first_use:
            raise InvalidToken("token refused")
        amr = tuple(str(m) for m in claims.get("amr", ("pwd",)))
        return self.issue(claims["sub"], amr=amr, family=str(claims["fam"]))

    def _remaining(self, claims: Mapping[str, Any]) -> float:
        return max(1.0, float(claims["exp"]) - self._clock() + self._leeway)

    async def revoke(self, token: str, typ: str = "access") -> None:
        """Deny this token for the rest of its lifetime (logout); refresh tokens
        take their family with them. An invalid token is ignored (nothing to do)."""
        try:
            claims = self.decode(token, typ)
        except InvalidToken:
            return
        try:
            await self._store.put(f"tok:deny:{claims['jti']}", "1", self._remaining(claims))
            if typ == "refresh":
                await self._store.put(f"tok:fam:{claims['fam']}", "1", self._remaining(claims))
        except StorageError as exc:
            raise AuthUnavailable("logout temporarily unavailable") from exc

    async def revoke_all(self, user_id: str) -> None:
        """Refuse every token of ``user_id`` issued until now (all sessions)."""
        try:
            await self._store.put(
                f"tok:cutoff:{user_id}", repr(round(self._clock(), 3)), self.refresh_ttl
            )
        except StorageError as exc:
            raise AuthUnavailable("revocation temporarily unavailable") from exc
