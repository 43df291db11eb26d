"""Token-level SQL analysis, in the spirit of libinjection's fingerprints.

A value is read as SQL in up to two contexts (as is, and as if it continued
a single-quoted string, which is where injected input usually lands) and
reduced to tokens of a few classes: ``s`` string, ``d`` double-quoted
string, ``n`` number, ``v`` variable, ``f`` call, ``k`` structural keyword
(``select``, ``union``, ``from``, ...), ``w`` other word, ``c`` comment,
punctuation, and operators of three kinds: comparison (``=``, ``like``,
``is``), logic (``and``, ``or``, ``||``) and arithmetic (``+``, ``|``, ``/``).

It is SQL when a binary expression has SQL operands and few ordinary words
occur: ``aa'!='1`` and ``HOPE AND (8)=3`` are SQL; ``salt and pepper``,
``bob's or alice's``, ``2024-01-05`` and ``"Black" and "White"`` are not.

The tokenizer is one regular expression whose alternatives start with
disjoint characters and contain no nested quantifiers (so no catastrophic
backtracking), run on at most ``MAX_CHARS`` characters. It replaces
sqlparse's lexer here because that costs about 0.1 ms per 50 characters,
which the request budget cannot pay on every suspicious value; sqlparse is
used for the rarer statement-level check in :mod:`.sqli`.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["KEYWORDS", "MAX_CHARS", "sql_score", "tokens"]

MAX_CHARS = 240
SHORT_VALUE = 100

_TOKEN = re.compile(
    r"""(?P<c>--[^\n]*|\#[^\n]*|/\*[^*]*\*?/?)
    |(?P<s>'(?:[^'\\]|\\.)*'?)
    |(?P<b>`[^`]*`?)
    |(?P<d>"(?:[^"\\]|\\.)*"?)
    |(?P<n>0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)
    |(?P<v>@@?[\w.$]+)
    |(?P<w>[a-z_$\\][\w$.]*)
    |(?P<arith><<|>>|[-+*/%^|&~](?![|&]))
    |(?P<cmp><=>|<>|!=|<=|>=|==|[=<>])
    |(?P<logic>\|\||&&|!)
    |(?P<p>[(),;])
    |(?P<x>\S)""",
    re.VERBOSE,
)
_IS_OPERAND = re.compile(r"\s+(?:not|null|true|false|unknown)\b")
_BY = re.compile(r"\s+by\b")
_LOGIC_WORDS = frozenset(["and", "or", "xor", "not", "div", "mod"])
_CMP_WORDS = frozenset(
    [
        *("like", "ilike", "rlike", "regexp", "is", "in", "between", "sounds", "collate"),
        *("escape", "notnull", "isnull", "glob", "match"),
    ]
)
_STATEMENT = {"select": "S", "from": "F", "union": "U"}
_STRUCTURAL = frozenset(
    [
        "where",
        "order",
        "group",
        "by",
        "having",
        "limit",
        "offset",
        "into",
        "insert",
        "update",
        "delete",
        "drop",
        "exec",
        "execute",
        "case",
        "when",
        "then",
        "else",
        "end",
        "all",
        "distinct",
        "values",
        "set",
        "table",
        "procedure",
        "declare",
        "waitfor",
        "delay",
        "binary",
        "join",
        "outfile",
        "dumpfile",
        "information_schema",
        "current_user",
        "current_date",
        "sysdate",
        "top",
        "desc",
        "asc",
        "dual",
    ]
)
KEYWORDS = frozenset(_STATEMENT) | _STRUCTURAL | _LOGIC_WORDS | _CMP_WORDS
"""Every SQL keyword the tokenizer classifies (statement, structural, logic, comparison)."""
_FUNCTIONS = frozenset(
    [
        "sin",
        "cos",
        "tan",
        "pi",
        "ascii",
        "char",
        "concat",
        "substr",
        "substring",
        "version",
        "user",
        "database",
        "sleep",
        "benchmark",
        "count",
        "lpad",
        "rpad",
        "mid",
        "left",
        "right",
        "ord",
        "hex",
        "unhex",
        "length",
        "cast",
        "convert",
    ]
)
# Literals are operands but not SQL structure: JSON is full of null/true/false.
_LITERALS = frozenset(["null", "true", "false"])
_SQL_OPERAND = frozenset("snvf()kSFUl")
_OPERAND = _SQL_OPERAND | {"w", "d"}
_VALUE_OPERAND = frozenset("snvf()l")
# A trailing comment only means SQL after an operator, keyword or parenthesis.
_COMMENT_CONTEXT = frozenset("=&+(kSFUf")
_KEYWORDS = frozenset("kSFU")
Token = tuple[str, str]


def tokens(text: str) -> list[Token]:
    """``(class, text)`` tokens of ``text`` (lower case). Comparison, logic
    and arithmetic operators are ``=``, ``&`` and ``+``; an operator right
    after another one is unary (``= !0``, ``like +'1'``) and dropped."""
    out: list[Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "x"
        word = match.group()
        if kind == "w":
            if word in _LOGIC_WORDS:
                kind = "&"
            elif word in _CMP_WORDS:
                kind = "=" if word != "is" or _IS_OPERAND.match(text, match.end()) else "w"
            elif word in _STATEMENT:
                kind = _STATEMENT[word]
            elif word in _STRUCTURAL:
                kind = "k"
                if word in ("order", "group") and not _BY.match(text, match.end()):
                    kind = "w"  # "order=" in a cookie is a name, "order by" is SQL
            elif word in _LITERALS:
                kind = "l"
            elif word in _FUNCTIONS or text.startswith("(", match.end()):
                kind = "f"
        elif kind == "b":
            kind = "w"  # `quoted` is an identifier (and Markdown code), not a string
        elif kind in ("cmp", "logic", "arith"):
            kind = {"cmp": "=", "logic": "&", "arith": "+"}[kind]
        elif kind == "p":
            kind = word
        elif kind == "s" and len(word) >= 4 and not word.strip("'"):
            continue  #  runs are padding, not strings
        if kind in "=&+" and out and out[-1][0] in "=&+":
            continue
        out.append((kind, word))
        if len(out) >= 64:
            break
    return out


def _binary(a: str, op: str, b: str) -> bool:
    if op not in "=&+" or a not in _OPERAND or b not in _OPERAND or a == "(" or b == ")":
        return False
    if op == "=":  # 1=1, 'a'='a, "x" like "y", id is null; not end="w" (markup)
        return a in _VALUE_OPERAND or b in _VALUE_OPERAND or a == b == "d"
    if op == "&":  # 'x' or 1, hope and (8)
        return bool({a, b} & set("svf()"))
    # arithmetic: both sides SQL, one a string, variable or call ("jack-o'-lantern" is not)
    return a in _SQL_OPERAND and b in _SQL_OPERAND and bool({a, b} & set("svf"))


def _small_numbers(left: str, right: str) -> bool:
    return len(left) <= 5 and len(right) <= 5


def _score(toks: list[Token], quoted: bool = False) -> int:
    classes = [c for c, _ in toks]
    words = classes.count("w")
    if len(classes) < 2:
        return 0
    keywords = sum(1 for c in classes if c in _KEYWORDS)
    if "S" in classes and ("F" in classes or "U" in classes) and words * 2 <= len(classes):
        return 5  # select ... from, union select (prose: "select one from the list")
    if words > 3:
        return 0
    if keywords >= 3 and words <= 2 and len(classes) >= 4:
        return 5  # case when ... then ... end, declare ... select
    if (
        "c" in classes
        and len(classes) >= 3
        and _COMMENT_CONTEXT & set(classes)
        and _VALUE_OPERAND & set(classes)
        and (words == 0 or (words == 1 and "(" in classes and keywords + classes.count("f")))
    ):
        return 5  # ( ( 1 ) ) --, ( binary cos ( 'b') ) --
    for i in range(1, len(classes) - 2):
        if classes[i - 1 : i + 3] == ["&", "w", "=", "w"] and toks[i][1] == toks[i + 2][1]:
            return 5  # hi or a=a
    if words > 2:
        return 0
    if words <= 1 and (keywords or "(" in classes or "c" in classes or words == 0):
        for i in range(len(classes) - 2):
            a, op, b = classes[i : i + 3]
            if (
                op == "&"
                and a in "nl"
                and b in "nl"
                and len(classes) >= 5
                and (keywords or "(" in classes or "c" in classes or "=" in classes)
            ):
                return 5  # 1 and 1 not between 0 and 1, having (true or 1)
    for i, cls in enumerate(classes[:-1]):
        nxt = classes[i + 1]
        if cls == "S" and (nxt in "vf" or (nxt in "n(" and words == 0)) and words <= 2:
            return 5  # select @version, select char(0x66)
        if cls == "F" and nxt == "w" and "where" in (t for _, t in toks[i + 2 : i + 4]):
            return 5  # ) from users where username=
    best = 0
    for i in range(len(classes) - 2):
        a, op, b = classes[i : i + 3]
        if (
            op == "="
            and a == b == "w"
            and toks[i][1] == toks[i + 2][1]
            and i
            and classes[i - 1] == "&"
        ):
            return 5  # or a=a
        if not _binary(a, op, b):
            continue
        if quoted and i == 0 and op == "+" and (b != "s" or toks[i + 2][1] == "''"):
            continue  # "x'/3": arithmetic on the string we closed, not on another string
        if op == "=" and words <= 1 and "&" in classes[:i] and b in "n(fl":
            return 5  # hope and (8)=3, 1 || user_id is not null
        if a == b == "n" and op == "=":
            if not _small_numbers(toks[i][1], toks[i + 2][1]):
                continue  # 1418474375998=1 in a cookie is data, 1=1 is a tautology
            if i and classes[i - 1] == "&":
                return 5  # and 8=3
        if {a, b} & {"s", "v"} or words == 0 or keywords or "c" in classes:
            return 5
        best = 4
    return best


def sql_score(text: str, start: int, end: int) -> int:
    """``Rule.check``: the value around the match as SQL, as is and after a quote."""
    if len(text) <= MAX_CHARS:
        return _window_score(text)
    # Long values (documents): read only the neighbourhood of the match.
    left = max(0, start - MAX_CHARS // 2)
    return _window_score(text[left : left + MAX_CHARS])


@lru_cache(maxsize=512)
def _window_score(window: str) -> int:
    # Several rules confirm through this on the same value: tokenize once.
    best = _score(tokens(window))
    quotes = window.count("'")
    # Reading a long text as if it continued a string only makes sense when
    # a quote is left open; code samples with balanced quotes are not that.
    if best < 5 and quotes and (quotes % 2 or len(window) <= SHORT_VALUE):
        best = max(best, _score(tokens("'" + window), quoted=True))
    return best
