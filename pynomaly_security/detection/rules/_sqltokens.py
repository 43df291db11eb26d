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

__all__ = ["MAX_CHARS", "sql_score", "tokens"]

MAX_CHARS = 240

_TOKEN = re.compile(
    r"""(?P<c>--[^\n]*|\#[^\n]*|/\*[^*]*\*?/?)
    |(?P<s>'(?:[^'\\]|\\.)*'?|`[^`]*`?)
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
_LOGIC_WORDS = frozenset("and or xor not div mod".split())
_CMP_WORDS = frozenset("like rlike regexp is in between sounds collate escape".split())
_STRUCTURAL = frozenset(
    """select union from where order group by having limit offset into insert update delete
    drop exec execute case when then else end null all distinct values set table procedure
    declare waitfor delay binary join outfile dumpfile information_schema current_user
    current_date sysdate true false""".split()
)
_SQL_OPERAND = frozenset("snvf()k")
_OPERAND = _SQL_OPERAND | {"w", "d"}


def tokens(text: str) -> list[str]:
    """Token classes of ``text`` (lower case); comparison/logic/arith operators
    are ``=``, ``&`` and ``+``."""
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "x"
        if kind == "w":
            word = match.group()
            if word in _LOGIC_WORDS:
                kind = "&"
            elif word in _CMP_WORDS:
                kind = "="
            elif word in _STRUCTURAL:
                kind = "k"
            elif text.startswith("(", match.end()):
                kind = "f"
        elif kind == "cmp":
            kind = "="
        elif kind == "logic":
            kind = "&"
        elif kind == "arith":
            kind = "+"
        elif kind == "p":
            kind = match.group()
        out.append(kind)
        if len(out) >= 64:
            break
    return out


def _binary(a: str, op: str, b: str) -> bool:
    if op not in "=&+" or a not in _OPERAND or b not in _OPERAND:
        return False
    if op == "=":  # 1=1, 'a'='a, "x" like "y", id is null
        return a in _SQL_OPERAND or b in _SQL_OPERAND or "d" in (a, b)
    sql_side = {a, b} & set("svf()")
    if op == "&":  # 'x' or 1, hope and (8)
        return bool(sql_side)
    return bool({a, b} & set("svf"))  # arithmetic on strings, variables, calls


def _score(classes: list[str]) -> int:
    words = classes.count("w")
    if words > 2 or len(classes) < 3:
        return 0
    if not any(_binary(*classes[i : i + 3]) for i in range(len(classes) - 2)):
        return 0
    return 5 if (words == 0 or "k" in classes or "c" in classes) else 4


def sql_score(text: str, start: int, end: int) -> int:
    """``Rule.check``: the value as SQL, as is and after a single quote."""
    window = text[:MAX_CHARS]
    best = _score(tokens(window))
    if best < 5 and "'" in window:
        best = max(best, _score(tokens("'" + window)))
    return best
