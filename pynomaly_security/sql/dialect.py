"""The SQL dialects the lexer reads: what differs between them is how strings,
identifiers, comments and placeholders are written."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Dialect"]

# Names drivers and SQLAlchemy give their dialect (``engine.dialect.name``).
_ALIASES = {
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "asyncpg": "postgresql",
    "psycopg": "postgresql",
    "psycopg2": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "pymysql": "mysql",
}


class Dialect(StrEnum):
    """A SQL dialect: ``sqlite``, ``postgresql`` or ``mysql``.

    - SQLite: ``'...'`` strings (``''`` doubling), ``"..."``, `` `...` `` and
      ``[...]`` identifiers, ``?``/``?N``/``:name``/``@name``/``$name`` placeholders.
    - PostgreSQL (``standard_conforming_strings`` on, the default since 9.1):
      backslashes are plain in ``'...'`` and escapes in ``E'...'``; ``$tag$...$tag$``
      dollar quoting; nested ``/* */`` comments; ``$1`` placeholders.
    - MySQL: backslash escapes in ``'...'`` and ``"..."`` (both strings, as without
      ``ANSI_QUOTES``), `` `...` `` identifiers, ``#`` comments, ``--`` only before
      a space, and ``/*! ... */`` comments whose content MySQL executes.

    References:
        https://www.sqlite.org/lang_expr.html,
        https://www.postgresql.org/docs/current/sql-syntax-lexical.html,
        https://dev.mysql.com/doc/refman/8.0/en/string-literals.html
    """

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"

    @classmethod
    def of(cls, name: str | Dialect) -> Dialect:
        """The dialect called ``name`` (aliases such as ``mariadb`` or ``asyncpg`` too)."""
        if isinstance(name, Dialect):
            return name
        try:
            return cls(_ALIASES[str(name).lower()])
        except KeyError:
            known = ", ".join(sorted(_ALIASES))
            raise ValueError(f"unknown SQL dialect {name!r}; known: {known}") from None
