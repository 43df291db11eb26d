"""Argon2id hashing: round trip, unknown users, policy, rehash."""

from __future__ import annotations

import pytest

from pynomaly_security.auth.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from pynomaly_security.exceptions import ConfigurationError


def test_round_trip(hasher: PasswordHasher) -> None:
    """A hash verifies its password and nothing else; it is Argon2id, not plain text."""
    stored = hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert hasher.verify(stored, "correct horse battery") is True
    assert hasher.verify(stored, "correct horse batterx") is False


def test_unknown_user_runs_the_same_path(hasher: PasswordHasher) -> None:
    """No stored hash (unknown user) is refused after a real Argon2 verification."""
    assert hasher.verify(None, "anything") is False
    assert hasher.verify(None, "") is False


def test_garbage_hash_is_refused(hasher: PasswordHasher) -> None:
    """A corrupt stored hash never authenticates and is flagged for rehash."""
    assert hasher.verify("not-a-hash", "x") is False
    assert hasher.needs_rehash("not-a-hash") is True


def test_overlong_password_never_matches(hasher: PasswordHasher) -> None:
    """A password past the maximum is refused even if its prefix is the password."""
    password = "p" * MAX_PASSWORD_LENGTH
    stored = hasher.hash(password)
    assert hasher.verify(stored, password) is True
    assert hasher.verify(stored, password + "extra") is False


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        pytest.param("short", "at least 8", id="too-short"),
        pytest.param("x" * (MAX_PASSWORD_LENGTH + 1), "at most", id="too-long"),
        pytest.param("long enough", None, id="ok"),
    ],
)
def test_policy(hasher: PasswordHasher, password: str, problem: str | None) -> None:
    """New passwords need 8 to 1024 characters (NIST SP 800-63B)."""
    found = hasher.check_policy(password)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_rehash_when_parameters_grow(hasher: PasswordHasher) -> None:
    """A hash made with weaker parameters asks to be rehashed."""
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    assert stronger.needs_rehash(hasher.hash("password1")) is True
    assert hasher.needs_rehash(hasher.hash("password1")) is False


def test_bad_parameters() -> None:
    """Impossible Argon2 parameters fail at construction."""
    with pytest.raises(ConfigurationError, match="Argon2"):
        PasswordHasher(time_cost=0)
