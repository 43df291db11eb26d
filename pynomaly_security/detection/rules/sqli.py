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

import re

import sqlparse

from pynomaly_security.detection.rules._sqltokens import KEYWORDS, sql_score
from pynomaly_security.detection.rules.base import CRITICAL, ERROR, NOTICE, WARNING, Check, Rule

__all__ = ["RULES", "SQLPARSE_WINDOW"]

SQLPARSE_WINDOW = 200

_Q = r"""['"]"""  # backticks quote identifiers (and Markdown code), not strings
_VAL = r"""(?:\d+|'[^']{0,20}'|"[^"]{0,20}"|[a-z_][\w.]{0,20}|@@?\w+|\w+\s*\([^)]{0,20}\))"""
_OP = r"(?:=|<>|!=|<=>|<=|>=|<|>|!?~\*?|\b(?:r?like|regexp|sounds\s+like)\s*['\"\d(]|\bis\s+(?:not\s+)?null\b|\bin\s*\(|\bbetween\s+\S+\s+and\b)"
_LOGIC = r"(?:\bor\b|\band\b|\bxor\b|\|\||&&|\bdiv\b)"

_DROP_ANY = re.compile(r"drop\s+\w+\s*(?:--|#|;|$)")
_EXEC_SQL = re.compile(r"exec(?:ute)?\s*(?:\(|@|'|\"|master\.|xp_|sp_|\w+\s+@)")
_STATEMENT_TYPES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "DROP", "CREATE", "ALTER"})


def _stacked_statement(text: str, start: int, end: int) -> int:
    """Does sqlparse read what follows the ``;`` as a real SQL statement?"""
    window = text[start + 1 : start + 1 + SQLPARSE_WINDOW]
    try:
        statement = sqlparse.parse(window)[0]
        kind = statement.get_type()  # type: ignore[no-untyped-call]
    except Exception:  # sqlparse must never break inspection
        return 0
    head = window.lstrip()
    if head.startswith(
        (
            "declare",
            "waitfor",
            "shutdown",
            "truncate",
            "set @",
            "begin",
            "call ",
            "load ",
            "if ",
            "do",
        )
    ) or _DROP_ANY.match(head):
        return CRITICAL
    if _EXEC_SQL.match(head):
        return CRITICAL
    if kind in ("DROP", "CREATE", "ALTER", "INSERT", "DELETE", "UPDATE"):
        return CRITICAL
    # "; select the best one" is prose: a SELECT must also read as SQL.
    if kind in _STATEMENT_TYPES and sql_score(head, 0, 0) >= ERROR:
        return CRITICAL
    return 0


_NUMBERS = re.compile(r"[-+]?\d+(?:\.\d+)?")
_OR_NUMBER = re.compile(r"\s*(?:\bor\b|\|\|)\s*\(?\s*\d+(?:\.\d+)?\s*\)?\s*$")


def _numeric_boolean(text: str, start: int, end: int) -> int:
    """``1 or 2``, ``-1 OR 2``, ``1 xor 1``, ``1 or true``; but two positive
    numbers joined by ``or`` (``5000 or 6000``, a search for either) only when
    the first is 0 or 1, the values an injected id takes."""
    first = _NUMBERS.search(text, start, end)
    if (
        first is not None
        and _OR_NUMBER.match(text, first.end()) is not None
        and not first.group(0).startswith("-")
        and float(first.group(0)) > 1
    ):
        return 0
    return CRITICAL


def _select_window(text: str, start: int, end: int) -> int:
    return sql_score(text[start : start + SQLPARSE_WINDOW], 0, 0)


# A sentence before the SQL: two words, or a label ("math: ").
_PROSE_BEFORE = re.compile(
    r"(?:[a-z]{2,}:\s+|(?:[a-z]{2,},?\s+){2,}|\b(?:the|a|an|our|my|your|this|that|each|every|run|use|try)\s+)$"
)
_BREAKOUT_CHARS = re.compile(r"['\"`)#]|--|/\*")


def _prose_before(text: str, start: int) -> bool:
    """Whether words of a sentence, not SQL, stand right before ``start``."""
    before = _PROSE_BEFORE.search(text, max(0, start - 60), start)
    if before is None:
        return False
    if before.start() > 0 and text[before.start() - 1] == "@":
        return False  # ``@a union select``: a variable, not the article
    # A SQL keyword right before the match makes it SQL itself (``1 for update union
    # select``); further back it may be SQL quoted in the sentence (``the query select
    # id, name from users where ...``).
    words = re.findall(r"[a-z_]+", before.group(0))
    return words[-1] not in KEYWORDS


def _unless_prose(score: int | Check) -> Check:
    """The rule's score (or its check's), except for SQL quoted in a sentence:
    after words, in a value with no quote, ``)`` or comment at all
    (``The query SELECT id FROM users returns 40 rows``, ``Math: 5>3 and 1=1``).
    Such text breaks out of no SQL literal: an injection must close a string
    or number first, or cut the rest of the query off."""

    def check(text: str, start: int, end: int) -> int:
        if _prose_before(text, start) and not _BREAKOUT_CHARS.search(text):
            return 0
        return score(text, start, end) if callable(score) else score

    return check


def _after_words(score: int) -> Check:
    """``score``, except after words of a sentence, quotes or not: a clause that only
    reads as SQL on its own (``VALUES ('a', 'b')``), not inside a sentence."""

    def check(text: str, start: int, end: int) -> int:
        return 0 if _prose_before(text, start) else score

    return check


_SQL_FUNCTIONS = (
    r"sin|cos|tan|pi|ascii|substring|substr|char|concat|version|database|user|sleep|benchmark"
    r"|if|ifnull|length|mid|left|right|ord|hex|unhex|count|cast|convert|floor|rand|abs|md5"
    r"|sha1|current_user|binary|exp|ln|log|sqrt|elt|field|instr|locate|position|lower|upper"
    r"|coalesce|nullif|isnull|iif|chr|nchar|len|datalength|db_name|schema|reverse|least|greatest"
    r"|group_concat|concat_ws|make_set|extractvalue|updatexml|name_const|json_\w+"
)
# Keywords as hex literals (ASCII and UTF-16LE): 0x73656c656374 is "select".
_HEX_KEYWORDS = "|".join(
    sorted(
        {
            enc
            for word in ("select", "waitfor", "declare", "union", "exec", "insert", "delete")
            for enc in (word.encode().hex(), word.encode("utf-16-le").hex())
        }
    )
)

# Built-in functions of MySQL, PostgreSQL, MSSQL, Oracle and SQLite (CRS
# 942151/942410 style): a value that is only such a call is a probe.
_SQL_BUILTINS = (
    r"abs|acos|adddate|addtime|aes_decrypt|aes_encrypt|array_agg|ascii|asin|atan2?|avg|benchmark"
    r"|bin|bit_and|bit_count|bit_length|bit_or|bit_xor|cast|ceil|ceiling|char|char_length"
    r"|character_length|charindex|charset|chr|coalesce|coercibility|collation|compress|concat"
    r"|concat_ws|connection_id|conv|convert|convert_tz|cos|cot|count|crc32|curdate|current_date"
    r"|current_time|current_timestamp|current_user|curtime|database|datalength|date|date_add"
    r"|date_format|date_sub|datediff|day|dayname|dayofmonth|dayofweek|dayofyear|db_name|decode"
    r"|degrees|des_decrypt|des_encrypt|elt|encode|encrypt|exp|export_set|extract|extractvalue"
    r"|field|find_in_set|floor|format|found_rows|from_base64|from_days|from_unixtime|get_format"
    r"|get_lock|getdate|greatest|group_concat|hex|host_name|hour|if|ifnull|iif|inet_aton|inet_ntoa"
    r"|instr|is_free_lock|is_srvrolemember|is_used_lock|isnull|json_[a-z_]+|jsonb_[a-z_]+"
    r"|last_day|last_insert_id|lcase|least|left|len|length|ln|load_file|local|localtime"
    r"|localtimestamp|locate|log|log10|log2|lower|lpad|ltrim|make_set|makedate|maketime"
    r"|master_pos_wait|max|md5|microsecond|mid|min|minute|mod|month|monthname|name_const|now"
    r"|nullif|nvl|object_id|oct|octet_length|old_password|ord|password|period_add|period_diff"
    r"|pg_[a-z_]+|pi|position|pow|power|quarter|quote|radians|rand|random|randomblob"
    r"|regexp_[a-z_]+|release_lock|repeat|replace|reverse|right|round|row_count|rpad|rtrim"
    r"|schema|sec_to_time|second|session_user|sha1?|sha2|sign|sin|sleep|soundex|space|sqrt|std"
    r"|stddev|starts_with|str_to_date|strcmp|string_agg|subdate|substr|substring|substring_index"
    r"|subtime|sum|suser_sname|sys_context|sysdate|system_user|tan|time|time_format|time_to_sec"
    r"|timediff|timestamp|timestampadd|timestampdiff|to_base64|to_char|to_days|to_number"
    r"|to_seconds|trim|truncate|ucase|uncompress|uncompressed_length|unhex|unix_timestamp"
    r"|updatexml|upper|user|utc_date|utc_time|utc_timestamp|uuid|uuid_short|var_pop|var_samp"
    r"|variance|version|week|weekday|weekofyear|xmltype|year|yearweek|zeroblob"
)

# Cheap RE2 prefilter for the sqlparse fingerprint (sql_score): a quote or
# number next to an operator, a logic keyword next to an operand, SQL calls.
_GRAMMAR = (
    r"['\"`]\s*(?:[-+*%^|&!=<>~]|['\"`]\s*/\s*[\d(@]|\b(?:or|and|xor|div|mod|like|rlike|regexp|is|not|in|between|sounds|union|select|collate)\b)"
    r"|(?:[-+*/%^|&!=<>~]|\b(?:or|and|xor|div|like|rlike|regexp|is|not)\b)\s*['\"`]"
    r"|\b(?:or|and|xor|div|&&|\|\|)\s*[-+~!(@\d]|[\d)]\s*(?:\bor\b|\band\b|\bxor\b|&&|\|\|)"
    r"|\bselect\b[^;]{1,120}\bfrom\b|\bselect\s+\w+\s*\(|\b(?:" + _SQL_FUNCTIONS + r")\s*\("
    r"|\b\d+\s*[=<>]\s*\d|\(\s*\d+\s*[=<>]|\b(?:or|and)\s+([a-z_]\w*)\s*=\s*[a-z_]"
    r"|\bcase\b[^;]{0,40}\bwhen\b|\bhaving\s*\(|\b(?:declare\s+@|binary\s*\(|select\s+(?:top|@|\*))|(?:--|#)\s*$|\bdesc\s+\w+\s*;"
)

# A literal of a column list: a number, NULL or a quoted string.
_LITERAL = r"""(?:-?\d+(?:\.\d+)?|null|'[^']{0,40}'|"[^"]{0,40}")"""
# An operator (arithmetic, comparison or logic) right after the closing quote.
_EXPR_OP = r"(?:[-+*/%^|&]|=|<>|!=|\b(?:div|mod|or|and|xor|is)\b)"
# A value whose quote closes the literal it was pasted into, an expression
# follows, and a last quote opens the literal the query's own closing quote
# ends: ``1' * id - '0``, ``asd" or md5(1)^"1``. The quotes balance, so the
# statement stays valid whatever the expression does.
_BALANCED = (
    r"^[^'\s]{0,20}'\s*" + _EXPR_OP + r"[^']{0,120}[-+*/%^|&=<>]\s*'[\w.]{0,8}\s*$"
    r'|^[^"\s]{0,20}"\s*' + _EXPR_OP + r'[^"]{0,120}[-+*/%^|&=<>]\s*"[\w.]{0,8}\s*$'
)
# System databases and providers, named alone or before SQL punctuation, and
# catalog columns before a list comma, a parenthesis or FROM: what an attacker
# names once out of the literal. (A catalog column alone is a fine parameter
# name: ?table_name=orders.)
_DB_OBJECTS = (
    r"(?:^|[\s(.,;'\"])(?:tempdb|msdb|mysql\.db|utl_http|msdasql|sqloledb|n?varchar)['\"]?\s*(?:[;,)]|--|#|$)"
    r"|\b(?:schema_name|table_name|column_name|table_schema)\s*(?:[,)]|--|#|\s+from\b)"
)

_CONSTANT_COMPARE = re.compile(r"(-?\d+)\s*(<=>|is\s+not|is)\s*(-?\d+)")


def _true_constants(text: str, start: int, end: int) -> int:
    """CRITICAL when the comparison of constants holds (``42<=>42``, ``1 is not 2``):
    a condition made always true. ``1 is not 1`` is always false: no injection
    needs that (a test of the rule, or arithmetic)."""
    found = _CONSTANT_COMPARE.search(text, start, end)
    if found is None:  # the BETWEEN form
        return CRITICAL
    left, op, right = found.groups()
    same = int(left) == int(right)
    holds = not same if op.startswith("is ") else same
    return CRITICAL if holds else 0


_SPLIT_WORDS = (["union", "select"], ["union", "all", "select"])


def _split_keyword(text: str, start: int, end: int) -> int:
    """CRITICAL for ``UNION SELECT`` with a keyword cut by a comment (``un/**/ion
    sel/**/ect``; normalization made the comment a blank): a filter that strips
    comments joins it back. An intact ``union select`` is :data:`sqli-union`'s."""
    return 0 if text[start:end].split() in _SPLIT_WORDS else CRITICAL


# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("sqli-grammar", "sqli", _GRAMMAR, ERROR, check=_unless_prose(sql_score)),
    Rule("sqli-union", "sqli", r"union[\s(]*(?:all\b|distinct\b|distinctrow\b)?[\s(]*select(?:\b|\d|from)", CRITICAL, check=_unless_prose(CRITICAL)),
    Rule("sqli-union-split", "sqli", r"\bu ?n ?i ?o ?n(?:\s+all)?\s+s ?e ?l ?e ?c ?t\b", CRITICAL, check=_split_keyword),
    Rule("sqli-union-probe", "sqli", r"\d[\s#/*-]{0,8}union\s*(?:#|--|/\*|$|\r|\n)", CRITICAL),
    Rule("sqli-tautology-quoted", "sqli", _Q + r"\s*\)*\s*" + _LOGIC + r"\s*\(*\s*" + _VAL + r"\s*" + _OP, CRITICAL),
    Rule("sqli-tautology", "sqli", r"(?:\bor\b|\band\b|\|\||&&|\bhaving\b|\bwhere\b)\s+\(*\s*(?:\d+|'[^']{0,20}'|\"[^\"]{0,20}\")\s*(?:=|<>|!=|<=|>=|<|>|\blike\b)\s*\(*\s*(?:\d+|'[^']{0,20}'|\"[^\"]{0,20}\"|[a-z_]\w*)", ERROR, check=_unless_prose(ERROR)),
    Rule("sqli-quote-logic", "sqli", _Q + r"\s*\)*\s*(?:or|and|xor|\|\||&&)\s*(?:true\b|false\b|not\b|[a-z_]+\(|[!@~-])", CRITICAL),
    # 5' and 6' (feet): digits after a quote and "and" are weaker evidence.
    Rule("sqli-quote-logic-number", "sqli", _Q + r"\s*\)*\s*(?:\bor\b|\band\b|\bxor\b|\|\||&&)\s*(?:\d|\()", ERROR),
    Rule("sqli-nested-call", "sqli", r"\w+\s*\(\s*(?:current_user|user|version|database|system_user|session_user|schema)\s*\(\s*\)\s*\)|\b(?:order|group)\s+by\s+\w+\s*\(|^\s*(?:and|or)\s+\w+\s*\(", CRITICAL),
    Rule("sqli-comment-truncation", "sqli", _Q + r"\s*\)*\s*;?\s*(?:--|#|/\*)[\s\w+-]{0,4}$|'\s*\)*\s*(?:or|and)\s*$", CRITICAL),
    Rule("sqli-quote-fragment", "sqli", _Q + r"\s*\)*\s*;?\s*(?:\bor\b|\band\b|\bxor\b|\bunion\b|\bselect\b|\border\b|\bgroup\b|\bhaving\b|\binto\b|\bwhere\b|\blimit\b|\bprocedure\b|;)", WARNING, check=_unless_prose(sql_score)),
    Rule("sqli-stacked", "sqli", r";\s*(?:(?:drop\s+(?:table|database|schema|user|view|procedure|function|index|trigger)|shutdown|exec|execute|declare|waitfor|truncate|begin|load\s+(?:data|xml)|insert\s+into|delete\s+(?:\w+\s+)?from|update\s+[\w.]+\s+set|select\b[^;]{0,80}\bfrom|create\s+(?:table|user)|alter\s+table|if\s+(?:not\s+)?exists)\b|call\s+\w+\s*\(|do\s*\(|set\s+@|drop\s+\w+\s*(?:--|#|;|$))", ERROR, check=_stacked_statement),
    Rule("sqli-time", "sqli", r"(?:^|[^.\w])(?:sleep|pg_sleep|randomblob)\s*\(\s*(?:[\d.]+\s*\)|\(|_)|(?:^|[^.\w])benchmark\s*\(\s*\d|\bwaitfor\s+(?:delay|time)\s*['\"]?\d|\bdbms_lock\.sleep|\bdbms_pipe\.receive_message", CRITICAL),
    Rule("sqli-error-functions", "sqli", r"\b(?:extractvalue|updatexml|xmltype|utl_inaddr|utl_http|load_file|sys_eval|sys_exec|xp_cmdshell|xp_dirtree|sp_executesql|sp_oacreate|openrowset|opendatasource|pg_read_file|lo_import|name_const|geometrycollection|multilinestring|procedure\s+analyse|ctxsys\.\w+|dbms_xmlgen\.\w+)\s*\(|\bexp\s*\(\s*~", CRITICAL),
    Rule("sqli-metadata", "sqli", r"\b(?:information_schema|sysobjects|syscolumns|sys\.tables|sys\.objects|sys\.databases|mysql\.user|pg_catalog|pg_shadow|pg_user|sqlite_master|all_tables|user_tables|msysobjects|msysaccessobjects|sysusers|sysibm)\b", ERROR),
    Rule("sqli-sysvar", "sqli", r"@@(?:version|datadir|hostname|basedir|servername|identity|spid|language|global|session)\b|\b(?:version|database|user|current_user|system_user|session_user|schema|db_name|user_name|suser_name)\s*\(\s*\)", ERROR),
    Rule("sqli-select-expr", "sqli", r"\bselect\s+(?:\*|null\b|@@|\d+\s*[,-]|count\s*\(|concat|char\s*\(|0x[0-9a-f]|case\s+when|if\s*\(|\(\s*select|top\s+\d|distinct\b|[\w.`]+\s*\(\s*\)|[\w.`]+\s*,\s*[\w.`]+\s+from\b|[\w.`]+\s+from\s+[\w.`]+\s+where\b)", ERROR, check=_unless_prose(ERROR)),
    Rule("sqli-select-from", "sqli", r"\bselect\b[^;]{1,120}?\bfrom\s+[\w.`\[\]\"]+", WARNING, check=_unless_prose(_select_window)),
    Rule("sqli-dml", "sqli", r"\b(?:drop\s+(?:table|database|user|procedure|function|view|index)\b|insert\s+into\s+[\w.`\[\]\"]+\s*(?:\(|values\b|select\b)|update\s+[\w.`\[\]\"]+\s+set\s+[\w.`\"]+\s*=|truncate\s+table\b|alter\s+table\b|create\s+(?:table|user|database|procedure|function)\b)", ERROR, check=_unless_prose(ERROR)),
    Rule("sqli-delete", "sqli", r"\bdelete\s+from\s+[\w.`\[\]\"]+\s*(?:where\b|;|--|#|$)", ERROR, check=_unless_prose(ERROR)),
    Rule("sqli-order-by", "sqli", r"\b(?:order|group)\s+by\s+\d+\s*(?:--|#|$|,|\)|;|asc\b|desc\b)", CRITICAL),
    Rule("sqli-having", "sqli", r"\bhaving\s+\(*\s*\d+\s*(?:=|<|>)", ERROR),
    Rule("sqli-char-encode", "sqli", r"\b(?:char|chr|nchar)\s*\(\s*\d+\s*(?:[,+]\s*(?:char\s*\(\s*)?\d+\s*\)?\s*)+\)", ERROR),
    Rule("sqli-subquery", "sqli", r"(?:\bor\b|\band\b|\bxor\b|&&|\|\||=|\()\s*\(?\s*(?:not\s+)?(?:exists\s*)?\(\s*select\b", CRITICAL),
    Rule("sqli-mssql-exec", "sqli", r"(?:^|[^.\w])exec(?:ute)?\s*(?:\(|master\.|xp_|sp_)|\binto\s+(?:out|dump)file\b|\bload\s+data\s+(?:local\s+)?infile\b", CRITICAL),
    # "if (" with a blank is every C-like language's statement; SQL writes if(.
    Rule("sqli-functions", "sqli", r"\b(?:concat|concat_ws|group_concat|substring|substr|mid|ascii|ord|unhex|hex|bin|length|char_length|cast|convert|ifnull|isnull|nullif|coalesce|iif|elt|make_set|json_extract|sqrt|floor|rand|md5|sha1)\s*\(|\bif\(", NOTICE, level=2),
    Rule("sqli-function-probe", "sqli", r"^\s*(?:" + _SQL_BUILTINS + r")\s*\(\s*(?:[^()\s]{0,30}\s*\)?)?\s*$", CRITICAL),
    Rule("sqli-leading-logic", "sqli", r"(?:^|=)\s*(?:&&|\|\|)\s*\(?\s*[\w ]{0,20}(?:!==?|===?|=!|=\s*[\"'(]|!\d)|(?:^|=)\s*(?:or|and)\s+\(?\s*\w+\s*(?:!?==?|<>)\s*[\"'(]|^\s*(?:or|and|xor|&&|\|\|)\s+\(*\d+\s*(?:=|<>|!=|<|>)\s*\d+", CRITICAL),
    Rule("sqli-quote-stacked", "sqli", r"['\"]\s*\)*\s*;\s*(?:select|insert|update|delete|drop|exec|execute|declare|shutdown|waitfor|create|alter|truncate)\b", CRITICAL),
    Rule("sqli-mssql-procs", "sqli", r"\b(?:xp_cmdshell|xp_regread|xp_regwrite|xp_dirtree|xp_fileexist|xp_servicecontrol|sp_oacreate|sp_oamethod|sp_executesql|sp_makewebtask|sp_addextendedproc|sp_configure|sp_password)\b|\binformation_schema\s*\.", CRITICAL, plain=True),
    Rule("sqli-empty-string-logic", "sqli", r"['\"]\s*\)*\s*(?:or|and|xor|\|\||&&)\s*(?:''|\"\")|^\s*(?:or|and)\s+(?:true|false|not|1)\b\s*(?:--|#|;|$)", CRITICAL),
    Rule("sqli-identifier-tautology", "sqli", r"^\s*(?:['\")]\s*)*(?:or|and)\s+\(*\s*[\w'\"]{1,20}\s*=\s*[\w'\"]{1,20}\s*\)*\s*(?:--|#|;)?\s*$|\blike\s+(?:char|chr)\s*\(", CRITICAL),
    Rule("sqli-oracle-admin", "sqli", r"\bgrant\s+(?:connect|resource|dba|all\s+privileges)\b|\bcreate\s+user\s+\w+\s+identified\s+by\b|\bbackup\s+database\b|\butl_http\.|\butl_inaddr\.|\bdbms_\w+\.", CRITICAL),
    Rule("sqli-quote-statement", "sqli", r"['\"]\s*\)*\s*;?\s*(?:insert\s+into|delete\s+from|update\s+\w+\s+set|drop\s+table|create\s+(?:table|user)|\(\s*select\b)", CRITICAL),
    Rule("sqli-alias-from", "sqli", r"[)`'\"!]\s*as\s+[`'\"]?[\w]+[`'\"]?\s+from\b|\bfrom\s+`[^`]{1,64}`\s*\.\s*`[^`]{1,64}`|^\s*(?:order|group)\s+by\s*$|^\s*in\s*\(\s*-?\d+(?:\s*,\s*-?\d+)+\s*\)", CRITICAL),
    Rule("sqli-quote-keyword-start", "sqli", r"^\s*['\"`]\s*(?:alter|drop|truncate|insert|exec|declare|shutdown)\b|^\s*'\s*union\b", CRITICAL),
    Rule("sqli-fragments", "sqli", r"^\s*(?:or|xor|and)\s+(?:\d+|'[^']{0,20}'|\"[^\"]{0,20}\")\s*(?:[<>=]|-$)|\bdeclare\s+@\w+|\bwaitfor\s+(?:delay|time)\b|\balter\s+table\s+[`\w.]+\s+(?:add|drop|change|modify|rename)\b|\)\s*::\s*(?:bigint|int|integer|text|varchar|double|numeric|regclass|jsonb?)\b|\)\s*(?:like|rlike|regexp)\s*\(|\bgroup\s+by\s+\w+\s+having\b|\blo_(?:get|import|export|from_bytea|put)\s*\(", CRITICAL, check=_unless_prose(CRITICAL)),
    Rule("sqli-json-operators", "sqli", r"'\s*::\s*jsonb?\b|'\s*(?:<@|@>|\?[|&]?|->>?|#>>?)\s*(?:'|array\s*\[)", CRITICAL),
    Rule("sqli-set-operations", "sqli", r"\b(?:except|intersect|minus)\s+(?:all\s+)?select\b|\bpg_sleep\b|\)\s*when\s+\d+\s+then\b|(?:replace|insert)\s*(?:into\s+)?[\w`]*\s*\([^)]{0,100}\)\s*values\s*\(|\d\s+as\s+[\"'`]?\w+[\"'`]?\s+from\b|(?:^|=)\s*;\s*(?:select|union|drop|insert|update|delete|exec|declare|shutdown)\b", CRITICAL),
    Rule("sqli-subselect", "sqli", r"\(\s*select\s+(?:count\s*\(|top\s+\d|\*|@@|null\b|\d)|\d\s*;\s*select\b|\bcreate\s+table\s+[\w`.]+\s*\(|[\"')]\s*\)*\s*(?:or|and)\s+\(+\s*[\"']", CRITICAL),
    Rule("sqli-hex-keyword", "sqli", r"0x(?:" + _HEX_KEYWORDS + r")", CRITICAL, plain=True),
    Rule("sqli-misc-probes", "sqli", r"\d(?:or|and)\d+=\d+|\bmatch\s*\(?\s*[\w,. ]{1,40}\)?\s*against\s*\(|\bprint\s+@@?\w+|\bexec\s+(?:xp|sp)(?:_\w*)?\b|;\s*desc\s+\w+\s*;", CRITICAL),
    Rule("sqli-number-comment", "sqli", r"^\s*-?\d+(?:\.\d+)?(?:\s*[*+/-]\s*\d+)?\s*(?:--(?:\s[\w\s-]{0,4})?|/\*[\s\w]{0,4})$", CRITICAL),
    Rule("sqli-limit-offset", "sqli", r"\blimit\s+\d+\s*(?:,\s*\d+|offset\s+\d+)?\s*(?:--|#|$|;|\))", NOTICE),
    Rule("sqli-comment-end", "sqli", r"(?:^|[^-])(?:--|#)(?:\s*[\w+]{0,3})?\s*$", NOTICE, level=2),
    # The whole value a number and a boolean operator: what a numeric field
    # (id=1) receives when the query is "... WHERE id = " + value.
    Rule("sqli-numeric-boolean", "sqli", r"^\s*\(?\s*[-+]?\d+(?:\.\d+)?\s*\)?\s*(?:\bor\b|\bxor\b|\|\||&&|\brlike\b|\bregexp\b|\blike\b|\bdiv\b|\band\s+(?:true|false|null|not\b|sleep\s*\(|\d+\s*[=<>]))\s*\(?\s*(?:true|false|null|not\s+\w+|[-+]?\d+(?:\.\d+)?|'[^']{0,20}'|\"[^\"]{0,20}\"|\w+\s*\([^)]{0,20}\))\s*\)?\s*(?:[=<>!]+\s*[-+]?\w+\s*)?(?:--|#|;|\x00)?\s*$", CRITICAL, check=_numeric_boolean),
    Rule("sqli-hex-literal", "sqli", r"\b0x[0-9a-f]{6,}\b", NOTICE, level=3),
    # A quote the application escapes with a backslash, the backslash sent along: the
    # escape is itself escaped (\\') and the quote ends the literal; logic follows.
    Rule("sqli-escaped-quote-logic", "sqli", r"\\['\"`]\s*(?:or|and|xor|div|\|\||&&)\b", CRITICAL),
    # Out of the literal, an operator and a column, the rest commented out: x'|email--
    Rule("sqli-quote-operator-comment", "sqli", r"['\"`]\s*[-+*/%^|&]\s*[a-z_][\w.]*\s*(?:--|#)\s*$", CRITICAL),
    # One token (an e-mail, an id) closed by a quote and a semicolon: the statement ends.
    Rule("sqli-token-terminated", "sqli", r"^[^\s'\"`;]{2,}['\"`]\s*;\s*$", CRITICAL),
    # Out of the literal straight into a time delay: x' sleep(5) '
    Rule("sqli-quote-delay", "sqli", r"['\"`]\s+(?:sleep|pg_sleep|benchmark)\s*\(\s*\d", CRITICAL),
    # A WHERE clause of constant comparisons: the condition an injection makes always true.
    Rule("sqli-where-constants", "sqli", r"\bwhere\s+\d+\s*=\s*\d+\s+(?:and|or)\s+\d+\s*=\s*\d+", CRITICAL),
    # -- late techniques (issue 15): expressions, clauses and objects met alone ----
    Rule("sqli-balanced-quotes", "sqli", _BALANCED, CRITICAL),
    # A column list padded to a UNION's width: ', 2, 1 or '', ' ', 13 (the first
    # quote closes the literal; empty or one-blank strings are sqlmap's padding).
    Rule("sqli-literal-list", "sqli", r"""^\s*(?:['"]|'\s?'|"\s?")(?:\s*,\s*(?:-?\d+|null|'\s?'|"\s?"))+\s*$""", CRITICAL),
    Rule("sqli-db-objects", "sqli", _DB_OBJECTS, CRITICAL, plain=True, check=_unless_prose(CRITICAL)),
    # MySQL reads 1.e.tables as 1.e (a number) then .tables: keywords glued to numbers.
    Rule("sqli-number-e-dot", "sqli", r"(?:^|[^\w.])\d+(?:\.\d*)?e(?:\.[a-z_]\w{2,}|\(\s*[a-z_]\w*\s*\))", CRITICAL),
    # A SQL word, a few separators, and an opening parenthesis that ends the value.
    Rule("sqli-call-opening", "sqli", r"^\s*(?:" + _SQL_BUILTINS + r"|insert|values|in|default|encode|exists|any|some)[^\w(]{0,5}\(\s*$", CRITICAL),
    # Oracle's dynamic SQL, or a stored procedure's name alone after EXEC
    # (procedures are named with an underscore: sp_who, user_add; "exec summary" is prose).
    Rule("sqli-exec-proc", "sqli", r"\bexec(?:ute)?\s+immediate\b|^\s*exec(?:ute)?\s+[a-z]\w*_\w*\s*$", CRITICAL),
    Rule("sqli-from-clause", "sqli", r"\bfrom\s+[\w`.\[\]\"]+\s+(?:where\s+(?:[\w`.]+\s*(?:=|<>|!=|<|>|\blike\b|\bin\s*\(|\bis\b)|\w+\s*\()|group\s+by\s+[\w`.]+\s*(?:$|[,;#&)]|--|having\b|order\b)|order\s+by\s+[\w`.]+\s*(?:$|[,;#&)]|--|asc\b|desc\b|limit\b))|(?:^|[\d!;)'\"])\s*as\s*['\"`]?\s+(?:not\s+)?from\s*$", CRITICAL, check=_unless_prose(CRITICAL)),
    Rule("sqli-values-row", "sqli", r"\bvalues\s*\(\s*" + _LITERAL + r"(?:\s*,\s*" + _LITERAL + r")*\s*\)", CRITICAL, check=_after_words(CRITICAL)),
    # A comparison of two constants and nothing else: 42<=>42, 1 is not 2.
    Rule("sqli-constant-compare", "sqli", r"^\s*(?:-?\d+\s*(?:<=>|\bis\s+(?:not\s+)?)\s*-?\d+|\d+\s+(?:and|or)\s+\d+\s+(?:not\s+)?between\s+\d+\s+and\s+\d+)\s*$", CRITICAL, check=_true_constants),
    # A MySQL user variable set: SET @old_sql_notes, set @x := 1.
    Rule("sqli-set-variable", "sqli", r"\bset\s+@@?(?:\w*_\w*\s*(?::?=|[;,]|$)|\w+\s*:?=)", CRITICAL, check=_unless_prose(CRITICAL)),
    # A condition that closes the parenthesis the query opened: and deleted = 0)
    Rule("sqli-closing-condition", "sqli", r"^\s*(?:and|or)\s+[\w`.]+\s*(?:=|<>|!=|<=|>=|<|>)\s*[\w'\"]+\s*\)+\s*$|^\s*[`'\"]\s*(?:=|<>|!=|<=|>=|<|>)\s*\d+\s*\)+\s*(?:and|or)\b", CRITICAL),
    # select, a column list and a call left open: select 1,2,3,user(
    Rule("sqli-select-list-call", "sqli", r"\bselect\w{0,4}[\s*/]+(?:\d+\s*,\s*)*[a-z_]\w*\s*\(\s*$", CRITICAL),
)
# fmt: on
