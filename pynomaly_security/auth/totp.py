"""TOTP second factor (RFC 6238) with pyotp: enrolment, replay-proof checks,
single-use recovery codes.

* Secrets are stored only as Fernet tokens (MultiFernet over keys derived by
  HKDF from the master key, so key rotation re-encrypts them).
* A code is accepted for the current step or one step either side (clock
  drift), and the step it matched is claimed in the shared store with SET NX:
  the same code cannot be used twice, in any worker (RFC 6238 section 5.2).
* Recovery codes are high-entropy random strings; only keyed digests (HMAC-
  SHA256) are stored, compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyotp
from cryptography.fernet import InvalidToken as FernetInvalidToken
from cryptography.fernet import MultiFernet

from pynomaly_security._log import get_logger
from pynomaly_security.auth.errors import AuthUnavailable
from pynomaly_security.exceptions import ConfigurationError, InvalidToken, StorageError
from pynomaly_security.storage.base import FailurePolicy, KeyValueStore

__all__ = ["TOTPEnrollment", "TOTPManager"]

log = get_logger(__name__)

TOTP_STORE_FAILED = "totp_store_failed"
_DRIFT_STEPS = (0, -1, 1)
# 10 characters of base32 = 50 bits: not guessable online, short enough to type.
_RECOVERY_CODE_CHARS = 10


@dataclass(frozen=True, slots=True)
class TOTPEnrollment:
    """What the user sees once (secret, URI for the QR code) and what is stored;
    all three are secrets, so ``repr()`` shows none of them."""

    secret: str = field(repr=False)
    provisioning_uri: str = field(repr=False)
    encrypted_secret: str = field(repr=False)


class TOTPManager:
    """Enrol and verify TOTP codes.

    Args:
        store: where used time steps are claimed (shared across workers).
        cipher: encrypts secrets at rest.
        recovery_key: 32-byte key of the recovery-code digests, or several: the
            first digests new codes, every one matches stored codes (the key
            ring's readable versions and retired master keys).
        issuer: shown by authenticator apps.
        clock: seconds since the epoch (tests inject it).
        failure_policy: when the store is down, ``fail_closed`` refuses codes
            (no replay protection means no acceptance) and ``fail_open`` accepts.
    """

    def __init__(
        self,
        store: KeyValueStore,
        cipher: MultiFernet,
        recovery_key: bytes | Sequence[bytes],
        *,
        issuer: str = "pynomaly-security",
        interval: int = 30,
        digits: int = 6,
        clock: Callable[[], float] = time.time,
        failure_policy: FailurePolicy = "fail_closed",
    ) -> None:
        keys = (recovery_key,) if isinstance(recovery_key, bytes) else tuple(recovery_key)
        if not keys or any(len(key) < 32 for key in keys):
            raise ConfigurationError("recovery_key must be at least 32 bytes")
        if digits not in (6, 8) or interval < 15:
            raise ConfigurationError("TOTP needs 6 or 8 digits and an interval of >= 15 s")
        self._store = store
        self._cipher = cipher
        self._recovery_keys = keys
        self._issuer = issuer
        self._interval = interval
        self._digits = digits
        self._clock = clock
        self._policy = failure_policy

    def enroll(self, account_name: str) -> TOTPEnrollment:
        """A fresh secret (160 bits, RFC 4226's recommendation) and its otpauth:// URI."""
        secret = pyotp.random_base32(32)
        uri = pyotp.TOTP(secret, digits=self._digits, interval=self._interval).provisioning_uri(
            name=account_name, issuer_name=self._issuer
        )
        token = self._cipher.encrypt(secret.encode("ascii")).decode("ascii")
        return TOTPEnrollment(secret, uri, token)

    def seal(self, secret: str) -> str:
        """The stored (encrypted) form of a secret made elsewhere: an account migrated
        with its authenticator app, or a demo's seeded user. Not base32: ValueError."""
        if not re.fullmatch(r"[A-Z2-7]{16,128}=*", secret):
            raise ValueError("a TOTP secret is 16 to 128 base32 characters")
        return self._cipher.encrypt(secret.encode("ascii")).decode("ascii")

    def _secret(self, encrypted_secret: str) -> str:
        try:
            return self._cipher.decrypt(encrypted_secret.encode("ascii")).decode("ascii")
        except (FernetInvalidToken, UnicodeError, ValueError) as exc:
            raise InvalidToken("stored TOTP secret does not decrypt") from exc

    def now_code(self, encrypted_secret: str, at: float | None = None) -> str:
        """The code of the step containing ``at`` (for tests and enrolment screens)."""
        totp = pyotp.TOTP(
            self._secret(encrypted_secret), digits=self._digits, interval=self._interval
        )
        return str(totp.at(self._clock() if at is None else at))

    async def verify(self, user_id: str, encrypted_secret: str, code: str) -> bool:
        """Whether ``code`` is valid now (±1 step) and not used before.

        Raises:
            AuthUnavailable: the store is down and the policy is ``fail_closed``.
        """
        code = code.strip().replace(" ", "")
        if len(code) != self._digits or not code.isdigit():
            return False
        totp = pyotp.TOTP(
            self._secret(encrypted_secret), digits=self._digits, interval=self._interval
        )
        now = self._clock()
        step = int(now // self._interval)
        for drift in _DRIFT_STEPS:
            candidate = str(totp.at((step + drift) * self._interval))
            if not hmac.compare_digest(candidate, code):
                continue
            # Claimed for long enough to outlive the drift window it can match in.
            key = f"totp:used:{user_id}:{step + drift}"
            try:
                return await self._store.add(key, "1", ttl=self._interval * 4)
            except StorageError as exc:
                log.warning(TOTP_STORE_FAILED, policy=self._policy, error=str(exc))
                if self._policy == "fail_closed":
                    raise AuthUnavailable("second factor temporarily unavailable") from exc
                return True
        return False

    # -- recovery codes ---------------------------------------------------------------
    def _digest(self, code: str, key: bytes | None = None) -> str:
        normalized = code.strip().replace("-", "").replace(" ", "").upper()
        return hmac.new(
            self._recovery_keys[0] if key is None else key,
            normalized.encode("ascii", "ignore"),
            hashlib.sha256,
        ).hexdigest()

    def new_recovery_codes(self, count: int) -> tuple[list[str], tuple[str, ...]]:
        """``count`` codes to show the user once, and the digests to store."""
        codes = []
        for _ in range(count):
            raw = base64.b32encode(secrets.token_bytes(8)).decode("ascii")[:_RECOVERY_CODE_CHARS]
            codes.append(f"{raw[:5]}-{raw[5:]}")
        return codes, tuple(self._digest(c) for c in codes)

    async def claim_recovery_code(self, digest: str) -> bool:
        """Spend a recovery code in the shared store first (SET NX), so two
        workers racing on one code cannot both accept it."""
        try:
            return await self._store.add(f"totp:recovery:{digest}", "1", 400 * 86_400)
        except StorageError as exc:
            log.warning(TOTP_STORE_FAILED, policy=self._policy, error=str(exc))
            if self._policy == "fail_closed":
                raise AuthUnavailable("second factor temporarily unavailable") from exc
            return True

    def match_recovery_code(self, digests: Sequence[str], code: str) -> str | None:
        """The stored digest ``code`` matches (the caller removes it), or None."""
        candidates = [self._digest(code, key) for key in self._recovery_keys]
        found = None
        # No early exit: time does not reveal the position (nor which key matched).
        for digest in digests:
            for candidate in candidates:
                if hmac.compare_digest(digest, candidate):
                    found = digest
        return found
