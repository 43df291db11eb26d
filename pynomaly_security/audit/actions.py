"""``audit_context`` and ``@audit_action``: record an operation's outcome.

Only the action, resource, outcome and (on failure) the exception *type* are
recorded, never arguments, return values or exception messages, which may
carry secrets or personal data.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from pynomaly_security.audit.records import AuditLevel, ComplianceStandard, SecurityEventType

__all__ = ["audit_action", "audit_context"]

P = ParamSpec("P")
R = TypeVar("R")


class _Logger(Protocol):
    @property
    def loop(self) -> asyncio.AbstractEventLoop | None: ...

    def schedule(self, coro: Coroutine[Any, Any, None]) -> None: ...

    def log_audit_event(
        self,
        action: str,
        resource: str,
        outcome: str = ...,
        *,
        user_id: str | None = ...,
        details: Mapping[str, Any] | None = ...,
        compliance_standards: Sequence[ComplianceStandard] | None = ...,
        level: AuditLevel = ...,
        event_type: SecurityEventType = ...,
    ) -> Awaitable[int]: ...


@asynccontextmanager
async def audit_context(
    audit_logger: _Logger,
    action: str,
    resource: str,
    *,
    user_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    compliance_standards: Sequence[ComplianceStandard] | None = None,
    event_type: SecurityEventType = SecurityEventType.AUDIT_ACTION,
) -> AsyncIterator[dict[str, Any]]:
    """Yield a dict the block may add details to; on exit record success, or
    failure with the error type (and re-raise)."""
    extra: dict[str, Any] = dict(details or {})
    kwargs: dict[str, Any] = {
        "user_id": user_id,
        "compliance_standards": compliance_standards,
        "event_type": event_type,
    }
    try:
        yield extra
    except Exception as exc:
        await audit_logger.log_audit_event(
            action,
            resource,
            "failure",
            details={**extra, "error_type": type(exc).__name__},
            level=AuditLevel.ERROR,
            **kwargs,
        )
        raise
    await audit_logger.log_audit_event(action, resource, "success", details=extra, **kwargs)


def audit_action(
    action: str, resource: str, *, audit_logger: _Logger
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a sync or async function so each call is audited.

    Async functions (and sync ones run in a worker thread, e.g. FastAPI's sync
    endpoints) return only after the record is committed. A sync function
    called directly on the event loop thread cannot wait without deadlocking,
    so there the record is scheduled and committed shortly after.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = getattr(fn, "__qualname__", "?")

        async def record(outcome: str, exc: BaseException | None) -> None:
            details: dict[str, Any] = {"function": name}
            if exc is not None:
                details["error_type"] = type(exc).__name__
            level = AuditLevel.INFO if exc is None else AuditLevel.ERROR
            await audit_logger.log_audit_event(
                action, resource, outcome, details=details, level=level
            )

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    await record("failure", exc)
                    raise
                await record("success", None)
                return result

            return cast(Callable[P, R], async_wrapper)

        def record_sync(outcome: str, exc: BaseException | None) -> None:
            loop = audit_logger.loop
            if loop is None:
                raise RuntimeError("the audit logger is not started")
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                # Blocking here would deadlock the loop that commits the record.
                audit_logger.schedule(record(outcome, exc))
                return
            asyncio.run_coroutine_threadsafe(record(outcome, exc), loop).result()

        @functools.wraps(fn)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                record_sync("failure", exc)
                raise
            record_sync("success", None)
            return result

        return sync_wrapper

    return decorate
