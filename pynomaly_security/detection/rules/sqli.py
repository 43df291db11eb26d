"""SQL injection: tautologies, UNION/stacked queries, comment truncation,
time- and error-based probes, quote-breaking fragments.

Patterns run on the normalized value (comments already folded to spaces,
lower case). The quote-breaking rule is confirmed by :func:`_sql_tokens`, a
token-level look with ``sqlparse`` on at most ``SQLPARSE_WINDOW`` characters
after the quote: sqlparse had recursion/backtracking DoS bugs (CVE-2023-30608,
CVE-2024-4340), so it only ever sees a short, already-suspicious window.

References:
    OWASP CRS REQUEST-942-APPLICATION-ATTACK-SQLI; libinjection fingerprints.
"""

# ruff: noqa: E501  (rule tables: one pattern per line reads better than split regexes)
from __future__ import annotations

from sqlparse import tokens as T
from sqlparse.lexer import Lexer

from pynomaly_security.detection.rules.base import CRITICAL, ERROR, NOTICE, WARNING, Rule

__all__ = ["RULES", "SQLPARSE_WINDOW"]

SQLPARSE_WINDOW = 160

_Q = r"""['"`]"""
_VAL = r"""(?:\d+|'[^']{0,20}'|"[^"]{0,20}"|[a-z_][\w.]{0,20}|@@?\w+|\w+\s*\([^)]{0,20}\))"""
_OP = r"(?:=|<>|!=|<=>|<=|>=|<|>|\blike\b|\brlike\b|\bregexp\b|\bis\b|\bin\b|\bbetween\b)"
_LOGIC = r"(?:\bor\b|\band\b|\bxor\b|\|\||&&|\bdiv\b)"

_SQL_KEYWORDS = frozenset(
    ["select", "union", "insert", "update", "delete", "drop", "from", "where", "or", "and", "xor", "not", "null", "like", "having", "order", "group", "by", "limit", "into", "exec", "execute", "declare", "waitfor", "delay", "sleep", "benchmark", "case", "when", "then", "else", "end", "if", "char", "concat", "table", "database", "exists", "procedure", "information_schema"]
)


def _sql_tokens(text: str, start: int, end: int) -> int:
    """Does the text after a quote tokenize as SQL (keyword + operator/comment)?"""
    window = text[start : start + SQLPARSE_WINDOW]
    keywords = operators = comments = words = 0
    try:
        stream = list(Lexer.get_default_instance().get_tokens(window))
    except Exception:  # sqlparse must never break inspection
        return 0
    for ttype, value in stream[:60]:
        if ttype in T.Keyword or ttype in T.Name.Builtin:
            if value.lower() in _SQL_KEYWORDS:
                keywords += 1
            else:
                words += 1
        elif ttype in T.Operator or ttype in T.Comparison:
            operators += 1
        elif ttype in T.Comment:
            comments += 1
        elif ttype in T.Name:
            words += 1
    if keywords >= 1 and (operators >= 1 or comments >= 1) and words <= keywords + 3:
        return ERROR
    return 0


RULES: tuple[Rule, ...] = (
    Rule("sqli-union", "sqli", r"\bunion\b[\s(]*(?:all\b|distinct\b|distinctrow\b)?[\s(]*select\b", CRITICAL),
    Rule("sqli-tautology-quoted", "sqli", _Q + r"\s*\)*\s*" + _LOGIC + r"\s*\(*\s*" + _VAL + r"\s*" + _OP, CRITICAL),
    Rule("sqli-tautology", "sqli", r"(?:\bor\b|\band\b|\|\||&&|\bhaving\b|\bwhere\b)\s+\(*\s*(?:\d+|'[^']{0,20}'|\"[^\"]{0,20}\")\s*(?:=|<>|!=|<=|>=|<|>|\blike\b)\s*\(*\s*(?:\d+|'[^']{0,20}'|\"[^\"]{0,20}\"|[a-z_]\w*)", ERROR),
    Rule("sqli-quote-logic", "sqli", _Q + r"\s*\)*\s*(?:\bor\b|\band\b|\bxor\b|\|\||&&)\s*(?:\d|true\b|false\b|not\b|\(|'|\"|[a-z_]+\s*\()", ERROR),
    Rule("sqli-comment-truncation", "sqli", _Q + r"\s*\)*\s*(?:--|#|/\*|;)[\s\w+-]{0,4}$", ERROR),
    Rule("sqli-quote-fragment", "sqli", _Q + r"\s*\)*\s*;?\s*(?:\bor\b|\band\b|\bxor\b|\bunion\b|\bselect\b|\border\b|\bgroup\b|\bhaving\b|\binto\b|\bwhere\b|\blimit\b|\bprocedure\b|;)", WARNING, check=_sql_tokens),
    Rule("sqli-stacked", "sqli", r";\s*(?:drop|shutdown|exec|execute|declare|waitfor|truncate|insert\s+into|delete\s+from|update\s+[\w.]+\s+set|select\b[^;]{0,80}\bfrom|create\s+(?:table|user)|alter\s+table|set\s+@)\b", ERROR),
    Rule("sqli-time", "sqli", r"\b(?:sleep|benchmark|pg_sleep|randomblob)\s*\(\s*[\d(]|\bwaitfor\s+(?:delay|time)\s*['\"]?\d|\bdbms_lock\.sleep|\bdbms_pipe\.receive_message", CRITICAL),
    Rule("sqli-error-functions", "sqli", r"\b(?:extractvalue|updatexml|xmltype|utl_inaddr|utl_http|load_file|sys_eval|sys_exec|xp_cmdshell|xp_dirtree|sp_executesql|sp_oacreate|openrowset|opendatasource|pg_read_file|lo_import|name_const|geometrycollection|multilinestring|procedure\s+analyse|ctxsys\.\w+|dbms_xmlgen\.\w+)\s*\(|\bexp\s*\(\s*~", CRITICAL),
    Rule("sqli-metadata", "sqli", r"\b(?:information_schema|sysobjects|syscolumns|sys\.tables|sys\.objects|sys\.databases|mysql\.user|pg_catalog|pg_shadow|pg_user|sqlite_master|all_tables|user_tables|msysobjects|msysaccessobjects|sysusers|sysibm)\b", ERROR),
    Rule("sqli-sysvar", "sqli", r"@@(?:version|datadir|hostname|basedir|servername|identity|spid|language|global|session)\b|\b(?:version|database|user|current_user|system_user|session_user|schema|db_name|user_name|suser_name)\s*\(\s*\)", ERROR),
    Rule("sqli-select-expr", "sqli", r"\bselect\s+(?:\*|null\b|@@|\d+\s*[,-]|count\s*\(|concat|char\s*\(|0x[0-9a-f]|case\s+when|if\s*\(|\(\s*select|top\s+\d|distinct\b|[\w.`]+\s*\(\s*\)|[\w.`]+\s*,\s*[\w.`]+\s+from\b|[\w.`]+\s+from\s+[\w.`]+\s+where\b)", ERROR),
    Rule("sqli-select-from", "sqli", r"\bselect\s+[\w.`*]+\s+from\s+[\w.`]+", WARNING),
    Rule("sqli-dml", "sqli", r"\b(?:drop\s+(?:table|database|user|procedure|function|view|index)\b|insert\s+into\s+[\w.`\[\]\"]+\s*(?:\(|values\b|select\b)|update\s+[\w.`\[\]\"]+\s+set\s+[\w.`\"]+\s*=|truncate\s+table\b|alter\s+table\b|create\s+(?:table|user|database|procedure|function)\b)", ERROR),
    Rule("sqli-delete", "sqli", r"\bdelete\s+from\s+[\w.`\[\]\"]+\s*(?:where\b|;|--|#|$)", ERROR),
    Rule("sqli-order-by", "sqli", r"\b(?:order|group)\s+by\s+\d+\s*(?:--|#|$|,|\)|;|asc\b|desc\b)", ERROR),
    Rule("sqli-having", "sqli", r"\bhaving\s+\(*\s*\d+\s*(?:=|<|>)", ERROR),
    Rule("sqli-char-encode", "sqli", r"\b(?:char|chr|nchar)\s*\(\s*\d+\s*(?:[,+]\s*(?:char\s*\(\s*)?\d+\s*\)?\s*)+\)", ERROR),
    Rule("sqli-subquery", "sqli", r"(?:\bor\b|\band\b|\bxor\b|&&|\|\||=|\()\s*\(?\s*(?:not\s+)?(?:exists\s*)?\(\s*select\b", CRITICAL),
    Rule("sqli-mssql-exec", "sqli", r"\bexec(?:ute)?\s*(?:\(|master\.|xp_|sp_)|\binto\s+(?:out|dump)file\b|\bload\s+data\s+(?:local\s+)?infile\b", CRITICAL),
    Rule("sqli-functions", "sqli", r"\b(?:concat|concat_ws|group_concat|substring|substr|mid|ascii|ord|unhex|hex|bin|length|char_length|cast|convert|ifnull|isnull|nullif|coalesce|iif|if|elt|make_set|json_extract|sqrt|floor|rand|md5|sha1)\s*\(", NOTICE, level=2),
    Rule("sqli-limit-offset", "sqli", r"\blimit\s+\d+\s*(?:,\s*\d+|offset\s+\d+)?\s*(?:--|#|$|;|\))", NOTICE),
    Rule("sqli-comment-end", "sqli", r"(?:--|#)\s*[\w+-]{0,3}\s*$", NOTICE, level=2),
    Rule("sqli-hex-literal", "sqli", r"\b0x[0-9a-f]{6,}\b", NOTICE, level=3),
)
