"""Second-tier families: SSRF, XXE, NoSQL and LDAP injection, CRLF/header
injection, remote file inclusion and scanner signatures.

References:
    OWASP CRS REQUEST-921 (protocol attack), REQUEST-931 (RFI), REQUEST-934
    (SSRF); OWASP XXE and LDAP Injection Prevention Cheat Sheets.
"""

# ruff: noqa: E501  (rule tables: one pattern per line reads better than split regexes)
from __future__ import annotations

from pynomaly_security.detection.rules.base import CRITICAL, ERROR, NOTICE, WARNING, Rule

__all__ = ["RULES"]

_INTERNAL_HOST = (
    r"(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|0\.0\.0\.0|0x7f[0-9a-f.]*|2130706433|0177\.|017700000001"
    r"|localhost|\[::1?\]|\[0{0,4}:0{0,4}:|\[::ffff:|169\.254\.\d+\.\d+|metadata\.google\.internal"
    r"|100\.100\.100\.200|instance-data|\[fd00:ec2::254\]|metadata\.azure|kubernetes\.default)"
)

# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("ssrf-internal-url", "ssrf", r"\b(?:https?|gopher|dict|ftp|ldap|tftp|sftp|jar|netdoc|file)://(?:[^/\s@]{0,64}@)?" + _INTERNAL_HOST, ERROR),
    Rule("ssrf-metadata", "ssrf", r"169\.254\.169\.254|metadata\.google\.internal|/latest/meta-data|/computemetadata/|100\.100\.100\.200", CRITICAL),
    Rule("ssrf-scheme", "ssrf", r"\b(?:gopher|dict|ldap|tftp|jar|netdoc)://", CRITICAL),
    Rule("xxe-entity", "xxe", r"<!\s*entity\b|<!\s*doctype[^>]{0,200}\[|<!\s*doctype[^>]{0,200}\bsystem\b", CRITICAL),
    Rule("xxe-xinclude", "xxe", r"<\s*xi:include\b|xmlns:xi\s*=|<\s*xsl:(?:value-of|copy-of|stylesheet)\b", CRITICAL),
    Rule("nosqli-operator", "nosqli", r"\[\s*\$(?:ne|gt|gte|lt|lte|eq|in|nin|regex|where|exists|or|and|not|nor|elemmatch|expr|type|size|all|options)\s*\]|^\$(?:ne|gt|gte|lt|lte|eq|in|nin|regex|where|exists|or|and|not|nor|elemmatch|expr)$|[{,]\s*['\"]?\$(?:ne|gt|gte|lt|lte|eq|in|nin|regex|where|exists|or|and|nor|expr)['\"]?\s*:", CRITICAL),
    Rule("nosqli-js", "nosqli", r"\$where\b|;\s*return\s+(?:true|1|this)\b|\bthis\.\w+\s*(?:==|!=)|'\s*\|\|\s*'1'\s*==\s*'1|db\.\w+\.find\s*\(|\bmapreduce\b|\$function\b|\$accumulator\b", CRITICAL),
    Rule("ldapi-filter", "ldapi", r"\*\s*\)\s*\(|\)\s*\(\s*[|&!]|\)\s*\(\s*[\w-]+\s*=\s*\*", CRITICAL),
    # A whole well-formed filter is what LDAP search fields take; only a weak signal.
    Rule("ldapi-filter-shape", "ldapi", r"\(\s*[|&]\s*\(\s*[\w-]+\s*[=~<>]", WARNING),
    Rule("ldapi-close", "ldapi", r"\*\s*\)\s*\)|\)\s*\)\s*\(", WARNING),
    Rule("crlf-header", "protocol_attack", r"\r\n?[ \t]*(?:set-cookie|location|content-type|content-length|content-disposition|transfer-encoding|x-[\w-]+|refresh|access-control-[\w-]+|http/\d)\s*:?|\n(?:set-cookie|location|content-length|transfer-encoding)\s*:|\r\n\r\n", CRITICAL),
    Rule("rfi-url", "rfi", r"^\s*(?:https?|ftps?)://[^\s]{1,300}\?+\s*$|^\s*(?:https?|ftps?)://\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}[/:]|\b(?:include|require)(?:_once)?\s*\(?\s*['\"]?(?:https?|ftp)://", WARNING),
    # A remote URL whose tail is cut off: "??" or a NUL ends the name the
    # application appends (include($dir . "/header.php")).
    Rule("rfi-url-truncated", "rfi", r"^\s*(?:https?|ftps?)://[^\s]{1,300}(?:\?\s*\?|\.\w{1,5}\?\s*$|\x00)", CRITICAL),
    # A remote URL as the whole value: weighed by field (a file-name field).
    Rule("rfi-remote-value", "rfi", r"^\s*(?:https?|ftps?|smb|webdav)://[^\s]{1,300}$", NOTICE),
    # A filter closed early and its rest cut off: *))%00, *)(|(x=*
    Rule("ldapi-truncation", "ldapi", r"\*\s*\)\s*\)+\s*(?:\x00|$)|\)\s*\x00", CRITICAL),
    Rule("scanner-agent", "scanner", r"\b(?:sqlmap|nikto|nessus|acunetix|nmap|masscan|dirbuster|gobuster|wpscan|zgrab|nuclei|w3af|havij|appscan|openvas|arachni|netsparker|fimap|jaeles|commix|wfuzz|ffuf|nessus|qualys|zmeu|morfeus|paros|webinspect|xsser)\b", CRITICAL),
)
# fmt: on
