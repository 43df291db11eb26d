"""SQL injection tools: a lexer for SQLite, PostgreSQL and MySQL (``lexer``),
query analysis (``analysis``), a safe query builder (``builder``) and the sink's
decision on a statement about to run (``sink``)."""

from __future__ import annotations

from pynomaly_security.sql.analysis import QueryAnalysis, SQLInjectionProtector
from pynomaly_security.sql.builder import BuiltQuery, ParamStyle, SafeQueryBuilder
from pynomaly_security.sql.dialect import Dialect
from pynomaly_security.sql.errors import InvalidIdentifier, StatementTooLong
from pynomaly_security.sql.lexer import Token, TokenKind, tokenize
from pynomaly_security.sql.sink import SinkFinding, check_statement
from pynomaly_security.sql.threats import QueryThreat

__all__ = [
    "BuiltQuery",
    "Dialect",
    "InvalidIdentifier",
    "ParamStyle",
    "QueryAnalysis",
    "QueryThreat",
    "SQLInjectionProtector",
    "SafeQueryBuilder",
    "SinkFinding",
    "StatementTooLong",
    "Token",
    "TokenKind",
    "check_statement",
    "tokenize",
]
