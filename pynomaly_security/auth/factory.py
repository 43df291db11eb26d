"""The parts of a :class:`~pynomaly_security.auth.ZeroTrustAuthenticator` the
settings describe, over one shared store.

``ZeroTrustAuthenticator.from_settings`` composes them; this module does not
import the authenticator (issue 13: the two imported each other).

Keys: TOTP secrets and recovery-code digests use keys of the crypto key ring
(so ``keys rotate``, key versions and retired master keys cover them); the HS*
JWT secret is ``jwt_secret`` or, when unset, derived the same way. Without a
master key only development mode starts (an ephemeral key, with a warning):
then tokens and TOTP secrets do not survive a restart and are not shared
between workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from pynomaly_security.auth.lockout import EventSink, LockoutManager
from pynomaly_security.auth.passwords import PasswordHasher
from pynomaly_security.auth.risk import RiskEngine
from pynomaly_security.auth.tokens import TokenService
from pynomaly_security.auth.totp import TOTPManager
from pynomaly_security.auth.usernames import UsernamePolicy
from pynomaly_security.auth.users import InMemoryUserRepository, UserRepository
from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.storage.base import Store, failure_policy

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = ["AuthParts", "auth_parts"]


class AuthParts(TypedDict):
    """Keyword arguments of ``ZeroTrustAuthenticator`` built from the settings."""

    users: UserRepository
    passwords: PasswordHasher
    totp: TOTPManager
    tokens: TokenService
    lockouts: LockoutManager
    risk: RiskEngine
    recovery_codes: int
    reauth_max_age: int
    usernames: UsernamePolicy


def auth_parts(
    settings: SecuritySettings,
    store: Store,
    *,
    users: UserRepository | None = None,
    passwords: PasswordHasher | None = None,
    lockouts: LockoutManager | None = None,
    event_sink: EventSink | None = None,
    keyring: KeyRing | None = None,
    **clock: Any,
) -> AuthParts:
    """The parts the settings describe. Pass ``lockouts`` to share the plugin's
    (one lockout for the login guard, the router and the admin API), and
    ``keyring`` to share the application's key ring."""
    ring = keyring if keyring is not None else KeyRing.from_settings(settings)
    policies = settings.store_failure_policy
    # 64 derived bytes: long enough for HS512 too (RFC 7518 3.2).
    secret = (
        settings.jwt_secret.get_secret_value().encode()
        if settings.jwt_secret is not None
        else ring.key("jwt") + ring.key("jwt-2")
    )
    private = settings.jwt_private_key.get_secret_value() if settings.jwt_private_key else None
    return AuthParts(
        users=users or InMemoryUserRepository(max_users=settings.max_tracked_keys),
        passwords=passwords or PasswordHasher.from_settings(settings),
        totp=TOTPManager(
            store,
            ring.fernet("totp"),
            # Every readable key: codes handed out before a version bump or a
            # master-key change still work (the first key digests new ones).
            [k for v in reversed(ring.versions) for k in ring.reading_keys("totp-recovery", v)],
            issuer=settings.totp_issuer,
            failure_policy=failure_policy(policies, "totp"),
            **clock,
        ),
        tokens=TokenService(
            store,
            algorithm=settings.jwt_algorithm,
            secret=secret if settings.jwt_algorithm.startswith("HS") else None,
            private_key=private,
            public_key=settings.jwt_public_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
            failure_policy=failure_policy(policies, "tokens"),
            **clock,
        ),
        lockouts=lockouts
        or LockoutManager.from_settings(settings, store, event_sink=event_sink, **clock),
        risk=RiskEngine.from_settings(settings, store, **clock),
        recovery_codes=settings.totp_recovery_codes,
        reauth_max_age=settings.reauth_max_age,
        usernames=UsernamePolicy.from_settings(settings),
    )
