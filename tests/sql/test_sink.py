"""check_statement, the sink's decision: a request value that changes the token
structure of the statement about to run is an injection, whatever it looks like;
one that stays inside a literal is not, however odd it looks."""

from __future__ import annotations

import collections
import json

import pytest

from pynomaly_security.sql import SinkFinding, TokenKind, check_statement, tokenize
from pynomaly_security.sql.sink import SHAPE_LIMIT
from tests.conftest import require_shared
from tests.sql._statements import TEMPLATES, attacks


@pytest.mark.parametrize(
    ("dialect", "template", "value", "reason"),
    [
        # -- breaking out of a literal
        pytest.param("sqlite", "SELECT * FROM u WHERE name = '{v}'", "x' OR 'a'='a",
                     "spans_tokens", id="quote-tautology"),
        pytest.param("sqlite", "SELECT * FROM u WHERE name = '{v}' AND pw = 'p'", "admin'--",
                     "spans_tokens", id="comment-truncation"),
        pytest.param("postgresql", "SELECT * FROM u WHERE name = '{v}'", "O'Brien",
                     "spans_tokens", id="benign-quote-really-breaks"),
        pytest.param("sqlite", "SELECT * FROM u WHERE name = '{v}'", "abc'",
                     "unterminated", id="leaves-literal-open"),
        pytest.param("sqlite", "SELECT * FROM u WHERE a = '{v}' AND b = 'y'", "x'",
                     "changes_structure", id="moves-the-end-of-the-literal"),
        pytest.param("mysql", "SELECT * FROM u WHERE name = '{v}'", "x\\",
                     "unterminated", id="mysql-backslash-escapes-the-closing-quote"),
        pytest.param("mysql", 'SELECT * FROM u WHERE name = "{v}"', 'a" OR "1"="1',
                     "spans_tokens", id="mysql-double-quotes"),
        pytest.param("sqlite", 'SELECT * FROM u ORDER BY "{v}"', 'name" DESC, "id',
                     "spans_tokens", id="identifier-breakout"),
        # -- unquoted
        pytest.param("sqlite", "SELECT * FROM u WHERE id = {v}", "1 OR 1=1",
                     "spans_tokens", id="numeric-tautology"),
        pytest.param("postgresql", "SELECT * FROM u WHERE id = {v} ORDER BY id", "-- x",
                     "opens_literal", id="numeric-comment-swallows-the-rest"),
        pytest.param("sqlite", "SELECT * FROM u WHERE id = {v}", '1"',
                     "unterminated", id="sqlmap-probe-double-quote"),
        pytest.param("sqlite", "SELECT * FROM u WHERE id = ({v})", '")',
                     "unterminated", id="sqlmap-probe-quote-paren"),
        pytest.param("mysql", "SELECT * FROM u WHERE id = {v}", "1/*!UNION*/SELECT 2",
                     "spans_tokens", id="executable-comment"),
        pytest.param("sqlite", "SELECT * FROM u WHERE id = {v}", "1;DROP TABLE u",
                     "spans_tokens", id="stacked"),
        pytest.param("sqlite", "SELECT * FROM u WHERE id = {v}", "0+id",
                     "spans_tokens", id="arithmetic-tautology"),
        pytest.param("sqlite", "SELECT * FROM u WHERE id = {v}", "-1 OR 1",
                     "spans_tokens", id="signed-then-sql"),
    ],
)
def test_injections_are_found(dialect: str, template: str, value: str, reason: str) -> None:
    """The value's place in the statement covers more than one token, or leaves a
    literal open, or opens one that runs over the application's text."""
    statement = template.replace("{v}", value)
    finding = check_statement(statement, ["unrelated", value], dialect)
    assert isinstance(finding, SinkFinding)
    assert (finding.reason, finding.value_index) == (reason, 1)
    assert statement[finding.start : finding.end] == value
    assert value not in finding.shape and "[value]" in finding.shape


@pytest.mark.parametrize(
    ("dialect", "statement", "value"),
    [
        pytest.param("sqlite", "SELECT * FROM u WHERE name = '1 OR 1=1'", "1 OR 1=1",
                     id="sql-inside-a-literal"),
        pytest.param("sqlite", "SELECT * FROM u WHERE name = 'O''Brien'", "O'Brien",
                     id="escaped-quote-does-not-occur"),
        pytest.param("sqlite", "SELECT * FROM u WHERE name = 'O''Brien' AND b = 'y'", "O''Brien",
                     id="doubled-quote-stays-inside"),
        pytest.param("mysql", "SELECT * FROM u WHERE name = 'O\\'Brien'", "O'Brien",
                     id="mysql-escaped"),
        pytest.param("sqlite", "SELECT users.id FROM users WHERE users.id = ?", "s.i",
                     id="inside-the-applications-words"),
        pytest.param("sqlite", "SELECT * FROM u WHERE id IN (1,2,3)", "1,2,3", id="in-list"),
        pytest.param("sqlite", "SELECT id, name FROM u", "id, name", id="column-list"),
        pytest.param("sqlite", "SELECT * FROM u ORDER BY name DESC", "DESC", id="one-keyword"),
        pytest.param("sqlite", "SELECT * FROM u WHERE id = 42", "42", id="one-number"),
        pytest.param("sqlite", "SELECT * FROM u WHERE balance > -5", "-5", id="signed-number"),
        pytest.param("sqlite", "SELECT * FROM u WHERE note = '-- not a comment; /* */'",
                     "-- not a comment; /* */", id="comment-marks-in-a-literal"),
        pytest.param("postgresql", "SELECT * FROM u WHERE note = $$it's$$", "it's",
                     id="dollar-quoted"),
        pytest.param("sqlite", "SELECT * FROM u WHERE name = ?", "x' OR 'a'='a",
                     id="parameterized-value-does-not-occur"),
    ],
)
def test_values_that_keep_the_structure_pass(dialect: str, statement: str, value: str) -> None:
    """A value inside one literal, a coincidence inside the application's own
    words, or a list of names or numbers changes nothing."""
    assert check_statement(statement, [value], dialect) is None


def test_short_values_and_no_values_are_not_checked() -> None:
    """Values under ``min_length`` are skipped; the default is 2 characters."""
    assert check_statement("SELECT * FROM u WHERE id = 1'", ["'"]) is None
    assert check_statement("SELECT * FROM u WHERE id = 1'", ["1'"]) is not None
    assert check_statement("SELECT * FROM u WHERE id = 1'", ["1'"], min_length=3) is None
    assert check_statement("SELECT 1", []) is None


def test_every_occurrence_is_judged() -> None:
    """A value that occurs harmlessly first and harmfully later is found."""
    statement = "SELECT 'a OR 1=1' FROM u WHERE id = a OR 1=1"
    finding = check_statement(statement, ["a OR 1=1"])
    assert finding is not None and finding.start == statement.rindex("a OR 1=1")
    assert finding.token_kinds == (
        TokenKind.IDENTIFIER, TokenKind.KEYWORD, TokenKind.NUMBER, TokenKind.OPERATOR,
        TokenKind.NUMBER,
    )
    assert finding.shape == "SELECT '[value]' FROM u WHERE id = [value]"


def test_statements_over_the_cap_fail_closed() -> None:
    """A value occurring in a statement past the lexer's cap is reported
    (``too_long``) rather than read in part; without an occurrence, nothing."""
    statement = "SELECT * FROM u WHERE name = 'bob'" + " " * 200
    finding = check_statement(statement, ["bob"], max_length=100)
    assert finding is not None and finding.reason == "too_long"
    assert check_statement(statement, ["alice"], max_length=100) is None
    assert len(finding.shape) <= SHAPE_LIMIT


def test_sqlmap_techniques_and_tampers_are_all_found() -> None:
    """Every sqlmap-style payload (boolean, error, union, stacked, time-based and
    the quote-breaking probes), plain and with space2comment, between, randomcase,
    charencode and all four, pasted into statements of the three dialects."""
    rows = attacks()
    by_technique = collections.Counter(technique for technique, *_ in rows)
    assert set(by_technique) == {"boolean", "error", "union", "stacked", "time", "probe"}
    missed = [
        (technique, tamper, statement)
        for technique, tamper, dialect, statement, value in rows
        if check_statement(statement, [value], dialect) is None
    ]
    assert missed == []
    assert len(rows) > 1500


def _corpus(label: str) -> list[str]:
    values = []
    for path in sorted(require_shared("corpora").glob("*.jsonl")):
        for line in path.read_text().split("\n"):
            if not line:
                continue
            row = json.loads(line)
            if row["label"] != label or row["payload"] is None:
                continue
            if label == "benign" or row["category"] == "sqli":
                values.append(row["payload"])
    return values


def _one_token_or_list(value: str) -> bool:
    tokens = tokenize(value)
    plain = {TokenKind.IDENTIFIER, TokenKind.NUMBER, TokenKind.QUOTED_IDENTIFIER}
    return len(tokens) <= 1 or all(t.kind in plain or t.text in ",." for t in tokens)


def test_corpus_sqli_rows_break_out_of_some_context() -> None:
    """Each SQL injection row of the corpora, pasted into the contexts of TEMPLATES,
    is found in at least one, except values that are a single token or a list of
    names (``select``, ``>=``, ``mysql.db``: fragments, not statements changed)."""
    values = _corpus("attack")
    assert len(values) > 4000
    missed = [
        value
        for value in values
        if not any(
            check_statement(template.replace("{v}", value), [value], dialect)
            for dialect, template, _ in TEMPLATES
        )
    ]
    assert [value for value in missed if not _one_token_or_list(value)] == []
    assert len(missed) < 0.01 * len(values)


def test_corpus_benign_rows_change_nothing_unless_they_close_the_quote() -> None:
    """Benign rows pasted between quotes are found only when they contain that
    quote (or, in MySQL, a backslash, which escapes it): the cases where the value
    really changes the statement."""
    values = _corpus("benign")
    assert len(values) > 3000
    wrong = []
    for value in values:
        for dialect, template, quote in TEMPLATES:
            if not quote:
                continue  # prose is never pasted unquoted on purpose
            finding = check_statement(template.replace("{v}", value), [value], dialect)
            really = quote in value or (dialect == "mysql" and "\\" in value)
            if finding is not None and not really:
                wrong.append((dialect, value))
    assert wrong == []
