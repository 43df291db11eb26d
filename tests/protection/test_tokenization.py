"""Tokenizer and the token vault contract, over SQLite, Redis and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from pynomaly_security.crypto import DataEncryption, KeyRing
from pynomaly_security.exceptions import ConfigurationError, InvalidToken, StorageError
from pynomaly_security.protection import Tokenizer, TokenVault
from pynomaly_security.protection._validators import luhn_valid
from pynomaly_security.storage import StorageRegistry

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def vault_spec(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", f"sqlite:///{tmp_path / 'tokens.db'}"
    if request.param == "redis":
        return "redis", request.getfixturevalue("redis_url")
    return "postgres", request.getfixturevalue("postgres_url")


@pytest.fixture
async def vault(vault_spec: tuple[str, str]) -> AsyncIterator[TokenVault]:
    kind, url = vault_spec
    storage = StorageRegistry()
    if kind == "sqlite":
        store = storage.token_vault(url)
    elif kind == "redis":
        store = storage.token_vault(url, prefix=f"test:{uuid.uuid4().hex}:")
    else:
        table = f"vault_{uuid.uuid4().hex[:12]}"
        store = storage.token_vault(url, table=table)
    yield store
    if kind == "postgres":
        connection = await asyncpg.connect(url)  # the test's own clean-up, past the vault
        try:
            await connection.execute(f"DROP TABLE IF EXISTS {table}")
        finally:
            await connection.close()
    await store.aclose()


def _tokenizer(vault: TokenVault, version: int = 1, master: bytes = b"m" * 32) -> Tokenizer:
    ring = KeyRing(master, current_version=version)
    return Tokenizer(vault, DataEncryption(keyring=ring, algorithm="aes_gcm", purpose="tokens"))


@pytest.mark.anyio
async def test_tokenize_and_detokenize_a_card(vault: TokenVault) -> None:
    """A card token keeps shape and last four, fails Luhn, and detokenizes to the original."""
    tokenizer = _tokenizer(vault)
    card = "4111 1111 1111 1111"
    token = await tokenizer.tokenize(card)
    assert token != card and len(token) == len(card) and token.endswith("1111")
    assert [c == " " for c in token] == [c == " " for c in card]
    assert not luhn_valid(token.replace(" ", ""))
    assert await tokenizer.detokenize(token) == card


@pytest.mark.anyio
async def test_random_tokens_differ_deterministic_tokens_repeat(vault: TokenVault) -> None:
    """Without deterministic the same value gets new tokens; with it, the same token."""
    tokenizer = _tokenizer(vault)
    assert await tokenizer.tokenize("ada@example.com") != await tokenizer.tokenize(
        "ada@example.com"
    )
    first = await tokenizer.tokenize("ada@example.com", deterministic=True)
    assert await tokenizer.tokenize("ada@example.com", deterministic=True) == first
    assert await tokenizer.tokenize("bob@example.com", deterministic=True) != first


@pytest.mark.anyio
async def test_detokenize_needs_the_key(vault: TokenVault) -> None:
    """The vault alone is useless: another master key cannot detokenize; unknown tokens fail."""
    token = await _tokenizer(vault).tokenize("123-45-6789")
    with pytest.raises(InvalidToken):
        await _tokenizer(vault, master=b"o" * 32).detokenize(token)
    with pytest.raises(InvalidToken):
        await _tokenizer(vault).detokenize("000-00-0000")


@pytest.mark.anyio
async def test_swapped_vault_entries_do_not_detokenize(vault: TokenVault) -> None:
    """Each ciphertext is bound to its token: copying one entry's ciphertext to another fails."""
    tokenizer = _tokenizer(vault)
    a = await tokenizer.tokenize("4111111111111111")
    b = await tokenizer.tokenize("5555555555554444")
    ct_a, ct_b = await vault.get(a), await vault.get(b)
    assert ct_a is not None and ct_b is not None
    assert await vault.replace(b, ct_b, ct_a, None)
    with pytest.raises(InvalidToken):
        await tokenizer.detokenize(b)


@pytest.mark.anyio
async def test_delete(vault: TokenVault) -> None:
    """A deleted token (erasure) no longer detokenizes; its fingerprint is gone too."""
    tokenizer = _tokenizer(vault)
    token = await tokenizer.tokenize("ada@example.com", deterministic=True)
    assert await tokenizer.delete(token) and not await tokenizer.delete(token)
    with pytest.raises(InvalidToken):
        await tokenizer.detokenize(token)
    assert await tokenizer.tokenize("ada@example.com", deterministic=True) != token


@pytest.mark.anyio
async def test_vault_put_semantics(vault: TokenVault) -> None:
    """put refuses a taken token and returns the existing token of a known fingerprint."""
    assert await vault.put("t1", "c1", "fp") == "t1"
    assert await vault.put("t1", "c2") is None
    assert await vault.put("t2", "c3", "fp") == "t1"
    assert await vault.get("t2") is None and await vault.find("fp") == "t1"
    assert not await vault.replace("t1", "wrong", "c4", None)


@pytest.mark.anyio
async def test_rotation_of_the_vault(vault: TokenVault) -> None:
    """rotate re-encrypts entries and fingerprints; old and deterministic tokens keep working."""
    old = _tokenizer(vault, version=1)
    tokens = {await old.tokenize(f"4111-1111-1111-{i:04d}") for i in range(7)}
    det = await old.tokenize("ada@example.com", deterministic=True)
    new = _tokenizer(vault, version=2)
    assert await new.tokenize("ada@example.com", deterministic=True) == det  # before rotation
    report = await new.rotate(batch_size=3)
    assert report.rotated == 8 and report.scanned == 8
    assert (await new.rotate(batch_size=3)).rotated == 0
    for token in tokens:
        ciphertext = await vault.get(token)
        assert ciphertext is not None and new.encryption.key_id(ciphertext) == 2
    retired = Tokenizer(
        vault,
        DataEncryption(
            keyring=KeyRing(b"m" * 32, current_version=2, min_version=2),
            algorithm="aes_gcm",
            purpose="tokens",
        ),
    )
    assert await retired.detokenize(det) == "ada@example.com"
    assert await retired.tokenize("ada@example.com", deterministic=True) == det


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        pytest.param("123-45-6789", "ddd-dd-dddd", id="ssn"),
        pytest.param("Ada.Lovelace@Example.com", "Aaa.Aaaaaaaa@Aaaaaaa.aaa", id="email"),
    ],
)
def test_shape_is_preserved(value: str, shape: str) -> None:
    """Digits stay digits, letters keep their case, punctuation stays."""
    token = Tokenizer.shape_token(value)
    classes = "".join(
        "d" if c.isdigit() else "A" if c.isupper() else "a" if c.islower() else c for c in token
    )
    assert classes == shape and token != value


def test_short_values_get_opaque_tokens() -> None:
    """Fewer than 6 random characters would be guessable: an opaque tok_ token is used."""
    assert Tokenizer.shape_token("1234").startswith("tok_")


def test_card_tokens_never_pass_luhn() -> None:
    """Over many draws, no card token is a Luhn-valid number."""
    for _ in range(500):
        assert not luhn_valid(Tokenizer.shape_token("4111111111111111"))


def test_unknown_vault_scheme() -> None:
    """An unknown URL scheme is a ConfigurationError naming the accepted ones."""
    with pytest.raises(ConfigurationError, match="sqlite"):
        StorageRegistry().token_vault("mongodb://x")


def test_memory_has_no_vault() -> None:
    """memory:// keeps no token vault (tokens must outlive the process): refused at
    construction, naming the backends that have one."""
    with pytest.raises(ConfigurationError, match=r"memory backend has no token vault.*sqlite://"):
        StorageRegistry().token_vault("memory://", setting="TOKEN_VAULT_URL")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        pytest.param("redis://127.0.0.1:1/0", id="redis"),
        pytest.param("postgresql://postgres@127.0.0.1:1/x", id="postgres"),
    ],
)
async def test_unreachable_backend_is_a_storage_error(url: str) -> None:
    """A backend that is down surfaces as StorageError (driver error chained), not a driver type."""
    vault = StorageRegistry(socket_timeout=0.5).token_vault(url)
    tokenizer = _tokenizer(vault)
    with pytest.raises(StorageError) as info:
        await tokenizer.tokenize("4111111111111111")
    assert info.value.__cause__ is not None
    await vault.aclose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:relative.db"])
def test_malformed_sqlite_url(url: str) -> None:
    """A SQLite URL without a path is refused at construction."""
    with pytest.raises(ConfigurationError, match="sqlite:///"):
        StorageRegistry().token_vault(url)


@pytest.mark.anyio
async def test_master_key_change_keeps_the_vault_readable(vault: TokenVault) -> None:
    """After the master key is replaced (the old one retired), entries and deterministic
    tokens still resolve; rotate rewrites them under the new key, which then reads alone."""
    old = _tokenizer(vault, master=b"o" * 32)
    token = await old.tokenize("4111-1111-1111-1111")
    det = await old.tokenize("ada@example.com", deterministic=True)
    ring = KeyRing(b"n" * 32, retired=[b"o" * 32])
    new = Tokenizer(vault, DataEncryption(keyring=ring, algorithm="aes_gcm", purpose="tokens"))
    assert await new.detokenize(token) == "4111-1111-1111-1111"
    assert await new.tokenize("ada@example.com", deterministic=True) == det
    report = await new.rotate(batch_size=1)
    assert (report.scanned, report.rotated) == (2, 2)
    assert (await new.rotate()).rotated == 0
    alone = _tokenizer(vault, master=b"n" * 32)
    assert await alone.detokenize(token) == "4111-1111-1111-1111"
    assert await alone.tokenize("ada@example.com", deterministic=True) == det
