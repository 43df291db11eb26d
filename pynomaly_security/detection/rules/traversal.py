"""Path traversal, local file inclusion and sensitive files: ``../`` in any
encoding (normalization already decoded it), absolute system paths, Windows
paths, ``file://`` and PHP stream wrappers.

References:
    OWASP CRS REQUEST-930-APPLICATION-ATTACK-LFI (restricted-files list).
"""

# ruff: noqa: E501  (rule tables: one pattern per line reads better than split regexes)
from __future__ import annotations

import re

from pynomaly_security.detection.rules.base import CRITICAL, ERROR, NOTICE, WARNING, Check, Rule

__all__ = ["RULES"]

_S = r"[/\\]"
_UNIX_FILES = (
    r"etc[/\\]+(?:passwd|shadow|group|hosts|issue|motd|hostname|crontab|fstab|sudoers"
    r"|mysql|apache2?|httpd|nginx|ssh|profile|bashrc|security|pam\.d|resolv\.conf|ldap"
    r"|init\.d|environment|master\.passwd|php|redhat-release|lsb-release|os-release|inittab"
    r"|exports|ftp|vsftpd|samba|aliases|network|sysconfig|cron|syslog|logrotate|modules|"
    r"netplan|inetd|xinetd|shells|passwd-|gshadow|mtab|knockd|opt|default|x11|ssl|pki"
    # Login records, mail routing and daemon configs (CRS lfi-os-files.data).
    r"|mail|wtmp|utmp|btmp|lastlog|securetty|login\.defs|nsswitch\.conf|sysctl\.conf|proftpd?\.conf)"
    r"|proc[/\\]+(?:self|version|cmdline|mounts|net|sched_debug|config\.gz|kcore|\d+)\b"
    r"|var[/\\]+(?:log|www|lib|mail|run|spool|adm|apache|backups|cache|tmp|[\w-]+\.log)\b"
    r"|(?:root|home[/\\]+[\w.-]+)[/\\]+\.(?:ssh|bash|profile|history|mysql|viminfo|netrc|git|aws)"
    r"|usr[/\\]+(?:local|share|lib|bin|sbin|pkg)"
    r"[/\\]"
    r"|(?:s?bin)[/\\]+(?:sh|bash|ls|cat|id|busybox)\b|opt[/\\]+(?:lampp?|xampp)[/\\]"
    r"|dev[/\\]+(?:tcp|udp|null|stdin|stdout|fd|random|urandom|zero|mem|kmem)\b"
)
_WIN_FILES = (
    r"boot\.ini|win\.ini|system\.ini|autoexec\.bat|config\.sys|win(?:dows|nt)"
    r"[/\\]"
    r"+(?:system32|system|repair|win\.ini|php\.ini|debug|panther|temp|\w+\.(?:ini|log|xml))"
    r"|inetpub[/\\]|program files|documents and settings|\bsam\b"
    r"[/\\]"
    r"|system32[/\\]|\bpagefile\.sys|\bntuser\.dat|\bunattend\.xml|\bsysprep"
)
_SENSITIVE_NAMES = (
    r"\.htaccess|\.htpasswd|\.git[/\\]+(?:config|head|index|logs)|\.svn"
    r"[/\\]"
    r"|\.bash_history|\.mysql_history|\.ssh[/\\]|id_rsa|id_dsa|authorized_keys"
    r"|known_hosts|web-inf[/\\]|meta-inf[/\\]|wp-config\.php|web\.config"
    r"|\.aws[/\\]+credentials|\.docker[/\\]|\.npmrc|\.ds_store|php\.ini|my\.cnf"
    r"|httpd\.conf|nginx\.conf|access[._]log|error[._]log|server\.xml|tomcat-users\.xml"
    r"|applicationhost\.config|\bsecrets?\.(?:json|ya?ml)"
    r"|my\.ini|master\.passwd|phpmyadmin[/\\]+config\.inc|library[/\\]+webserver[/\\]"
)

# Files whose content is a secret or an account list: reading one is the
# attack, however the path is written.
_SECRET = re.compile(
    r"passwd|shadow|sudoers|id_(?:rsa|dsa|ecdsa|ed25519)|authorized_keys|\.htpasswd|\.env\b|environ"
    r"|win\.ini|boot\.ini|system\.ini|\bsam\b|ntuser\.dat|wp-config|web\.config|\.git[/\\]+config"
    r"|credentials|\.aws|\.npmrc|\.pgpass|\.netrc|_history|secrets?\b|privkey|\.key\b|private"
    r"|crontab|my\.cnf|php\.ini|httpd\.conf|tomcat-users|\.bash|\.profile|cmdline|self[/\\]"
)
# What may come right before a path that is used as a value: nothing, an
# assignment, a quote, a bracket or a shell metacharacter.
_USED_AFTER = frozenset("=\"'(;|&<>`,@")
# Programs that print a file: a system path after one is read, not mentioned.
_READERS = frozenset(
    {"cat", "tac", "nl", "less", "more", "zcat", "zstdcat", "zless", "zmore", "gunzip", "bzcat"}
    | {"xzcat", "strings", "od", "xxd", "base64", "type", "get-content", "gc", "curl", "wget"}
)
_LINE_START = re.compile(r"[;|&\n`]|\$\(")


def mentioned(score: int) -> Check:
    """``score`` for a path used as a value (``/etc/hosts``, ``file=/var/log/x``,
    ``'/etc/nginx/'``) or naming a secret anywhere (``cat /etc/passwd``); 0 for
    a system directory mentioned in a sentence or a command line
    (``Edit /etc/hosts to point``, ``tail -f /var/log/nginx/access.log``): an
    application opens the whole value, so a path after other words reads
    nothing."""

    def check(text: str, start: int, end: int) -> int:
        while start < end and text[start] in " \t\n":
            start += 1
        if start < end and text[start] in _USED_AFTER:
            return score  # the match starts with the quote, "(" or "=" before the path
        token_start = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start)) + 1
        lead = text[token_start:start]
        if token_start == 0 or any(c in _USED_AFTER for c in lead):
            return score  # the value itself, or after a quote, "=", "(", ">"...
        before = text[:token_start].rstrip()
        if not before or before[-1] in _USED_AFTER:
            return score
        command = _LINE_START.split(before)[-1].split(None, 1)
        if command and command[0].lstrip("'\"") in _READERS:
            return score  # zstdcat /var/log/x.zst: a program reads the file
        token_end = text.find(" ", end)
        token = text[token_start : token_end if token_end >= 0 else len(text)]
        return score if _SECRET.search(token) else 0

    return check


# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("pt-dotdot-multi", "path_traversal", r"(?:\.\.+;?" + _S + r"+\.?" + _S + r"*){2,}|(?:\.\.+;?" + _S + r"+\.*){2,}", CRITICAL),
    Rule("pt-dotdot", "path_traversal", r"(?:^|[\s=\"'/\\:])\.\.+;?" + _S + r"|" + _S + r"\.\.+(?:$|[;?#\x00" + "/" + r"\\])", WARNING),
    Rule("pt-unix-file", "path_traversal", r"(?:^|[\s/\\'\"=:;(|&<>`~.])" + _S + r"*(?:" + _UNIX_FILES + r")", CRITICAL, check=mentioned(CRITICAL)),
    Rule("pt-windows-file", "path_traversal", r"(?:" + _WIN_FILES + r")", CRITICAL, check=mentioned(CRITICAL)),
    Rule("pt-windows-drive", "path_traversal", r"(?:^|[\s=\"'(/])(?:[a-z]:|\\\\[\w.$-]+)[/\\]+[\w$.-]", WARNING, check=mentioned(WARNING)),
    Rule("pt-sensitive-name", "path_traversal", r"(?:" + _SENSITIVE_NAMES + r")", ERROR, check=mentioned(ERROR)),
    Rule("pt-sensitive-path", "path_traversal", r"[/\\](?:" + _SENSITIVE_NAMES + r")", CRITICAL, check=mentioned(CRITICAL)),
    # Evasion forms of ../ that survive decoding: hex-looking dots (0x2e),
    # IIS junk escapes (..%c0%qf), dots before a bare "2f", runs of ./
    Rule("pt-dotdot-evasion", "path_traversal", r"(?:0x2e){2}|(?:0x2f|0x5c)0x2e|0x2e\.|\.0x2e|\.\.(?:0x2f|0x5c|2f|5c)|(?:\.\.[^\w\s.]{1,10}){2,}|(?:^|[/\\=])\.{3,}[/\\]|(?:[/\\]\.){3,}|(?:\.[/\\]){3,}|%u(?:efc8|f025)|%c[01]%", CRITICAL),
    Rule("pt-system-file-junk", "path_traversal", r"(?:etc|windows|winnt)[^\w\s]{1,12}(?:passwd|shadow|issue|hosts|group|system32|win\.ini|system\.ini)", CRITICAL, check=mentioned(CRITICAL)),
    Rule("pt-windows-app-dir", "path_traversal", r"\b[a-z]:[/\\]+(?:xampp|wamp|php\d?|apache\d?|inetpub|windows|winnt|program|boot|mysql|tomcat|perl|apache group|nginx|iis|temp|sendmail)\b", CRITICAL, check=mentioned(CRITICAL)),
    Rule("pt-linux-pseudo", "path_traversal", r"(?:^|[\s/=\"'])(?:proc|sys)[/\\]+(?:sys|class|kernel|self|fs|devices|block|bus|module|firmware)\b", CRITICAL, check=mentioned(CRITICAL)),
    Rule("pt-system-file-encoded", "path_traversal", r"(?:etc|windows|winnt|system32|drivers)(?:[^\w\s]|%\w{1,2}|0x(?:2f|5c)){1,12}(?:passwd|shadow|issue|hosts|group|system32|drivers|win\.ini)|\.{3,}(?:etc|web-inf|windows|winnt|boot)", CRITICAL, check=mentioned(CRITICAL)),
    Rule("pt-dotdot-junk", "path_traversal", r"(?:[\x{fffd}?^]?\.[\x{fffd}?^]?\.?[^\w\s.]{0,4}(?:0x2f|0x5c|%\w\w|[/\\\x{fffd}])){2,}", CRITICAL),
    Rule("pt-path-dotdot", "path_traversal", r"^/(?:[^?#]*[/\\])?\.\.(?:[/\\;]|$)", CRITICAL),
    Rule("pt-base64-dotdot", "path_traversal", r"li4vli4v|li4ul4|ljqvli4v|l2v0yy9wyxnzd2|zxrjl3bhc3n3za", CRITICAL, plain=True),
    Rule("pt-leading-dotdot", "path_traversal", r"^\s*\.\.[/\\]|(?:\x{fffd}{2,}[/\\%]){2,}|(?:%2%e){2}|%5%c|%2%f|%%35%%63|%%32%%66", CRITICAL),
    Rule("pt-dotfile", "path_traversal", r"(?:^|[/\\])\.(?:bashrc|bash_profile|bash_logout|profile|xauthority|history|pass|netrc|pgpass|my\.cnf|npmrc|pypirc|gitconfig|git-credentials|viminfo|lesshst|mysql_history|psql_history|aiignore|rovodev|opencode|a0proj|n8n|boto|s3cfg|dockercfg|kube/config|ssh/)", CRITICAL, check=mentioned(CRITICAL)),
    Rule("pt-etc-any", "path_traversal", r"(?:^|[\s=\"'])/etc/[\w.-]+|/usr/ports/|(?:pure|pro|wu)-?ftpd|/proc/(?:interrupts|meminfo|cpuinfo|partitions|modules)", CRITICAL, check=mentioned(CRITICAL)),
    Rule("pt-agent-config", "path_traversal", r"/\.(?:claude|cline|windsurf|fabric|plandex|kiro|cursor|aider|continue|codeium|copilot|gemini|roo)\b", CRITICAL),
    Rule("pt-slash-run", "path_traversal", r"[/\\]{4,}", NOTICE),
    Rule("pt-file-scheme", "path_traversal", r"\bfile\s*:\s*" + _S + r"|\b(?:php|zip|phar|expect|glob|compress\.zlib|compress\.bzip2|zlib|ogg|ssh2\.\w+|rar|jar|netdoc|data)\s*:" + _S + _S, CRITICAL),
    Rule("pt-php-filter", "path_traversal", r"\bconvert\.(?:base64|iconv|quoted)|\bread\s*=\s*(?:string|convert)\.|resource\s*=", ERROR),
    # Container and app secrets by absolute path: /run/secrets/db, /app/.env
    Rule("pt-secret-path", "path_traversal", r"(?:^|[\s=\"'(:])(?:/var)?/run/secrets/|/var/run/secrets/kubernetes\.io|(?:^|[\s=\"'(:])(?:[a-z]:)?[/\\][\w.\\/-]{0,200}[/\\]\.env(?:\.[\w-]+)?\s*(?:$|\x00)", CRITICAL, check=mentioned(CRITICAL)),
    # One level up inside a path (x/../config.py) and Tomcat's ..; (foo/..;/admin)
    Rule("pt-dotdot-inner", "path_traversal", r"[\w-][/\\]\.\.[/\\][\w.-]|\.\.;[/\\]", CRITICAL),
    # A UNC path as the whole value: opening it sends the server's credentials.
    Rule("pt-unc-value", "path_traversal", r"^\s*(?:\\\\|//)[\w.$-]+[/\\][\w.$-]", ERROR),
    Rule("pt-dotenv", "path_traversal", r"(?:^|[/\\])\.env(?:\.\w+)?$", NOTICE),
)
# fmt: on
