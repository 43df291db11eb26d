"""Code injection in the application's own runtime: PHP, Java/OGNL/EL,
Log4Shell JNDI lookups, server-side templates, Python, Node.js, Ruby, ASP,
and serialized-object markers.

Ordinary code in a docs field (``from starlette import ...``, ``async def``)
is not scored; the rules look for execution primitives and template
expressions that evaluate attacker input.

References:
    OWASP CRS REQUEST-933 (PHP), REQUEST-944 (Java), REQUEST-934 (generic);
    CVE-2021-44228 (Log4Shell).
"""

# ruff: noqa: E501  (rule tables: one pattern per line reads better than split regexes)
from __future__ import annotations

from pynomaly_security.detection.rules._base64 import base64_alternation
from pynomaly_security.detection.rules.base import CRITICAL, ERROR, NOTICE, WARNING, Rule

__all__ = ["RULES"]

# Java deserialization gadget names (CRS 944240/944300), also base64-encoded
# at the three possible byte alignments, as CRS does.
_GADGETS = (
    "clonetransformer",
    "forclosure",
    "instantiatefactory",
    "instantiatetransformer",
    "invokertransformer",
    "prototypeclonefactory",
    "prototypeserializationfactory",
    "whileclosure",
    "processbuilder",
    "getruntime",
    "runtime",
)


_GADGET_B64 = base64_alternation(_GADGETS)
_PHP_RISKY = (
    r"system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|eval|assert|unserialize"
    r"|serialize|phpinfo|create_function|call_user_func|call_user_func_array|file_get_contents"
    r"|file_put_contents|fopen|readfile|base64_decode|gzinflate|str_rot13|preg_replace|range"
    r"|get_defined_vars|get_defined_functions|get_defined_constants|getenv|putenv|dl|chmod"
    r"|include|include_once|require|require_once|highlight_file|show_source|array_map|usort"
    r"|uasort|uksort|array_walk|iterator_apply|ob_start|register_tick_function|mail|imap_open"
    r"|move_uploaded_file|zend_\w+|posix_\w+|symlink|link|escapeshellcmd|var_dump|print_r"
)

# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("code-java-gadget", "code_injection", r"\b(?:" + "|".join(_GADGETS[:-3]) + r")\b|" + _GADGET_B64, CRITICAL, plain=True),
    Rule("code-php-call", "code_injection", r"(?:^|[^\w.$>:])(?:" + _PHP_RISKY + r")(?:\s|#[^\n]*\n|//[^\n]*\n)*\(\s*(?:'[^']{0,60}'|\"[^\"]{0,60}\"|\$?[\w./-]{0,40})?\s*\)", CRITICAL),
    Rule("code-php-variable-call", "code_injection", r"\$_\w*\s*(?:(?:\[[^\]]{0,20}\]|\{[^}]{0,20}\})\s*){0,4}\(|\$[a-z]\w*\s*(?:(?:\[[^\]]{1,20}\]|\{[^}]{1,20}\})\s*){1,4}\(|\$[a-z]\w*\s+\(|@\$[a-z_]\w*|\$\s*\{\s*(?:['\"$]|\w+\s*\()|\$\{['\"]", CRITICAL),
    Rule("code-php-complex", "code_injection", r"\$\{\s*@|\{\$\{", CRITICAL),
    Rule("code-php-distinct", "code_injection", r"(?:fsockopen|gzinflate|gzuncompress|gzdecode|base64_decode|str_rot13|shell_exec|proc_open|pcntl_exec|passthru|phpinfo|file_get_contents|file_put_contents|move_uploaded_file|call_user_func|create_function|gethostbyname|ldap_\w+|zend_\w+|posix_\w+|filegroup|fileowner|file_exists|array_diff\w*|unserialize|get_defined_\w+|highlight_file|show_source|stream_get_\w+|strrev|printf|unpack|substr|chr|ord|crypt)\s*\(\s*(?:'[^']{0,60}'|\"[^\"]{0,60}\"|\$?[\w./-]{0,40})?\s*(?:\)|$)", CRITICAL),
    Rule("code-php-callable", "code_injection", r"\(\s*(?:\(string\)\s*)?['\"]?(?:system|exec|passthru|shell_exec|popen|proc_open|eval|assert|phpinfo)['\"]?\s*\)\s*\(|\[\s*['\"]?(?:system|exec|passthru|shell_exec|popen|proc_open|eval|assert)['\"]?\s*\]|['\"]\w{1,10}['\"]\s*\.\s*['\"]\w{1,10}['\"]\s*\]*\s*\)|\)\s*\(\s*['\"]?(?:uname|id|ls|whoami|cat)\b|\$\w+\(\d+\)\s*\.\s*\$\w+\(|\$\{\s*\$", CRITICAL),
    # PHP session files (sess_<id>): also a common token prefix, so not critical alone.
    Rule("code-php-session-file", "code_injection", r"\bsess_[a-z0-9-]{6,}", ERROR, plain=True),
    Rule("code-php-ini-directive", "code_injection", r"^\s*(?:extension|precision|smtp|smtp_port|sendmail_from|unserialize_max_depth|serialize_precision|user_ini\.\w+|max_execution_time|memory_limit|register_globals|magic_quotes_gpc|file_uploads|short_open_tag|expose_php|enable_dl|html_errors|log_errors|mbstring\.\w+|opcache\.\w+|pcre\.\w+|zend\.\w+)\s*=", CRITICAL),
    Rule("code-ssti-spaced-dunder", "code_injection", r"\.\s*__(?:\s+(?:class|base|bases|mro|subclasses|globals|builtins|init)\s*|\s*(?:class|base|bases|mro|subclasses|globals|builtins|init)\s+)__", CRITICAL),
    Rule("code-php-bbcode", "code_injection", r"[\[{]/?php[\]}]", CRITICAL),
    Rule("code-php-ini", "code_injection", r"\b(?:opcache|mbstring|pcre|zend|assert|session|allow_url_include|allow_url_fopen|auto_prepend_file|auto_append_file|open_basedir|disable_functions|safe_mode|display_errors|error_log|extension_dir|include_path|sendmail_path|upload_tmp_dir)(?:\.[a-z_]+)?\s*=", ERROR),
    Rule("code-php-upload-name", "code_injection", r"^[^/\\]{0,200}\.(?:php\d?|phtml|phar|pht|phps|pgif|shtml|htaccess|jsp|jspx|asp|aspx|cer|asa)\.*$", WARNING),
    Rule("code-php-tag", "code_injection", r"<\?(?:php\s|=)|<\?\s+(?:php\b|=|echo|system|eval|print|\$)|<\?xml\s*:", CRITICAL),
    Rule("code-php-function", "code_injection", r"\b(?:phpinfo|shell_exec|passthru|proc_open|pcntl_exec|popen|base64_decode|gzinflate|gzuncompress|str_rot13|create_function|call_user_func(?:_array)?|file_get_contents|file_put_contents|highlight_file|show_source|move_uploaded_file|fsockopen|curl_exec|preg_replace|assert_options|ini_set|ini_get|set_time_limit|stream_get_contents|array_map|array_filter|usort|register_shutdown_function|posix_\w+|getenv|readfile|fopen|fwrite|fputs|var_dump|print_r)\s*\(", ERROR),
    Rule("code-exec-call", "code_injection", r"\b(?:eval|assert|exec|include|include_once|require|require_once|execfile|compile)\s*\(\s*(?:\$|['\"`]|base64|request|\w+\s*\(|@)", ERROR),
    Rule("code-php-vars", "code_injection", r"\$_(?:get|post|request|cookie|server|files|env|session)\b|\$globals\b|\$http_raw_post_data|php://input", CRITICAL),
    Rule("code-php-serialized", "code_injection", r"\b[oc]:\d+:\"[\w\\]+\":\d+:\{|\ba:\d+:\{[si]:\d", CRITICAL),
    Rule("code-java", "code_injection", r"java\.(?:lang|io|net|util|beans|rmi|nio|security|awt)\.|\bjava\.(?:runtime|processbuilder)\b|javax\.|\bgetruntime\s*\(|\bprocessbuilder\b|\bclassloader\b|\.getclass\s*\(|\.forname\s*\(|#_memberaccess|@java\.|\bognl\b|new\s+java\.|sun\.misc\.|org\.apache\.(?:commons|struts|tomcat|catalina)|freemarker\.template|\.getdeclaredmethod|\.invoke\s*\(|\bxwork\.|com\.sun\.|\.newinstance\s*\(|#context\[|#request[.\[]|#parameters[.\[]|java\.lang", CRITICAL),
    Rule("code-log4shell", "code_injection", r"\$\{[^}]{0,60}(?:jndi|:-j|lower:|upper:|\$\{)|\$\{\s*(?:env|sys|java|ctx|main|bundle|k8s|docker|spring|log4j|base64|date|web|marker|map|sd|event|jvmrunargs)\s*:", CRITICAL),
    Rule("code-java-serialized", "code_injection", r"\bro0ab|\baced0005", CRITICAL, plain=True),
    Rule("code-ssti", "code_injection", r"\{\{[^}]{0,200}(?:__class__|__globals__|__builtins__|__import__|__subclasses__|__mro__|__init__|__base__|\bconfig\b|\bself\b|request\.|lipsum|cycler|joiner|namespace|\d+\s*\*\s*['\"\d]|\|\s*attr\b|popen|\bos\.|range\s*\()|\$\{\s*\d+\s*\*\s*\d+\s*\}|#\{\s*\d+\s*\*\s*\d+\s*\}|\{\{\s*\d+\s*[*+]\s*\d+\s*\}\}|\{%[^%]{0,200}(?:import|include|exec|system|popen|__)[^%]{0,200}%\}", CRITICAL),
    # A whole template block (Jinja, Twig, Django, Liquid: a loop or condition and its
    # end tag) or a statement that evaluates or dumps (print, debug): rendered, it runs.
    # A single tag named in a sentence ("use {% if %} here") is not enough.
    Rule("code-template-block", "code_injection", r"\{%-?\s*(?:for|if|macro|call|filter|with)\b[^%]{0,200}%\}[^%]{0,400}\{%-?\s*end\w{0,10}\s*-?%\}|\{%-?\s*(?:print|debug)\b[^%]{0,200}%\}", CRITICAL),
    Rule("code-template-tags", "code_injection", r"<%=?[^%]{0,300}%>|<#assign\b|\?new\s*\(\s*\)|\$\{[^}]{0,100}(?:\.exec|\.getclass|\.forname|runtime|\bt\s*\()|\bt\s*\(\s*java\.|@\{[^}]{0,100}\}|\*\{[^}]{0,100}\}", ERROR),
    Rule("code-python", "code_injection", r"__import__\s*\(|\bos\.(?:system|popen|exec\w*|spawn\w*)\s*\(|\bsubprocess\.\w+\s*\(|__builtins__|pickle\.loads|\bgetattr\s*\(\s*__|\.__(?:class|globals|subclasses|mro|bases|code)__|\bcommands\.getoutput", CRITICAL),
    Rule("code-node", "code_injection", r"require\s*\(\s*['\"`]child_process|child_process|process\.mainmodule|process\.binding|global\.process|this\.constructor\.constructor|\.exec(?:sync)?\s*\(\s*['\"`]|process\.env\b|new\s+function\s*\(|\bfunction\s*\(\s*\)\s*\{\s*return\s+process", CRITICAL),
    Rule("code-ruby", "code_injection", r"\bkernel\.\w+|%x[({\[]|\bsyscall\s*\(|\.send\s*\(\s*:|\binstance_eval\b|\bclass_eval\b|\bio\.popen|\bopen\s*\(\s*['\"]\s*\||\bobject\.const_get", ERROR),
    Rule("code-asp", "code_injection", r"response\.write\s*\(|server\.createobject|wscript\.shell|eval\s*\(\s*request|scripting\.filesystemobject|\bexecute\s*\(\s*request", CRITICAL),
    Rule("code-ssi", "code_injection", r"<!--\s*#\s*(?:exec|include|echo|config|printenv|set)\b", CRITICAL),
    Rule("code-expression", "code_injection", r"\$\{[^}]{1,100}\}|#\{[^}]{1,100}\}", NOTICE, level=3),
    Rule("code-php-generic", "code_injection", r"\b(?:system|exec|assert)\s*\(", WARNING, level=2),
)
# fmt: on
