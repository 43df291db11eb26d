"""The admin-key dependency guarding ``/api/security/*``.

A callable class with ``auto_error`` like ``fastapi.security.APIKeyHeader``:
the key is read from ``Authorization: Bearer <key>`` or ``X-API-Key`` and
compared in constant time; a missing or wrong key is ``401`` with
``WWW-Authenticate: Bearer``.

With tenancy (issue 21) a tenant admin's key (``POST /tenants`` shows it once) is
admitted too, on the routes whose state is per tenant (``tenant_paths``: alerts,
activity, incidents, decisions, lockouts) and only inside its own tenant (the
request names it with ``X-Tenant``, so the tenancy layer runs it in that scope):
what it reads and changes is then that tenant's by construction. Everything else
(the audit trail, policies, live settings, the tenants' list) stays the platform
admin's.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.security.base import SecurityBase
from pydantic import SecretStr

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.tenancy.context import current_tenant

if TYPE_CHECKING:
    from pynomaly_security.tenancy.registry import TenantRegistry

__all__ = ["MIN_ADMIN_KEY_LENGTH", "AdminAPIKey"]

MIN_ADMIN_KEY_LENGTH = 16


class AdminAPIKey(SecurityBase):
    """FastAPI security dependency that admits holders of the admin key.

    Args:
        key: the admin key (at least 16 characters).
        auto_error: when false, a missing/wrong key returns ``None`` instead of 401.
        tenants: the tenant registry (tenancy on): admits tenant admin keys.
        tenant_paths: path prefixes a tenant admin key may use (module docstring).
    """

    def __init__(
        self,
        key: str | SecretStr,
        *,
        auto_error: bool = True,
        tenants: TenantRegistry | None = None,
        tenant_paths: Sequence[str] = (),
    ) -> None:
        secret = key.get_secret_value() if isinstance(key, SecretStr) else key
        if len(secret) < MIN_ADMIN_KEY_LENGTH:
            raise ConfigurationError(
                f"PYNOMALY_SECURITY__ADMIN_API_KEY must be at least {MIN_ADMIN_KEY_LENGTH} "
                "characters; generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        self._key = secret.encode()
        self.auto_error = auto_error
        self._tenants = tenants
        self._tenant_paths = tuple(tenant_paths)
        self.model = APIKey(
            **{"in": APIKeyIn.header},
            name="X-API-Key",
            description="Admin key: X-API-Key or Authorization: Bearer",
        )
        self.scheme_name = "AdminAPIKey"

    def _presented(self, request: Request) -> bytes | None:
        api_key = request.headers.get("x-api-key")
        if api_key:
            return api_key.encode()
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token:
            return token.strip().encode()
        return None

    async def __call__(self, request: Request) -> str | None:
        presented = self._presented(request)
        if presented is not None and hmac.compare_digest(presented, self._key):
            return "admin"
        if presented is not None and await self._tenant_admin(request, presented):
            return "tenant_admin"
        if not self.auto_error:
            return None
        raise HTTPException(
            status_code=401,
            detail="admin API key required",
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def _tenant_admin(self, request: Request, presented: bytes) -> bool:
        tenant = current_tenant()
        if self._tenants is None or tenant is None:
            return False
        if not request.scope["path"].startswith(self._tenant_paths):
            return False
        try:
            key = presented.decode()
        except UnicodeDecodeError:
            return False
        return await self._tenants.admin_of(tenant, key)
