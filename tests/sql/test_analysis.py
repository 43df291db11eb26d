"""SQLInjectionProtector.analyze_query: the guide's two examples, one row per
shape, literals read for what they would do if pasted, and no findings on the
statements ORMs and hand-written code send."""

from __future__ import annotations

import collections

import pytest

from pynomaly_security import QueryAnalysis, SQLInjectionProtector
from pynomaly_security.sql import StatementTooLong
from tests.sql._statements import BENIGN, attacks


def test_the_guides_examples() -> None:
    """The integration guide's calls, as written."""
    protector = SQLInjectionProtector()
    analysis = protector.analyze_query(
        "SELECT * FROM users WHERE id = ? AND name = ?", {"id": 1, "name": "John"}
    )
    assert analysis.is_safe
    assert analysis.detected_threats == []
    assert analysis.placeholders == 2
    analysis = protector.analyze_query("SELECT * FROM users WHERE id = '1 OR 1=1'")
    assert not analysis.is_safe and "Tautology injection" in analysis.detected_threats
    assert isinstance(analysis, QueryAnalysis)
    # The literal '1 OR 1=1' is where the shape is.
    assert analysis.positions == [(31, 41)]
    assert analysis.risk_score == 0.8


@pytest.mark.parametrize(
    ("dialect", "query", "threat", "span"),
    [
        # -- in the statement's text
        pytest.param("sqlite", "SELECT * FROM t WHERE id = 1 OR 1=1", "Tautology injection",
                     "OR 1=1", id="tautology"),
        pytest.param("sqlite", "SELECT * FROM t WHERE a = 'x' OR 'b'='b'", "Tautology injection",
                     "OR 'b'='b'", id="tautology-strings"),
        pytest.param("mysql", "SELECT * FROM t WHERE id = 1 || 2>1", "Tautology injection",
                     "|| 2>1", id="tautology-mysql-pipes"),
        pytest.param("sqlite", "SELECT * FROM t WHERE id = 2 OR 5 BETWEEN 1 AND 9",
                     "Tautology injection", "OR 5 BETWEEN 1 AND 9", id="tautology-between"),
        pytest.param("sqlite", "SELECT * FROM t WHERE id = 2 AND 3098=3098",
                     "Boolean-based blind", "AND 3098=3098", id="boolean-blind"),
        pytest.param("sqlite", "SELECT * FROM t WHERE id = 1; DROP TABLE users",
                     "Stacked queries", "; DROP", id="stacked"),
        pytest.param("postgresql", "SELECT * FROM t WHERE id = 1;SELECT pg_sleep(5)",
                     "Stacked queries", ";SELECT", id="stacked-select"),
        pytest.param("sqlite", "SELECT * FROM t WHERE name = 'admin'-- AND pw = 'x'",
                     "Comment truncation", "-- AND pw = 'x'", id="comment-truncation"),
        pytest.param("mysql", "SELECT * FROM t WHERE name = 'admin'# AND pw = 'x'",
                     "Comment truncation", "# AND pw = 'x'", id="comment-truncation-hash"),
        pytest.param("sqlite", "SELECT * FROM t WHERE id = 1 /* rest", "Comment truncation",
                     "/* rest", id="open-block-comment"),
        pytest.param("sqlite", "SELECT a FROM t WHERE id = 1 UNION/**/SELECT 2",
                     "Comment obfuscation", "/**/", id="comment-as-space"),
        pytest.param("mysql", "SELECT a FROM t WHERE id = 1 /*!50000UNION*/ SELECT 2",
                     "Comment obfuscation", "/*!50000", id="mysql-executable-comment"),
        pytest.param("sqlite", "SELECT a, b FROM t WHERE id = 1 UNION ALL SELECT NULL, NULL",
                     "UNION-based", "UNION ALL SELECT NULL, NULL", id="union-nulls"),
        pytest.param("sqlite", "SELECT a FROM t WHERE id = -1 UNION SELECT sql FROM sqlite_master",
                     "UNION-based", "UNION SELECT sql FROM sqlite_master", id="union-system"),
        pytest.param("mysql", "SELECT a FROM t WHERE id = 1 AND SLEEP(5)", "Time-based blind",
                     "SLEEP(5)", id="sleep"),
        pytest.param("mysql", "SELECT a FROM t WHERE id = 1 OR BENCHMARK(5000000,MD5(1))",
                     "Time-based blind", "BENCHMARK(5000000,MD5(1))", id="benchmark"),
        pytest.param("sqlite", "SELECT a FROM t WHERE 1=LIKE('A',HEX(RANDOMBLOB(500000000)))",
                     "Time-based blind", "RANDOMBLOB(500000000)", id="randomblob"),
        pytest.param("sqlite", "SELECT a FROM t WHERE id = 1; WAITFOR DELAY '0:0:5'",
                     "Time-based blind", "WAITFOR DELAY", id="waitfor"),
        pytest.param("mysql", "SELECT a FROM t WHERE id = 1 AND EXTRACTVALUE(1, CONCAT(0x7e, 1))",
                     "Error-based", "EXTRACTVALUE(1, CONCAT(0x7e, 1))", id="extractvalue"),
        pytest.param("mysql", "SELECT a FROM t WHERE id = 1 AND FLOOR(RAND(0)*2)",
                     "Error-based", "FLOOR(RAND(0)*2)", id="floor-rand"),
        pytest.param("postgresql", "SELECT a FROM t WHERE 1=CAST(CHR(113)||CHR(120) AS NUMERIC)",
                     "Error-based", "CAST(CHR(113)||CHR(120) AS NUMERIC)", id="pg-cast"),
        pytest.param("postgresql", "SELECT a FROM t WHERE name = CHR(65)||CHR(66)",
                     "Literal concatenation", "CHR(65)||CHR(66)", id="chr-concat"),
        pytest.param("sqlite", "SELECT a FROM t WHERE name = 'ad'||'min'",
                     "Literal concatenation", "'ad'||'min'", id="string-concat"),
        pytest.param("mysql", "SELECT a FROM t WHERE name = CHAR(97,100,109)",
                     "Literal concatenation", "CHAR(97,100,109)", id="charencode"),
        pytest.param("sqlite", "SELECT a FROM t WHERE name = 'it", "Unterminated literal",
                     "'it", id="unterminated"),
        pytest.param("sqlite", "SELECT a FROM t WHERE id = 1)", "Unbalanced parentheses",
                     ")", id="unbalanced"),
        # -- in a literal's content: what it would do if pasted bare or between quotes
        pytest.param("sqlite", "SELECT * FROM t WHERE n = 'x'' OR ''a''=''a'",
                     "Tautology injection", "'x'' OR ''a''=''a'", id="literal-breaks-out"),
        pytest.param("sqlite", "INSERT INTO c (body) VALUES ('1 UNION SELECT NULL,NULL')",
                     "UNION-based", "'1 UNION SELECT NULL,NULL'", id="literal-union"),
        pytest.param("postgresql", "SELECT * FROM t WHERE n = $$1; DROP TABLE users$$",
                     "Stacked queries", "$$1; DROP TABLE users$$", id="literal-dollar-stacked"),
        pytest.param("mysql", "SELECT * FROM t WHERE n = 'x\\' AND SLEEP(5)#'",
                     "Time-based blind", "'x\\' AND SLEEP(5)#'", id="literal-mysql-escape"),
    ],
)
def test_each_shape(dialect: str, query: str, threat: str, span: str) -> None:
    """Each shape is named, and its span in the statement is where it is."""
    analysis = SQLInjectionProtector(dialect).analyze_query(query)
    assert threat in analysis.detected_threats, analysis
    spans = [query[t.start : t.end] for t in analysis.threats if t.name == threat]
    assert span in spans
    assert 0.0 < analysis.risk_score <= 1.0


@pytest.mark.parametrize(("dialect", "query"), BENIGN)
def test_ordinary_statements_are_safe(dialect: str, query: str) -> None:
    """Statements as ORMs (SQLAlchemy, Django) and hand-written code send them,
    with literals, comments, UNIONs, constant conditions and casts, are safe."""
    analysis = SQLInjectionProtector(dialect).analyze_query(query)
    assert analysis.is_safe, analysis.detected_threats
    assert analysis.risk_score == 0.0


@pytest.mark.parametrize(
    "literal",
    ["Tom or Jerry", "1 or 2 apples", "Select a size; then pay", "drop by at 5 -- or not",
     "100% cotton", "R&D; Q&A", "O''Reilly", "union station", "char(10) is a newline",
     "a = b", "rock ''n'' roll"],
)
def test_prose_in_literals_is_safe(literal: str) -> None:
    """Prose with SQL words in a literal is no injection shape."""
    query = f"INSERT INTO notes (body) VALUES ('{literal}')"
    analysis = SQLInjectionProtector().analyze_query(query)
    assert analysis.is_safe, analysis.detected_threats


def test_injected_statements_are_found() -> None:
    """Of the 1,662 sqlmap-style payloads pasted into statements (every technique
    and tamper), analyze_query finds all but the 12 UNIONs of a real table whose
    only other sign is an ORM-like ``WHERE 1=1`` (in the numeric contexts)."""
    missed: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    for technique, _tamper, dialect, statement, _value in attacks():
        total[technique] += 1
        if SQLInjectionProtector(dialect).analyze_query(statement).is_safe:
            missed[technique] += 1
    assert dict(missed) == {"union": 12}
    assert sum(total.values()) == 1662


def test_statements_over_the_cap_are_refused() -> None:
    """Past ``max_length`` the analysis raises StatementTooLong; a bad cap is refused."""
    protector = SQLInjectionProtector(max_length=100)
    with pytest.raises(StatementTooLong):
        protector.analyze_query("SELECT 1 -- " + "x" * 100)
    with pytest.raises(StatementTooLong):
        protector.analyze_query("SELECT a FROM t WHERE b = c" + " " * 100)
    # A statement within the cap is read whole, its literals too (read again with quotes).
    at_cap = "SELECT '" + "a OR 1=1 " * 10 + "'"
    analysis = SQLInjectionProtector(max_length=len(at_cap)).analyze_query(at_cap)
    assert analysis.detected_threats == ["Tautology injection"]
    with pytest.raises(ValueError, match="max_length must be positive"):
        SQLInjectionProtector(max_length=0)


def test_placeholders_are_counted() -> None:
    """The count covers every paramstyle, outside literals and comments only."""
    protector = SQLInjectionProtector("postgresql")
    assert protector.analyze_query("SELECT a FROM t WHERE x = $1 AND y = %(y)s").placeholders == 2
    assert protector.analyze_query("SELECT '?', a::int FROM t WHERE x = :x").placeholders == 1
