"""Sign-up names (UTS #39): combining marks NFC leaves standing, mixed scripts and
look-alikes of reserved names are refused, with PyICU (the usernames extra) and
without it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from examples.app import create_app
from pynomaly_security.auth.usernames import UsernamePolicy, icu_skeleton
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.settings import SecuritySettings


def icu_policy() -> UsernamePolicy:
    if icu_skeleton() is None:
        pytest.skip("PyICU (the usernames extra) is not installed")
    policy = UsernamePolicy()
    assert policy.unicode
    return policy


@pytest.fixture
def without_icu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outside world without PyICU: ``import icu`` raises ImportError."""
    monkeypatch.setitem(sys.modules, "icu", None)


def refused(policy: UsernamePolicy, name: str) -> bool:
    normalized = policy.normalize(name)
    return policy.problem(normalized) is not None or policy.is_reserved(normalized)


# -- combining marks NFC does not absorb ---------------------------------------------

STRAY_MARKS = [
    pytest.param("ali\u0307ce", id="i-with-combining-dot-above"),
    pytest.param("al\u0131\u0307ce", id="dotless-i-with-combining-dot-above"),
    pytest.param("bo\u0301\u0301b", id="repeated-acute"),
    pytest.param("bob\u0301", id="acute-on-b-no-precomposed-form"),
    pytest.param("a\u0336lice", id="strike-through-overlay"),
    pytest.param("x\u0300\u0301\u0302\u0303\u0304yz", id="five-marks-in-a-row"),
    pytest.param("ab1\u0301", id="mark-on-a-digit"),
]


@pytest.mark.parametrize("name", STRAY_MARKS)
def test_combining_marks_nfc_leaves_are_refused(name: str) -> None:
    """A combining mark NFC left standing after a Latin letter (or a digit), a mark
    its base hides, a repeated mark or a long run of marks make a name malformed."""
    assert icu_policy().problem(UsernamePolicy.normalize(name)) is not None


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("jose\u0301", id="latin-accent-nfc-composes"),
        pytest.param("\u0928\u092e\u0938\u094d\u0924\u0947", id="devanagari-with-its-marks"),
        pytest.param("\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35", id="thai-with-its-marks"),
    ],
)
def test_marks_that_spell_a_letter_are_kept(name: str) -> None:
    """An accent NFC composes into one letter, and the marks scripts like Devanagari
    and Thai spell with, are part of well-formed names."""
    assert icu_policy().problem(UsernamePolicy.normalize(name)) is None


# -- mixed scripts (restriction level: moderately restrictive) -----------------------

MIXED = [
    pytest.param("\u0430lice", id="latin-with-cyrillic-a"),
    pytest.param("\u03bfscar", id="latin-with-greek-omicron"),
    pytest.param("ivan_\u0438\u0432\u0430\u043d", id="latin-and-cyrillic-words"),
    pytest.param("user1\u0661", id="latin-and-arabic-indic-digits"),
]


@pytest.mark.parametrize("name", MIXED)
def test_mixed_script_names_are_refused(name: str) -> None:
    """Latin mixed with Cyrillic or Greek, or digits of two scripts, is malformed,
    whether or not the Latin look-alike exists."""
    assert icu_policy().problem(UsernamePolicy.normalize(name)) is not None


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("\u0438\u0432\u0430\u043d", id="cyrillic"),
        pytest.param("zo\u00eb", id="latin-with-diaeresis"),
        pytest.param("\u5c71\u7530\u3084\u307e\u3060", id="han-and-hiragana"),
        pytest.param("bob.smith+news@example.com", id="latin-with-separators"),
    ],
)
def test_one_script_names_are_accepted(name: str) -> None:
    """One script (or Han with Japanese kana) is well-formed."""
    assert icu_policy().problem(UsernamePolicy.normalize(name)) is None


# -- look-alikes of reserved names ---------------------------------------------------

RESERVED_LOOKALIKES = [
    pytest.param("admin.", id="trailing-dot"),
    pytest.param("admin@", id="trailing-at"),
    pytest.param("root_", id="trailing-underscore"),
    pytest.param("root-+", id="trailing-separators"),
    pytest.param("r00t", id="zeros-for-o"),
    pytest.param("adm1n", id="one-for-i"),
    pytest.param("he1p", id="one-for-l"),
    pytest.param("4dmin", id="four-for-a"),
    pytest.param("5upport", id="five-for-s"),
    pytest.param("r007", id="seven-for-t"),
    pytest.param("s3curity", id="three-for-e"),
    pytest.param("Administrator", id="reserved-long-form"),
    pytest.param("ADM1N.", id="upper-case-digit-and-dot"),
]


@pytest.mark.parametrize("name", RESERVED_LOOKALIKES)
def test_reserved_lookalikes_are_reserved(name: str) -> None:
    """Trailing separators and digits standing in for letters do not make a
    reserved name free."""
    policy = icu_policy()
    assert policy.is_reserved(policy.normalize(name))


@pytest.mark.parametrize("name", ["alice", "rooted", "admiral", "bob.smith", "helper"])
def test_ordinary_names_are_not_reserved(name: str) -> None:
    """Names that merely start like a reserved one are free."""
    assert not icu_policy().is_reserved(name)


# -- the same refusals without the optional extra ------------------------------------


@pytest.mark.parametrize("name", [*STRAY_MARKS, *MIXED, *RESERVED_LOOKALIKES])
def test_without_icu_the_fallback_refuses_them_too(without_icu: None, name: str) -> None:
    """Without PyICU the policy accepts ASCII names only and reads reserved
    look-alikes the same way, so every name refused above is refused."""
    policy = UsernamePolicy()
    assert not policy.unicode
    assert refused(policy, name)
    assert not refused(policy, "bob.smith")


def test_non_ascii_names_without_icu_are_a_configuration_error(without_icu: None) -> None:
    """Asking for non-ASCII names without PyICU fails when the policy is built,
    instead of accepting names it cannot check."""
    with pytest.raises(ConfigurationError, match="PyICU"):
        UsernamePolicy(ascii_only=False)


# -- through the example app ---------------------------------------------------------


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key="test-admin-key-0123456789abcdef",
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        auth_rate_limits_enabled=False,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "detail"),
    [
        pytest.param("ali\u0307ce", "combining marks", id="combining-dot-above"),
        pytest.param("\u0430lice", "mix scripts", id="cyrillic-a"),
        pytest.param("r00t", "not available", id="reserved-lookalike"),
    ],
)
async def test_sign_up_refuses_them(app: FastAPI, name: str, detail: str) -> None:
    """The example app's sign-up answers 400 saying why (a reserved look-alike gets
    the one answer taken names get)."""
    icu_policy()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.post("/signup", json={"username": name, "password": "long-enough-1"})
    assert answer.status_code == 400 and detail in answer.json()["detail"]
