"""A SQL lexer for SQLite, PostgreSQL and MySQL: tokens with kinds and positions.

One compiled alternation per dialect, matched at each position with possessive
quantifiers, so every token is read once and a failed match never backtracks
(linear time). Input longer than ``max_length`` is refused with
:class:`StatementTooLong`. Whitespace is skipped; everything else is a token,
including comments, so the token structure of a statement is exact: a string that
does not end becomes one ``ERROR`` token running to the end, as does an unfinished
block comment or quoted identifier.

We do not use ``sqlparse`` on the hot path: it is about 30 times slower; the tests
compare token boundaries with it on a few hundred statements.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from pynomaly_security.sql.dialect import Dialect
from pynomaly_security.sql.errors import StatementTooLong

__all__ = ["DEFAULT_MAX_LENGTH", "KEYWORDS", "Token", "TokenKind", "tokenize"]

DEFAULT_MAX_LENGTH = 100_000


class TokenKind(StrEnum):
    """What a token is."""

    KEYWORD = "keyword"
    IDENTIFIER = "identifier"
    QUOTED_IDENTIFIER = "quoted_identifier"
    STRING = "string"
    NUMBER = "number"
    OPERATOR = "operator"
    PUNCTUATION = "punctuation"
    COMMENT = "comment"
    PLACEHOLDER = "placeholder"
    SEMICOLON = "semicolon"
    ERROR = "error"  # an unfinished string, identifier or comment, or a stray character


class Token(NamedTuple):
    """One token: its kind, where it is (``text[start:end]``) and its text."""

    kind: TokenKind
    start: int
    end: int
    text: str


_KEYWORD_TEXT = """
    ADD ALL ALTER ANALYZE AND ANY AS ASC ATTACH AUTOINCREMENT BEGIN BETWEEN BINARY BY
    CALL CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS
    CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DATABASE DECLARE DEFAULT
    DEFERRABLE DELAY DELETE DESC DETACH DISTINCT DIV DO DROP EACH ELSE END ESCAPE EXCEPT
    EXEC EXECUTE EXISTS EXPLAIN FALSE FETCH FIRST FOR FOREIGN FROM FULL GLOB GRANT GROUP
    HAVING IF IGNORE ILIKE IN INDEX INNER INSERT INTERSECT INTERVAL INTO IS ISNULL JOIN KEY
    LAST LATERAL LEFT LIKE LIMIT LOCK MATCH MERGE NATURAL NOT NOTNULL NOWAIT NULL NULLS
    OF OFFSET ON ONLY OR ORDER OUTER OVER PARTITION PRAGMA PREPARE PRIMARY PROCEDURE
    RECURSIVE REFERENCES REGEXP RELEASE RENAME REPLACE RESTRICT RETURNING REVOKE RIGHT
    RLIKE ROLLBACK ROW ROWS SAVEPOINT SCHEMA SELECT SET SHOW SHUTDOWN SIMILAR SKIP SOME
    TABLE TEMP TEMPORARY THEN TIME TO TOP TRANSACTION TRIGGER TRUE TRUNCATE UNION UNIQUE
    UNLOCK UPDATE USE USING VACUUM VALUES VIEW WAITFOR WHEN WHERE WINDOW WITH WITHOUT XOR
"""
KEYWORDS = frozenset(_KEYWORD_TEXT.split())

_K = TokenKind
# Alternatives shared by the dialects, in the order they are tried.
_NUMBER = r"(?P<number>0[xX][0-9A-Fa-f]++|0[bB][01]++|(?:\d++(?:\.\d*+)?|\.\d++)(?:[eE][+-]?\d++)?)"
_PUNCT = r"(?P<punct>[(),.\[\]{}])"
_SEMI = r"(?P<semi>;)"
_PYFORMAT = r"%\([^()\s]{1,64}\)s|%s(?!\w)"
_BLOCK = r"(?P<block>/\*)"
_BAD = r"(?P<bad>[\s\S])"

# The order puts the common tokens first (a word is most tokens); a word directly
# before a quote is tried as a prefixed string (x'..', E'..', N'..', _utf8'..')
# first and read as a word (``word2``) only if it is not one.
_WORD = r"(?P<word>[^\W\d][\w$]*+(?!['&]))"
_WORD2 = r"(?P<word2>[^\W\d][\w$]*+)"
_PATTERNS = {
    Dialect.SQLITE: "|".join(
        [
            _WORD,
            _NUMBER,
            r"(?P<punct>[(),.\]{}])",  # "[" opens a quoted identifier
            r"(?P<placeholder>\?\d*+|[:@$][^\W\d][\w$]*+|" + _PYFORMAT + ")",
            r"(?P<operator>-(?!-)|/(?!\*)|<=|>=|<>|!=|==|\|\||<<|>>|[+*%=<>!~^&|])",
            r"(?P<string>[xX]?'(?:[^']++|'')*+')",
            r"(?P<qident>\"(?:[^\"]++|\"\")*+\"|`(?:[^`]++|``)*+`|\[[^\]]*+\])",
            r"(?P<line>--[^\n]*+)",
            _BLOCK,
            _SEMI,
            r"(?P<unterminated>['\"`\[][\s\S]*+)",
            _WORD2,
            _BAD,
        ]
    ),
    Dialect.POSTGRESQL: "|".join(
        [
            _WORD,
            _NUMBER,
            _PUNCT,
            r"(?P<placeholder>\$\d++|(?<!:):[^\W\d]\w*+|\?\d*+|" + _PYFORMAT + ")",
            r"(?P<operator>::|->>|->|#>>|#>|@>|<@|<->|-(?!-)|/(?!\*)"
            r"|<=|>=|<>|!=|\|\||<<|>>|&&|[+*%=<>!~^&|@#])",
            r"(?P<string>[eE]'(?:[^'\\]++|''|\\[\s\S])*+'|(?:[bBxXnN]|[uU]&)?'(?:[^']++|'')*+'"
            r"|\$(?P<tag>(?:[^\W\d]\w*+)?)\$[\s\S]*?\$(?P=tag)\$)",
            r"(?P<qident>(?:[uU]&)?\"(?:[^\"]++|\"\")*+\")",
            r"(?P<line>--[^\n]*+)",
            _BLOCK,
            _SEMI,
            r"(?P<unterminated>(?:[eE]|[uU]&)?['\"][\s\S]*+|\$(?:[^\W\d]\w*+)?\$[\s\S]*+)",
            _WORD2,
            _BAD,
        ]
    ),
    Dialect.MYSQL: "|".join(
        [
            r"(?P<word>@@?[\w$.]++|[^\W\d][\w$]*+(?!'))",
            _NUMBER,
            _PUNCT,
            r"(?P<placeholder>\?|(?<!:):[^\W\d]\w*+|" + _PYFORMAT + ")",
            # MySQL reads "--" as a comment only before a space or control character.
            r"(?P<operator><=>|:=|->>|->|-(?!-[\x00-\x20]|-\Z)|/(?!\*)"
            r"|<=|>=|<>|!=|\|\||<<|>>|&&|[+*%=<>!~^&|])",
            r"(?P<string>(?:[xXbBnN]|_[a-zA-Z0-9]++)?'(?:[^'\\]++|''|\\[\s\S])*+'"
            r"|\"(?:[^\"\\]++|\"\"|\\[\s\S])*+\")",
            r"(?P<qident>`(?:[^`]++|``)*+`)",
            r"(?P<line>--[^\n]*+|#[^\n]*+)",
            r"(?P<exec>/\*![0-9]{0,6})",
            _BLOCK,
            _SEMI,
            r"(?P<unterminated>['\"`][\s\S]*+)",
            _WORD2,
            _BAD,
        ]
    ),
}
# Whitespace is read in the same match, before the token.
_COMPILED = {d: re.compile(r"\s*+(?:" + p + ")") for d, p in _PATTERNS.items()}
_KINDS = {
    "line": _K.COMMENT,
    "string": _K.STRING,
    "qident": _K.QUOTED_IDENTIFIER,
    "unterminated": _K.ERROR,
    "number": _K.NUMBER,
    "placeholder": _K.PLACEHOLDER,
    "operator": _K.OPERATOR,
    "punct": _K.PUNCTUATION,
    "semi": _K.SEMICOLON,
    "bad": _K.ERROR,
}
# What the lexer does with a match, by the number of the group that matched
# (``Match.lastindex``: an int, cheaper than the group's name): a kind, or one
# of these markers for the groups that need more than a slice.
_WORD_MARK = 1
_BLOCK_MARK = 2
_EXEC_MARK = 3
_ACTIONS: dict[Dialect, tuple[TokenKind | int | None, ...]] = {}
for _dialect, _pattern in _COMPILED.items():
    _by_index: list[TokenKind | int | None] = [None] * (_pattern.groups + 1)
    for _name, _index in _pattern.groupindex.items():
        if _name in ("word", "word2"):
            _by_index[_index] = _WORD_MARK
        elif _name == "block":
            _by_index[_index] = _BLOCK_MARK
        elif _name == "exec":
            _by_index[_index] = _EXEC_MARK
        elif _name in _KINDS:
            _by_index[_index] = _KINDS[_name]
    _ACTIONS[_dialect] = tuple(_by_index)
_BLOCK_PARTS = re.compile(r"/\*|\*/")


def _block_end(text: str, start: int, nested: bool) -> int:
    """End of the block comment opening at ``start`` (``-1`` if it never ends).
    PostgreSQL nests block comments; SQLite and MySQL end at the first ``*/``."""
    if not nested:
        end = text.find("*/", start + 2)
        return -1 if end < 0 else end + 2
    depth = 0
    for part in _BLOCK_PARTS.finditer(text, start):
        depth += 1 if part.group() == "/*" else -1
        if depth == 0:
            return part.end()
    return -1


def tokenize(
    text: str,
    dialect: Dialect | str = Dialect.SQLITE,
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    until: int | None = None,
) -> list[Token]:
    """The tokens of ``text`` read as ``dialect`` (whitespace skipped).

    With ``until``, reading may stop after the first token that starts at or past
    that index: the tokens returned are then the first ones of the whole text's
    (the sink reads a statement only as far as a request value in it).

    Raises:
        StatementTooLong: ``text`` is longer than ``max_length`` characters.
    """
    if len(text) > max_length:
        raise StatementTooLong(
            f"SQL statement of {len(text)} characters exceeds the lexer's cap of {max_length}"
        )
    dialect = Dialect.of(dialect)
    finditer = _COMPILED[dialect].finditer
    actions = _ACTIONS[dialect]
    nested = dialect is Dialect.POSTGRESQL
    tokens: list[Token] = []
    append = tokens.append
    keywords = KEYWORDS
    # tuple.__new__ directly: NamedTuple's own __new__ is a Python function, and
    # one call per token is a fifth of the lexer's time.
    new = tuple.__new__
    keyword, identifier, operator = _K.KEYWORD, _K.IDENTIFIER, _K.OPERATOR
    executable = False  # inside MySQL's /*! ... */, whose content is SQL
    pos = 0
    size = len(text)
    if until is None:
        until = size  # no token starts at the end: never stops early
    # One finditer walks the text (every alternative consumes a character, and
    # only trailing whitespace matches nothing); a block comment, whose end the
    # pattern does not find, makes it start again after the comment.
    while pos < size:
        restart = -1
        for found in finditer(text, pos):
            index = found.lastindex or 0
            action = actions[index]
            start = found.start(index)
            end = found.end()
            if action is _WORD_MARK:
                word = text[start:end]
                kind = keyword if word.upper() in keywords else identifier
                append(new(Token, (kind, start, end, word)))
            elif action is _BLOCK_MARK:
                close = _block_end(text, start, nested)
                if close < 0:
                    append(Token(_K.ERROR, start, size, text[start:]))
                    return tokens
                append(Token(_K.COMMENT, start, close, text[start:close]))
                restart = close
                break
            elif action is _EXEC_MARK:
                executable = True
                append(Token(_K.COMMENT, start, end, text[start:end]))
            elif executable and action is operator and text.startswith("*/", start):
                executable = False  # the end of /*! ... */
                append(Token(_K.COMMENT, start, start + 2, "*/"))
                restart = start + 2
                break
            else:
                append(new(Token, (action, start, end, text[start:end])))
            if start >= until:
                return tokens
        if restart < 0:
            break
        pos = restart
    return tokens
