"""What a playbook step does: its targets, ``plan``, ``execute``, ``verify`` and ``revert``.

Decisions go through the stack's :class:`~pynomaly_security.decisions.DecisionService`
(origin ``playbook:<name>``, so the same step on the same value names one decision).
``lock_account`` is a ``ban`` decision on scope ``user``: the shared
:class:`~pynomaly_security.auth.lockout.LockoutManager` locks on failure counts and has
no public call to lock an account outright, and a decision is enforced by every
worker, audited and revertible. ``revoke_sessions`` calls the app's authenticator
(``logout_all``: a new token generation ends every access and refresh token of the
user); it cannot be reverted.

``rotate_key`` cannot switch the key version at run time, and does not try: the key
ring stores no key material and is derived in each process from the settings
(``KEY_VERSION``, ``KEY_MIN_VERSION``, ``crypto/keys.py``). A worker that raised its
version alone would write tokens and fields that the other workers (still on the old
version, which does not know the new one) refuse as invalid, and a restart would
silently go back to the setting. The rotation is an operator's three ordered moves
across every instance (raise ``KEY_VERSION`` everywhere, run ``python -m
pynomaly_security keys rotate``, then raise ``KEY_MIN_VERSION``). So the action does
what is safe now and asks for the rest: it ends every session and refresh token of the
incident's users (as ``revoke_sessions``: whatever was stolen under the current key
stops working at once) and sends, on its ``channel``, the message naming those moves
(:data:`ROTATE_INSTRUCTIONS`); the step's timeline record says both happened.

``verify`` checks that the step's decisions are in force. Where the stack's app is
known (``IncidentResponseAutomation.app``, a weak reference set by
``setup_security_middleware``), a ``ban`` of an ip or cidr is checked the way an
attacker meets it: one synthetic ``GET PLAYBOOK_VERIFY_PATH`` (default ``/``) sent
through the whole app in process from the banned address, which must answer 403.
Other decisions (a throttle refuses only past a rate; a user's decision needs that
user's signed-in session) and an app not known (the standalone automation, or an app
gone) fall back to this worker's decision index, the one the middleware reads on each
request. The synthetic request carries ``X-Request-ID: playbook-verify:<incident>:<step>``,
which the tracking layer keeps as the client's request id, so its access row and its
``request_refused`` record say what it was; refused, it is anonymous, not a login and
not a 404, so the monitor gets no event from it and no correlation rule counts it. The marker
grants nothing: it only labels the trail (a client sending it is still refused).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from pynomaly_security._log import get_logger
from pynomaly_security.decisions.index import AllowList
from pynomaly_security.decisions.model import DecisionScope, normalize_value, parse_duration
from pynomaly_security.decisions.store import DecisionRefused
from pynomaly_security.incidents.model import Incident
from pynomaly_security.incidents.notify import NotConfigured, Notifier
from pynomaly_security.incidents.playbooks import Playbook, PlaybookStep

if TYPE_CHECKING:
    from pynomaly_security.decisions.service import DecisionService

__all__ = ["SessionRevoker", "StepContext", "StepSkipped", "execute", "plan", "revert", "targets"]

SessionRevoker = Callable[[str], Awaitable[None]]
ROTATE_INSTRUCTIONS = (
    "rotate the key version: raise PYNOMALY_SECURITY__KEY_VERSION on every instance, "
    "run `.venv/bin/python -m pynomaly_security keys rotate`, then raise "
    "PYNOMALY_SECURITY__KEY_MIN_VERSION"
)
"""What ``rotate_key``'s message asks the operator to do (``crypto/keys.py``)."""
AppRef = Callable[[], Any]
"""A weak reference to the stack's ASGI app (``weakref.ref(app)``): None once it is gone."""
log = get_logger(__name__)
VERIFY_TIMEOUT = 5.0
"""Bound of one synthetic verify request: a refused one answers at once; an app that
serves it slowly is not refusing it."""
_KIND = {"ip": "ips", "cidr": "ips", "user": "users", "session": "sessions", "route": "routes"}


class StepSkipped(Exception):
    """The step has nothing to act on or no way to act (the reason says which)."""


@dataclass(slots=True)
class StepContext:
    incident: Incident
    playbook: Playbook
    step: PlaybookStep
    actor: str
    actor_ip: str | None
    decisions: DecisionService | None
    revoker: SessionRevoker | None
    notifier: Notifier
    app: AppRef | None = None
    verify_path: str = "/"
    verify_host: str = "localhost"


def _scope(step: PlaybookStep) -> str | None:
    if step.action == "decision":
        return str(step.params["scope"])
    if step.action in ("lock_account", "revoke_sessions", "rotate_key"):
        return "user"
    return None


def targets(step: PlaybookStep, incident: Incident) -> list[str]:
    """The values the step acts on, from the incident's observables (normalized,
    de-duplicated, in order); ``[]`` for messages."""
    scope = _scope(step)
    if scope is None:
        return []
    out: list[str] = []
    for raw in incident.observables.get(_KIND[scope], []):
        if scope == "cidr":
            try:
                ip = ipaddress.ip_address(raw)
            except ValueError:
                continue
            prefix = int(step.params.get("prefix", 24))
            # A v4 prefix means little for v6: widen a v6 address to its /64 at most.
            bits = prefix if ip.version == 4 and prefix <= 32 else min(max(prefix, 48), 64)
            value = str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))
        else:
            try:
                value = normalize_value(DecisionScope(scope), raw)
            except ValueError:
                continue
        if value not in out:
            out.append(value)
    return out


def _protected(ctx: StepContext, scope: str, value: str) -> str | None:
    """Why ``value`` may not be touched (allow-listed, the acting admin), or None."""
    if ctx.decisions is not None and ctx.decisions.allow.covers(DecisionScope(scope), value):
        return "allow_listed"
    if scope == "user" and value == ctx.actor:
        return "acting_admin"
    if ctx.actor_ip is not None and scope in ("ip", "cidr"):
        net = value if scope == "cidr" else value + ("/128" if ":" in value else "/32")
        if AllowList([net]).allows_ip(ctx.actor_ip):
            return "acting_admin"
    return None


def _decision_of(step: PlaybookStep) -> tuple[str, str]:
    if step.action == "lock_account":
        return "user", "ban"
    return str(step.params["scope"]), str(step.params["action"])


def plan(ctx: StepContext, found: list[str]) -> list[dict[str, Any]]:
    """What the step would change: one entry per target (``refused`` with a code for a
    protected one) or per message. Raises :class:`StepSkipped`."""
    step = ctx.step
    if step.action in ("notify", "open_ticket"):
        channel = "ticket" if step.action == "open_ticket" else str(step.params["channel"])
        try:
            where = ctx.notifier.destination(channel)
        except NotConfigured as exc:
            raise StepSkipped(str(exc)) from None
        return [{"change": f"send a {channel} message", "to": where}]
    if step.action == "rotate_key":
        return _plan_rotate(ctx, found)
    if not found:
        raise StepSkipped(f"the incident has no {_KIND[_scope(step) or 'ip']}")
    if step.action == "revoke_sessions":
        if ctx.revoker is None:
            raise StepSkipped("no authenticator on this app (auth.install_authenticator)")
        return [
            {
                "target": v,
                "change": "end every session and refresh token",
                "refused": _protected(ctx, "user", v),
            }
            for v in found
        ]
    if ctx.decisions is None:
        raise StepSkipped("decisions are off (DECISIONS_ENABLED)")
    scope, action = _decision_of(step)
    return [
        {"target": v, "change": f"{action} {scope}", "refused": _protected(ctx, scope, v)}
        for v in found
    ]


def _plan_rotate(ctx: StepContext, found: list[str]) -> list[dict[str, Any]]:
    """``rotate_key``: the users' sessions (with an authenticator), then the operator's
    message (with a destination); skipped with neither."""
    out: list[dict[str, Any]] = []
    if ctx.revoker is not None:
        out += [
            {
                "target": v,
                "change": "end every session and refresh token",
                "refused": _protected(ctx, "user", v),
            }
            for v in found
        ]
    channel = str(ctx.step.params.get("channel", "webhook"))
    try:
        where = ctx.notifier.destination(channel)
    except NotConfigured:
        where = None
    if where is not None:
        out.append({"change": f"send a {channel} message: {ROTATE_INSTRUCTIONS}", "to": where})
    if not out:
        raise StepSkipped(
            "rotate_key needs an authenticator (auth.install_authenticator) for the "
            f"sessions or a {channel} destination (PLAYBOOK_*) for the operator's message"
        )
    return out


def _ttl(step: PlaybookStep) -> float | None:
    raw = step.params.get("ttl")
    return None if raw is None else parse_duration(str(raw))


async def execute(ctx: StepContext, planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Do what :func:`plan` planned; one result per entry (a refusal is a result)."""
    step = ctx.step
    out: list[dict[str, Any]] = []
    if step.action in ("notify", "open_ticket"):
        channel = "ticket" if step.action == "open_ticket" else str(step.params["channel"])
        await ctx.notifier.send(channel, _message(ctx))
        return [{"change": planned[0]["change"], "done": True}]
    for entry in planned:
        if "target" not in entry:  # rotate_key's message to the operator, sent last
            message = {**_message(ctx), "operator_action": ROTATE_INSTRUCTIONS}
            await ctx.notifier.send(str(step.params.get("channel", "webhook")), message)
            log.warning("key_rotation_requested", incident_id=ctx.incident.incident_id)
            out.append({"change": entry["change"], "done": True})
            continue
        value = entry["target"]
        if entry.get("refused"):
            out.append({"target": value, "done": False, "refused": entry["refused"]})
            continue
        if step.action in ("revoke_sessions", "rotate_key"):
            assert ctx.revoker is not None  # plan() checked it
            await ctx.revoker(value)
            out.append({"target": value, "done": True})
            continue
        assert ctx.decisions is not None  # plan() checked it
        scope, action = _decision_of(step)
        try:
            made = await ctx.decisions.add(
                scope,
                value,
                action,
                origin=f"playbook:{ctx.playbook.name}",
                reason=f"incident {ctx.incident.incident_id}, step {step.id}",
                ttl=_ttl(step),
                actor=ctx.actor,
                actor_ip=ctx.actor_ip,
            )
        except DecisionRefused as exc:
            out.append({"target": value, "done": False, "refused": exc.code, "detail": str(exc)})
            continue
        out.append({"target": value, "done": True, "decision_id": made.decision_id})
    return out


async def verify(ctx: StepContext, results: list[dict[str, Any]]) -> bool | None:
    """Whether every decision made is in force (None: nothing to check); through the
    app for an ip or cidr ban when the app is known, else in this worker's index (see
    the module docstring)."""
    if ctx.decisions is None or ctx.step.action not in ("decision", "lock_account"):
        return None
    made = [r for r in results if r.get("decision_id")]
    if not made:
        return None
    scope, action = _decision_of(ctx.step)
    app = ctx.app() if ctx.app is not None else None
    if app is not None and scope in ("ip", "cidr") and action == "ban":
        marker = f"playbook-verify:{ctx.incident.incident_id}:{ctx.step.id}"
        for r in made:
            status = await probe(
                app, str(r["target"]).split("/")[0], ctx.verify_path, ctx.verify_host, marker
            )
            if status != 403:
                return False
        return True
    index = ctx.decisions.view.index
    now = ctx.decisions.clock()
    for r in made:
        value = r["target"]
        probe_ip = value.split("/")[0] if scope in ("ip", "cidr") else None
        pairs = [] if scope == "cidr" else [(scope, value)]
        hits = index.lookup(pairs, probe_ip, now)
        if not any(m.key == r["decision_id"] for m in hits):
            return False
    return True


async def probe(app: Any, ip: str, path: str, host: str, request_id: str) -> int:
    """The status the app answers a bodiless ``GET path`` from ``ip`` (0: no answer
    within :data:`VERIFY_TIMEOUT`, or the app failed)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", host.encode()), (b"x-request-id", request_id.encode())],
        "client": (ip, 0),
        "server": (host, 80),
        "state": {},
    }
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()  # the app asks again only to wait for a disconnect
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    with anyio.move_on_after(VERIFY_TIMEOUT):
        try:
            await app(scope, receive, send)
        except Exception as exc:  # the app's failure is an answer that is not a refusal
            log.warning("playbook_verify_failed", error=type(exc).__name__)
            return 0
    return status


async def revert(ctx: StepContext, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Undo the decisions a step made (sessions ended and messages sent stay so)."""
    out: list[dict[str, Any]] = []
    for r in results:
        if not r.get("decision_id") or ctx.decisions is None:
            continue
        gone = await ctx.decisions.revert(r["decision_id"], actor=ctx.actor, actor_ip=ctx.actor_ip)
        out.append({"decision_id": r["decision_id"], "reverted": gone is not None})
    return out


def _message(ctx: StepContext) -> dict[str, Any]:
    inc = ctx.incident
    return {
        "incident_id": inc.incident_id,
        "title": inc.title,
        "severity": inc.severity.value,
        "status": inc.status.value,
        "playbook": ctx.playbook.name,
        "version": ctx.playbook.version,
        "step": ctx.step.id,
        "observables": {k: len(v) for k, v in inc.observables.items() if v},
    }
