"""``/policies``: versioned security policies, their activation, shadow and rollback,
a decision with its explanation, replay, and statistics with a compliance score.

Included by the main router under ``/api/security`` behind the admin key (no check
here). Every change (create, new version, remove, activate, shadow, rollback) changes
what the app enforces, so it also needs a session that re-authenticated recently
(``api/reauth.py``): its user is the author the version and the audit trail name.
Reading, ``evaluate`` and ``replay`` change nothing and need the key only.

Errors: an unknown policy or version is 404; an invalid policy 422 naming the rule and
field; a conflicting change (an existing id, a rollback that is not to an earlier
version, a concurrent change) 409 with its ``code``; a state store that fails 503.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from pynomaly_security.api.reauth import UNAVAILABLE, reauthenticated_user
from pynomaly_security.exceptions import StorageError
from pynomaly_security.policy.compliance import app_routes, compliance_report
from pynomaly_security.policy.conditions import Principal, RequestFacts, Resource
from pynomaly_security.policy.engine import SecurityPolicyEngine
from pynomaly_security.policy.model import Policy
from pynomaly_security.policy.store import PolicyConflict, PolicyVersion

__all__ = ["build_policy_router"]

PolicyId = Annotated[str, Path(max_length=128)]
Version = Annotated[int, Path(ge=1, le=10_000_000)]


class PolicyHead(BaseModel):
    policy_id: str
    latest: int
    active: int | None
    shadow: int | None


class VersionOut(BaseModel):
    policy_id: str
    version: int
    hash: str
    parent: int | None
    author: str
    created_at: float
    status: str
    body: dict[str, Any] | None = None


class PrincipalIn(BaseModel):
    id: str = Field(max_length=256)
    roles: list[str] = Field(default_factory=list, max_length=64)
    groups: list[str] = Field(default_factory=list, max_length=64)
    tenant: str | None = Field(None, max_length=256)
    api_key: str | None = Field(None, max_length=256, description="The key's id, never the key.")
    mfa: bool = False
    risk: float = Field(0.0, ge=0)
    device_known: bool = False


class ResourceIn(BaseModel):
    path: str | None = Field(None, max_length=2048)
    type: str | None = Field(None, max_length=128)
    id: str | None = Field(None, max_length=256)
    owner: str | None = Field(None, max_length=256)
    classification: str | None = Field(None, max_length=64)


class ContextIn(BaseModel):
    ip: str | None = Field(None, max_length=64)
    method: str | None = Field(None, max_length=16)
    headers: list[str] = Field(default_factory=list, max_length=64)
    now: float | None = Field(None, description="Seconds since the epoch (default: now).")


class EvaluateIn(BaseModel):
    principal: PrincipalIn
    action: str = Field(min_length=1, max_length=256)
    resource: ResourceIn
    context: ContextIn = Field(default_factory=ContextIn)


class PolicyDecisionOut(BaseModel):
    allowed: bool
    effect: str
    policy_id: str | None
    rule_id: str | None
    version: int | None
    reasons: list[str]
    code: str
    dry_run: list[str]
    shadow: dict[str, Any] | None = None


class ReplayIn(BaseModel):
    version: int = Field(ge=1)
    since: float | None = Field(None, description="Seconds since the epoch (inclusive).")
    until: float | None = Field(None, description="Seconds since the epoch (inclusive).")
    limit: int = Field(100, ge=1, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> ReplayIn:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError("until is before since")
        return self


class ReplayOut(BaseModel):
    policy_id: str
    version: int
    replayed: int
    flipped: int
    flips: list[dict[str, Any]]


def _out(version: PolicyVersion, *, body: bool = True) -> VersionOut:
    return VersionOut(**version.to_dict(body=body))


def _conflict(exc: PolicyConflict) -> HTTPException:
    status = 404 if exc.code == "not_found" else 409
    return HTTPException(status, {"code": exc.code, "detail": str(exc)})


def build_policy_router(engine: SecurityPolicyEngine) -> APIRouter:
    """The policy routes on one stack's engine (include behind admin auth)."""
    router = APIRouter(tags=["security"])

    @router.get("/policies", response_model=list[PolicyHead])
    async def list_policies() -> Any:
        try:
            heads = await engine.store.heads()
        except StorageError:
            return UNAVAILABLE
        return sorted(
            (PolicyHead(**{k: h.get(k) for k in PolicyHead.model_fields}) for h in heads),
            key=lambda h: h.policy_id,
        )

    @router.post("/policies", response_model=VersionOut, status_code=201)
    async def create_policy(request: Request, body: Policy) -> Any:
        actor = await reauthenticated_user(request, "policy_create", "creating a policy")
        if not isinstance(actor, str):
            return actor
        try:
            return _out(await engine.add_policy(body, author=actor))
        except StorageError:
            return UNAVAILABLE
        except PolicyConflict as exc:
            raise _conflict(exc) from None

    @router.get("/policies/stats")
    async def policy_stats(request: Request) -> Any:
        """Per rule and version: applied, allows, denies, shadow disagreements, last
        matched, as every worker flushed them (this one first); the latest disagreements
        listed; the compliance score."""
        try:
            await engine.ledger.flush()
            stats = await engine.ledger.read()
            active = await engine.active_policies()
        except StorageError:
            return UNAVAILABLE
        routes = app_routes(request.app)
        matched = {key for key, counts in stats.rules.items() if counts.applied}
        return {
            **stats.totals,
            "disagreements": stats.disagreements,
            "rules": stats.rule_rows(),
            "compliance": compliance_report(active, routes, matched),
        }

    @router.post("/policies/evaluate", response_model=PolicyDecisionOut)
    async def evaluate(body: EvaluateIn) -> Any:
        """The active versions' decision with its explanation (and the shadow's);
        not counted in the statistics."""
        p = body.principal
        principal = Principal(
            p.id, frozenset(p.roles), frozenset(p.groups), p.tenant, p.api_key, p.mfa, p.risk,
            p.device_known,
        )  # fmt: skip
        resource = Resource(**body.resource.model_dump())
        if resource.path is None and resource.type is None:
            raise HTTPException(422, "resource needs a path or a type")
        c = body.context
        facts = RequestFacts(
            now=c.now if c.now is not None else engine.clock(),
            ip=c.ip,
            method=c.method,
            headers=frozenset(h.lower() for h in c.headers),
        )
        decision = engine.evaluate(principal, body.action, resource, facts, record=False)
        shadow = engine.shadow
        out = PolicyDecisionOut(**decision.to_dict())
        if shadow is not None:
            out.shadow = shadow.evaluate(principal, body.action, resource, facts).to_dict()
        return out

    @router.get("/policies/{policy_id}", response_model=VersionOut)
    async def get_policy(policy_id: PolicyId, version: int | None = None) -> Any:
        try:
            found = await engine.get_policy(policy_id, version)
        except StorageError:
            return UNAVAILABLE
        if found is None:
            raise HTTPException(404, "policy not found")
        return _out(found)

    @router.put("/policies/{policy_id}", response_model=VersionOut)
    async def update_policy(request: Request, policy_id: PolicyId, body: Policy) -> Any:
        """A new draft version (activate it to enforce it)."""
        if body.id != policy_id:
            raise HTTPException(422, "the body's id is not the path's")
        actor = await reauthenticated_user(request, "policy_update", "changing a policy")
        if not isinstance(actor, str):
            return actor
        try:
            return _out(await engine.update_policy(body, author=actor))
        except StorageError:
            return UNAVAILABLE
        except PolicyConflict as exc:
            raise _conflict(exc) from None

    @router.delete("/policies/{policy_id}", status_code=204, response_model=None)
    async def remove_policy(request: Request, policy_id: PolicyId) -> Any:
        if await engine.store.head(policy_id) is None:
            raise HTTPException(404, "policy not found")
        actor = await reauthenticated_user(request, "policy_remove", "removing a policy")
        if not isinstance(actor, str):
            return actor
        try:
            if not await engine.remove_policy(policy_id, author=actor):
                raise HTTPException(404, "policy not found")
        except StorageError:
            return UNAVAILABLE
        return Response(status_code=204)

    @router.get("/policies/{policy_id}/versions", response_model=list[VersionOut])
    async def list_versions(policy_id: PolicyId) -> Any:
        try:
            if await engine.store.head(policy_id) is None:
                raise HTTPException(404, "policy not found")
            return [_out(v, body=False) for v in await engine.store.versions(policy_id)]
        except StorageError:
            return UNAVAILABLE

    async def _status_change(request: Request, policy_id: str, version: int, verb: str) -> Any:
        actor = await reauthenticated_user(request, f"policy_{verb}", f"a policy {verb}")
        if not isinstance(actor, str):
            return actor
        change = {
            "activate": engine.activate,
            "shadow": engine.shadow_version,
            "rollback": engine.rollback,
        }[verb]
        try:
            return _out(await change(policy_id, version, author=actor), body=False)
        except StorageError:
            return UNAVAILABLE
        except PolicyConflict as exc:
            raise _conflict(exc) from None

    @router.post("/policies/{policy_id}/versions/{version}/activate", response_model=VersionOut)
    async def activate(request: Request, policy_id: PolicyId, version: Version) -> Any:
        return await _status_change(request, policy_id, version, "activate")

    @router.post("/policies/{policy_id}/versions/{version}/shadow", response_model=VersionOut)
    async def shadow(request: Request, policy_id: PolicyId, version: Version) -> Any:
        """Evaluate the version beside the active one on live traffic, not enforced."""
        return await _status_change(request, policy_id, version, "shadow")

    @router.post("/policies/{policy_id}/versions/{version}/rollback", response_model=VersionOut)
    async def rollback(request: Request, policy_id: PolicyId, version: Version) -> Any:
        """Make an earlier version active again."""
        return await _status_change(request, policy_id, version, "rollback")

    @router.post("/policies/{policy_id}/replay", response_model=ReplayOut)
    async def replay(policy_id: PolicyId, body: ReplayIn) -> Any:
        """Which of the decisions every worker logged in [since, until] would flip
        under ``version``."""
        try:
            report = await engine.replay(
                policy_id, body.version, since=body.since, until=body.until, limit=body.limit
            )
        except StorageError:
            return UNAVAILABLE
        except PolicyConflict as exc:
            raise _conflict(exc) from None
        return ReplayOut(
            policy_id=report.policy_id,
            version=report.version,
            replayed=report.replayed,
            flipped=report.flipped,
            flips=report.flips,
        )

    return router
