"""The shapes of SQL injection, found on a statement's tokens.

Each check reads the token sequence (comments aside, where they do not matter)
and reports where a shape starts and ends. The names are the readable ones
:class:`~pynomaly_security.sql.analysis.QueryAnalysis` lists. Every check is a
single pass (a bounded look-ahead at most), so a scan is linear in the tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pynomaly_security.sql.lexer import Token, TokenKind

__all__ = ["THREAT_WEIGHTS", "QueryThreat", "scan"]

# Kinds as module names: an enum member lookup costs about 50 ns, a global 15.
_COMMENT = TokenKind.COMMENT
_ERROR = TokenKind.ERROR
_IDENTIFIER = TokenKind.IDENTIFIER
_KEYWORD = TokenKind.KEYWORD
_NUMBER = TokenKind.NUMBER
_OPERATOR = TokenKind.OPERATOR
_PUNCTUATION = TokenKind.PUNCTUATION
_SEMICOLON = TokenKind.SEMICOLON
_STRING = TokenKind.STRING

TAUTOLOGY = "Tautology injection"
STACKED = "Stacked queries"
COMMENT_TRUNCATION = "Comment truncation"
COMMENT_OBFUSCATION = "Comment obfuscation"
UNION = "UNION-based"
TIME = "Time-based blind"
ERROR_BASED = "Error-based"
CONCATENATION = "Literal concatenation"
UNTERMINATED = "Unterminated literal"
BOOLEAN_BLIND = "Boolean-based blind"
UNBALANCED = "Unbalanced parentheses"

# How much each shape alone says about an attack (the risk score combines them as
# independent evidence: 1 - prod(1 - w)).
THREAT_WEIGHTS = {
    STACKED: 0.9,
    UNION: 0.9,
    TIME: 0.9,
    TAUTOLOGY: 0.8,
    ERROR_BASED: 0.8,
    COMMENT_TRUNCATION: 0.6,
    UNTERMINATED: 0.6,
    BOOLEAN_BLIND: 0.6,
    COMMENT_OBFUSCATION: 0.5,
    CONCATENATION: 0.5,
    UNBALANCED: 0.5,
}


@dataclass(frozen=True, slots=True)
class QueryThreat:
    """One shape found: its name and the span of the statement it covers."""

    name: str
    start: int
    end: int


_COMPARISONS = frozenset(
    {"=", "==", "<=>", "!=", "<>", "<", ">", "<=", ">=", "LIKE", "IS", "BETWEEN"}
)
_SLEEPS = frozenset({"SLEEP", "PG_SLEEP", "PG_SLEEP_FOR", "PG_SLEEP_UNTIL", "BENCHMARK"})
_ERROR_FUNCTIONS = frozenset({"EXTRACTVALUE", "UPDATEXML", "NAME_CONST", "GTID_SUBSET"})
_CHAR_FUNCTIONS = frozenset({"CHAR", "CHR", "NCHAR"})
_SYSTEM_TEXT = """VERSION @@VERSION USER CURRENT_USER SESSION_USER SYSTEM_USER DATABASE SCHEMA
    INFORMATION_SCHEMA SQLITE_MASTER SQLITE_SCHEMA SQLITE_VERSION PG_CATALOG PG_SHADOW
    PG_USER PG_TABLES MYSQL LOAD_FILE @@DATADIR @@HOSTNAME"""
_SYSTEM = frozenset(_SYSTEM_TEXT.split())
_SELECT_END = frozenset({"FROM", "UNION", "WHERE", "ORDER", "LIMIT", "GROUP", "INTO", "HAVING"})
_STATEMENT_OBJECTS = frozenset(
    {"TABLE", "DATABASE", "SCHEMA", "VIEW", "INDEX", "USER", "FUNCTION", "PROCEDURE", "TRIGGER"}
)
_WORDS = (_KEYWORD, _IDENTIFIER)
_BOOLEANS = ("TRUE", "FALSE")  # the words literal_value reads as a constant


def _word(token: Token | None) -> str:
    """The upper-cased text of a keyword or identifier, else ``""``."""
    if token is not None and token.kind in _WORDS:
        return token.text.upper()
    return ""


def _at(tokens: Sequence[Token], index: int) -> Token | None:
    return tokens[index] if 0 <= index < len(tokens) else None


def literal_value(token: Token) -> str | float | None:
    """The value of a number or string token (``None`` for anything else)."""
    if token.kind is _NUMBER:
        text = token.text
        try:
            if text[:2] in ("0x", "0X"):
                return float(int(text, 16))
            if text[:2] in ("0b", "0B"):
                return float(int(text, 2))
            return float(text)
        except ValueError:
            return None
    if token.kind is _STRING:
        return string_content(token.text)
    word = _word(token)
    if word == "TRUE":
        return 1.0
    if word == "FALSE":
        return 0.0
    return None


def string_content(text: str) -> str:
    """The characters a string literal stands for (delimiters and escapes removed)."""
    if text.startswith("$"):  # PostgreSQL $tag$...$tag$
        tag_end = text.index("$", 1) + 1
        return text[tag_end:-tag_end]
    quote = text.find("'")
    double = text.find('"')
    if quote < 0 or (0 <= double < quote):
        quote = double
    delimiter = text[quote]
    body = text[quote + 1 : -1]
    if "\\" in body and (quote == 0 or text[0] in "eE_"):
        body = body.replace("\\\\", "\x00").replace("\\" + delimiter, delimiter)
        body = body.replace("\x00", "\\")
    return body.replace(delimiter * 2, delimiter)


def _number(value: str | float) -> float | None:
    if isinstance(value, float):
        return value
    try:
        return float(value.strip())
    except ValueError:
        return None


def _compare(left: str | float, op: str, right: str | float) -> bool:
    """The outcome of ``left op right`` as the databases would judge two constants."""
    a, b = _number(left), _number(right)
    if a is None or b is None:  # text comparison (case-insensitive, as MySQL's collations)
        x, y = str(left).lower(), str(right).lower()
        if op == "LIKE":
            return x == y or y == "%"
        ordered = {"<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}
        return ordered.get(op, x == y if op not in ("!=", "<>") else x != y)
    outcomes = {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b, "!=": a != b, "<>": a != b}
    return outcomes.get(op, a == b)


def _constant_truth(tokens: Sequence[Token], index: int, *, bare: bool) -> int:
    """If the tokens from ``index`` are a constant true condition (``1=1``, ``'a'='a'``,
    ``x=x``, ``2>1``; with ``bare`` also ``1`` or ``TRUE`` alone), the index after it,
    else ``-1``."""
    while _at(tokens, index) is not None and (
        tokens[index].text == "(" or _word(tokens[index]) == "NOT"
    ):
        if _word(tokens[index]) == "NOT":
            return -1  # negations are rare in injections and easy to misjudge: skip
        index += 1
    left = _at(tokens, index)
    if left is None:
        return -1
    op_token = _at(tokens, index + 1)
    op = op_token.text.upper() if op_token is not None else ""
    right = _at(tokens, index + 2)
    if op == "BETWEEN" and right is not None:
        high = _at(tokens, index + 4)
        if _word(_at(tokens, index + 3)) != "AND" or high is None:
            return -1
        value, low, top = (_number(literal_value(t) or "") for t in (left, right, high))
        if value is None or low is None or top is None:
            return -1
        return index + 5 if low <= value <= top else -1
    if op in _COMPARISONS and right is not None:
        if op == "IS":
            return index + 3 if _word(left) == "NULL" and _word(right) == "NULL" else -1
        a, b = literal_value(left), literal_value(right)
        if a is not None and b is not None:
            return index + 3 if _compare(a, op, b) else -1
        same = left.kind in _WORDS and right.kind is left.kind
        if same and left.text.lower() == right.text.lower() and op in ("=", "==", "LIKE"):
            return index + 3
        return -1
    constant = literal_value(left)
    if not bare or constant is None:
        return -1
    truthy = _number(constant) not in (None, 0.0)
    follower = _at(tokens, index + 1)
    alone = follower is None or follower.kind is _SEMICOLON or follower.text == ")"
    return index + 1 if truthy and (alone or _word(follower) in ("AND", "OR")) else -1


# ORMs and query builders write these constant conditions themselves
# (``WHERE 1=1 AND ...``, SQLAlchemy's ``1 != 1`` for an empty IN).
_ORM_CONSTANTS = frozenset({0.0, 1.0})


def _constant_comparison(tokens: Sequence[Token], index: int) -> int:
    """If a comparison of two literals (true or false) starts at ``index``, the
    index after it, else ``-1``; comparisons of only 0s and 1s do not count."""
    while _at(tokens, index) is not None and tokens[index].text == "(":
        index += 1
    left, op, right = _at(tokens, index), _at(tokens, index + 1), _at(tokens, index + 2)
    if left is None or op is None or right is None:
        return -1
    # Most conditions start with a column: no literal, nothing more to read.
    if left.kind is not _NUMBER and left.kind is not _STRING and _word(left) not in _BOOLEANS:
        return -1
    if op.text.upper() not in _COMPARISONS:
        return -1
    a, b = literal_value(left), literal_value(right)
    if a is None or b is None or op.text.upper() == "IS":
        return -1
    numbers = left.kind is _NUMBER and right.kind is _NUMBER
    if numbers and {_number(a), _number(b)} <= _ORM_CONSTANTS:
        return -1
    if op.text.upper() == "BETWEEN":
        high = _at(tokens, index + 4)
        if _word(_at(tokens, index + 3)) != "AND" or high is None or literal_value(high) is None:
            return -1
        return index + 5
    follower = _at(tokens, index + 3)
    if follower is not None and follower.kind is _OPERATOR and follower.text not in ("||",):
        return -1  # part of a larger expression (1=1+x), not a constant condition
    return index + 3


def _union(tokens: Sequence[Token], index: int) -> QueryThreat | None:
    """``UNION [ALL] SELECT`` of constants only or of system objects."""
    start = tokens[index].start
    index += 1
    if _word(_at(tokens, index)) in ("ALL", "DISTINCT"):
        index += 1
    while _at(tokens, index) is not None and tokens[index].text == "(":
        index += 1
    if _word(_at(tokens, index)) != "SELECT":
        return None
    constants = True
    items = 0
    end = tokens[index].end
    depth = 0
    in_list = True  # the select list; after it, only system objects are looked for
    for token in tokens[index + 1 :]:
        word = _word(token)
        if word in _SYSTEM:
            return QueryThreat(UNION, start, token.end)
        depth += (token.text == "(") - (token.text == ")")
        if depth < 0 or token.kind is _SEMICOLON or word == "UNION":
            break
        if depth == 0 and word in _SELECT_END:
            in_list = False
        if in_list:
            end = token.end
            if token.text != ",":
                items += 1
                constants = constants and (token.kind in (_NUMBER, _STRING) or word == "NULL")
    return QueryThreat(UNION, start, end) if constants and items else None


def _call_args(tokens: Sequence[Token], index: int) -> list[Token] | None:
    """The tokens between the parentheses of a call whose name is at ``index``."""
    if _at(tokens, index + 1) is None or tokens[index + 1].text != "(":
        return None
    depth = 0
    for end in range(index + 1, len(tokens)):
        depth += (tokens[end].text == "(") - (tokens[end].text == ")")
        if depth == 0:
            return list(tokens[index + 2 : end])
    return list(tokens[index + 2 :])


def _atom_end(tokens: Sequence[Token], index: int) -> int:
    """Index after a literal atom (a string, or ``CHAR(n)``/``CHR(n)``), else ``-1``."""
    token = _at(tokens, index)
    if token is None:
        return -1
    if token.kind is _STRING:
        return index + 1
    if _word(token) in _CHAR_FUNCTIONS:
        args = _call_args(tokens, index)
        if args and all(t.kind is _NUMBER or t.text in ",+" for t in args):
            return index + len(args) + 3
    return -1


def _concatenation(tokens: Sequence[Token], index: int) -> QueryThreat | None:
    """A literal atom, ``||`` or ``+`` at ``index``, and another literal atom."""
    after = _atom_end(tokens, index + 1)
    if after < 0:
        return None
    for first in range(max(0, index - 8), index):
        if _atom_end(tokens, first) == index:
            return QueryThreat(CONCATENATION, tokens[first].start, tokens[after - 1].end)
    return None


def _call(tokens: Sequence[Token], index: int, word: str) -> QueryThreat | None:
    """The shape of the call of ``word`` at ``index`` (``WAITFOR DELAY`` too)."""
    args = _call_args(tokens, index)
    if args is None:
        if word == "WAITFOR" and _word(_at(tokens, index + 1)) in ("DELAY", "TIME"):
            return QueryThreat(TIME, tokens[index].start, tokens[index + 1].end)
        return None
    name = _call_threat(word, args)
    if not name:
        return None
    span_end = (args[-1].end if args else tokens[index + 1].end) + 1
    return QueryThreat(name, tokens[index].start, span_end)


def _call_threat(word: str, args: list[Token]) -> str:
    """The shape a call of ``word`` with ``args`` is, or ``""``."""
    if word in _SLEEPS:
        return TIME
    if word == "RANDOMBLOB":  # a huge blob takes seconds: SQLite's sleep
        big = any(t.kind is _NUMBER and (_number(t.text) or 0.0) >= 100_000 for t in args)
        return TIME if big else ""
    if word in _ERROR_FUNCTIONS:
        return ERROR_BASED
    first = args[0] if args else None
    if (word == "FLOOR" and _word(first) == "RAND") or (word == "EXP" and _text(first) == "~"):
        return ERROR_BASED
    if word == "CAST" and any(t.text == "||" or _word(t) in _CHAR_FUNCTIONS for t in args):
        return ERROR_BASED  # PostgreSQL's error-based: CAST((CHR(113)||...) AS NUMERIC)
    if word in _CHAR_FUNCTIONS and sum(t.kind is _NUMBER for t in args) >= 2:
        return CONCATENATION  # CHAR(83,69,76,...): text spelled as codes
    if word == "CONCAT" and len(args) >= 3 and all(_literal_part(t) for t in args):
        return CONCATENATION
    return ""


def _text(token: Token | None) -> str:
    return "" if token is None else token.text


def _literal_part(token: Token) -> bool:
    """Part of a call made of literals only (strings, numbers, CHAR(...))."""
    return (
        token.kind in (_STRING, _NUMBER)
        or token.text in (",", "(", ")")
        or _word(token) in _CHAR_FUNCTIONS
    )


def _stacked(tokens: Sequence[Token], index: int) -> bool:
    """A statement starts after the semicolon at ``index``."""
    word = _word(_at(tokens, index + 1))
    follower = _word(_at(tokens, index + 2))
    if word in ("SELECT", "SHUTDOWN", "WAITFOR", "DECLARE", "EXEC", "EXECUTE"):
        return True
    if word in ("DROP", "CREATE", "ALTER", "TRUNCATE"):
        return follower in _STATEMENT_OBJECTS or word == "TRUNCATE"
    if word in ("INSERT", "DELETE"):
        return follower in ("INTO", "FROM")
    if word == "UPDATE":
        return _word(_at(tokens, index + 3)) == "SET"
    return False


# Words that start a call or clause a check reads.
_CALLS = frozenset(
    {*_SLEEPS, *_ERROR_FUNCTIONS, *_CHAR_FUNCTIONS, "RANDOMBLOB", "FLOOR", "EXP", "CAST"}
    | {"CONCAT", "WAITFOR"}
)
# The check each such word starts, found with one look-up per word.
_OR_CHECK, _AND_CHECK, _UNION_CHECK, _CALL_CHECK = range(4)
_WORD_CHECKS = {
    **dict.fromkeys(_CALLS, _CALL_CHECK),
    **dict.fromkeys(("OR", "XOR"), _OR_CHECK),
    **dict.fromkeys(("AND", "WHERE", "HAVING"), _AND_CHECK),
    "UNION": _UNION_CHECK,
}


def scan(
    tokens: Sequence[Token], text: str, *, mysql: bool = False, bare: bool = True
) -> list[QueryThreat]:
    """The injection shapes in ``tokens`` (read from ``text``).

    One pass over the tokens; each check runs only at the tokens that can start
    its shape (OR, AND, UNION, a semicolon, ``||``, a known function name).

    Args:
        tokens: the statement's tokens, comments included.
        text: the statement.
        mysql: ``||`` is OR and ``&&`` AND (MySQL without ``PIPES_AS_CONCAT``).
        bare: a constant alone after OR (``OR 1``) counts as a tautology; off for the
            content of string literals, where "1 or 2" is prose.
    """
    found: list[QueryThreat] = []
    kinds = {token.kind for token in tokens}
    # Most statements have no comment or unfinished token: nothing to set aside.
    plain = _COMMENT not in kinds and _ERROR not in kinds
    code: Sequence[Token] = tokens if plain else _code(tokens, found)
    word_checks = _WORD_CHECKS
    depth = 0
    threat: QueryThreat | None
    for index, token in enumerate(code):
        kind = token.kind
        threat = None
        if kind is _PUNCTUATION:
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth -= 1
                if depth < 0:  # a ")" closes what the statement never opened: 1) AND (1=1
                    threat = QueryThreat(UNBALANCED, token.start, token.end)
                    depth = 0
        elif kind is _SEMICOLON:
            if _stacked(code, index):
                threat = QueryThreat(STACKED, token.start, code[index + 1].end)
        elif kind is _OPERATOR:
            if mysql and token.text == "||":
                threat = _after_or(code, index, bare)
            elif mysql and token.text == "&&":
                threat = _after_and(code, index)
            elif token.text in ("||", "+") and not mysql:
                threat = _concatenation(code, index)
        elif kind is _KEYWORD or kind is _IDENTIFIER:
            word = token.text.upper()
            check = word_checks.get(word)
            if check is None:  # most words: one dictionary look-up
                continue
            if check is _OR_CHECK:
                threat = _after_or(code, index, bare)
            elif check is _AND_CHECK:
                threat = _after_and(code, index)
            elif check is _UNION_CHECK:
                threat = _union(code, index)
            else:
                threat = _call(code, index, word)
        if threat is not None:
            found.append(threat)
    if depth > 0:
        found.append(QueryThreat(UNBALANCED, code[-1].start, code[-1].end))
    return found


def _code(tokens: Sequence[Token], found: list[QueryThreat]) -> list[Token]:
    """The tokens but comments; the shapes comments and unfinished tokens make are
    added to ``found``."""
    code: list[Token] = []
    last = len(tokens) - 1
    for position, token in enumerate(tokens):
        if token.kind is _COMMENT:
            if token.text.startswith(("--", "#")) and position > 0 and position == last:
                found.append(QueryThreat(COMMENT_TRUNCATION, token.start, token.end))
            elif token.text.startswith("/*!") or (
                token.text.startswith("/*")  # UNION/**/SELECT: a comment as a space
                and 0 < position < last
                and tokens[position - 1].end == token.start
                and tokens[position + 1].start == token.end
            ):
                found.append(QueryThreat(COMMENT_OBFUSCATION, token.start, token.end))
            continue
        if token.kind is _ERROR and (len(token.text) > 1 or token.text in "'\"`[$"):
            name = COMMENT_TRUNCATION if token.text.startswith("/*") else UNTERMINATED
            found.append(QueryThreat(name, token.start, token.end))
        code.append(token)
    return code


def _after_or(tokens: Sequence[Token], index: int, bare: bool) -> QueryThreat | None:
    end = _constant_truth(tokens, index + 1, bare=bare)
    return QueryThreat(TAUTOLOGY, tokens[index].start, tokens[end - 1].end) if end > 0 else None


def _after_and(tokens: Sequence[Token], index: int) -> QueryThreat | None:
    end = _constant_comparison(tokens, index + 1)
    if end > 0:
        return QueryThreat(BOOLEAN_BLIND, tokens[index].start, tokens[end - 1].end)
    return None
