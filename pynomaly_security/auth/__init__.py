"""Zero-trust authentication and abuse control (issue 5).

Passwords (Argon2id), TOTP with replay protection and recovery codes, JWT
sessions with rotation and revocation, device/risk scoring, django-axes style
lockouts; FastAPI dependencies and mountable routers.
"""

from __future__ import annotations

from pynomaly_security.auth.authenticator import AuthResult, Session, ZeroTrustAuthenticator
from pynomaly_security.auth.deps import (
    CurrentUser,
    OptionalUser,
    RequireSession,
    RequireUser,
    install_authenticator,
)
from pynomaly_security.auth.errors import (
    AccountLocked,
    AuthUnavailable,
    ChangeRefused,
    InvalidCredentials,
    MFARequired,
    ReauthRequired,
    RiskTooHigh,
    SignupRefused,
)
from pynomaly_security.auth.lockout import LockoutManager, LockoutStatus, LockRecord
from pynomaly_security.auth.passwords import PasswordHasher
from pynomaly_security.auth.risk import RiskAssessment, RiskEngine, RiskLevel, device_fingerprint
from pynomaly_security.auth.route_limits import RouteRateLimit
from pynomaly_security.auth.router import build_auth_router, build_lockout_router
from pynomaly_security.auth.tokens import RefreshTokenReused, TokenPair, TokenService
from pynomaly_security.auth.totp import TOTPEnrollment, TOTPManager
from pynomaly_security.auth.users import InMemoryUserRepository, UserRecord, UserRepository

__all__ = [
    "AccountLocked",
    "AuthResult",
    "AuthUnavailable",
    "ChangeRefused",
    "CurrentUser",
    "InMemoryUserRepository",
    "InvalidCredentials",
    "LockRecord",
    "LockoutManager",
    "LockoutStatus",
    "MFARequired",
    "OptionalUser",
    "PasswordHasher",
    "ReauthRequired",
    "RefreshTokenReused",
    "RequireSession",
    "RequireUser",
    "RiskAssessment",
    "RiskEngine",
    "RiskLevel",
    "RiskTooHigh",
    "RouteRateLimit",
    "Session",
    "SignupRefused",
    "TOTPEnrollment",
    "TOTPManager",
    "TokenPair",
    "TokenService",
    "UserRecord",
    "UserRepository",
    "ZeroTrustAuthenticator",
    "build_auth_router",
    "build_lockout_router",
    "device_fingerprint",
    "install_authenticator",
]
