"""``SafeQueryBuilder``: SELECT, INSERT, UPDATE, DELETE and COUNT statements whose
names are checked identifiers and whose values are always parameters.

Identifiers (table and column names) must match a plain pattern and are then
quoted for the dialect; they are never taken from values. Values are never written
into the SQL: each becomes a placeholder in the target driver's paramstyle, and
the builder returns ``(sql, params)`` ready for ``cursor.execute(sql, params)``
(or ``conn.fetch(sql, *params)`` for asyncpg, ``text(sql)`` with ``params`` for
SQLAlchemy). ORDER BY names come from an allow-list; LIMIT and OFFSET must be
integers. The f-strings below (ruff's S608) join only identifiers that passed
``identifier()`` and placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

from pynomaly_security.sql.dialect import Dialect
from pynomaly_security.sql.errors import InvalidIdentifier

__all__ = ["BuiltQuery", "ParamStyle", "SafeQueryBuilder"]

# A plain identifier: letters, digits and underscores, not starting with a digit,
# at most 63 characters (PostgreSQL's limit; MySQL's is 64, SQLite has none).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class ParamStyle(StrEnum):
    """How placeholders are written (PEP 249 names, plus asyncpg's ``$1``)."""

    QMARK = "qmark"  # ?            sqlite3
    NUMERIC_DOLLAR = "numeric_dollar"  # $1     asyncpg
    FORMAT = "format"  # %s           psycopg, PyMySQL
    PYFORMAT = "pyformat"  # %(p1)s   psycopg, PyMySQL
    NAMED = "named"  # :p1          SQLAlchemy text(), sqlite3


_DEFAULT_STYLE = {
    Dialect.SQLITE: ParamStyle.QMARK,
    Dialect.POSTGRESQL: ParamStyle.NUMERIC_DOLLAR,
    Dialect.MYSQL: ParamStyle.FORMAT,
}


class BuiltQuery(NamedTuple):
    """A statement and its parameters: a tuple for positional styles, a dict for
    ``named``/``pyformat``. Unpacks as ``query, params = builder.build_select(...)``."""

    sql: str
    params: tuple[Any, ...] | dict[str, Any]


class _Params:
    """The placeholders and values of one statement being built."""

    def __init__(self, style: ParamStyle) -> None:
        self.style = style
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        number = len(self.values)
        if self.style is ParamStyle.QMARK:
            return "?"
        if self.style is ParamStyle.NUMERIC_DOLLAR:
            return f"${number}"
        if self.style is ParamStyle.FORMAT:
            return "%s"
        if self.style is ParamStyle.PYFORMAT:
            return f"%(p{number})s"
        return f":p{number}"

    def built(self, sql: str) -> BuiltQuery:
        if self.style in (ParamStyle.NAMED, ParamStyle.PYFORMAT):
            return BuiltQuery(sql, {f"p{i}": v for i, v in enumerate(self.values, 1)})
        return BuiltQuery(sql, tuple(self.values))


class SafeQueryBuilder:
    """Builds simple statements from checked identifiers and bound values.

    Args:
        dialect: ``"sqlite"`` (default), ``"postgresql"`` or ``"mysql"``: how
            identifiers are quoted (``"name"``, or `` `name` `` for MySQL).
        paramstyle: the driver's placeholder style; by default ``qmark`` for
            SQLite, ``numeric_dollar`` (``$1``) for PostgreSQL (asyncpg) and
            ``format`` (``%s``) for MySQL. Use ``format``/``pyformat`` for psycopg
            and ``named`` for SQLAlchemy ``text()``.

    Raises:
        InvalidIdentifier: (from every ``build_*``) a table or column name is not
            a plain identifier; the message names it.

    References:
        PEP 249 ``paramstyle``; OWASP SQL Injection Prevention Cheat Sheet
        (option 1, prepared statements, and option 3, allow-list input validation
        for identifiers and sort order).
    """

    def __init__(
        self,
        dialect: Dialect | str = Dialect.SQLITE,
        paramstyle: ParamStyle | str | None = None,
    ) -> None:
        self.dialect = Dialect.of(dialect)
        try:
            self.paramstyle = (
                _DEFAULT_STYLE[self.dialect] if paramstyle is None else ParamStyle(paramstyle)
            )
        except ValueError:
            styles = ", ".join(style.value for style in ParamStyle)
            raise ValueError(f"unknown paramstyle {paramstyle!r}; known: {styles}") from None
        self._quote = "`" if self.dialect is Dialect.MYSQL else '"'

    # -- names -------------------------------------------------------------------

    def identifier(self, name: str) -> str:
        """``name`` checked and quoted; ``schema.table`` is checked part by part.

        Raises:
            InvalidIdentifier: ``name`` is not a plain (optionally dotted) identifier.
        """
        if not isinstance(name, str) or not name:
            raise InvalidIdentifier(f"SQL identifier {name!r} must be a non-empty string")
        parts = name.split(".")
        if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
            raise InvalidIdentifier(
                f"SQL identifier {name!r} is not allowed: use letters, digits and "
                "underscores (not starting with a digit, at most 63), optionally schema.name"
            )
        q = self._quote
        return ".".join(f"{q}{part}{q}" for part in parts)

    # -- statements ----------------------------------------------------------------

    def build_select(
        self,
        table_name: str,
        columns: Sequence[str] | None = None,
        where_conditions: Mapping[str, Any] | None = None,
        *,
        order_by: Sequence[str] | str | None = None,
        allowed_order_by: Iterable[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> BuiltQuery:
        """``SELECT columns FROM table [WHERE ...] [ORDER BY ...] [LIMIT n] [OFFSET n]``.

        Args:
            columns: the columns to read (all, ``*``, when omitted).
            where_conditions: column -> value, joined with AND: a list, tuple, set or
                frozenset becomes ``IN (...)`` (an empty one matches nothing), None
                becomes ``IS NULL``, anything else ``= value``.
            order_by: column names, each optionally prefixed with ``-`` for
                descending; each must be in ``allowed_order_by`` (or, without it, in
                ``columns``).
            limit: rows to return at most, a non-negative int.
            offset: rows to skip, a non-negative int.
        """
        params = _Params(self.paramstyle)
        names = ", ".join(self.identifier(c) for c in columns) if columns else "*"
        sql = f"SELECT {names} FROM {self.identifier(table_name)}"  # noqa: S608
        sql += self._where(where_conditions, params)
        if order_by:
            allowed = set(allowed_order_by if allowed_order_by is not None else columns or ())
            sql += self._order_by([order_by] if isinstance(order_by, str) else order_by, allowed)
        if limit is not None:
            sql += f" LIMIT {params.add(_count('limit', limit))}"
        if offset is not None:
            if limit is None and self.dialect is not Dialect.POSTGRESQL:
                # SQLite and MySQL accept OFFSET only after LIMIT; -1 / 2**64-1 mean all.
                every = -1 if self.dialect is Dialect.SQLITE else 18446744073709551615
                sql += f" LIMIT {params.add(every)}"
            sql += f" OFFSET {params.add(_count('offset', offset))}"
        return params.built(sql)

    def build_count(
        self, table_name: str, where_conditions: Mapping[str, Any] | None = None
    ) -> BuiltQuery:
        """``SELECT COUNT(*) FROM table [WHERE ...]``."""
        params = _Params(self.paramstyle)
        sql = f"SELECT COUNT(*) FROM {self.identifier(table_name)}"  # noqa: S608
        return params.built(sql + self._where(where_conditions, params))

    def build_insert(
        self,
        table_name: str,
        values: Mapping[str, Any],
        *,
        returning: Sequence[str] | None = None,
    ) -> BuiltQuery:
        """``INSERT INTO table (columns) VALUES (...) [RETURNING ...]`` (RETURNING:
        PostgreSQL, SQLite 3.35+, MariaDB; not MySQL)."""
        if not values:
            raise ValueError("build_insert needs at least one column value")
        params = _Params(self.paramstyle)
        names = ", ".join(self.identifier(column) for column in values)
        holders = ", ".join(params.add(value) for value in values.values())
        table = self.identifier(table_name)
        sql = f"INSERT INTO {table} ({names}) VALUES ({holders})"  # noqa: S608
        return params.built(sql + self._returning(returning))

    def build_update(
        self,
        table_name: str,
        values: Mapping[str, Any],
        where_conditions: Mapping[str, Any] | None,
        *,
        allow_all_rows: bool = False,
    ) -> BuiltQuery:
        """``UPDATE table SET col = ?, ... WHERE ...``; without conditions it refuses
        unless ``allow_all_rows`` (an update of every row is rarely meant)."""
        if not values:
            raise ValueError("build_update needs at least one column value")
        _require_where("build_update", where_conditions, allow_all_rows)
        params = _Params(self.paramstyle)
        sets = ", ".join(f"{self.identifier(c)} = {params.add(v)}" for c, v in values.items())
        sql = f"UPDATE {self.identifier(table_name)} SET {sets}"  # noqa: S608
        return params.built(sql + self._where(where_conditions, params))

    def build_delete(
        self,
        table_name: str,
        where_conditions: Mapping[str, Any] | None,
        *,
        allow_all_rows: bool = False,
    ) -> BuiltQuery:
        """``DELETE FROM table WHERE ...``; without conditions it refuses unless
        ``allow_all_rows``."""
        _require_where("build_delete", where_conditions, allow_all_rows)
        params = _Params(self.paramstyle)
        sql = f"DELETE FROM {self.identifier(table_name)}"  # noqa: S608
        return params.built(sql + self._where(where_conditions, params))

    # -- clauses -------------------------------------------------------------------

    def _where(self, conditions: Mapping[str, Any] | None, params: _Params) -> str:
        if not conditions:
            return ""
        parts = []
        for column, value in conditions.items():
            name = self.identifier(column)
            if value is None:
                parts.append(f"{name} IS NULL")
            elif isinstance(value, list | tuple | set | frozenset):
                items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
                if not items:
                    parts.append("1 = 0")  # IN () is a syntax error; nothing matches
                else:
                    holders = ", ".join(params.add(item) for item in items)
                    parts.append(f"{name} IN ({holders})")
            else:
                parts.append(f"{name} = {params.add(value)}")
        return " WHERE " + " AND ".join(parts)

    def _order_by(self, order_by: Sequence[str], allowed: set[str]) -> str:
        terms = []
        for term in order_by:
            column, direction = (term[1:], "DESC") if term.startswith("-") else (term, "ASC")
            if column not in allowed:
                raise InvalidIdentifier(
                    f"ORDER BY column {column!r} is not in the allow-list {sorted(allowed)}"
                )
            terms.append(f"{self.identifier(column)} {direction}")
        return " ORDER BY " + ", ".join(terms)

    def _returning(self, returning: Sequence[str] | None) -> str:
        if not returning:
            return ""
        return " RETURNING " + ", ".join(self.identifier(column) for column in returning)


def _count(name: str, value: object) -> int:
    """``value`` if it is a non-negative int (not a bool, not a numeric string)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def _require_where(what: str, conditions: Mapping[str, Any] | None, allow_all: bool) -> None:
    if not conditions and not allow_all:
        raise ValueError(
            f"{what} without where_conditions touches every row: pass allow_all_rows=True"
        )
