"""Build a :class:`ZeroTrustAuthenticator` from the settings and one shared store.

Keys: TOTP secrets and recovery-code digests use keys derived by HKDF from the
master key through the crypto key ring (so ``keys rotate`` and key versions
cover them); the HS* JWT secret is ``jwt_secret`` or, when unset, derived the
same way. Without a master key only development mode starts (an ephemeral key,
with a warning): then tokens and TOTP secrets do not survive a restart and are
not shared between workers.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, MultiFernet

from pynomaly_security.auth.authenticator import EventSink, ZeroTrustAuthenticator
from pynomaly_security.auth.lockout import AlertSink, LockoutManager
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

__all__ = ["authenticator_from_settings"]


def authenticator_from_settings(
    settings: SecuritySettings,
    store: Store,
    *,
    users: UserRepository | None = None,
    passwords: PasswordHasher | None = None,
    lockouts: LockoutManager | None = None,
    event_sink: EventSink | None = None,
    alert_sink: AlertSink | None = None,
    **clock: Any,
) -> ZeroTrustAuthenticator:
    """The authenticator the settings describe. Pass ``lockouts`` to share the
    plugin's (one lockout for the login guard, the router and the admin API)."""

    ring = KeyRing.from_settings(settings)
    cipher = MultiFernet(
        [Fernet(base64.urlsafe_b64encode(ring.key("totp", v))) for v in reversed(ring.versions)]
    )
    policies = settings.store_failure_policy
    # 64 derived bytes: long enough for HS512 too (RFC 7518 3.2).
    secret = (
        settings.jwt_secret.get_secret_value().encode()
        if settings.jwt_secret is not None
        else ring.key("jwt") + ring.key("jwt-2")
    )
    private = settings.jwt_private_key.get_secret_value() if settings.jwt_private_key else None
    return ZeroTrustAuthenticator(
        users=users or InMemoryUserRepository(max_users=settings.max_tracked_keys),
        passwords=passwords or PasswordHasher.from_settings(settings),
        totp=TOTPManager(
            store,
            cipher,
            ring.key("totp-recovery"),
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
        event_sink=event_sink,
        alert_sink=alert_sink,
        usernames=UsernamePolicy.from_settings(settings),
    )
