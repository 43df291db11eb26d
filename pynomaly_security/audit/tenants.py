"""Audit records bound to tenants (issue 21): one chain, tenant-bound records.

The trail stays **one** hash chain for every tenant (a chain per tenant needs a head
per tenant in every backend, and a deleted tenant's whole chain vanishing is what a
truncation looks like). Instead each record written inside a tenant carries it in two
plaintext columns that are part of the hashed header (``chain.header``):

* ``tenant``: changing it breaks the chain like any other column; per-tenant queries
  filter on it in SQL (``RecordFilter.tenant``);
* ``tenant_seq``: the record's number among its tenant's records (1, 2, 3, ...),
  assigned in the append transaction. ``verify(tenant=...)`` checks the whole chain
  and then that the tenant's numbers have no gap and end at the tenant's last record:
  a deleted record of tenant A is reported *as A's* (which number is missing), and a
  tenant's records exported alone (a query, a SIEM feed) can be checked for gaps
  without anyone else's records.

Personal data of a tenant's records that name no user (the client IP of anonymous
access rows, the user name of a failed sign-in) is sealed under a *tenant subject*
key: the trail's own per-subject key mechanism (``sealing.py``), for the pseudo-subject
:func:`tenant_subject`. Deleting the tenant erases that subject (``erase_subject``),
so those fields read ``[erased]`` while the chain, hashing ciphertexts, still
verifies. It is the audit store's key, not one of ``tenancy/keys.py``, on purpose:
the trail is verified and exported from its own database (``audit verify --db``),
which must not need the tenancy state to tell an erasure from a deleted key.

Access rows are built by the tracking layer, outside the tenancy layer, after the
tenant's scope has ended; the tenancy layer notes each request's tenant by request
id (:class:`AccessTenants`, bounded) and the writer groups the rows by tenant when it
seals them, one batch per tenant. With tenancy off none of this runs.
"""

from __future__ import annotations

import operator
from itertools import repeat
from typing import Final

from pynomaly_security._context import AccessRow
from pynomaly_security.tenancy.context import namespace

__all__ = [
    "TENANT_SUBJECT",
    "AccessTenants",
    "TenantBatch",
    "scoped_subject",
    "tenant_subject",
]

TENANT_SUBJECT: Final = "\x00tenant:"
"""Prefix of a tenant's own subject: a NUL, which no user id from a request carries."""
_USER_SUBJECT: Final = "\x00user:"
_RID = operator.itemgetter(5)


def tenant_subject(tenant_id: str) -> str:
    """The audit subject whose key seals a tenant's anonymous personal data."""
    return TENANT_SUBJECT + tenant_id


def scoped_subject(tenant_id: str | None, user_id: str) -> str:
    """The subject (whose key seals personal data, whose ref finds records) of user
    ``user_id`` of ``tenant_id``: user names and ids are per tenant (acme's alice is
    not globex's), so are their keys; erasing one never shreds the other. Outside a
    tenant: the user id itself, as before issue 21."""
    if tenant_id is None:
        return user_id
    return _USER_SUBJECT + namespace(tenant_id) + user_id


class TenantBatch(list[AccessRow]):
    """Access rows of one tenant, sealed as one batch record bound to ``tenant``."""

    tenant: str | None = None


class AccessTenants:
    """Request id -> tenant of the requests whose access rows are still queued.

    Args:
        max_pending: entries kept (the audit queue's bound: a row the queue dropped
            leaves its entry, which the bound evicts).
    """

    def __init__(self, max_pending: int) -> None:
        self._max = max_pending
        self._by_request: dict[str, str] = {}

    def note(self, request_id: str, tenant_id: str) -> None:
        """The request ``request_id`` ran for ``tenant_id`` (the tenancy layer)."""
        by_request = self._by_request
        by_request[request_id] = tenant_id
        if len(by_request) > self._max:  # rows the queue dropped: the oldest note goes
            del by_request[next(iter(by_request))]

    def batches(self, rows: list[AccessRow]) -> list[list[AccessRow]]:
        """``rows`` grouped by tenant and cut into batches (``split_batches``)."""
        from pynomaly_security.audit.batch import split_batches

        # In C (map): this runs over every row; most flushes hold one tenant's rows.
        tenants = list(map(self._by_request.pop, map(_RID, rows), repeat(None)))
        groups: dict[str | None, list[AccessRow]]
        if len(set(tenants)) == 1:
            groups = {tenants[0]: rows}
        else:
            groups = {}
            for tenant, row in zip(tenants, rows, strict=True):
                groups.setdefault(tenant, []).append(row)
        out: list[list[AccessRow]] = []
        for tenant, group in groups.items():
            for batch in split_batches(group):
                tagged = TenantBatch(batch)
                tagged.tenant = tenant
                out.append(tagged)
        return out
