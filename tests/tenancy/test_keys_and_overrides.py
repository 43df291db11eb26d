"""Per-tenant envelope keys (issue 21, item 3) and overrides that only narrow (item 4)."""

from __future__ import annotations

import pytest

from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.exceptions import InvalidToken
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage import StorageRegistry
from pynomaly_security.tenancy.keys import TenantKeys
from pynomaly_security.tenancy.model import TenantOverrides, check_narrowing


def ring() -> KeyRing:
    from pynomaly_security.crypto import generate_master_key

    return KeyRing.from_secret(generate_master_key())


@pytest.mark.anyio
async def test_rotate_and_destroy_one_tenant_leave_the_others() -> None:
    """A rotation keeps old data readable; destroying tenant A shreds A's data only."""
    keys = TenantKeys(ring(), StorageRegistry().state("memory://"), cache_seconds=0)
    for t in ("acme", "globex"):
        await keys.create(t)
    a1 = await keys.encrypt("acme", b"alice@acme.test")
    g1 = await keys.encrypt("globex", b"bob@globex.test")
    assert await keys.rotate("acme") == 2
    a2 = await keys.encrypt("acme", b"carol@acme.test")
    assert a1.startswith("tk1.1.") and a2.startswith("tk1.2.")
    assert await keys.decrypt("acme", a1) == b"alice@acme.test"  # old version still reads
    await keys.destroy("acme")
    for token in (a1, a2):
        with pytest.raises(InvalidToken):
            await keys.decrypt("acme", token)
    with pytest.raises(InvalidToken):
        await keys.encrypt("acme", b"after")
    assert await keys.decrypt("globex", g1) == b"bob@globex.test"


@pytest.mark.anyio
async def test_a_ciphertext_or_wrapped_key_does_not_move_between_tenants() -> None:
    """Another tenant's token, another purpose, or a wrapped key copied across: refused."""
    state = StorageRegistry().state("memory://")
    keys = TenantKeys(ring(), state, cache_seconds=0)
    await keys.create("acme")
    await keys.create("globex")
    token = await keys.encrypt("acme", b"secret")
    with pytest.raises(InvalidToken):
        await keys.decrypt("globex", token)
    with pytest.raises(InvalidToken):
        await keys.decrypt("acme", token, purpose="notes")
    docs = state.documents("p|tenant_keys", indexed=(), keep=100)
    acme = await docs.get("acme")
    assert acme is not None
    await docs.put("globex", acme)  # acme's wrapped key planted in globex's record
    with pytest.raises(InvalidToken):
        await keys.encrypt("globex", b"x")


def test_overrides_may_only_narrow() -> None:
    """Stricter values pass; a looser one is named, whatever else is set."""
    settings = SecuritySettings(_env_file=None)  # type: ignore[call-arg]
    strict = TenantOverrides(
        brute_force_max_attempts=3,
        access_token_ttl=300,
        detection_level=4,
        mfa_required=True,
        allowed_ip_ranges=["10.0.0.0/8"],
    )
    assert check_narrowing(strict, settings) == []
    loose = TenantOverrides(brute_force_max_attempts=50, detection_level=1, access_token_ttl=300)
    wrong = check_narrowing(loose, settings)
    assert len(wrong) == 2
    assert any("brute_force_max_attempts" in w for w in wrong)
    assert any("detection_level" in w for w in wrong)
    with pytest.raises(ValueError):
        TenantOverrides(allowed_ip_ranges=["not-a-network"])
