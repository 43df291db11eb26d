"""The auth and storage packages export a complete, importable ``__all__``
(its order is ruff's RUF022 isort-style sort, checked by ``ruff check``)."""

from __future__ import annotations

import pytest

import pynomaly_security.auth
import pynomaly_security.storage


@pytest.mark.parametrize("module", [pynomaly_security.auth, pynomaly_security.storage])
def test_all_complete_and_importable(module: object) -> None:
    """Every name in __all__ exists once (httpx's test_exported_members)."""
    names = list(module.__all__)  # type: ignore[attr-defined]
    assert len(names) == len(set(names))
    assert [n for n in names if not hasattr(module, n)] == []
