"""``AdvancedDataProtection``: one object for classification, protection by class
(encryption, tokenization, masking), tokens and differential privacy.

``apply_data_protection(record)`` classifies every value (``classify.py``) and
applies the action the protection policy names for its kind or class: by default
payment data (PCI) is tokenized (the token keeps a card's shape and last four
digits, PCI DSS 3.4), personal, secret and confidential data is encrypted (bound
to its field, so a ciphertext moved to another field does not decrypt), the rest
is kept. The policy is a plain dict the user changes
(``protection.protection_policy["email"] = "tokenize"``).

Sync or awaited (:mod:`pynomaly_security._dual`): tokenization writes to the token
vault, so inside async code ``apply_data_protection`` and ``reveal`` are awaited
(unawaited they do nothing and say so when read); from sync code they run to
completion on this object's loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from pynomaly_security._dual import Deferred, SyncPortal, in_running_loop
from pynomaly_security.crypto.encryption import DataEncryption, EncryptionContext
from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.protection.classify import Classifier, SensitiveSpan
from pynomaly_security.protection.masking import Masker, MaskStrategy
from pynomaly_security.protection.privacy import (
    Mechanism,
    PrivacyAccountant,
    Query,
    apply_differential_privacy,
)
from pynomaly_security.protection.tokenization import Tokenizer
from pynomaly_security.protection.vault import TokenVault
from pynomaly_security.storage.registry import StorageRegistry

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = [
    "DEFAULT_PROTECTION",
    "ENCRYPTED_PREFIX",
    "AdvancedDataProtection",
    "ProtectedRecord",
    "ProtectionAction",
]

ProtectionAction = Literal["encrypt", "tokenize", "mask", "keep"]

DEFAULT_PROTECTION: dict[str, ProtectionAction] = {
    "PCI": "tokenize",
    "PII": "encrypt",
    "SECRET": "encrypt",
    "CONFIDENTIAL": "encrypt",
}
"""Action per data class (``PCI``, ``PII``, ``SECRET``, ``CONFIDENTIAL``); a kind
(``email``, ``credit_card``, ...) named in the policy wins over its class."""

ENCRYPTED_PREFIX = "enc:"
"""Marks an encrypted value in a protected record (the rest is the ciphertext)."""

_DONE = {"encrypt": "encrypted", "tokenize": "tokenized", "mask": "masked", "keep": "kept"}
# When a value holds several findings, the most protective action applies.
_STRENGTH = {"keep": 0, "mask": 1, "tokenize": 2, "encrypt": 3}
_CONTEXT_TABLE = "data_protection"

_DATA_BOUNDS_REFUSED = (
    "clamping bounds are not taken from the data: its minimum and maximum are "
    "individual records' values, so the released result (and its noise scale) would "
    "reveal them (Dwork & Roth 2014, 3.3). Declare them from what the field can hold: "
    "PYNOMALY_SECURITY__PRIVACY_FIELD_BOUNDS='{\"age\": [0, 120]}' or bounds={...}"
)


class ProtectedRecord(dict[str, Any]):
    """A protected copy of a record. ``actions`` maps each value's path (``email``,
    ``orders[0].iban``) to what was done: ``encrypted``, ``tokenized``, ``masked``
    or ``kept``; ``classes`` maps each classified path to its data classes."""

    __slots__ = ("actions", "classes")

    def __init__(
        self,
        record: Mapping[str, Any],
        actions: dict[str, str],
        classes: dict[str, list[str]],
    ) -> None:
        super().__init__(record)
        self.actions = actions
        self.classes = classes


class AdvancedDataProtection:
    """Classify application data and protect it by class: encrypt, tokenize, mask.

    Args:
        settings: supplies the master key / key versions, the token vault URL, the
            privacy budget and the declared field bounds; default: read from the
            environment (``PYNOMALY_MASTER_KEY`` is then needed outside development
            mode, and the error says so).
        classifier: what counts as sensitive (default :class:`Classifier`).
        policy: masking overrides per kind or class (see :mod:`.masking`).
        protection_policy: action per data class or kind (default
            :data:`DEFAULT_PROTECTION`); ``"encrypt"``, ``"tokenize"``, ``"mask"``
            or ``"keep"``.
        vault: token vault to use instead of ``settings.token_vault_url``.
        storage: the application's registry, whose pool of ``TOKEN_VAULT_URL`` the
            vault shares (one of its own when omitted).

    The vault is opened lazily on the first tokenization, so building this
    object does no I/O; close it with ``await protection.aclose()`` (or
    ``async with``), or ``protection.close()`` (or ``with``) from sync code.
    """

    def __init__(
        self,
        settings: SecuritySettings | None = None,
        *,
        classifier: Classifier | None = None,
        policy: Mapping[str, MaskStrategy] | None = None,
        protection_policy: Mapping[str, ProtectionAction] | None = None,
        vault: TokenVault | None = None,
        storage: StorageRegistry | None = None,
    ) -> None:
        if settings is None:
            from pynomaly_security.settings import load_settings

            settings = load_settings()
        self.settings = settings
        self.classifier = classifier or Classifier()
        self.masker = Masker(self.classifier, policy=policy)
        self.protection_policy: dict[str, ProtectionAction] = dict(
            DEFAULT_PROTECTION if protection_policy is None else protection_policy
        )
        _check_policy(self.protection_policy)
        # Fails here (not at first use) when the master key is missing.
        self._keyring = KeyRing.from_settings(settings)
        self._encryption = DataEncryption(settings, keyring=self._keyring)
        self._vault = vault
        self._storage = storage
        self._tokenizer: Tokenizer | None = None
        self.accountant = PrivacyAccountant(settings.privacy_budget_epsilon)
        self._portal = SyncPortal()

    def classify(self, value_or_record: Any) -> list[SensitiveSpan]:
        """Findings in a value or record (see :func:`~.classify.classify`)."""
        return self.classifier.classify(value_or_record)

    def mask(self, record: Any) -> Any:
        """A copy of ``record`` with every classified value masked per the masking
        policy (for display and logs; nothing can be recovered from it)."""
        return self.masker.mask(record)

    # -- protection by classification ----------------------------------------------------
    def apply_data_protection(self, record: Mapping[str, Any]) -> ProtectedRecord:
        """A copy of ``record`` (nested mappings and lists too) with each classified
        value encrypted, tokenized or masked per :attr:`protection_policy`, and
        ``.actions`` saying what was done to each value. Encrypted and tokenized
        values come back as text through :meth:`reveal`. Awaited inside async code."""
        _check_policy(self.protection_policy)
        # Typed as the sync answer; inside a loop it is the awaitable (module docstring).
        return cast(
            "ProtectedRecord", self._dual("apply_data_protection", lambda: self._protect(record))
        )

    def reveal(self, protected: ProtectedRecord) -> dict[str, Any]:
        """The record :meth:`apply_data_protection` protected, encrypted and tokenized
        values restored (as text); masked ones stay masked. Awaited inside async code."""
        return cast("dict[str, Any]", self._dual("reveal", lambda: self._reveal(protected)))

    def _dual(self, name: str, factory: Any) -> Any:
        if in_running_loop():
            return Deferred(name, factory)
        return self._portal.run(factory)

    def _action(self, spans: Sequence[SensitiveSpan]) -> ProtectionAction:
        best: ProtectionAction = "keep"
        for span in spans:
            policy = self.protection_policy
            action = policy.get(span.kind) or policy.get(span.data_class.value) or "keep"
            if _STRENGTH[action] > _STRENGTH[best]:
                best = action
        return best

    async def _protect(self, record: Mapping[str, Any]) -> ProtectedRecord:
        actions: dict[str, str] = {}
        classes: dict[str, list[str]] = {}

        async def walk(value: Any, path: str, name: str | None, depth: int) -> Any:
            if depth > self.classifier.max_depth:
                return value
            if isinstance(value, Mapping):
                return {
                    k: await walk(v, f"{path}.{k}" if path else str(k), str(k), depth + 1)
                    for k, v in value.items()
                }
            if isinstance(value, list | tuple):
                return [await walk(v, f"{path}[{i}]", name, depth + 1) for i, v in enumerate(value)]
            if not isinstance(value, str | int | dt.date) or isinstance(value, bool):
                actions[path] = "kept"
                return value
            spans = self.classifier.classify_value(value, field=name, path=path)
            if spans:
                classes[path] = sorted({s.data_class.value for s in spans})
            action = self._action(spans)
            actions[path] = _DONE[action]
            text = value.isoformat() if isinstance(value, dt.date) else str(value)
            if action == "encrypt":
                context = EncryptionContext(_CONTEXT_TABLE, path)
                return ENCRYPTED_PREFIX + self._encryption.encrypt(text.encode(), context=context)
            if action == "tokenize":
                return await self.tokenizer.tokenize(text)
            if action == "mask":
                return self.masker.mask(value, field=name)
            return value

        protected = await walk(record, "", None, 0)
        return ProtectedRecord(protected, actions, classes)

    async def _reveal(self, protected: ProtectedRecord) -> dict[str, Any]:
        actions = protected.actions

        async def walk(value: Any, path: str, depth: int) -> Any:
            if isinstance(value, Mapping):
                return {
                    k: await walk(v, f"{path}.{k}" if path else str(k), depth + 1)
                    for k, v in value.items()
                }
            if isinstance(value, list | tuple):
                return [await walk(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
            done = actions.get(path)
            if done == "encrypted" and isinstance(value, str):
                context = EncryptionContext(_CONTEXT_TABLE, path)
                token = value.removeprefix(ENCRYPTED_PREFIX)
                return self._encryption.decrypt(token, context=context).decode()
            if done == "tokenized" and isinstance(value, str):
                return await self.tokenizer.detokenize(value)
            return value

        revealed: dict[str, Any] = await walk(protected, "", 0)
        return revealed

    # -- differential privacy --------------------------------------------------------------
    def apply_differential_privacy(
        self,
        dataset: Sequence[Mapping[str, Any]],
        epsilon: float = 1.0,
        fields: Sequence[str] | Mapping[str, tuple[float, float]] | None = None,
        *,
        bounds: Mapping[str, tuple[float, float]] | str | None = None,
        query: Query = "mean",
        mechanism: Mechanism = "laplace",
        delta: float = 1e-6,
        dataset_id: str = "default",
    ) -> dict[str, float]:
        """A noisy mean (or ``query="sum"``/``"count"``) of each named field of the
        records, charged to this object's budget (``PRIVACY_BUDGET_EPSILON``) per
        ``dataset_id``; see :func:`~.privacy.apply_differential_privacy`.

        Bounds per field: the caller's (``bounds=`` or ``fields`` as a mapping),
        else the declared ``PRIVACY_FIELD_BOUNDS``; ``fields=None`` means every
        declared field. Bounds from the data (``bounds="data"``, or none for a
        field) are refused with the reason: they leak.

        Raises:
            ConfigurationError: missing or data-derived bounds, invalid epsilon.
            PrivacyBudgetExhausted: the budget cannot pay; nothing was released.
        """
        if isinstance(bounds, str):
            raise ConfigurationError(_DATA_BOUNDS_REFUSED)
        declared = self.settings.privacy_field_bounds
        given = dict(bounds or {})
        if isinstance(fields, Mapping):
            given.update(fields)
            names = list(fields)
        else:
            names = list(fields) if fields is not None else list(declared)
        if not names:
            raise ConfigurationError("name the fields (fields=[...]) or declare their bounds")
        if query == "count":
            return apply_differential_privacy(
                dataset, epsilon, names, query="count", mechanism=mechanism, delta=delta,
                accountant=self.accountant, dataset_id=dataset_id,
            )  # fmt: skip
        resolved: dict[str, tuple[float, float]] = {}
        missing = []
        for name in names:
            found = given.get(name) or declared.get(name)
            if found is None:
                missing.append(name)
            else:
                resolved[name] = (float(found[0]), float(found[1]))
        if missing:
            raise ConfigurationError(f"no clamping bounds for {missing}: " + _DATA_BOUNDS_REFUSED)
        return apply_differential_privacy(
            dataset, epsilon, resolved, query=query, mechanism=mechanism, delta=delta,
            accountant=self.accountant, dataset_id=dataset_id,
        )  # fmt: skip

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer (opens the vault on first use)."""
        if self._tokenizer is None:
            vault = self._vault or (self._storage or StorageRegistry()).token_vault(
                self.settings.token_vault_url, setting="TOKEN_VAULT_URL"
            )
            self._vault = vault
            encryption = DataEncryption(self.settings, keyring=self._keyring, purpose="tokens")
            self._tokenizer = Tokenizer(vault, encryption)
        return self._tokenizer

    async def tokenize(self, value: str, *, deterministic: bool = False) -> str:
        """Replace ``value`` by a vault token (see :class:`Tokenizer`)."""
        return await self.tokenizer.tokenize(value, deterministic=deterministic)

    async def detokenize(self, token: str) -> str:
        """The original of ``token``; ``InvalidToken`` if unknown."""
        return await self.tokenizer.detokenize(token)

    async def aclose(self) -> None:
        if self._vault is not None:
            await self._vault.aclose()

    def close(self) -> None:
        """Close the vault from sync code, then this object's private loop."""
        if self._vault is not None and not in_running_loop():
            self._portal.run(self.aclose)
        self._portal.close()

    async def __aenter__(self) -> AdvancedDataProtection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> AdvancedDataProtection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_policy(policy: Mapping[str, str]) -> None:
    allowed = get_args(ProtectionAction)
    for key, action in policy.items():
        if action not in allowed:
            raise ConfigurationError(
                f"protection policy {key!r}: unknown action {action!r} (one of {allowed})"
            )
