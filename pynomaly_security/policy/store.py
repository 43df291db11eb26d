"""Policies and their immutable versions in the stack's state (memory, SQLite, Redis,
PostgreSQL), and the status changes an admin makes.

Two document collections:

* ``policy_versions``: one document per version (id ``<policy>@<version>``): the body,
  its SHA-256, the parent version, author, creation time and status. A version is
  written once with insert-if-absent (``add``), so two workers updating one policy at
  once get two distinct numbers, never one overwritten; only its ``status`` changes
  afterwards.
  At ``POLICY_MAX_VERSIONS`` a new version is refused rather than the oldest dropped.
* ``policies``: one head per policy: the latest, active and shadow version numbers,
  changed by compare-and-set (``update(..., only_if=...)``) so two admins activating
  different versions at once cannot both win.

The head is the truth of which version is in force; a version's ``status`` follows it
(draft, shadow, active, retired) for listings. Every change adds one to the
``policies`` tally: the workers poll it (``engine.py``) and reload only when it moved.
Every change is an ``admin_action`` record in the audit trail (policy, version, hash,
actor; never the body).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from pynomaly_security._log import get_logger
from pynomaly_security.policy.model import Policy, body_hash
from pynomaly_security.storage.base import DocumentStore, TallyStore

if TYPE_CHECKING:
    from pynomaly_security.audit import AuditLogger

__all__ = ["PolicyConflict", "PolicyStatus", "PolicyStore", "PolicyVersion"]

log = get_logger(__name__)

TALLY = "policies"
_RETRIES = 8


class PolicyStatus(enum.StrEnum):
    DRAFT = "draft"
    SHADOW = "shadow"
    ACTIVE = "active"
    RETIRED = "retired"


class PolicyConflict(ValueError):
    """A change the current state refuses (the API's 404 or 409, by ``code``)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    policy_id: str
    version: int
    body: Policy
    hash: str
    parent: int | None
    author: str
    created_at: float
    status: PolicyStatus

    def to_dict(self, *, body: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "policy_id": self.policy_id,
            "version": self.version,
            "hash": self.hash,
            "parent": self.parent,
            "author": self.author,
            "created_at": self.created_at,
            "status": self.status.value,
        }
        if body:
            out["body"] = self.body.model_dump(mode="json", exclude_defaults=True)
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PolicyVersion:
        return cls(
            doc["policy_id"],
            int(doc["version"]),
            Policy.model_validate(doc["body"]),
            doc["hash"],
            doc.get("parent"),
            doc.get("author", ""),
            float(doc["created_at"]),
            PolicyStatus(doc["status"]),
        )


class _State(DocumentStore, TallyStore, Protocol):
    pass


def _vid(policy_id: str, version: int) -> str:
    return f"{policy_id}@{version}"


class PolicyStore:
    """Args:
    state: documents and tallies (the stack's state, else its store).
    max_versions: most versions kept over all policies (oldest dropped beyond).
    max_policies: most policies.
    audit_logger: where changes are recorded (None: not recorded).
    clock: seconds since the epoch; injected by tests.
    """

    def __init__(
        self,
        state: _State,
        *,
        max_versions: int = 10_000,
        max_policies: int = 1_000,
        audit_logger: AuditLogger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._versions = state.documents(
            "policy_versions", indexed=("policy_id", "status"), keep=max_versions
        )
        self._heads = state.documents("policies", indexed=("deleted",), keep=max_policies)
        self.max_versions = max_versions
        self.max_policies = max_policies
        self.audit_logger = audit_logger
        self.clock = clock

    # -- reading -----------------------------------------------------------------------
    async def generation(self) -> int:
        """What the workers poll: moves on every change."""
        return (await self._state.tallies(TALLY)).get("changes", 0)

    async def heads(self) -> list[dict[str, Any]]:
        """The heads of the policies not removed."""
        return await self._heads.find({"deleted": False}, limit=self.max_policies)

    async def head(self, policy_id: str) -> dict[str, Any] | None:
        head = await self._heads.get(policy_id)
        return head if head is not None and not head.get("deleted") else None

    async def version(self, policy_id: str, version: int) -> PolicyVersion | None:
        doc = await self._versions.get(_vid(policy_id, version))
        return PolicyVersion.from_dict(doc) if doc is not None else None

    async def versions(self, policy_id: str, *, limit: int = 100) -> list[PolicyVersion]:
        """Newest first."""
        docs = await self._versions.find({"policy_id": policy_id}, limit=limit)
        return sorted(map(PolicyVersion.from_dict, docs), key=lambda v: -v.version)

    async def get(self, policy_id: str, version: int | None = None) -> PolicyVersion | None:
        """``version``, else the active one, else the latest; None when unknown."""
        head = await self.head(policy_id)
        if head is None:
            return None
        wanted = version if version is not None else head.get("active") or head["latest"]
        return await self.version(policy_id, int(wanted))

    # -- changing ----------------------------------------------------------------------
    async def create(self, policy: Policy, *, author: str) -> PolicyVersion:
        """A new policy at version 1 (draft); a removed id may be used again."""
        heads = sum((await self._heads.count(group_by="deleted")).values())
        if heads >= self.max_policies and await self._heads.get(policy.id) is None:
            raise PolicyConflict("limit", f"{self.max_policies} policies kept")
        head = {"policy_id": policy.id, "latest": 0, "active": None, "shadow": None}
        if not await self._heads.add(policy.id, {**head, "deleted": False}):
            existing = await self._heads.get(policy.id)
            if existing is None or not existing.get("deleted"):
                raise PolicyConflict("exists", f"policy {policy.id!r} exists: PUT a new version")
            revived = await self._heads.update(
                policy.id,
                {"deleted": False, "active": None, "shadow": None},
                only_if={"deleted": True},
            )
            if revived is None or revived.get("deleted"):
                raise PolicyConflict("exists", f"policy {policy.id!r} exists")
        return await self._new_version(policy, author=author, action="policy_created")

    async def update(self, policy: Policy, *, author: str) -> PolicyVersion:
        """A new draft version of an existing policy (its parent: the latest)."""
        if await self.head(policy.id) is None:
            raise PolicyConflict("not_found", f"no policy {policy.id!r}")
        return await self._new_version(policy, author=author, action="policy_updated")

    async def _new_version(self, policy: Policy, *, author: str, action: str) -> PolicyVersion:
        # At the bound the collection would drop its oldest version, which may be one in
        # force: refuse instead (the API's 409), so a policy never vanishes by itself.
        kept = sum((await self._versions.count(group_by="status")).values())
        if kept >= self.max_versions:
            raise PolicyConflict(
                "limit", f"{self.max_versions} versions kept (POLICY_MAX_VERSIONS)"
            )
        for _ in range(_RETRIES):
            head = await self._heads.get(policy.id)
            if head is None:
                raise PolicyConflict("not_found", f"no policy {policy.id!r}")
            latest = int(head["latest"])
            made = PolicyVersion(
                policy.id,
                latest + 1,
                policy,
                body_hash(policy),
                latest or None,
                author,
                self.clock(),
                PolicyStatus.DRAFT,
            )
            doc = {**made.to_dict(), "body": policy.model_dump(mode="json")}
            if await self._versions.add(_vid(policy.id, made.version), doc):
                await self._heads.update(
                    policy.id, {"latest": made.version}, only_if={"latest": latest}
                )
                await self._changed(made, action, author)
                return made
            # Another worker took this number: its head update is on its way.
            await self._heads.update(policy.id, {"latest": latest + 1}, only_if={"latest": latest})
        raise PolicyConflict("busy", f"policy {policy.id!r} is being changed: try again")

    async def set_status(
        self, policy_id: str, version: int, status: PolicyStatus, *, author: str, action: str
    ) -> PolicyVersion:
        """Make ``version`` active or shadow (or neither: draft); the head by compare-and-set."""
        target = await self.version(policy_id, version)
        head = await self.head(policy_id)
        if target is None or head is None:
            raise PolicyConflict("not_found", f"no version {version} of policy {policy_id!r}")
        field = "active" if status is PolicyStatus.ACTIVE else "shadow"
        before = head.get(field)
        changes: dict[str, Any] = {field: version}
        if status is PolicyStatus.ACTIVE and head.get("shadow") == version:
            changes["shadow"] = None  # the candidate became the real thing
        if status is PolicyStatus.SHADOW and head.get("active") == version:
            raise PolicyConflict("active", f"version {version} is the active one")
        after = await self._heads.update(policy_id, changes, only_if={field: before})
        if after is None or after.get(field) != version:
            raise PolicyConflict("busy", f"policy {policy_id!r} changed meanwhile: try again")
        if before is not None and before != version:
            was = PolicyStatus.RETIRED if status is PolicyStatus.ACTIVE else PolicyStatus.DRAFT
            await self._versions.update(_vid(policy_id, int(before)), {"status": was.value})
        await self._versions.update(_vid(policy_id, version), {"status": status.value})
        made = replace(target, status=status)
        await self._changed(made, action, author, previous=before)
        return made

    async def end_shadow(self, policy_id: str, *, author: str) -> bool:
        head = await self.head(policy_id)
        if head is None or head.get("shadow") is None:
            return False
        shadow = int(head["shadow"])
        await self._heads.update(policy_id, {"shadow": None}, only_if={"shadow": shadow})
        await self._versions.update(_vid(policy_id, shadow), {"status": PolicyStatus.DRAFT.value})
        made = await self.version(policy_id, shadow)
        if made is not None:
            await self._changed(made, "policy_shadow_ended", author)
        return True

    async def remove(self, policy_id: str, *, author: str) -> bool:
        """Take a policy out of force (its versions stay for the record)."""
        head = await self.head(policy_id)
        if head is None:
            return False
        await self._heads.update(policy_id, {"deleted": True, "active": None, "shadow": None})
        for field in ("active", "shadow"):
            if head.get(field) is not None:
                await self._versions.update(
                    _vid(policy_id, int(head[field])), {"status": PolicyStatus.RETIRED.value}
                )
        latest = await self.version(policy_id, int(head["latest"]))
        if latest is not None:
            await self._changed(latest, "policy_removed", author)
        return True

    async def touch(self) -> None:
        """Move the change counter (the workers reload)."""
        await self._state.add_tallies(TALLY, {"changes": 1})

    async def _changed(
        self, version: PolicyVersion, action: str, actor: str, *, previous: Any = None
    ) -> None:
        await self.touch()
        if self.audit_logger is None:
            return
        from pynomaly_security.audit import SecurityEventType

        details = {**version.to_dict(body=False), "previous": previous}
        try:
            await self.audit_logger.log_audit_event(
                action,
                f"policy:{version.policy_id}",
                user_id=actor,
                details=details,
                event_type=SecurityEventType.ADMIN_ACTION,
            )
        except Exception as exc:  # in force already: say so loudly, do not undo it
            log.error("policy_audit_failed", policy_id=version.policy_id, error=type(exc).__name__)
