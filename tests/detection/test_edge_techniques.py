"""Attack techniques the edge rules learned late (issue 15, item 4), each with text
that looks alike and must pass. Written for these tests, not taken from the corpora.

Every attack is blocked in a form field and a JSON field at the default level;
every look-alike passes in both.
"""

from __future__ import annotations

import pytest

from pynomaly_security.detection import Inspector, RequestParts

from ._helpers import form, json_body

ATTACKS = [
    # -- SQL injection (left to the sink when it blocks; blocked here without it) -----
    pytest.param("sqli", "jo\\' and 7>6 and \\'1", id="sqli-escaped-quote"),
    pytest.param("sqli", "k'^secret--", id="sqli-quote-operator-comment"),
    pytest.param("sqli", "4711';", id="sqli-token-terminated"),
    pytest.param("sqli", 'n" benchmark(9000000,md5(1)) "', id="sqli-quote-delay"),
    pytest.param("sqli", ") where 7=7 or 2=2", id="sqli-where-constants"),
    pytest.param("sqli", "@v union select 1,2", id="sqli-variable-before-union"),
    pytest.param("sqli", "9 for update union select 9", id="sqli-sql-words-before-union"),
    pytest.param("sqli", "4' * price - '1", id="sqli-balanced-quotes"),
    pytest.param("sqli", 'q" or sha1(2)^"2', id="sqli-balanced-double-quotes"),
    pytest.param("sqli", "q' or mail~all(array[mail]);vacuum--", id="sqli-postgres-regex-operator"),
    pytest.param("sqli", "', 7, 8, 9", id="sqli-literal-list"),
    pytest.param("sqli", "msdb;", id="sqli-system-database"),
    pytest.param("sqli", "7.e.schemata", id="sqli-number-e-dot"),
    pytest.param("sqli", "substring?(", id="sqli-call-opening"),
    pytest.param("sqli", "EXECUTE IMMEDIATE 'drop'", id="sqli-execute-immediate"),
    pytest.param("sqli", "2) FROM staff WHERE login=", id="sqli-from-clause"),
    pytest.param("sqli", "VALUES ('10.0.0.9', 'guest')", id="sqli-values-row"),
    pytest.param("sqli", "3 is not 4", id="sqli-constant-compare"),
    pytest.param("sqli", "SET @OLD_CHARSET", id="sqli-set-variable"),
    pytest.param("sqli", "or hidden = 1)", id="sqli-closing-condition"),
    pytest.param("sqli", "select 4,5,user(", id="sqli-select-list-call"),
    pytest.param("sqli", "q=;delete from carts", id="sqli-stacked-after-equals"),
    # -- command injection -------------------------------------------------------------
    pytest.param("cmdi", "`touch /var/tmp/x1`", id="cmdi-backtick-with-argument"),
    pytest.param("cmdi", "`rm -f /srv/app/cache`", id="cmdi-backtick-rm-flag"),
    pytest.param("cmdi", 'doc; "vim" -c q', id="cmdi-quoted-command-word"),
    pytest.param("cmdi", "dir D:\\Windows\\System32", id="cmdi-windows-system-dir"),
    pytest.param("cmdi", "dir c:\\users\\", id="cmdi-windows-users-dir"),
    pytest.param("cmdi", "reboot\n", id="cmdi-newline-terminated-command"),
    pytest.param("cmdi", "ls /opt/app/conf\n", id="cmdi-newline-terminated-command-line"),
    pytest.param("cmdi", "().{.:;.};.ping -c1 10.9.8.7", id="cmdi-shellshock-padded"),
    pytest.param("cmdi", '@{[ system "uname" ]}', id="cmdi-perl-interpolation"),
    pytest.param("cmdi", "{c$x\\at$x,/etc/hostname}", id="cmdi-variable-before-escape"),
    pytest.param("cmdi", '{c$x"a"t$x,/etc/hostname}', id="cmdi-variable-before-quote"),
    pytest.param("cmdi", "; ;watch -n1 date", id="cmdi-repeated-separators"),
    pytest.param("cmdi", "rc /tmp/run.sh", id="cmdi-rc-shell-script"),
    pytest.param("cmdi", "which wget", id="cmdi-tool-probe"),
    pytest.param("cmdi", "a; regedit /s c:\\x.reg", id="cmdi-regedit"),
    # -- cross-site scripting ----------------------------------------------------------
    pytest.param(
        "xss", "\u00bcsvg onload=go()\u00bc/svg\u00be x \u00bcb\u00be", id="xss-ascii7-tag"
    ),
    pytest.param("xss", "<a href='jav&Tab;ascript:go()'>", id="xss-js-uri-entity-in-name"),
    pytest.param("xss", "vb&NewLine;script:run", id="xss-vbscript-newline"),
    pytest.param("xss", "(document)['domain']", id="xss-document-bracket"),
    pytest.param("xss", "document /*x*/ . /*y*/ cookie", id="xss-document-comment-dot"),
    pytest.param("xss", "[].map.call`${go}7`", id="xss-tagged-call"),
    pytest.param("xss", "<img src='//3232235777/p.gif'>", id="xss-decimal-ip-url"),
    pytest.param("xss", "<a href=http://0x7f.0x0.0x0.0x1/>go</a>", id="xss-hex-ip-url"),
    pytest.param("xss", "<div style='behavior: url(//x.test/a.htc)'>", id="xss-css-behavior"),
    pytest.param("xss", "<p style=width:expression\\028go())>", id="xss-css-escaped-paren"),
    pytest.param("xss", "<x:vmlframe src=//x.test/v.fml>", id="xss-namespaced-vmlframe"),
    pytest.param("xss", "< s v g / o n l o a d = go ( ) >", id="xss-spaced-tag-name"),
    pytest.param(
        "xss", "<y xmlns:q='http://www.w3.org/2001/xml-events' q:event='load'>", id="xss-xml-events"
    ),
    pytest.param("xss", "img=PHA+aGk8L3A+PGlmcmFtZSBzcmM9Ly94LnRlc3Q+", id="xss-base64-markup"),
    # A markup character alone, written as no encoder writes it (a filter probe).
    pytest.param("xss", "&#0000060", id="xss-padded-decimal-reference"),
    pytest.param("xss", "&#x003C;", id="xss-padded-hex-reference"),
    pytest.param("xss", "&#34", id="xss-unterminated-reference"),
    pytest.param("xss", "&#X3E;", id="xss-capital-x-reference"),
    pytest.param("xss", "&GT", id="xss-capital-unterminated-name"),
    pytest.param("xss", "\\u0027", id="xss-js-escaped-quote"),
    pytest.param("xss", "\\x60", id="xss-js-escaped-backtick"),
    pytest.param("xss", "\\3c ", id="xss-css-escaped-lt"),
    pytest.param("xss", " &#x03c; &#0062 ", id="xss-encoded-markup-pair"),
    # JavaScript escapes of capitals decode to lower case, as the rules read.
    pytest.param(
        "xss", "\\x3c\\x53cript\\x3ego()\\x3c/\\x53cript\\x3e", id="xss-js-escaped-capitals"
    ),
    pytest.param("xss", "\\xc2\\xbcsvg onload=go()\\xc2\\xbe", id="xss-ascii7-tag-js-escaped-utf8"),
    # -- code injection ----------------------------------------------------------------
    pytest.param(
        "code_injection", "{% for x in range(3) %}{{ x }}{% endfor %}", id="code-template-loop"
    ),
    pytest.param("code_injection", "{%- print 6*6 -%}", id="code-template-print"),
]

LOOK_ALIKES = [
    pytest.param("Use `touch` to create an empty file", id="backtick-word-in-prose"),
    pytest.param("`echo`", id="backtick-echo-alone"),
    pytest.param('He said; "top" of the list', id="quoted-word-in-prose"),
    pytest.param("C:\\Data\\report 2024.xlsx", id="windows-data-path"),
    pytest.param("shutdown of the plant is planned\n", id="command-word-in-sentence"),
    pytest.param("foo\r\n() { :; }just a test", id="shellshock-without-command"),
    pytest.param("which python is best for data science", id="which-question"),
    pytest.param("release 2.0 rc", id="rc-as-release-candidate"),
    pytest.param("use {% if user %} in templates", id="template-tag-in-prose"),
    pytest.param("Email me @ {[brackets]} later", id="braces-and-brackets"),
    pytest.param("He said 'yes'; then left", id="quote-semicolon-in-prose"),
    pytest.param("can\\'t or won't", id="escaped-apostrophe"),
    pytest.param("1\u00bc cups flour, \u00be cup milk", id="fractions"),
    pytest.param("Java script: a language for the web", id="java-script-words"),
    pytest.param("document.title and document.body", id="document-properties"),
    pytest.param('<a href="http://192.168.1.20/">printer</a>', id="dotted-ip-link"),
    pytest.param("if x < a and b", id="less-than-in-prose"),
    pytest.param("aGVsbG8gd29ybGQsIHRoaXMgaXMgYmFzZTY0IHRleHQ=", id="base64-text"),
    pytest.param("execute summary", id="execute-word-in-prose"),
    pytest.param("Please set @jane_roe as owner", id="set-mention"),
    pytest.param("varchar(255) is the column type", id="column-type-in-prose"),
    pytest.param("?table_name=orders", id="catalog-column-as-parameter"),
    pytest.param("see section 1.e. below", id="numbered-section"),
    pytest.param("greetings from Paris where it's sunny", id="from-where-in-prose"),
    pytest.param("our values ('kind', 'honest') matter", id="values-in-prose"),
    pytest.param("1 is not 1", id="false-constant-compare"),
    pytest.param("'red', 'blue', 3", id="quoted-list"),
    pytest.param("O'Neil - 'x", id="apostrophe-and-dash"),
    pytest.param("use &lt;b&gt; for bold and &lt;i&gt; for italics", id="html-escaped-tags"),
    pytest.param("don&#039;t say &#034;never&#034;", id="php-jstl-escaped-quotes"),
    pytest.param("it&#39;s &#x27;quoted&#x27;", id="escaped-quotes"),
    pytest.param("&lt;", id="escaped-lt-alone"),
    pytest.param("&#60;", id="decimal-reference-alone"),
    pytest.param("&#x3e;", id="hex-reference-alone"),
    pytest.param("a &#0060; b", id="padded-reference-in-text"),
    pytest.param("C:\\3com\\drivers", id="backslash-path"),
]


def _places(value: str) -> list[RequestParts]:
    return [form(value), json_body({"note": value})]


@pytest.mark.parametrize(("family", "payload"), ATTACKS)
def test_attack_is_blocked(family: str, payload: str) -> None:
    inspector = Inspector()
    for parts in _places(payload):
        verdict = inspector.inspect(parts)
        assert verdict.blocked, (payload, verdict.findings)
        assert family in verdict.families, verdict.families


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alike_passes(text: str) -> None:
    inspector = Inspector()
    for parts in _places(text):
        verdict = inspector.inspect(parts)
        assert not verdict.blocked, (text, verdict.findings)


@pytest.mark.parametrize(
    ("value", "score"),
    [
        pytest.param("&#0000060", 5, id="alone-padded"),
        pytest.param("%26%23x3C", 5, id="alone-unterminated-percent-encoded"),
        pytest.param("\\u003c", 5, id="alone-js-escape"),
        pytest.param("x &#0000060 y", 3, id="padded-in-text"),
        pytest.param("tom&#39s", 3, id="unterminated-in-text"),
        pytest.param("x &#X3C; y", 0, id="capital-x-in-text"),
        pytest.param("&lt;b&gt; &#60; &#x3c;", 0, id="ordinary-references"),
        pytest.param("&#039;", 0, id="php-apostrophe-alone"),
    ],
)
def test_encoded_markup_char_scores(value: str, score: int) -> None:
    """A value that is only evasion-encoded markup characters scores critical (it
    blocks at the default level); a padded or unterminated reference in other text
    a warning (it adds to other evidence); what encoders write, nothing."""
    verdict = Inspector().inspect(form(value))
    found = {f.rule_id: f.score for f in verdict.findings}
    assert found.get("xss-encoded-markup-char", 0) == score, verdict.findings


@pytest.mark.parametrize(
    ("name", "blocked"),
    [
        pytest.param("wp-config.php.orig", True, id="wp-config-backup"),
        pytest.param("config_prod.yml", True, id="symfony-config"),
        pytest.param(".htaccess", True, id="htaccess"),
        pytest.param("local.xml ", True, id="trailing-blank"),
        pytest.param("holiday-photo.jpg", False, id="photo"),
        pytest.param("configuration-guide.pdf", False, id="config-word"),
    ],
)
def test_upload_of_server_configuration_is_blocked(name: str, blocked: bool) -> None:
    """An upload named like the server's own configuration (CRS 932180)."""
    parts = RequestParts("PUT", "/upload", b"", ((b"x-filename", name.encode()),), b"")
    verdict = Inspector().inspect(parts)
    assert verdict.blocked is blocked, verdict.findings
