"""The errors of the SQL tools: both are ``ValueError`` subclasses, so callers that
validate input with ``except ValueError`` keep working."""

from __future__ import annotations

from pynomaly_security.exceptions import ConfigurationError, SecurityError

__all__ = ["InvalidIdentifier", "StatementTooLong"]


class InvalidIdentifier(ConfigurationError):
    """A table or column name given to :class:`SafeQueryBuilder` is not a plain
    identifier; the message names it (identifiers are never quoted blindly)."""


class StatementTooLong(SecurityError, ValueError):
    """A statement is longer than the lexer's cap: it is refused, never read in part."""
