"""Masking policies, AdvancedDataProtection.mask and the structlog processor."""

from __future__ import annotations

import datetime as dt

import pytest
import structlog
from structlog.testing import capture_logs

from pynomaly_security.protection import (
    REDACTED,
    AdvancedDataProtection,
    DataClass,
    Masker,
    MaskSensitiveValues,
    redact,
)
from pynomaly_security.settings import SecuritySettings


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        pytest.param("card 4111 1111 1111 1111", "card ****1111", id="card"),
        pytest.param("john.doe@example.com", "j***@example.com", id="email"),
        pytest.param("ssn 123-45-6789", "ssn ***-**-6789", id="ssn"),
        pytest.param("DE89 3704 0044 0532 0130 00", "DE89****3000", id="iban"),
        pytest.param("from 203.0.113.9", "from 203.0.*.*", id="ipv4"),
        pytest.param("call +14155552671", "call ****2671", id="phone"),
        pytest.param("key AKIAIOSFODNN7EXAMPLE!", f"key {REDACTED}!", id="api-key"),
        pytest.param("nothing here", "nothing here", id="clean"),
        pytest.param(
            "a@example.com and b@example.org", "a***@example.com and b***@example.org", id="two"
        ),
    ],
)
def test_default_policy(text: str, masked: str) -> None:
    """Each kind is masked per the default policy; the rest of the text is kept."""
    assert Masker().mask_text(text) == masked


def test_policy_overrides_by_kind_and_class() -> None:
    """Overrides apply by kind first, then by class."""
    masker = Masker(policy={"email": redact, DataClass.PCI: lambda v: "<pan>"})
    assert masker.mask_text("a@example.com 4111111111111111") == f"{REDACTED} ****1111"
    masker = Masker(policy={"credit_card": lambda v: "<pan>"})
    assert masker.mask_text("4111111111111111") == "<pan>"


def test_mask_field_redacts_unrecognised_values() -> None:
    """A field explicitly named for masking is hidden even when nothing is recognised."""
    masker = Masker()
    assert masker.mask_field("plain words", field="notes") == REDACTED
    assert masker.mask_field("4111111111111111", field="x") == "****1111"
    assert masker.mask_field(None) is None


def test_mask_on_a_customer_record(settings: SecuritySettings) -> None:
    """mask() returns a masked copy and leaves the input alone."""
    customer = {
        "id": 17,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+44 20 7946 0958",
        "card": "4111 1111 1111 1111",
        "ssn": "123-45-6789",
        "dob": dt.date(1815, 12, 10),
        "password": "correct horse",
        "orders": [{"iban": "GB82WEST12345698765432", "total": 12.5}],
    }
    protected = AdvancedDataProtection(settings).mask(customer)
    assert protected == {
        "id": 17,
        "name": "Ada Lovelace",
        "email": "a***@example.com",
        "phone": "****0958",
        "card": "****1111",
        "ssn": "***-**-6789",
        "dob": REDACTED,
        "password": REDACTED,
        "orders": [{"iban": "GB82****5432", "total": 12.5}],
    }
    assert customer["card"] == "4111 1111 1111 1111"


def test_structlog_processor_masks_event_values() -> None:
    """Classified values and secret-named keys are masked before rendering; context is kept."""
    processor = MaskSensitiveValues()
    with capture_logs(processors=[processor]) as logs:
        structlog.get_logger("t").info(
            "payment_failed",
            card="4111111111111111",
            password="pw",
            user={"email": "a@b.org"},
            status=402,
            level_hint="x",
        )
    assert logs == [
        {
            "event": "payment_failed",
            "card": "****1111",
            "password": REDACTED,
            "user": {"email": "a***@b.org"},
            "status": 402,
            "level_hint": "x",
            "log_level": "info",
        }
    ]


def test_structlog_processor_masks_free_text_events() -> None:
    """Even an f-string event (which we never write) does not leak a card number."""
    event = MaskSensitiveValues()(None, "info", {"event": "charged 4111111111111111"})
    assert event == {"event": "charged ****1111"}


def test_construction_without_master_key_fails() -> None:
    """AdvancedDataProtection needs the master key (for tokenization) at construction."""
    from pynomaly_security.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="keys generate"):
        AdvancedDataProtection(SecuritySettings(_env_file=None))  # type: ignore[call-arg]
