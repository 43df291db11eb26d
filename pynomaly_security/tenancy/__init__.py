"""Secure multi-tenancy (issue 21): see the README section "Multi-tenancy".

``context`` (the running tenant, the one key encoding), ``scoped`` (the
tenant-scoped store and state), ``model`` and ``registry`` (tenants, plans,
narrowing overrides), ``resolve`` and ``middleware`` (finding and checking a
request's tenant, quotas), ``keys`` (per-tenant envelope keys), ``rls``
(PostgreSQL row-level security, SQLite per tenant, URL templates).
"""
