"""``AdvancedDataProtection``: one object for classification, masking and tokenization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pynomaly_security.crypto.encryption import DataEncryption
from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.protection.classify import Classifier, SensitiveSpan
from pynomaly_security.protection.masking import Masker, MaskStrategy
from pynomaly_security.protection.privacy import PrivacyAccountant
from pynomaly_security.protection.tokenization import Tokenizer
from pynomaly_security.protection.vault import TokenVault
from pynomaly_security.storage.registry import StorageRegistry

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = ["AdvancedDataProtection"]


class AdvancedDataProtection:
    """Classify, mask and tokenize application data.

    Args:
        settings: supplies the master key / key versions (tokenization), the
            token vault URL and the privacy budget.
        classifier: what counts as sensitive (default :class:`Classifier`).
        policy: masking overrides per kind or class (see :mod:`.masking`).
        vault: token vault to use instead of ``settings.token_vault_url``.
        storage: the application's registry, whose pool of ``TOKEN_VAULT_URL`` the
            vault shares (one of its own when omitted).

    The vault is opened lazily on the first tokenization, so building this
    object does no I/O; close it with ``await protection.aclose()`` (or
    ``async with``).
    """

    def __init__(
        self,
        settings: SecuritySettings,
        *,
        classifier: Classifier | None = None,
        policy: Mapping[str, MaskStrategy] | None = None,
        vault: TokenVault | None = None,
        storage: StorageRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.classifier = classifier or Classifier()
        self.masker = Masker(self.classifier, policy=policy)
        # Fails here (not at first use) when the master key is missing.
        self._keyring = KeyRing.from_settings(settings)
        self._vault = vault
        self._storage = storage
        self._tokenizer: Tokenizer | None = None
        self.accountant = PrivacyAccountant(settings.privacy_budget_epsilon)

    def classify(self, value_or_record: Any) -> list[SensitiveSpan]:
        """Findings in a value or record (see :func:`~.classify.classify`)."""
        return self.classifier.classify(value_or_record)

    def apply_data_protection(self, record: Any) -> Any:
        """A copy of ``record`` with every classified value masked per the policy."""
        return self.masker.mask(record)

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

    async def __aenter__(self) -> AdvancedDataProtection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
