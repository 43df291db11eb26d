"""Property tests: generated valid identifiers are found and masked; corrupted ones are not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pynomaly_security.protection import Masker, classify


def _luhn_digit(payload: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:  # doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


# (prefix, length) pairs inside the issuer table: Visa, Mastercard 5x and 2-series, Amex.
ISSUERS = st.sampled_from([("4", 16), ("51", 16), ("55", 16), ("2720", 16), ("34", 15), ("37", 15)])


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix, length = draw(ISSUERS)
    body = draw(
        st.text("0123456789", min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1)
    )
    payload = prefix + body
    return payload + _luhn_digit(payload)


@st.composite
def ibans(draw: st.DrawFn) -> str:
    bban = draw(st.text("0123456789", min_size=18, max_size=18))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "DE00")) % 97
    return f"DE{check:02d}{bban}"


PADDING = st.text(alphabet=st.sampled_from(list("abc xyz,;")), max_size=20)


@given(cards(), PADDING, PADDING)
def test_valid_cards_in_text_are_found_and_masked(card: str, before: str, after: str) -> None:
    """Any Luhn-valid number in an issuer range is found in place; only its last 4 are shown."""
    text = f"{before} {card} {after}"
    found = [(f.kind, text[f.start : f.end]) for f in classify(text)]
    assert ("credit_card", card) in found
    masked = Masker().mask_text(text)
    assert card not in masked and f"****{card[-4:]}" in masked


@given(cards(), st.integers(1, 9))
def test_corrupted_check_digit_is_not_a_card(card: str, delta: int) -> None:
    """Changing the check digit breaks Luhn: the number is no longer reported as a card."""
    broken = card[:-1] + str((int(card[-1]) + delta) % 10)
    assert "credit_card" not in {f.kind for f in classify(broken)}


@given(ibans())
def test_valid_ibans_are_found(iban: str) -> None:
    """Any German IBAN with correct mod-97 check digits is found; a wrong check is not."""
    assert [f.kind for f in classify(iban)] == ["iban"]
    wrong = iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]
    assert "iban" not in {f.kind for f in classify(wrong)}


@given(st.integers(1, 899).filter(lambda a: a != 666), st.integers(1, 99), st.integers(1, 9999))
def test_valid_ssns_are_found(area: int, group: int, serial: int) -> None:
    """Dashed SSNs with a valid area, group and serial are found."""
    ssn = f"{area:03d}-{group:02d}-{serial:04d}"
    if ssn in ("078-05-1120", "219-09-9999"):
        return
    assert [f.kind for f in classify(f"ssn: {ssn}")] == ["ssn"]
