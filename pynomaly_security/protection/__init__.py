"""Classification, masking, tokenization and differential privacy."""

from __future__ import annotations

from pynomaly_security.protection.advanced import AdvancedDataProtection
from pynomaly_security.protection.classify import Classifier, DataClass, SensitiveSpan, classify
from pynomaly_security.protection.logging import MaskSensitiveValues
from pynomaly_security.protection.masking import (
    DEFAULT_POLICY,
    REDACTED,
    Masker,
    MaskStrategy,
    mask_email,
    mask_iban,
    mask_ip,
    mask_last4,
    mask_ssn,
    redact,
)
from pynomaly_security.protection.privacy import (
    PrivacyAccountant,
    PrivacyBudgetExhausted,
    apply_differential_privacy,
)
from pynomaly_security.protection.tokenization import Tokenizer
from pynomaly_security.protection.vault import TokenVault

__all__ = [
    "DEFAULT_POLICY",
    "REDACTED",
    "AdvancedDataProtection",
    "Classifier",
    "DataClass",
    "MaskSensitiveValues",
    "MaskStrategy",
    "Masker",
    "PrivacyAccountant",
    "PrivacyBudgetExhausted",
    "SensitiveSpan",
    "TokenVault",
    "Tokenizer",
    "apply_differential_privacy",
    "classify",
    "mask_email",
    "mask_iban",
    "mask_ip",
    "mask_last4",
    "mask_ssn",
    "redact",
]
