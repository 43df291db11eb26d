"""The sink's decision: does a request value change the structure of a statement?

A statement is an injection when a value from the current request occurs in it
and, at that place, spans more than one SQL token (``1 OR 1=1``), or ends a string
or identifier and continues with SQL (``x' OR 'a'='a``), or leaves a literal or
comment unfinished (``abc'``). The comparison is on the statement's tokens as the
database will read them, so no encoding of the value hides it, and a value that
stays inside one literal is fine however odd it looks.

Cost: when no value occurs in the statement, one substring scan per value (no
tokenizing); the statement is tokenized once, and only when a value occurs.

This module decides only; the driver hooks (SQLAlchemy, sqlite3, asyncpg,
psycopg) and the middleware that hands them the request's values call
:func:`check_statement` before the driver sees the statement.

References:
    Su and Wassermann, "The Essence of Command Injection Attacks in Web
    Applications", POPL 2006 (an input is an injection when it changes the
    parse of the query); Aikido Zen's SQL injection detection.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from pynomaly_security.sql.dialect import Dialect
from pynomaly_security.sql.lexer import DEFAULT_MAX_LENGTH, Token, TokenKind, tokenize

__all__ = ["DEFAULT_MIN_LENGTH", "SinkFinding", "check_statement"]

# sqlmap's shortest probes that break a statement are two characters (1" and "));
# a one-character value occurs in nearly every statement and says nothing.
DEFAULT_MIN_LENGTH = 2
# The statement's shape kept in a finding (for the audit trail) is cut to this.
SHAPE_LIMIT = 512
REDACTED = "[value]"

_K = TokenKind
# Tokens a value may start or end inside of: a value pasted between quotes or
# into a comment sits inside such a token.
_CONTAINERS = frozenset({_K.STRING, _K.QUOTED_IDENTIFIER, _K.COMMENT, _K.ERROR})
# A value made only of these (``id,name``, ``1, 2, 3``, ``users.id``) chooses among
# columns or values but cannot make a statement do something else: the lists an
# application pastes on purpose (IN lists, column lists) stay allowed.
_LIST_KINDS = frozenset({_K.IDENTIFIER, _K.NUMBER, _K.QUOTED_IDENTIFIER})
_LIST_PUNCTUATION = frozenset({",", "."})
# Characters that end or escape a literal or quoted identifier.
_QUOTING = frozenset("'\"`\\$]")


@dataclass(frozen=True, slots=True)
class SinkFinding:
    """A request value that changes the statement's token structure.

    Attributes:
        reason: ``"spans_tokens"`` (the value covers more than one token),
            ``"unterminated"`` (it leaves a literal, identifier or comment open),
            ``"opens_literal"`` (it opens a comment or literal that runs on over the
            application's text after it), ``"changes_structure"`` (it stays inside
            one literal but moves where that literal ends) or
            ``"too_long"`` (a value occurs in a statement longer than the lexer's
            cap, which is refused rather than read in part).
        value_index: which of the values given (0-based).
        start: where the value occurs in the statement (``statement[start:end]``).
        end: its end.
        token_kinds: the kinds of the tokens the value covers, in order.
        shape: the statement with every occurrence of the value replaced by
            ``[value]`` (cut to 512 characters), for the audit trail; the value
            itself is never kept.
    """

    reason: str
    value_index: int
    start: int
    end: int
    token_kinds: tuple[TokenKind, ...]
    shape: str


def check_statement(
    statement: str,
    values: Iterable[str],
    dialect: Dialect | str = Dialect.SQLITE,
    *,
    min_length: int = DEFAULT_MIN_LENGTH,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> SinkFinding | None:
    """The first request value that changes ``statement``'s token structure, or None.

    Args:
        statement: the SQL text the application is about to send (its bound
            parameters are data and are not part of it).
        values: the current request's values (query, path, form and JSON fields,
            headers, cookies), as strings.
        dialect: how the database reads the statement (``"sqlite"``,
            ``"postgresql"``, ``"mysql"``, or a driver or SQLAlchemy dialect name).
        min_length: shorter values are not checked.
        max_length: the lexer's cap; a value occurring in a longer statement is
            reported (``"too_long"``): fail closed.
    """
    tokens: list[Token] = []
    ends: list[int] = []
    read = -1  # the tokens are those of the statement as far as this (-1: none yet)
    shape: list[TokenKind] | None = None
    for index, value in enumerate(values):
        if len(value) < min_length:
            continue
        at = statement.find(value)
        if at < 0:
            continue
        quoting = not _QUOTING.isdisjoint(value)
        # The tokens are read only as far as the value's last occurrence (the
        # tokens of a prefix are the first tokens of the whole), unless the value
        # holds a quote: comparing the structure then needs them all.
        need = len(statement) if quoting else statement.rfind(value) + len(value)
        if need > read:
            if len(statement) > max_length:
                return _finding("too_long", index, at, value, (), statement)
            tokens = tokenize(statement, dialect, max_length=max_length, until=need)
            ends = [token.end for token in tokens]
            read = need
            shape = None
        while at >= 0:
            found = _judge(tokens, ends, at, at + len(value))
            if found is None and quoting:
                # Inside one literal, a quote in the value may still move where the
                # literal ends ("x'" in 'x'' AND b = 'y'): compare the statement's
                # token kinds with those it has when the value is plain letters.
                if shape is None:
                    shape = [token.kind for token in tokens]
                neutral = statement[:at] + "a" * len(value) + statement[at + len(value) :]
                if [token.kind for token in tokenize(neutral, dialect)] != shape:
                    found = "changes_structure", ()
            if found is not None:
                reason, kinds = found
                return _finding(reason, index, at, value, kinds, statement)
            at = statement.find(value, at + 1)
    return None


def _judge(
    tokens: list[Token], ends: list[int], start: int, end: int
) -> tuple[str, tuple[TokenKind, ...]] | None:
    """Whether the occurrence ``[start, end)`` changes the structure, and how."""
    first = bisect_right(ends, start)  # the first token ending after ``start``
    last = first
    while last + 1 < len(tokens) and tokens[last + 1].start < end:
        last += 1
    if first >= len(tokens) or tokens[first].start >= end:
        return None  # only whitespace
    head, tail = tokens[first], tokens[last]
    # An occurrence starting or ending inside a word or number is a coincidence
    # of the application's own text (the value "s.i" in "users.id"), not a value
    # pasted in: pasted values start at a token boundary or inside quotes.
    if start > head.start and head.kind not in _CONTAINERS:
        return None
    if end < tail.end and tail.kind not in _CONTAINERS:
        return None
    covered = tokens[first : last + 1]
    kinds = tuple(token.kind for token in covered)
    if any(token.kind is _K.ERROR for token in covered):
        return "unterminated", kinds
    if (
        len(covered) > 1
        and covered[0].text in ("-", "+")
        and covered[1].kind is _K.NUMBER
        and covered[0].end == covered[1].start
    ):
        covered = covered[1:]  # a signed number ("-5") is one value, as sqlparse reads it
    if len(covered) > 1 and not all(
        t.kind in _LIST_KINDS or t.text in _LIST_PUNCTUATION for t in covered
    ):
        return "spans_tokens", kinds
    if tail.kind in _CONTAINERS and tail.start >= start and tail.end > end:
        # The value opens a literal or comment that swallows the application's
        # text after it ("1 -- " before "ORDER BY id").
        return "opens_literal", kinds
    return None


def _finding(
    reason: str,
    index: int,
    start: int,
    value: str,
    kinds: tuple[TokenKind, ...],
    statement: str,
) -> SinkFinding:
    shape = statement.replace(value, REDACTED)
    if len(shape) > SHAPE_LIMIT:
        shape = shape[: SHAPE_LIMIT - 3] + "..."
    return SinkFinding(reason, index, start, start + len(value), kinds, shape)
