"""Classification validates what it finds: checksums, ranges, plans, entropy, field names."""

from __future__ import annotations

import datetime as dt

import pytest

from pynomaly_security.protection import Classifier, DataClass, classify

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq1w=\n-----END RSA PRIVATE KEY-----"


def _kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in classify(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # -- cards: Luhn + issuer range ------------------------------------------------
        pytest.param(
            "pay 4111 1111 1111 1111 now", ("credit_card", "4111 1111 1111 1111"), id="visa"
        ),
        pytest.param(
            "5555-5555-5555-4444", ("credit_card", "5555-5555-5555-4444"), id="mastercard"
        ),
        pytest.param(
            "2221000000000009", ("credit_card", "2221000000000009"), id="mastercard-2-series"
        ),
        pytest.param("378282246310005", ("credit_card", "378282246310005"), id="amex"),
        pytest.param("6011111111111117", ("credit_card", "6011111111111117"), id="discover"),
        pytest.param("3530111333300000", ("credit_card", "3530111333300000"), id="jcb"),
        # -- SSN: valid area/group/serial ------------------------------------------------
        pytest.param("ssn 123-45-6789.", ("ssn", "123-45-6789"), id="ssn"),
        # -- IBAN: length + mod 97 ---------------------------------------------------------
        pytest.param(
            "DE89 3704 0044 0532 0130 00", ("iban", "DE89 3704 0044 0532 0130 00"), id="iban-de"
        ),
        pytest.param(
            "to GB82WEST12345698765432.", ("iban", "GB82WEST12345698765432"), id="iban-gb"
        ),
        # -- e-mail, IP -----------------------------------------------------------------
        pytest.param(
            "mail j.doe+x@mail.example.co.uk!", ("email", "j.doe+x@mail.example.co.uk"), id="email"
        ),
        pytest.param("from 203.0.113.9:443", ("ip_address", "203.0.113.9"), id="ipv4"),
        pytest.param(
            "via 2001:db8::8a2e:370:7334 ok", ("ip_address", "2001:db8::8a2e:370:7334"), id="ipv6"
        ),
        # -- phones ------------------------------------------------------------------------
        pytest.param("call +14155552671", ("phone", "+14155552671"), id="e164"),
        pytest.param("call +44 20 7946 0958", ("phone", "+44 20 7946 0958"), id="e164-spaced"),
        pytest.param("call (415) 555-2671", ("phone", "(415) 555-2671"), id="nanp"),
        pytest.param("call 415.555.2671", ("phone", "415.555.2671"), id="nanp-dots"),
        pytest.param("tel 020 7946 0958", ("phone", "020 7946 0958"), id="uk-national"),
        pytest.param("tél 01 23 45 67 89", ("phone", "01 23 45 67 89"), id="fr-national"),
        # -- secrets -----------------------------------------------------------------------
        pytest.param("key=AKIAIOSFODNN7EXAMPLE", ("api_key", "AKIAIOSFODNN7EXAMPLE"), id="aws"),
        pytest.param(
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            ("api_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
            id="stripe",
        ),
        pytest.param("ghp_" + "a1B2" * 9, ("api_key", "ghp_" + "a1B2" * 9), id="github"),
        pytest.param(
            "tok Zx8Kp2Qw9Lm4Rt7Yb3Nc6Vd1", ("secret", "Zx8Kp2Qw9Lm4Rt7Yb3Nc6Vd1"), id="entropy"
        ),
        pytest.param("k:\n" + PEM + "\nrest", ("api_key", PEM), id="pem-private-key"),
    ],
)
def test_valid_values_are_found_with_position(text: str, expected: tuple[str, str]) -> None:
    """Each valid value is found once, with the exact span."""
    assert _kinds(text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("4111 1111 1111 1112", id="card-luhn-invalid"),
        pytest.param("1234567812345670", id="card-luhn-valid-no-issuer"),
        pytest.param("order 0000000000000000", id="zeros"),
        pytest.param("000-12-3456", id="ssn-area-000"),
        pytest.param("666-12-3456", id="ssn-area-666"),
        pytest.param("912-12-3456", id="ssn-area-9xx"),
        pytest.param("123-00-4567", id="ssn-group-00"),
        pytest.param("123-45-0000", id="ssn-serial-0000"),
        pytest.param("078-05-1120", id="ssn-advertising-sample"),
        pytest.param("DE89 3704 0044 0532 0130 01", id="iban-bad-check"),
        pytest.param("XX89370400440532013000", id="iban-unknown-country"),
        pytest.param("a@b", id="email-no-tld"),
        pytest.param("john..doe@example.com", id="email-double-dot"),
        pytest.param("999.1.1.1", id="ipv4-out-of-range"),
        pytest.param("at 12:30:45", id="time-not-ipv6"),
        pytest.param("(115) 555-2671", id="nanp-area-1xx"),
        pytest.param("version 1.2.3", id="version"),
        pytest.param("order 2024-01-15", id="date-without-field-name"),
        pytest.param("the quick brown fox jumps", id="prose"),
        pytest.param("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", id="low-entropy"),
        pytest.param("ssn 123456789", id="bare-9-digits-without-field-name"),
    ],
)
def test_invalid_or_ambiguous_values_are_not_flagged(text: str) -> None:
    """Shape alone is not enough: failed checks produce no finding."""
    assert classify(text) == []


def test_classes_and_paths_in_nested_records() -> None:
    """Records are walked; each finding names its field path and class."""
    record = {
        "id": 1,
        "customer": {
            "email": "ada@example.com",
            "cards": ["4111111111111111"],
            "dob": "1990-05-17",
            "ssn": "123456789",
            "salary": "120000",
        },
        "api_key": "anything at all",
        "active": True,
    }
    found = {(f.path, f.kind, f.data_class) for f in classify(record)}
    assert found == {
        ("customer.email", "email", DataClass.PII),
        ("customer.cards[0]", "credit_card", DataClass.PCI),
        ("customer.dob", "date_of_birth", DataClass.PII),
        ("customer.ssn", "ssn", DataClass.PII),
        ("customer.salary", "confidential", DataClass.CONFIDENTIAL),
        ("api_key", "secret", DataClass.SECRET),
    }


@pytest.mark.parametrize(
    ("value", "found"),
    [
        pytest.param("17/05/1990", True, id="d/m/Y"),
        pytest.param(dt.date(1990, 5, 17), True, id="date-object"),
        pytest.param("2999-01-01", False, id="future"),
        pytest.param("1990-13-45", False, id="impossible"),
        pytest.param("unknown", False, id="not-a-date"),
    ],
)
def test_date_of_birth_by_field_name(value: object, found: bool) -> None:
    """Dates are PII under a birth-date field name, and only if they are plausible dates."""
    kinds = [f.kind for f in classify({"birthDate": value})]
    assert (kinds == ["date_of_birth"]) is found


def test_integers_are_classified() -> None:
    """A card number stored as an integer is still found."""
    assert [f.kind for f in classify({"pan": 4111111111111111})] == ["credit_card"]


def test_overlapping_candidates_keep_the_most_specific() -> None:
    """A card number is not also reported as a phone number or a secret."""
    assert [f.kind for f in classify("+4111111111111111")] == ["credit_card"]


def test_custom_field_names_and_length_bound() -> None:
    """Classifier options add field names and bound the scanned length."""
    classifier = Classifier(confidential_fields=["notes"], max_length=10)
    assert [f.kind for f in classifier.classify({"notes": "x"})] == ["confidential"]
    assert classifier.classify("padding.. 4111111111111111") == []


def test_many_unterminated_pem_headers_are_handled_linearly() -> None:
    """Thousands of BEGIN lines without END are each flagged (no quadratic rescan)."""
    text = "-----BEGIN PRIVATE KEY-----\n" * 2000
    assert len(classify(text)) == 2000
