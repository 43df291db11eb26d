"""Why a login or token was refused; each maps to one HTTP answer in the router.

All are :class:`~pynomaly_security.exceptions.AuthenticationError`, so callers
that only care "refused or not" catch one type.
"""

from __future__ import annotations

from collections.abc import Sequence

from pynomaly_security.exceptions import AuthenticationError

__all__ = [
    "AccountLocked",
    "AuthUnavailable",
    "ChangeRefused",
    "InvalidCredentials",
    "MFARequired",
    "ReauthRequired",
    "RiskTooHigh",
    "SignupRefused",
]


class InvalidCredentials(AuthenticationError):
    """Wrong user name, password or second factor (deliberately not which)."""


class MFARequired(AuthenticationError):
    """The password was right; a TOTP or recovery code is needed too (401)."""

    def __init__(self, reasons: Sequence[str] = ()) -> None:
        super().__init__("mfa_required")
        self.reasons = tuple(reasons)


class AccountLocked(AuthenticationError):
    """Too many failures: locked for ``retry_after`` seconds (429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("locked")
        self.retry_after = retry_after


class RiskTooHigh(AuthenticationError):
    """The sign-in looks like an attack (e.g. impossible travel); refused (403)."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("risk_too_high")
        self.reasons = tuple(reasons)


class AuthUnavailable(AuthenticationError):
    """The shared store is down and the feature fails closed (503)."""


class SignupRefused(AuthenticationError):
    """The user name is taken or the password too weak (400)."""


class ReauthRequired(AuthenticationError):
    """A sensitive change needs a recent re-authentication of this session
    (``POST /reauth``): 401 with RFC 9470's ``insufficient_user_authentication``."""

    def __init__(self, max_age: int) -> None:
        super().__init__("reauth_required")
        self.max_age = max_age


class ChangeRefused(AuthenticationError):
    """A credential change that cannot be made as asked (a weak new password,
    no second factor to disable) (400)."""
