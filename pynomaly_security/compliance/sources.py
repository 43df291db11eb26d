"""Where the data checks read what the stack does not hold itself.

The application hands these to the validator (``stack.compliance.sources``): its
users (with who is an administrator), its field-encryption registry, and the
vulnerability scanner's results (issue 18's scanner is wired by the lead; until a
provider is set the vulnerability check is "not applicable"). Each is optional: a
check whose source is missing says so as ``not_applicable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["ComplianceSources", "UserFacts", "VulnerabilityFacts", "users_from_records"]


@dataclass(frozen=True, slots=True)
class UserFacts:
    """What the MFA check needs of one user: never a secret."""

    user_id: str
    admin: bool
    mfa: bool
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class VulnerabilityFacts:
    """A scanner's latest result: when it ran and the open findings by severity."""

    scanned_at: float
    open_by_severity: dict[str, int]
    critical: tuple[str, ...] = ()
    """Ids of the open critical and high findings (shown as evidence)."""
    source: str = ""


class _Record(Protocol):
    @property
    def user_id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def mfa_enabled(self) -> bool: ...
    @property
    def disabled(self) -> bool: ...


def users_from_records(
    records: Callable[[], Iterable[_Record]], admins: Callable[[_Record], bool]
) -> Callable[[], Awaitable[list[UserFacts]]]:
    """A users source over records like :class:`~pynomaly_security.auth.users.UserRecord`
    (``InMemoryUserRepository.records``), ``admins`` saying who is one."""

    async def users() -> list[UserFacts]:
        return [UserFacts(r.user_id, admins(r), r.mfa_enabled, r.disabled) for r in records()]

    return users


@dataclass(eq=False)
class ComplianceSources:
    users: Callable[[], Awaitable[list[UserFacts]]] | None = None
    """Every user (at most a few hundred thousand: the check counts them)."""
    field_encryption: Any = None
    """A :class:`~pynomaly_security.crypto.fields.FieldEncryption` (its registry)."""
    vulnerabilities: Callable[[], Awaitable[VulnerabilityFacts | None]] | None = None
    """The vulnerability scanner's latest result (None: never scanned)."""
    authenticator: Any = None
    """The :class:`~pynomaly_security.auth.ZeroTrustAuthenticator` (its password hasher);
    found on the app (``install_authenticator``) when not given."""
