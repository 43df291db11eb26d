"""``DataEncryption``: authenticated encryption of values bound to their context.

Token format (ASCII, safe in any text column)::

    pn1.<alg>.<key id>.<body>

``alg`` is ``a`` (AES-256-GCM) or ``f`` (Fernet); ``key id`` is the key-ring
version in decimal; ``body`` is URL-safe base64 without padding of
``nonce(12) || ciphertext || tag(16)`` for AES-GCM, or the Fernet token itself.

Context binding: the optional :class:`EncryptionContext` (table, field, record
id) is the AES-GCM associated data together with the token header, so a value
copied into another column, row or key id fails to decrypt. Fernet has no
associated data, so a 16-byte SHA-256 digest of the same bytes is prepended to
the plaintext (authenticated by Fernet's HMAC) and checked on decrypt -- the
same guarantee.

Fernet keys: the key id in the header selects the one Fernet key to try, so
``MultiFernet``'s try-every-key loop is not needed on the hot path (and an
unknown id fails without trying any key); :meth:`DataEncryption.fernet_ring`
still returns the ``MultiFernet`` of all readable versions, newest first.
After a master-key change the retired master keys are tried after the
current one (:meth:`DataEncryption.open` says the token is then stale).

Every failure to decrypt (malformed, tampered, unknown key id, wrong context)
raises :class:`~pynomaly_security.exceptions.InvalidToken` without a reason.

References:
    NIST SP 800-38D (GCM, 96-bit random nonces); Fernet spec
    (github.com/fernet/spec); ``cryptography`` recipes vs hazmat layers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import cryptography.fernet
import pydantic
import pydantic_core
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pynomaly_security.crypto import aead
from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.exceptions import ConfigurationError, InvalidToken

if TYPE_CHECKING:
    from pynomaly_security.crypto.fields import FieldEncryption
    from pynomaly_security.settings import SecuritySettings

__all__ = ["Algorithm", "DataEncryption", "EncryptionContext"]

T = TypeVar("T")
Algorithm = Literal["fernet", "aes_gcm"]
_PREFIX = "pn1"
_ALG_CODES: dict[str, Algorithm] = {"a": "aes_gcm", "f": "fernet"}
_CODE_OF: dict[Algorithm, str] = {"aes_gcm": "a", "fernet": "f"}
_DIGEST = 16
# Type tags inside the plaintext, so ``str`` and ``bytes`` round-trip without JSON.
_TAG_STR, _TAG_BYTES, _TAG_JSON = b"s", b"b", b"j"
_MAX_ADAPTERS = 256


@dataclass(frozen=True, slots=True)
class EncryptionContext:
    """Where a value lives; bound to its ciphertext.

    Args:
        table: table or collection name.
        field: column or attribute name.
        record_id: primary key of the row (``None`` binds to table+field only).
    """

    table: str
    field: str
    record_id: str | None = None

    def encode(self) -> bytes:
        # JSON of a list is unambiguous ("a|b","c" vs "a","b|c" differ).
        return json.dumps([self.table, self.field, self.record_id]).encode()


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DataEncryption:
    """Encrypt and decrypt values with the key ring's newest key.

    Args:
        settings: supplies ``encryption_algorithm``, the master key and key versions.
        keyring: use this ring instead of building one from ``settings``.
        algorithm: override ``settings.encryption_algorithm``.
        purpose: HKDF purpose of the keys (``"fields"`` by default).

    Tokens written with either algorithm are readable whatever the configured
    algorithm is, so switching algorithms needs no migration.

    ``DataEncryption()`` without settings or ring (the integration guide's form) uses the
    process's defaults (:mod:`pynomaly_security.defaults`): the settings from the
    environment and their one shared key ring. :attr:`field_encryption` is the
    :class:`~pynomaly_security.crypto.FieldEncryption` over this object.

    Raises:
        ConfigurationError: at construction, for a missing or invalid master key.
    """

    def __init__(
        self,
        settings: SecuritySettings | None = None,
        *,
        keyring: KeyRing | None = None,
        algorithm: Algorithm | None = None,
        purpose: str = "fields",
    ) -> None:
        if keyring is None:
            if settings is None:
                from pynomaly_security import defaults

                settings, keyring = defaults.settings(), defaults.keyring()
            else:
                keyring = KeyRing.from_settings(settings)
        if algorithm is None:
            algorithm = settings.encryption_algorithm if settings is not None else "aes_gcm"
        if algorithm not in _CODE_OF:
            raise ConfigurationError(f"unknown encryption algorithm {algorithm!r}")
        self.keyring = keyring
        self.algorithm: Algorithm = algorithm
        self.purpose = purpose
        # Bounded by the ring: (master key, readable version) pairs.
        self._aead: dict[tuple[int, int], AESGCM] = {}
        self._fernet: dict[tuple[int, int], cryptography.fernet.Fernet] = {}
        self._adapters: dict[Any, pydantic.TypeAdapter[Any]] = {}
        self._fields: FieldEncryption | None = None

    @property
    def field_encryption(self) -> FieldEncryption:
        """Field-level encryption of records with this object (the guide's
        ``encryption.field_encryption.register_encrypted_field("users", "ssn")``); one
        per ``DataEncryption``, so registrations persist."""
        if self._fields is None:
            from pynomaly_security.crypto.fields import FieldEncryption

            self._fields = FieldEncryption(self)
        return self._fields

    # -- keys ------------------------------------------------------------------------
    def _aesgcm(self, version: int, master: int = 0) -> AESGCM:
        cipher = self._aead.get((master, version))
        if cipher is None:
            key = self.keyring.key(self.purpose, version, master=master)
            cipher = self._aead[master, version] = AESGCM(key)
        return cipher

    def _fernet_for(self, version: int, master: int = 0) -> cryptography.fernet.Fernet:
        cipher = self._fernet.get((master, version))
        if cipher is None:
            key = base64.urlsafe_b64encode(self.keyring.key(self.purpose, version, master=master))
            cipher = self._fernet[master, version] = cryptography.fernet.Fernet(key)
        return cipher

    def fernet_ring(self) -> cryptography.fernet.MultiFernet:
        """A ``MultiFernet`` over every readable key, newest first (for interop)."""
        return self.keyring.fernet(self.purpose)

    # -- bytes API -------------------------------------------------------------------
    def encrypt(self, data: bytes, *, context: EncryptionContext | None = None) -> str:
        """Encrypt ``data`` with the newest key, bound to ``context``."""
        version = self.keyring.current_version
        code = _CODE_OF[self.algorithm]
        header = f"{_PREFIX}.{code}.{version}."
        bound = header.encode() + (context.encode() if context else b"")
        if self.algorithm == "aes_gcm":
            body = _b64e(aead.seal(self._aesgcm(version), data, bound))
        else:
            digest = hashlib.sha256(bound).digest()[:_DIGEST]
            body = self._fernet_for(version).encrypt(digest + data).decode("ascii")
        return header + body

    def decrypt(self, token: str | bytes, *, context: EncryptionContext | None = None) -> bytes:
        """Decrypt a token produced by :meth:`encrypt` with the same ``context``.

        Raises:
            InvalidToken: for any failure; the reason is deliberately not given.
        """
        return self.open(token, context=context)[0]

    def open(
        self, token: str | bytes, *, context: EncryptionContext | None = None
    ) -> tuple[bytes, bool]:
        """Decrypt like :meth:`decrypt`; also say whether the token should be
        rewritten (an older version, another algorithm, or a retired master key).

        The token names its version, not its master key: the current master key
        is tried first, then each retired one (only after a master-key change).
        """
        try:
            text = token.decode("ascii") if isinstance(token, bytes) else token
            if not isinstance(text, str):  # e.g. a raw number left in an encrypted column
                raise InvalidToken
            prefix, code, kid, body = text.split(".", 3)
            version = int(kid)
            if prefix != _PREFIX or code not in _ALG_CODES or kid != str(version):
                raise InvalidToken
            bound = f"{prefix}.{code}.{kid}.".encode() + (context.encode() if context else b"")
            stale = version != self.keyring.current_version or code != _CODE_OF[self.algorithm]
            if code == "a":
                raw = _b64d(body)
                for master in self.keyring.masters:
                    try:
                        plain = aead.open_sealed(self._aesgcm(version, master), raw, bound)
                    except InvalidToken:
                        continue
                    return plain, stale or master != 0
                raise InvalidToken
            fernet_token = body.encode("ascii")
            for master in self.keyring.masters:
                try:
                    plain = self._fernet_for(version, master).decrypt(fernet_token)
                except cryptography.fernet.InvalidToken:
                    continue
                expected = hashlib.sha256(bound).digest()[:_DIGEST]
                if not hmac.compare_digest(plain[:_DIGEST], expected):
                    raise InvalidToken
                return plain[_DIGEST:], stale or master != 0
            raise InvalidToken
        except InvalidToken:
            raise InvalidToken from None
        except (
            ValueError,  # split/int/base64/ascii problems
            KeyError,  # unknown key id
            binascii.Error,
        ):
            # ``from None``: the cause could hint at which check failed.
            raise InvalidToken from None

    @staticmethod
    def key_id(token: str) -> int:
        """The key version a token was written with (``InvalidToken`` if malformed)."""
        try:
            prefix, _code, kid, _body = token.split(".", 3)
            if prefix != _PREFIX:
                raise ValueError
            return int(kid)
        except ValueError:
            raise InvalidToken from None

    def needs_rotation(self, token: str) -> bool:
        """Whether ``token`` was written with an older version or another algorithm, by its
        header alone (one under a retired master key is found by :meth:`open`)."""
        code = token.split(".", 2)[1] if token.count(".") >= 3 else ""
        return (
            self.key_id(token) != self.keyring.current_version or code != _CODE_OF[self.algorithm]
        )

    def rotate(self, token: str, *, context: EncryptionContext | None = None) -> str:
        """Re-encrypt ``token`` with the newest key of the current master key
        (``InvalidToken`` if it does not decrypt)."""
        return self.encrypt(self.decrypt(token, context=context), context=context)

    # -- object API (the seed's) -------------------------------------------------------
    def encrypt_sensitive_data(self, obj: Any, *, context: EncryptionContext | None = None) -> str:
        """Encrypt ``str``, ``bytes`` or anything pydantic can serialise to JSON."""
        if isinstance(obj, str):
            plain = _TAG_STR + obj.encode()
        elif isinstance(obj, bytes | bytearray):
            plain = _TAG_BYTES + bytes(obj)
        else:
            plain = _TAG_JSON + pydantic_core.to_json(obj)
        return self.encrypt(plain, context=context)

    @overload
    def decrypt_sensitive_data(
        self, token: str, type_: type[T], *, context: EncryptionContext | None = None
    ) -> T: ...
    @overload
    def decrypt_sensitive_data(
        self, token: str, type_: Any = ..., *, context: EncryptionContext | None = None
    ) -> Any: ...
    def decrypt_sensitive_data(
        self, token: str, type_: Any = Any, *, context: EncryptionContext | None = None
    ) -> Any:
        """Decrypt and return the value as ``type_`` (validated by pydantic).

        Raises:
            InvalidToken: decryption failed.
            TypeError: the value is not a ``type_``; the message never includes it.
        """
        plain = self.decrypt(token, context=context)
        tag, payload = plain[:1], plain[1:]
        if tag == _TAG_STR and type_ in (str, Any):
            return payload.decode()
        if tag == _TAG_BYTES and type_ in (bytes, Any):
            return payload
        adapter = self._adapter(type_)
        try:
            if tag == _TAG_JSON:
                return adapter.validate_json(payload)
            value: Any = payload.decode() if tag == _TAG_STR else payload
            return adapter.validate_python(value)
        except (pydantic.ValidationError, UnicodeDecodeError):
            # ``from None``: the validation error would quote the plaintext.
            raise TypeError(f"decrypted value is not a valid {type_!r}") from None

    def _adapter(self, type_: Any) -> pydantic.TypeAdapter[Any]:
        adapter = self._adapters.get(type_)
        if adapter is None:
            if len(self._adapters) >= _MAX_ADAPTERS:
                self._adapters.clear()
            adapter = self._adapters[type_] = pydantic.TypeAdapter(type_)
        return adapter

    def __repr__(self) -> str:
        return f"DataEncryption(algorithm={self.algorithm!r}, keyring={self.keyring!r})"
