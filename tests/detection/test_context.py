"""Smaller families and context decisions (issue 12, items 4 and 5).

Every rule added for the issue has a positive and a negative case here; the
context decisions (field name, prose around a command, path or SQL) each have
an attack that still blocks and a look-alike that passes. None of these values
come from the benchmark corpora.
"""

from __future__ import annotations

import pytest

from pynomaly_security.detection import Inspector, RequestParts
from pynomaly_security.detection.policy import context_score
from pynomaly_security.detection.rules import ALL_RULES

from ._helpers import form, json_body, query

NEW_RULES = {
    "sqli-numeric-boolean",
    "xss-js-string-breakout",
    "xss-html-offsite",
    "xss-html-named-element",
    "rfi-url-truncated",
    "rfi-remote-value",
    "ldapi-truncation",
    "pt-secret-path",
    "pt-dotdot-inner",
    "pt-unc-value",
}

# (rule id, field name, value): each must block, with that rule among the findings.
POSITIVE = [
    pytest.param("sqli-numeric-boolean", "id", "1 or true", id="sql-1-or-true"),
    pytest.param("sqli-numeric-boolean", "id", "-1 OR 2", id="sql-minus1-or-2"),
    pytest.param("sqli-numeric-boolean", "id", "1 xor 1", id="sql-xor"),
    pytest.param("sqli-numeric-boolean", "id", "1 RLIKE 1", id="sql-rlike"),
    pytest.param("sqli-numeric-boolean", "id", "0 || 7", id="sql-pipes"),
    pytest.param("xss-js-string-breakout", "q", "';location=name;'", id="js-location-name"),
    pytest.param("xss-js-string-breakout", "q", '"+eval(name)+"', id="js-eval-name"),
    pytest.param("xss-js-string-breakout", "q", "';document.title=1;//", id="js-comment-tail"),
    pytest.param("xss-html-offsite", "q", "<a href=//evil.example>log in</a>", id="html-link"),
    pytest.param("xss-html-offsite", "msg", '<form action="//x.example/p">', id="html-form"),
    pytest.param("xss-html-named-element", "q", "<div id=x>\u2026</div>", id="html-div-id"),
    pytest.param("xss-html-named-element", "q", '<img name="cookie" src=a.png>', id="html-name"),
    pytest.param("rfi-url-truncated", "show", "http://host.example/x.txt??", id="rfi-qq"),
    pytest.param("rfi-url-truncated", "content_dir", "http://h.example/x.txt%00", id="rfi-nul"),
    pytest.param("rfi-remote-value", "show", "http://host.example/x.txt", id="rfi-file-field"),
    pytest.param("rfi-remote-value", "content_dir", "https://h.example/inc/", id="rfi-dir-field"),
    pytest.param("ldapi-truncation", "user", "*))%00", id="ldap-star-close-nul"),
    pytest.param("ldapi-truncation", "user", "admin)%00", id="ldap-close-nul"),
    pytest.param("pt-secret-path", "file", "/run/secrets/db_password", id="secret-run"),
    pytest.param("pt-secret-path", "file", "/app/.env", id="secret-dotenv"),
    pytest.param("pt-dotdot-inner", "file", "x/../config.py", id="one-level-up"),
    pytest.param("pt-dotdot-inner", "file", "foo/..;/admin", id="tomcat-dotdot-semicolon"),
    pytest.param("pt-unc-value", "q", "\\\\attacker.example\\share\\x", id="unc"),
]

NEGATIVE = [
    pytest.param("sqli-numeric-boolean", "q", "5000 or 6000", id="two-prices"),
    pytest.param("sqli-numeric-boolean", "q", "Add 1 or 2 spoons of sugar", id="prose-1-or-2"),
    pytest.param("xss-js-string-breakout", "q", "It's 'ok'; we ship", id="quoted-prose"),
    pytest.param("xss-html-offsite", "q", '<a href="https://x.example">docs</a>', id="https-link"),
    pytest.param(
        "xss-html-named-element", "body:comment", "<div id=x>notes</div>", id="markup-in-body"
    ),
    pytest.param("rfi-url-truncated", "next", "https://shop.example/cart?", id="trailing-q"),
    pytest.param("rfi-remote-value", "website", "https://me.example/", id="url-field"),
    pytest.param("ldapi-truncation", "q", "(see note 3)", id="parenthesis"),
    pytest.param("pt-secret-path", "q", "Copy .env.example to .env first", id="dotenv-prose"),
    pytest.param("pt-dotdot-inner", "q", "See ../docs/setup.md", id="leading-relative"),
    pytest.param("pt-unc-value", "q", "Put it in \\\\fs\\team\\plan.xlsx", id="unc-in-prose"),
]


def _request(field: str, value: str) -> RequestParts:
    """A query parameter, or a form field for ``body:<name>``."""
    if field.startswith("body:"):
        return form(value, name=field.removeprefix("body:"))
    return query(value, name=field)


def test_new_rule_ids_exist_and_ids_are_unique() -> None:
    ids = [rule.rule_id for rule in ALL_RULES]
    assert len(ids) == len(set(ids))
    assert set(ids) >= NEW_RULES


def test_every_new_rule_has_a_positive_and_a_negative_case() -> None:
    positive = {p.values[0] for p in POSITIVE}
    negative = {p.values[0] for p in NEGATIVE}
    assert positive == NEW_RULES
    assert negative == NEW_RULES


@pytest.mark.parametrize(("rule_id", "field", "value"), POSITIVE)
def test_new_rule_blocks(rule_id: str, field: str, value: str) -> None:
    verdict = Inspector().inspect(_request(field, value))
    assert verdict.blocked, verdict.findings
    assert rule_id in verdict.rules, verdict.findings


@pytest.mark.parametrize(("rule_id", "field", "value"), NEGATIVE)
def test_new_rule_look_alike_passes(rule_id: str, field: str, value: str) -> None:
    verdict = Inspector().inspect(_request(field, value))
    assert not verdict.blocked, verdict.findings
    assert rule_id not in verdict.rules


@pytest.mark.parametrize(
    "value",
    [
        "x\u02bc or \u02bc1\u02bc=\u02bc1",  # modifier letter apostrophe
        "x\u2032 or \u20321\u2032=\u20321",  # prime
        "x\u02b9 union select password from users--",  # modifier letter prime
    ],
)
def test_quote_look_alikes_are_quotes(value: str) -> None:
    verdict = Inspector().inspect(query(value))
    assert verdict.blocked and "sqli" in verdict.families, verdict.findings


def test_modifier_apostrophe_in_prose_passes() -> None:
    """Ukrainian and Hawaiian text write the apostrophe as U+02BC / U+02BB."""
    verdict = Inspector().inspect(query("\u043f\u02bc\u044f\u0442\u044c and Hawai\u02bbi"))
    assert not verdict.blocked


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("file", "C:\\Users\\alice\\Documents\\report.docx"),
        ("path", "D:\\backup\\db.sql"),
        ("template", "\\\\fileserver\\share\\x.tpl"),
    ],
)
def test_drive_and_unc_paths_are_attacks_in_file_fields(field: str, value: str) -> None:
    verdict = Inspector().inspect(query(value, name=field))
    assert verdict.blocked and "path_traversal" in verdict.families, verdict.findings


def test_a_drive_path_in_free_text_passes() -> None:
    for parts in (query("C:\\Users\\alice\\Documents\\report.docx"), form("D:\\logs\\app.log")):
        assert not Inspector().inspect(parts).blocked


def test_context_score_weighs_by_field() -> None:
    assert context_score("query.show", "rfi", 2, "rfi-remote-value") == 5
    assert context_score("body.website", "rfi", 2, "rfi-remote-value") == 0
    assert context_score("query.q", "xss", 2, "xss-html-named-element") == 5
    assert context_score("body.comment", "xss", 2, "xss-html-named-element") == 0
    assert context_score("header.referer", "ssrf", 4, "ssrf-internal-url") == 0
    assert context_score("query.url", "ssrf", 4, "ssrf-internal-url") == 4


@pytest.mark.parametrize(
    "value",
    [
        "8.8.8.8; ls -la",  # data, then a command: a break-out
        "report.pdf | wc -l",
        "x' && make",
        "cd /tmp; ls",  # a command line that touches the system
        "git log; id",  # a dangerous command chained after a harmless one
        "Use $(id) here",  # a dangerous command even in prose
        "ls -la /",
        "time sh -c whoami",
        "cat /etc/passwd",  # a secret named after a command
        "zcat /var/log/auth.log.gz",  # a system file after a program that prints it
        "echo aWQK | base64 -d",  # data fed to a program
        "x'; SELECT password FROM users--",
        "1 union select password from users",
    ],
)
def test_breakouts_still_block(value: str) -> None:
    for parts in (query(value), json_body({"text": value})):
        assert Inspector().inspect(parts).blocked, value


@pytest.mark.parametrize(
    "value",
    [
        "cd ~/project && make test && git push origin main",
        "rm -rf node_modules && npm install",
        "echo $HOME; ls -la ~/.config",
        "Use `cat file | head -5` to peek at a file.",
        "Use $(pwd) to get the current directory.",
        "The env var is ${DATABASE_URL} in the compose file.",
        "tail -f /var/log/nginx/access.log",
        "Edit /etc/hosts to point dev.local at 127.0.0.1.",
        "The file path is /usr/local/bin/python3 on most systems",
        "The union select committee met on Tuesday and dropped the table of contents.",
        "Math: 5>3 and 1=1",
        "The query SELECT id, name FROM users WHERE active = true returns 40 rows.",
        "if (user && user.isAdmin) { showPanel(); }",
    ],
)
def test_command_lines_paths_and_sql_in_prose_pass(value: str) -> None:
    for parts in (query(value), json_body({"text": value})):
        verdict = Inspector().inspect(parts)
        assert not verdict.blocked, (value, verdict.findings)
