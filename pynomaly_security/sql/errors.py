"""The errors of the SQL tools. The two about input are ``ValueError`` subclasses,
so callers that validate input with ``except ValueError`` keep working;
:class:`SQLInjectionBlocked` is not (no handler of bad input may swallow it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynomaly_security.exceptions import ConfigurationError, SecurityError

if TYPE_CHECKING:
    from pynomaly_security.sql.sink import SinkFinding

__all__ = ["InvalidIdentifier", "SQLInjectionBlocked", "StatementTooLong"]


class InvalidIdentifier(ConfigurationError):
    """A table or column name given to :class:`SafeQueryBuilder` is not a plain
    identifier; the message names it (identifiers are never quoted blindly)."""


class StatementTooLong(SecurityError, ValueError):
    """A statement is longer than the lexer's cap: it is refused, never read in part."""


class SQLInjectionBlocked(SecurityError):
    """A statement was stopped before the driver saw it: a value of the current
    request changes its token structure (block mode of the sink protection).

    The sink middleware answers the request ``403 request_blocked``; an app that
    catches it answers what it likes, and the statement still never ran.

    Attributes:
        finding: the :class:`~pynomaly_security.sql.sink.SinkFinding` (the
            statement's shape with the value redacted; never the value).
    """

    def __init__(self, finding: SinkFinding) -> None:
        super().__init__(f"SQL statement blocked: a request value {finding.reason}")
        self.finding = finding
