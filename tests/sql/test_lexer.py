"""The SQL lexer: kinds and positions per dialect, the cap, every character
accounted for, and token boundaries equal to sqlparse's on a few hundred statements."""

from __future__ import annotations

import re

import pytest
import sqlparse
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlparse import tokens as T

from pynomaly_security.sql import StatementTooLong, TokenKind, tokenize
from pynomaly_security.sql.builder import ParamStyle, SafeQueryBuilder
from tests.sql._statements import BENIGN, attacks

K = TokenKind


def kinds(text: str, dialect: str) -> list[tuple[str, str]]:
    return [(token.kind.value, token.text) for token in tokenize(text, dialect)]


@pytest.mark.parametrize(
    ("dialect", "text", "expected"),
    [
        # -- strings: '' doubling everywhere, backslashes per dialect
        pytest.param("sqlite", "'it''s'", [("string", "'it''s'")], id="sqlite-doubling"),
        pytest.param("sqlite", r"'a\' OR 1", [("string", r"'a\'"), ("keyword", "OR"),
                                              ("number", "1")], id="sqlite-backslash-plain"),
        pytest.param("mysql", r"'a\' OR 1'", [("string", r"'a\' OR 1'")], id="mysql-backslash"),
        pytest.param("mysql", '"str"', [("string", '"str"')], id="mysql-double-quoted-string"),
        pytest.param("postgresql", r"E'a\'b' 'c\'", [("string", r"E'a\'b'"), ("string", r"'c\'")],
                     id="pg-escape-string"),
        pytest.param("postgresql", "$$it's$$ $fn$ a $$ b $fn$",
                     [("string", "$$it's$$"), ("string", "$fn$ a $$ b $fn$")], id="pg-dollar"),
        pytest.param("sqlite", "x'0A1f'", [("string", "x'0A1f'")], id="sqlite-blob"),
        pytest.param("mysql", "_utf8mb4'x' N'y'", [("string", "_utf8mb4'x'"), ("string", "N'y'")],
                     id="mysql-introducers"),
        pytest.param("sqlite", "name = 'open", [("identifier", "name"), ("operator", "="),
                                                ("error", "'open")], id="unterminated"),
        # -- identifiers
        pytest.param("sqlite", '"a""b" `c` [d e]',
                     [("quoted_identifier", '"a""b"'), ("quoted_identifier", "`c`"),
                      ("quoted_identifier", "[d e]")], id="sqlite-quoted-identifiers"),
        pytest.param("mysql", "`t`.`c` @@version @v",
                     [("quoted_identifier", "`t`"), ("punctuation", "."),
                      ("quoted_identifier", "`c`"), ("identifier", "@@version"),
                      ("identifier", "@v")], id="mysql-identifiers-variables"),
        pytest.param("postgresql", "select Users", [("keyword", "select"),
                                                    ("identifier", "Users")], id="keyword-case"),
        # -- numbers and operators
        pytest.param("sqlite", "1 1.5 .5 1e-3 0x1F",
                     [("number", n) for n in ["1", "1.5", ".5", "1e-3", "0x1F"]], id="numbers"),
        pytest.param("postgresql", "a::int->>'k' <> b", [
            ("identifier", "a"), ("operator", "::"), ("identifier", "int"), ("operator", "->>"),
            ("string", "'k'"), ("operator", "<>"), ("identifier", "b")], id="pg-operators"),
        pytest.param("mysql", "a <=> b || c", [("identifier", "a"), ("operator", "<=>"),
                                               ("identifier", "b"), ("operator", "||"),
                                               ("identifier", "c")], id="mysql-operators"),
        # -- comments
        pytest.param("sqlite", "1 -- x\n2", [("number", "1"), ("comment", "-- x"),
                                             ("number", "2")], id="line-comment"),
        pytest.param("mysql", "1 --x", [("number", "1"), ("operator", "-"), ("operator", "-"),
                                        ("identifier", "x")], id="mysql-double-dash-needs-space"),
        pytest.param("mysql", "1 # x", [("number", "1"), ("comment", "# x")], id="mysql-hash"),
        pytest.param("postgresql", "1 # 2", [("number", "1"), ("operator", "#"),
                                             ("number", "2")], id="pg-hash-is-xor"),
        pytest.param("postgresql", "/* a /* b */ c */ 1", [("comment", "/* a /* b */ c */"),
                                                           ("number", "1")], id="pg-nested"),
        pytest.param("sqlite", "/* a /* b */ c */", [("comment", "/* a /* b */"),
                                                     ("identifier", "c"), ("operator", "*"),
                                                     ("operator", "/")], id="sqlite-not-nested"),
        pytest.param("mysql", "1/*!50000UNION*/SELECT", [
            ("number", "1"), ("comment", "/*!50000"), ("keyword", "UNION"), ("comment", "*/"),
            ("keyword", "SELECT")], id="mysql-executable-comment"),
        pytest.param("sqlite", "1 /* open", [("number", "1"), ("error", "/* open")],
                     id="unterminated-comment"),
        # -- placeholders and semicolons
        pytest.param("sqlite", "? ?2 :n @n $n",
                     [("placeholder", p) for p in ["?", "?2", ":n", "@n", "$n"]],
                     id="sqlite-params"),
        pytest.param("postgresql", "$1 %s %(name)s :n", [("placeholder", p) for p in
                                                         ["$1", "%s", "%(name)s", ":n"]],
                     id="pg-params"),
        pytest.param("mysql", "%s; %(n)s", [("placeholder", "%s"), ("semicolon", ";"),
                                            ("placeholder", "%(n)s")], id="mysql-params"),
    ],
)
def test_token_kinds(dialect: str, text: str, expected: list[tuple[str, str]]) -> None:
    """Each dialect reads strings, identifiers, comments and placeholders its own way."""
    assert kinds(text, dialect) == expected


def test_positions_slice_the_text() -> None:
    """Every token's ``start:end`` is its text in the statement."""
    text = "SELECT  a ,'x''y'\n FROM t -- c"
    tokens = tokenize(text)
    assert [(t.start, t.end) for t in tokens][:3] == [(0, 6), (8, 9), (10, 11)]
    assert all(text[t.start : t.end] == t.text for t in tokens)


def test_input_over_the_cap_is_refused() -> None:
    """A statement past ``max_length`` raises StatementTooLong (a ValueError) naming
    both sizes, rather than being read in part."""
    with pytest.raises(StatementTooLong, match="51 characters exceeds the lexer's cap of 50"):
        tokenize("x" * 51, max_length=50)
    assert issubclass(StatementTooLong, ValueError)
    assert len(tokenize("x " * 25, max_length=50)) == 25


def test_unknown_dialect_is_named() -> None:
    """An unknown dialect raises ValueError listing the known names."""
    with pytest.raises(ValueError, match="unknown SQL dialect 'oracle'; known: asyncpg"):
        tokenize("SELECT 1", "oracle")


def test_pathological_input_is_read_in_one_pass() -> None:
    """Unfinished quotes and comments, repeated, end in one ERROR token each way:
    the possessive patterns never backtrack into quadratic work."""
    for dialect in ("sqlite", "postgresql", "mysql"):
        for text in ("'" + "''" * 20_000, "/*" * 20_000, "$a$" * 10_000, "\\'" * 20_000):
            tokens = tokenize(text, dialect)
            assert len(tokens) < 20_001


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab1 '\"`$;-/*#\\()=?:%\n")), max_size=60),
       st.sampled_from(["sqlite", "postgresql", "mysql"]))
def test_every_character_belongs_to_one_token(text: str, dialect: str) -> None:
    """Tokens are in order, do not overlap, and cover every non-space character."""
    tokens = tokenize(text, dialect)
    covered = [False] * len(text)
    last_end = 0
    for token in tokens:
        assert last_end <= token.start < token.end
        assert text[token.start : token.end] == token.text
        for i in range(token.start, token.end):
            covered[i] = True
        last_end = token.end
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))



@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab1 '\"`$;-/*#!\\()=?:%\n")), max_size=60),
       st.sampled_from(["sqlite", "postgresql", "mysql"]), st.integers(0, 61))
def test_reading_until_gives_the_first_tokens_of_the_whole(
    text: str, dialect: str, until: int
) -> None:
    """``until`` (the sink reads a statement as far as a value in it): the tokens are
    the first ones of the whole text's, through the first token starting at or past
    ``until`` (or all of them)."""
    whole = tokenize(text, dialect)
    head = tokenize(text, dialect, until=until)
    assert head == whole[: len(head)]
    if len(head) < len(whole):
        assert head[-1].start >= until


def test_reading_until_on_the_shared_statements() -> None:
    statements = [s for _, s in BENIGN] + [s for _, _, _, s, _ in attacks()][::7]
    for text in statements:
        for dialect in ("sqlite", "postgresql", "mysql"):
            whole = tokenize(text, dialect)
            for until in range(0, len(text) + 1, 5):
                head = tokenize(text, dialect, until=until)
                assert head == whole[: len(head)]
                assert len(head) == len(whole) or head[-1].start >= until

# -- compared with sqlparse --------------------------------------------------------------

# sqlparse reads some keyword groups as one token ("ORDER BY", "UNION ALL", "NOT NULL",
# "LEFT OUTER JOIN"); we read words. A token of sqlparse with whitespace inside
# is compared as the sequence of our tokens that tiles it.
def _sqlparse_spans(text: str) -> list[tuple[int, int, str]]:
    spans = []
    position = 0
    for token in sqlparse.parse(text)[0].flatten():
        end = position + len(token.value)
        if token.ttype not in T.Whitespace and token.ttype not in T.Newline:
            spans.append((position, end, token.value))
        position = end
    return spans


def _comparable(dialect: str, text: str) -> bool:
    """Statements where sqlparse reads the dialect as the database does: sqlparse
    applies backslash escapes everywhere, knows no nested, executable or MySQL-only
    comments, nor dollar quoting with tags."""
    if dialect == "sqlite" and "::" in text:  # PostgreSQL's cast, a syntax error in SQLite
        return False
    if dialect == "postgresql" and "`" in text:  # no quote in PostgreSQL; sqlparse's MySQL one
        return False
    return dialect != "mysql" and not any(mark in text for mark in ("\\", "$", "/*", "#"))


def _statements() -> list[tuple[str, str]]:
    built = []
    for style in ParamStyle:
        builder = SafeQueryBuilder("postgresql", style)
        built += [
            ("postgresql", builder.build_select("users", ["id", "name"], {"id": [1, 2], "n": 3},
                                                order_by="-id", limit=5, offset=2).sql),
            ("postgresql", builder.build_update("users", {"name": 1}, {"id": 2}).sql),
            ("postgresql", builder.build_insert("users", {"a": 1, "b": 2}, returning=["id"]).sql),
        ]
    rows = [(dialect, text) for dialect, text in BENIGN if _comparable(dialect, text)]
    rows += [(d, s) for _, _, d, s, _ in attacks() if _comparable(d, s)]
    return list(dict.fromkeys([*built, *rows]))  # tampers may give the same statement


STATEMENTS = _statements()


def test_enough_statements_are_compared() -> None:
    """The comparison covers a few hundred statements."""
    assert len(STATEMENTS) >= 300


@pytest.mark.parametrize(("dialect", "text"), STATEMENTS)
def test_token_boundaries_match_sqlparse(dialect: str, text: str) -> None:
    """Where sqlparse's token ends, ours does; tokens sqlparse joins across spaces
    (``ORDER BY``) are several of ours tiling the same span."""
    ours = tokenize(text, dialect)
    starts = {t.start: i for i, t in enumerate(ours)}
    for start, end, value in _sqlparse_spans(text):
        assert start in starts, (value, text)
        first = starts[start]
        if ours[first].kind is K.ERROR:
            # An unfinished literal: the database reads the rest as part of it (one
            # ERROR token) where sqlparse resumes after the quote.
            assert ours[first].end == len(text.rstrip()) and ours[first].text[0] in "'\"`"
            break
        last = first
        while ours[last].end < end:
            last += 1
        assert ours[last].end == end, (value, [t.text for t in ours[first : last + 1]])
        if re.fullmatch(r"[-+]\d[\d.]*", value):  # sqlparse signs numbers; SQL lexers don't
            assert [t.text for t in ours[first : last + 1]] == [value[0], value[1:]]
        elif not re.search(r"\s", value):
            assert first == last, (value, [t.text for t in ours[first : last + 1]])
