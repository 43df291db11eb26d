"""The purposes of the key ring: the one table of HKDF labels (issue 13).

Every key of the package is ``KeyRing.key(purpose, ...)`` for a purpose listed
here; a name outside the table is refused, so a typo never derives a key
nothing else can find. What each purpose's key changes with (the version or
only the master key) is explained in :mod:`pynomaly_security.crypto.keys`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from pynomaly_security.exceptions import ConfigurationError

__all__ = ["PURPOSES", "Purpose", "purpose_of"]


@dataclass(frozen=True, slots=True)
class Purpose:
    """One use of a derived key: its name and HKDF label.

    Args:
        name: the purpose (``"fields"``); a *qualified* purpose is used as
            ``"name:qualifier"`` (``"blind-index:users.email"``), one key each.
        rotates: ``"version"``: one key per key version (and tenant);
            ``"master"``: one key per master key (the version is ignored).
        label: the fixed HKDF info of a ``"master"`` purpose. ``None`` means the
            ring's label, ``json.dumps(["pynomaly-security", purpose, version,
            tenant])``.
        qualified: takes a ``:qualifier``.
        use: what the key protects (documentation).
    """

    name: str
    rotates: Literal["version", "master"]
    label: bytes | None
    qualified: bool
    use: str


_V: Literal["version"] = "version"
_M: Literal["master"] = "master"
# fmt: off
_TABLE: tuple[tuple[str, Literal["version", "master"], bool, str | None, str], ...] = (
    # name                rotates qualified  audit label   what the key protects
    ("fields",              _V, False, None,               "application fields (the default)"),
    ("tokens",              _V, False, None,               "token vault ciphertexts"),
    ("blind-index",         _V, True,  None,               "HMAC of a table.field's index"),
    ("token-fingerprint",   _V, False, None,               "HMAC finding deterministic tokens"),
    ("totp",                _V, False, None,               "Fernet keys of TOTP secrets"),
    ("totp-recovery",       _V, False, None,               "HMAC of recovery-code digests"),
    ("jwt",                 _V, False, None,               "derived HS* secret, first half"),
    ("jwt-2",               _V, False, None,               "derived HS* secret, second half"),
    ("app",                 _V, True,  None,               "an application's own (app:<name>)"),
    ("key-id",              _M, False, "key-id",             "the master key's public id"),
    ("audit-records",       _M, False, "payload",            "AES-GCM of audit records"),
    ("audit-subject-kek",   _M, False, "subject-kek",        "wrapping of per-subject keys"),
    ("audit-subject-index", _M, False, "subject-index",      "HMAC of a subject's ref"),
    ("audit-signing",       _M, False, "checkpoint-signing", "Ed25519 seed of checkpoints"),
    # Issue 21: wraps each tenant's random key (tenancy/keys.py); random, not derived,
    # so destroying one crypto-shreds that tenant and no other.
    ("tenant-kek",          _M, False, None,               "wrapping of per-tenant keys"),
)
# fmt: on


def _label(audit_name: str | None) -> bytes | None:
    # The labels the audit trail was written with before the one ring (issue 13)
    # are kept verbatim ("/v1" is their format, not a key version), or every
    # record, subject key and checkpoint key written before would be unreadable
    # (tests/crypto/test_legacy_keys.py). Their purposes rotate with the master
    # key: see the module docstring.
    return None if audit_name is None else f"pynomaly-security/audit/{audit_name}/v1".encode()


PURPOSES: Mapping[str, Purpose] = MappingProxyType(
    {
        name: Purpose(name, rotates, _label(audit), qualified, use)
        for name, rotates, qualified, audit, use in _TABLE
    }
)
"""Every purpose key of the package; :meth:`KeyRing.key` derives only these.
Per-subject keys of the audit trail are random, not derived (destroying one
crypto-shreds its subject; a derived key could be derived again); per-tenant
keys are the ``tenant=`` of a ``"version"`` purpose."""


def purpose_of(name: str) -> Purpose:
    """The :class:`Purpose` of ``name`` (``"blind-index:users.email"`` -> ``blind-index``).

    Raises:
        ConfigurationError: ``name`` is not in :data:`PURPOSES` (a typo would
            otherwise derive a key nothing else can find).
    """
    family, sep, qualifier = name.partition(":")
    spec = PURPOSES.get(family)
    if spec is None or spec.qualified != bool(sep) or (sep and not qualifier):
        raise ConfigurationError(
            f"unknown key purpose {name!r}; the key ring derives {sorted(PURPOSES)} "
            "(blind-index and app take ':<qualifier>')"
        )
    return spec
