"""Every detection rule, one positive and one negative case, by rule id.

The table is checked against the registered rules (:data:`ALL_RULES`) in both
directions: a rule added without cases fails :func:`test_every_rule_has_cases`,
and a row left behind by a removed or renamed rule fails
:func:`test_no_case_for_an_unknown_rule`. Each positive must report *that* rule
id, found in the field the row names, at the rule's own level (so a level-3
rule is shown to be active at level 3); each negative is a near miss of the same
rule (one character, one word or the context differs) that must not report it
even at level 4, and must not be blocked at the default level.

Cases are written for these tests (none are taken from the benchmark corpora).
A few rows run again through HTTP on a real app at the end of the module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import quote

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from pynomaly_security.detection import Inspector, RequestParts
from pynomaly_security.detection.rules import ALL_RULES, Rule
from pynomaly_security.middleware.inspection import InputInspectionMiddleware


class Case(NamedTuple):
    positive: str
    negative: str
    field: str = "query.q"
    """Where both values go, named as findings name fields: ``query.<name>``,
    ``body.<name>`` (a form field), ``header.<name>`` or ``path``."""


# Rules the inspector applies outside ALL_RULES (by field name, not by pattern).
INLINE_RULES = {
    "code-script-upload": ("code_injection", 1),
    "cmdi-config-upload": ("cmdi", 1),
    # Reads the value percent-decoded only, where &#0000060 and &lt; still differ.
    "xss-encoded-markup-char": ("xss", 1),
}

CASES: dict[str, Case] = {
    # -- SQL injection -------------------------------------------------------------
    "sqli-grammar": Case("x' or 1=1 --", "x or y is fine"),
    "sqli-escaped-quote-logic": Case("ab\\' or 2>1", "ab\\'s orange"),
    "sqli-quote-operator-comment": Case("q'*price--", "q' * price"),
    "sqli-token-terminated": Case("bob@mail.test';", "bob said 'hi';"),
    "sqli-quote-delay": Case("x' pg_sleep(3)", "x' sleeps (3 hours)"),
    "sqli-where-constants": Case("where 3=3 and 4=4", "where rooms 3 and 4 meet"),
    "sqli-balanced-quotes": Case("7' * qty - '3", "7 * qty - 3"),
    "sqli-db-objects": Case("tempdb", "tempdbs"),
    "sqli-number-e-dot": Case("2.e.columns", "2.e.g. columns"),
    "sqli-call-opening": Case("ascii/(", "ascii art ("),
    "sqli-exec-proc": Case("execute user_add", "execute summary"),
    "sqli-from-clause": Case("x) from accounts where owner_id =", "from accounts where owners are"),
    "sqli-values-row": Case("values ('10.1.1.1', 'admin')", "my values ('kind', 'honest')"),
    "sqli-constant-compare": Case("77<=>77", "77<=>78"),
    "sqli-set-variable": Case("set @sql_mode=''", "set @mention"),
    "sqli-closing-condition": Case("and archived = 0)", "hand archived = 0)"),
    "sqli-literal-list": Case("'', ' ', 12", "'a', 'b', 12"),
    "sqli-select-list-call": Case("select 1,2,database(", "selected user(s)"),
    "sqli-union": Case("0 union select 1,2", "the union selected a leader"),
    "sqli-union-split": Case("0 un/**/ion sel/**/ect 1,2", "labour un ion selection"),
    "sqli-union-probe": Case("1 union--", "local 1 union members"),
    "sqli-tautology-quoted": Case("x' or 'a'='a", "rock 'n' roll or jazz"),
    "sqli-tautology": Case("id=1 or 1=1", "1 or 2 people"),
    "sqli-quote-logic": Case("x' or true--", "x' orange"),
    "sqli-quote-logic-number": Case("x' and 1", "x' android"),
    "sqli-nested-call": Case("concat(version())", "print(version)"),
    "sqli-comment-truncation": Case("admin'--", "admin--"),
    "sqli-quote-fragment": Case("x' or x", "rock 'n' roll"),
    "sqli-stacked": Case("1; drop table users", "1; drop the idea"),
    "sqli-time": Case("sleep(5)", "sleep 5 hours"),
    "sqli-error-functions": Case("extractvalue(1,concat(0x7e,1))", "extract value from data"),
    "sqli-metadata": Case("1 from information_schema", "information schema docs"),
    "sqli-sysvar": Case("@@version", "version 2"),
    "sqli-select-expr": Case("select * from users", "select a shirt"),
    "sqli-select-from": Case("1 select name from users where 1", "select the best from our range"),
    "sqli-dml": Case("insert into users values(1)", "insert into the slot"),
    "sqli-delete": Case("delete from users where", "delete from my list please"),
    "sqli-order-by": Case("1 order by 3--", "order by date"),
    "sqli-having": Case("1 having 1=1", "having 2 cats"),
    "sqli-char-encode": Case("char(65,66,67)", "the char(65) code"),
    "sqli-subquery": Case("1 and (select 1)", "and select one"),
    "sqli-mssql-exec": Case("1 into outfile '/tmp/x'", "exec summary"),
    "sqli-functions": Case("substring(name,1,1)", "substring of name"),
    "sqli-function-probe": Case("now()", "now (very soon)"),
    "sqli-leading-logic": Case("or 1=1", "or maybe not"),
    "sqli-quote-stacked": Case("x'; drop table t", "x'; dropping by"),
    "sqli-mssql-procs": Case("xp_cmdshell", "my xp shell"),
    "sqli-empty-string-logic": Case("or true", "or true love"),
    "sqli-identifier-tautology": Case("or a=b", "or a=b in context"),
    "sqli-oracle-admin": Case("grant dba to scott", "grant access to scott"),
    "sqli-quote-statement": Case("x' (select 1)", "x' inserted into"),
    "sqli-alias-from": Case("in (1,2,3)", "in (1, b)"),
    "sqli-quote-keyword-start": Case("'drop table t", "'dropped' was the word"),
    "sqli-fragments": Case("declare @x int", "we declare a winner"),
    "sqli-json-operators": Case("x'::jsonb", "x::jsonb"),
    "sqli-set-operations": Case("1 intersect select 1", "except selected items"),
    "sqli-subselect": Case("(select count(*) from t)", "(select one)"),
    "sqli-hex-keyword": Case("0x73656c656374", "0x73656c65"),
    "sqli-misc-probes": Case("1or1=1", "1or2"),
    "sqli-number-comment": Case("1--", "10-12"),
    "sqli-limit-offset": Case("limit 5", "limit 5 per day"),
    "sqli-comment-end": Case("name#", "c# rocks"),
    "sqli-numeric-boolean": Case("1 or 1", "5000 or 6000"),
    "sqli-hex-literal": Case("color 0xdeadbeef", "color 0xdead"),
    # -- XSS -----------------------------------------------------------------------
    "xss-js-uri-split": Case("jav\tascript:go()", "java script: a language"),
    "xss-dom-obfuscated": Case("(document)['cookie']", "the document's cookie policy"),
    "xss-tagged-call": Case("f.call`1`", "f.call(1)"),
    "xss-obfuscated-ip-url": Case("<a href=//2130706433/>", "<img src=http://127.0.0.1/a.png>"),
    "xss-css-binding": Case("-moz-binding: url(x.xml#a)", "-moz-binding is gone"),
    "xss-css-expression-escaped": Case("expression\\28 1)", "expression 28"),
    "xss-xml-events": Case("<a q:handler='#h'>", "<a q:handler='h'>"),
    "xss-base64-markup": Case("PHNjcmlwdCBzcmM9eD4=", "YSBzY3JpcHRlZCBwbGF5"),
    "xss-script-tag": Case("<script>", "a script"),
    "xss-event-handler-tag": Case("<b onclick=x>", "<b title=x>"),
    "xss-event-handler": Case("x onerror=y", "online shop"),
    "xss-event-handler-generic": Case("x onzzz=1", "bonus=1"),
    "xss-dangerous-tag": Case("<iframe src=x>", "<i>frame</i>"),
    "xss-cookie-write": Case("document.cookie='a=b'", "cookie=chocolate"),
    "xss-xml-stylesheet": Case(
        '<?xml-stylesheet type="text/xsl" href="#"?>',
        '<?xml-stylesheet type="text/xsl" href="style.xsl"?>',
    ),
    "xss-namespaced-markup": Case("<html:img src=x>", "html:img"),
    "xss-indirect-call": Case("(alert)(1)", "(alert) 1"),
    "xss-probe-call": Case("alert(1)", "alert level 1"),
    "xss-js-entity": Case("&{alert(1)};", "& {x}"),
    "xss-data-binding": Case("<x datasrc=#a>", "datasrc: x"),
    "xss-spaced-tag": Case("<s cript>", "<i am>"),
    "xss-css-url-js": Case("url(javascript:x)", "url(https://x.example)"),
    "xss-jsfuck": Case("![]+![]+![]", "![]"),
    "xss-js-uri": Case("javascript:alert(1)", "javascript: the good parts"),
    "xss-data-uri": Case("data:text/html,<b>", "data:text/plain"),
    "xss-active-tag": Case("<form>", "<formula>"),
    "xss-markup": Case("<a href=javascript:x>", '<p align="center">'),
    "xss-attr-break": Case('x"><b>', 'the "quote" > others'),
    "xss-close-tag": Case("</textarea>", "</text>"),
    "xss-js-sink": Case("settimeout(x)", "settimeout value"),
    "xss-dom-cookie": Case("document.cookie", "document cookie"),
    "xss-dom": Case("window.location", "window location"),
    "xss-css-expression": Case("width:expression(1)", "expression of interest"),
    "xss-template": Case("{{constructor.constructor('x')()}}", "{{ name }}"),
    "xss-vector-attr": Case("formaction=javascript:x", "formaction=/submit"),
    "xss-js-string-breakout": Case("';location=name;'", "it's a test; ok"),
    "xss-html-offsite": Case("<a href=//evil.test>", "<a href=/home>"),
    "xss-html-named-element": Case("<input name=x>", "<span class=x>"),
    "xss-lt-alpha": Case("<b", "a<3"),
    "xss-encoded-markup-char": Case("&#0000060", "&#60;"),
    # -- path traversal ------------------------------------------------------------
    "pt-dotdot-multi": Case("../../x", "1/2 ... 3/4"),
    "pt-dotdot": Case("../x", "a..b"),
    "pt-unix-file": Case("/etc/passwd", "edit /etc/hosts to point"),
    "pt-windows-file": Case("c:\\boot.ini", "the boot menu"),
    "pt-windows-drive": Case("c:\\temp\\x", "c:drive", "query.file"),
    "pt-sensitive-name": Case(".htaccess", "htaccess"),
    "pt-sensitive-path": Case("/.htaccess", "/htaccess"),
    "pt-dotdot-evasion": Case("0x5c0x2e./", "0x2e/"),
    "pt-system-file-junk": Case("etc//passwd", "etc passwd"),
    "pt-windows-app-dir": Case("c:\\xampp\\", "c:\\projects\\x"),
    "pt-linux-pseudo": Case("/sys/class/net", "sys class"),
    "pt-system-file-encoded": Case("....etc", "etc."),
    "pt-dotdot-junk": Case(".^./.^./", "./"),
    "pt-path-dotdot": Case("/static/../secret", "/static/..file", "path"),
    "pt-base64-dotdot": Case("Li4vLi4vZXRjL3Bhc3N3ZA", "Li4xLi4x"),
    "pt-leading-dotdot": Case("..\\windows", "..text"),
    "pt-dotfile": Case(".bashrc", "bashrc"),
    "pt-etc-any": Case("/etc/foo.conf", "etc/foo.conf"),
    "pt-agent-config": Case("~/.cursor/mcp.json", "/.cursors"),
    "pt-slash-run": Case("////", "///"),
    "pt-file-scheme": Case("phar://x", "file: report.pdf"),
    "pt-php-filter": Case("convert.base64-encode", "convert base64"),
    "pt-secret-path": Case("/run/secrets/db", "run secrets"),
    "pt-dotdot-inner": Case("a/../b", "a/..b"),
    "pt-unc-value": Case("\\\\server\\share", "\\\\server"),
    "pt-dotenv": Case(".env", "env"),
    # -- command injection ----------------------------------------------------------
    "cmdi-chain": Case("x; id", "x; idea"),
    "cmdi-chain-word": Case("; whoami", "whoami.txt"),
    "cmdi-subshell": Case("$(whoami)", "$ (cost)"),
    "cmdi-subshell-any": Case("$(foo)", "$foo"),
    "cmdi-quote-break": Case("x' && whoami", "x' & y"),
    "cmdi-leading-command": Case("; ls", ";-)"),
    "cmdi-command-line": Case("uname -a", "ls files"),
    "cmdi-chain-unix": Case("abc | iconv", "abc | iconvx"),
    "cmdi-chain-unix-args": Case("x; grep -r", "grep -r x"),
    "cmdi-chain-unix-tight": Case("x';uniq", "x;unique"),
    "cmdi-unix-command-line": Case("dmesg -w /", "git log --oneline"),
    "cmdi-prefixed-command": Case("sudo id", "sudo make me a sandwich"),
    "cmdi-shell-var-split": Case("a<<<b", "a<<b"),
    "cmdi-bare-recon": Case("whoami", "who am i"),
    "cmdi-plus-spaced": Case("type c:\\", "type c3"),
    "cmdi-brace-quote-tricks": Case("c{a,b}t", "{a, b}"),
    "cmdi-admin-tool": Case("ansible-playbook x", "ansibleish"),
    "cmdi-misc-forms": Case("rm -rf /", "rm -rf build"),
    "cmdi-interpreter-eval": Case("perl -e 'x'", "perl -v"),
    "cmdi-win-for-if": Case("for %i in (a) do b", "for i in a list"),
    "cmdi-glob-path": Case("/???/??t", "what?/why"),
    "cmdi-quote-split": Case("w''h''o''ami", "don''t"),
    "cmdi-alias": Case("alias ll='ls -la'", "the alias ll='ls -la' is handy"),
    "cmdi-forkbomb": Case(":(){ :|:& };:", "f() { a | b; }"),
    "cmdi-powershell": Case("Invoke-WebRequest x", "invoke the webrequest"),
    "cmdi-mail-ftp": Case("x\r\nhelo evil", "x helo"),
    "cmdi-backtick": Case("`id`", "`identity`"),
    "cmdi-ifs": Case("cat${IFS}x", "the env var is ${DATABASE_URL}"),
    "cmdi-shellshock": Case("() { :; };", "f() { return 1 }"),
    "cmdi-shell-path": Case("/bin/sh", "/binary/sh"),
    "cmdi-redirect": Case("2>&1", "2>x"),
    "cmdi-download-exec": Case("curl http://x.example", "curly http"),
    "cmdi-download-value": Case("wget http://x.example/a.sh", "try curl http://x.example first"),
    "cmdi-ping-sleep": Case("ping -c3", "ping me at 3"),
    "cmdi-win-cmd": Case("net user", "net income"),
    "cmdi-metachar-leading": Case("|x", "x|y"),
    "cmdi-newline-terminated": Case("ls /srv/www\n", "ls /srv/www is where it lives\n"),
    "cmdi-tool-probe": Case("which nc", "which nice"),
    "cmdi-perl-interpolation": Case('@{[ qx "id" ]}', "@{[ 'list' ]}"),
    # -- code injection -------------------------------------------------------------
    "code-java-gadget": Case("InvokerTransformer", "Transformer"),
    "code-php-call": Case("system('id')", "system id"),
    "code-php-variable-call": Case("@$foo", "$foo"),
    "code-php-complex": Case("${@phpinfo()}", "${ a }"),
    "code-php-distinct": Case("gethostbyname('x')", "gethostbyname"),
    "code-php-callable": Case("('system')('id')", "(system) id"),
    "code-php-session-file": Case("sess_abcdef12", "sess_ab"),
    "code-php-ini-directive": Case("memory_limit=1", "memory limit = 1"),
    "code-ssti-spaced-dunder": Case("x.__ class__", "__ class __"),
    "code-php-bbcode": Case("[php]", "(php)"),
    "code-php-ini": Case("allow_url_include=1", "allow url include"),
    "code-php-upload-name": Case("shell.php", "shell.php.txt"),
    # PHP opens code only at "<?php" followed by whitespace (or "<?="); a bare
    # "<?php" opens nothing (CRS 933100 agrees).
    "code-php-tag": Case("<?php\tsystem($c);", "<?php"),
    "code-php-function": Case("ini_set(", "ini set"),
    "code-exec-call": Case("eval($x)", "evaluate(x)"),
    "code-php-vars": Case("$_GET", "$_GETTER"),
    "code-php-serialized": Case('O:8:"stdClass":1:{', "O:8:stdClass"),
    "code-java": Case("java.lang.Runtime", "javascript"),
    "code-log4shell": Case("${jndi:ldap://x}", "price ${amount}"),
    "code-java-serialized": Case("rO0ABXNy", "rO0"),
    "code-ssti": Case("{{7*7}}", "{{ name }}"),
    "code-template-tags": Case("<%= x %>", "50% off 20%"),
    "code-template-block": Case("{% if 1 %}x{% endif %}", "{% if 1 %} alone"),
    "code-python": Case("__import__('os')", "import os"),
    "code-node": Case("(child_process)", "child process"),
    "code-ruby": Case("%x(id)", "kernel panic"),
    "code-asp": Case("response.write(1)", "response write"),
    "code-ssi": Case('<!--#exec cmd="id"-->', "<!-- exec -->"),
    "code-expression": Case("${x}", "$x"),
    "code-php-generic": Case("system(", "subsystem(1)"),
    "code-script-upload": Case("shell.php", "report.pdf", "header.x-filename"),
    "cmdi-config-upload": Case(".htpasswd", "htpasswd-guide.pdf", "header.x-filename"),
    # -- SSRF, XXE, NoSQL, LDAP, protocol, RFI, scanners ------------------------------
    "ssrf-internal-url": Case("http://127.0.0.1/", "http://127.example.com"),
    "ssrf-metadata": Case("169.254.169.254", "169.254.16.254"),
    "ssrf-scheme": Case("gopher://x", "gopher x"),
    "xxe-entity": Case("<!ENTITY x SYSTEM", "entity"),
    "xxe-xinclude": Case("<xi:include href=x>", "xi include"),
    "nosqli-operator": Case("$ne", "$net"),
    "nosqli-js": Case("$where", "where"),
    "ldapi-filter": Case("*)(uid=*", "(uid=*)"),
    "ldapi-filter-shape": Case("(|(uid=a)(cn=b))", "(| x)"),
    "ldapi-close": Case("*))", "(a*)"),
    "crlf-header": Case("x\r\nSet-Cookie: a=b", "set-cookie: a"),
    "rfi-url": Case("http://1.2.3.4/x", "http://example.com/x"),
    "rfi-url-truncated": Case("http://evil.test/x.txt?", "http://evil.test/x.txt?a=1"),
    "rfi-remote-value": Case("http://evil.test/x", "see http://evil.test/x", "query.file"),
    "ldapi-truncation": Case("*))%00", "smile :) ok"),
    "scanner-agent": Case("sqlmap/1.5", "Mozilla/5.0", "header.user-agent"),
}


def _parts(field: str, value: str) -> RequestParts:
    """A request carrying ``value`` in ``field`` (a query value as a browser encodes it)."""
    kind, _, name = field.partition(".")
    if kind == "query":
        return RequestParts("GET", "/search", f"{name}={quote(value, safe='')}".encode())
    if kind == "body":
        body = f"{name}={quote(value, safe='')}".encode()
        headers = ((b"content-type", b"application/x-www-form-urlencoded"),)
        return RequestParts("POST", "/submit", b"", headers, body)
    if kind == "header":
        return RequestParts("GET", "/", b"", ((name.encode(), value.encode()),))
    if kind == "path":
        return RequestParts("GET", value)
    raise AssertionError(f"unknown field {field!r}")


_INSPECTORS: dict[int, Inspector] = {}


def _inspector(level: int) -> Inspector:
    """One inspector per level for the module (compiling the rules is the slow part)."""
    if level not in _INSPECTORS:
        _INSPECTORS[level] = Inspector(level=level)
    return _INSPECTORS[level]


def _level(rule_id: str) -> int:
    levels = {rule.rule_id: rule.level for rule in ALL_RULES}
    return levels.get(rule_id) or INLINE_RULES[rule_id][1]


RULE_IDS = [rule.rule_id for rule in ALL_RULES] + sorted(INLINE_RULES)


def test_rule_ids_are_unique() -> None:
    """No two registered rules share an id (a verdict names rules by id)."""
    counts = Counter(rule.rule_id for rule in ALL_RULES)
    assert [rule_id for rule_id, n in counts.items() if n > 1] == []
    assert not set(counts) & set(INLINE_RULES)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.rule_id)
def test_every_rule_has_cases(rule: Rule) -> None:
    """A registered rule has a row in CASES: a new rule needs its cases."""
    assert rule.rule_id in CASES, f"add a positive and a negative case for {rule.rule_id!r}"


def test_no_case_for_an_unknown_rule() -> None:
    """Every row names a registered rule (a renamed rule takes its cases along)."""
    assert sorted(set(CASES) - set(RULE_IDS)) == []


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_positive_fires_the_rule(rule_id: str) -> None:
    """The positive case reports exactly this rule id, in its field, at the rule's level."""
    case = CASES[rule_id]
    verdict = _inspector(_level(rule_id)).inspect(_parts(case.field, case.positive))
    fields = {f.field for f in verdict.findings if f.rule_id == rule_id}
    assert fields == {case.field}, verdict.findings


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_negative_does_not_fire_the_rule(rule_id: str) -> None:
    """The near miss does not report the rule at the paranoid level, and the default
    level does not block it."""
    case = CASES[rule_id]
    parts = _parts(case.field, case.negative)
    assert rule_id not in _inspector(4).inspect(parts).rules
    verdict = _inspector(2).inspect(parts)
    assert verdict.blocked is False, verdict.findings


# -- the same rows through HTTP ---------------------------------------------------------

HTTP_ROWS = [
    "sqli-union-probe",
    "sqli-oracle-admin",
    "xss-namespaced-markup",
    "pt-agent-config",
    "cmdi-powershell",
    "code-asp",
    "xxe-xinclude",
]


def _app() -> ASGIApp:
    async def search(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.query_params.get("q", ""))

    return Starlette(
        routes=[Route("/search", search)],
        middleware=[Middleware(InputInspectionMiddleware, inspector=_inspector(2))],
    )


@pytest.mark.anyio
@pytest.mark.parametrize("rule_id", HTTP_ROWS)
async def test_rows_through_http(
    rule_id: str, make_client: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    """On a real app the positive is refused (403) and logged with the rule id, and the
    negative reaches the endpoint unchanged."""
    case = CASES[rule_id]
    async with make_client(_app()) as client:
        with structlog.testing.capture_logs() as logs:
            refused = await client.get("/search", params={"q": case.positive})
        served = await client.get("/search", params={"q": case.negative})
    assert refused.status_code == 403
    body = refused.json()
    assert body == {"error": "request_blocked", "request_id": body["request_id"]}
    [blocked] = [entry for entry in logs if entry["event"] == "request_blocked"]
    assert rule_id in blocked["rules"]
    assert served.status_code == 200
    assert served.text == case.negative
