"""The framework summary's data-protection example, verbatim (only the import changed):
protection by classification, and differential privacy with declared bounds."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pynomaly_security import AdvancedDataProtection, ConfigurationError
from pynomaly_security.protection import PrivacyBudgetExhausted

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()

dataset = [
    {"age": age, "salary": salary}
    for age, salary in [(23, 41_000), (35, 58_000), (41, 72_000), (52, 90_000), (29, 47_000)]
] * 200


@pytest.fixture
def guide_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment: a master key, a vault file, the fields' declared bounds."""
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", MASTER_KEY)
    monkeypatch.setenv("PYNOMALY_SECURITY__TOKEN_VAULT_URL", f"sqlite:///{tmp_path / 'tokens.db'}")
    monkeypatch.setenv(
        "PYNOMALY_SECURITY__PRIVACY_FIELD_BOUNDS",
        json.dumps({"age": [18, 90], "salary": [0, 250_000]}),
    )


def test_data_protection_example(guide_env: None) -> None:
    """As written: the e-mail is encrypted, the card tokenized (its shape and last four
    kept, Luhn-invalid), the name kept; what was done is reported per field, and the
    original comes back with the key. The private means are near the true ones."""
    # -- verbatim from the summary ("Data Protection") --------------------------------
    # Initialize data protection
    protection = AdvancedDataProtection()

    # Classify and protect sensitive data
    sensitive_data = {
        "email": "user@example.com",
        "credit_card": "4111111111111111",
        "name": "John Doe",
    }

    protected_data = protection.apply_data_protection(sensitive_data)
    # Data is now encrypted/tokenized based on classification

    # Apply differential privacy for ML datasets
    private_data = protection.apply_differential_privacy(
        dataset, epsilon=1.0, fields=["age", "salary"]
    )
    # -- end -------------------------------------------------------------------------------
    try:
        assert protected_data.actions == {
            "email": "encrypted",
            "credit_card": "tokenized",
            "name": "kept",
        }
        assert protected_data.classes == {"email": ["PII"], "credit_card": ["PCI"]}
        assert protected_data["email"].startswith("enc:")
        assert "user@example.com" not in protected_data["email"]
        card = protected_data["credit_card"]
        assert len(card) == 16 and card.endswith("1111") and card != "4111111111111111"
        assert protected_data["name"] == "John Doe"
        assert sensitive_data["email"] == "user@example.com"  # the input is left alone
        assert protection.reveal(protected_data) == sensitive_data
        assert set(private_data) == {"age", "salary"}
        assert 18 <= private_data["age"] <= 90 and 0 <= private_data["salary"] <= 250_000
        # Means 36 and 61,600 over 1,000 records: the noise at epsilon 0.25 each is small.
        assert abs(private_data["age"] - 36) < 10
        assert abs(private_data["salary"] - 61_600) < 25_000
        # The whole budget (1.0) is spent on this dataset: the next query is refused.
        with pytest.raises(PrivacyBudgetExhausted):
            protection.apply_differential_privacy(dataset, epsilon=0.1, fields=["age"])
    finally:
        protection.close()


def test_the_policy_is_the_users(guide_env: None) -> None:
    """Changing the policy changes the action; an unknown action is refused."""
    with AdvancedDataProtection() as protection:
        protection.protection_policy["email"] = "tokenize"
        protection.protection_policy["PCI"] = "mask"
        done = protection.apply_data_protection(
            {"email": "ada@example.com", "card": "4111 1111 1111 1111", "note": "hi"}
        )
        assert done.actions == {"email": "tokenized", "card": "masked", "note": "kept"}
        assert done["card"] == "****1111" and "@" in done["email"]
        assert protection.reveal(done)["email"] == "ada@example.com"
        protection.protection_policy["PII"] = "shred"  # type: ignore[assignment]
        with pytest.raises(ConfigurationError, match="shred"):
            protection.apply_data_protection({"email": "ada@example.com"})


def test_data_derived_bounds_are_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without declared bounds, or asking for the data's own, the refusal says why."""
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", MASTER_KEY)
    protection = AdvancedDataProtection()
    with pytest.raises(ConfigurationError, match=r"no clamping bounds for \['age'\]: clamping"):
        protection.apply_differential_privacy(dataset, epsilon=1.0, fields=["age"])
    with pytest.raises(ConfigurationError, match="individual records"):
        protection.apply_differential_privacy(dataset, fields=["age"], bounds="data")
    # Bounds the caller gives work, and a count needs none.
    assert set(protection.apply_differential_privacy(dataset, 0.5, {"age": (18, 90)})) == {"age"}
    assert protection.apply_differential_privacy(dataset, 0.5, ["age"], query="count")["age"] > 0


@pytest.mark.anyio
async def test_awaited_in_async_code(guide_env: None) -> None:
    """Inside async code the same methods are awaited (the vault's I/O never blocks
    the loop); unawaited they refuse to be read."""
    async with AdvancedDataProtection() as protection:
        with pytest.raises(RuntimeError, match="await"):
            protection.apply_data_protection({"email": "ada@example.com"})["email"]
        done = await protection.apply_data_protection({"card": "4111 1111 1111 1111"})
        assert done.actions == {"card": "tokenized"}
        assert await protection.reveal(done) == {"card": "4111 1111 1111 1111"}


def test_without_a_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No arguments and no master key outside development mode: the clear message."""
    monkeypatch.delenv("PYNOMALY_MASTER_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="PYNOMALY_MASTER_KEY"):
        AdvancedDataProtection()
