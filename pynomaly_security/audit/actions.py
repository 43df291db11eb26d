"""``audit_context`` and ``@audit_action``: a scope of audited work.

``audit_context`` does two things, either or both (issue 14 adds the first, the
integration guide's form):

- ``with audit_context(correlation_id="req_1", user_id="u1", ip_address="192.0.2.1"):``
  binds these ids for the block (structlog contextvars, which every audit call reads
  as its ambient context: the records written inside carry them);
- ``async with audit_context(audit, "rotate", "key:payments") as details:`` records
  the block's outcome on exit (success, or failure with the error type), with the
  details the block added.

Both forms work with ``with`` and ``async with``; without a logger the default one
(:func:`pynomaly_security.defaults.audit_logger`) records. ``@audit_action`` records a
function's outcome the same way.

Only the action, resource, outcome and (on failure) the exception *type* are
recorded, never arguments, return values or exception messages, which may
carry secrets or personal data.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import structlog

from pynomaly_security.audit.records import AuditLevel, ComplianceStandard, SecurityEventType
from pynomaly_security.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pynomaly_security.audit.logger import AuditLogger
    from pynomaly_security.audit.receipt import AuditReceipt

__all__ = ["AuditContext", "audit_action", "audit_context"]

P = ParamSpec("P")
R = TypeVar("R")


def _default_logger() -> AuditLogger:
    from pynomaly_security import defaults

    return defaults.audit_logger()


class AuditContext:
    """The scope :func:`audit_context` returns; use it with ``with`` or ``async with``."""

    def __init__(
        self,
        audit_logger: AuditLogger | None,
        action: str | None,
        resource: str | None,
        *,
        bind: Mapping[str, str],
        details: Mapping[str, Any] | None,
        record: Mapping[str, Any],
    ) -> None:
        self._logger = audit_logger
        self._action = action
        self._resource = resource
        self._bind = dict(bind)
        self._record = dict(record)
        self.details: dict[str, Any] = dict(details or {})
        self._tokens: list[Mapping[str, Token[Any]]] = []

    def __enter__(self) -> dict[str, Any]:
        if self._action is not None and self._logger is None:
            self._logger = _default_logger()  # resolved now, so a bad setup fails early
        self._tokens.append(structlog.contextvars.bind_contextvars(**self._bind))
        return self.details

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            # A cancellation or exit is no outcome of the work: nothing is recorded.
            if self._action is not None and (exc is None or isinstance(exc, Exception)):
                self._outcome(exc)  # committed, or queued on the logger's loop
        finally:
            structlog.contextvars.reset_contextvars(**self._tokens.pop())

    async def __aenter__(self) -> dict[str, Any]:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._action is not None and (exc is None or isinstance(exc, Exception)):
                await self._outcome(exc)  # returns once committed
        finally:
            structlog.contextvars.reset_contextvars(**self._tokens.pop())

    def _outcome(self, exc: BaseException | None) -> AuditReceipt:
        logger = self._logger if self._logger is not None else _default_logger()
        if exc is None:
            outcome, level, details = "success", AuditLevel.INFO, self.details
        else:
            outcome, level = "failure", AuditLevel.ERROR
            details = {**self.details, "error_type": type(exc).__name__}
        return logger.log_audit_event(
            self._action or "", self._resource or "", outcome, details=details, level=level,
            **self._record,
        )  # fmt: skip


def audit_context(
    audit_logger: AuditLogger | None = None,
    action: str | None = None,
    resource: str | None = None,
    *,
    correlation_id: str | None = None,
    user_id: str | None = None,
    ip_address: str | None = None,
    details: Mapping[str, Any] | None = None,
    compliance_standards: Sequence[ComplianceStandard] | None = None,
    event_type: SecurityEventType | str = SecurityEventType.AUDIT_ACTION,
) -> AuditContext:
    """A scope that binds ``correlation_id`` / ``user_id`` / ``ip_address`` for the
    records written inside it and, given ``action`` and ``resource``, records its
    outcome on exit (see the module).

    Raises:
        ConfigurationError: only one of ``action`` and ``resource``.
    """
    if (action is None) != (resource is None):
        raise ConfigurationError("audit_context takes both action and resource, or neither")
    bind = {
        name: value
        for name, value in (
            ("correlation_id", correlation_id),
            ("user_id", user_id),
            # The name tracking binds the client's address under (records.ambient).
            ("client_ip", ip_address),
        )
        if value is not None
    }
    record = {"compliance_standards": compliance_standards, "event_type": event_type}
    return AuditContext(audit_logger, action, resource, bind=bind, details=details, record=record)


def audit_action(
    action: str, resource: str, *, audit_logger: AuditLogger | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a sync or async function so each call is audited (by ``audit_logger``,
    or the default logger, looked up at the first call).

    Async functions return once the record is committed. A sync function called
    without an event loop (a script, a worker thread such as FastAPI's sync
    endpoints) returns once committed; one called on the logger's loop thread cannot
    wait without blocking it, so there the record is queued and committed shortly
    after.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = getattr(fn, "__qualname__", "?")

        def record(exc: BaseException | None) -> AuditReceipt:
            logger = audit_logger if audit_logger is not None else _default_logger()
            details: dict[str, Any] = {"function": name}
            if exc is not None:
                details["error_type"] = type(exc).__name__
            return logger.log_audit_event(
                action,
                resource,
                "success" if exc is None else "failure",
                details=details,
                level=AuditLevel.INFO if exc is None else AuditLevel.ERROR,
            )

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    await record(exc)
                    raise
                await record(None)
                return result

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                record(exc)
                raise
            record(None)
            return result

        return sync_wrapper

    return decorate
