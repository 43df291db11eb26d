"""OS command injection: shell metacharacters joined to command words,
``$()`` and backtick substitution, ``${IFS}`` and brace tricks, Shellshock,
shell and interpreter paths.

Command words that are also English words (``type``, ``find``, ``more``)
only count when followed by what a shell command takes (a flag, a path,
the end of the value, another metacharacter), so ``cats; more later`` passes.

References:
    OWASP CRS REQUEST-932-APPLICATION-ATTACK-RCE; CVE-2014-6271 (Shellshock).
"""

# ruff: noqa: E501  (rule tables: one pattern per line reads better than split regexes)
from __future__ import annotations

import re

from pynomaly_security.detection.rules.base import CRITICAL, ERROR, NOTICE, WARNING, Check, Rule
from pynomaly_security.detection.rules.traversal import mentioned

__all__ = ["RULES"]

# Unambiguous tools: seeing one right after a shell separator is enough.
_STRONG = (
    r"whoami|uname|wget|curl|ncat|netcat|nc|ping|bash|sh|zsh|ksh|csh|tcsh|dash|python[23]?"
    r"|perl|ruby|php|nslookup|ifconfig|ipconfig|netstat|chmod|chown|telnet|powershell|pwsh"
    r"|cmd|certutil|bitsadmin|systeminfo|tasklist|taskkill|wmic|usleep|base64|xxd|busybox"
    r"|getent|hostname|passwd|useradd|nohup|xterm|socat|mkfifo|crontab|sudo|lsb_release"
    r"|sleep|id|ls|cat|dir|net|ver|env|pwd|regedit|uptime|w|who|ps|rm|echo|nmap|tftp|ftp|ssh|scp"
    r"|awk|gawk|sed|grep|egrep|head|tail|less|more|find|touch|mkdir|cp|mv|kill|killall"
    r"|printf|expr|set|type|reg|sc|tar|zip|unzip|gzip|openssl|dig|host|time|timeout|eval"
    r"|exec|source|node|lua|java|javac|gcc|make|dd|od|strings|wc|sort|uniq|cut|tr|tee"
    r"|xargs|chattr|lsof|mount|ifup|route|arp|traceroute|tracert|nbtstat|shutdown|reboot"
    r"|copy|del|start|call|at|schtasks|icacls|attrib|findstr|more\.com|print|rundll32"
    r"|regsvr32|mshta|cscript|wscript|msiexec|vssadmin|bcdedit|diskpart|query|finger|sysinfo"
    r"|netsh|iwmi|iwr|iex|nc\.exe|ncat\.exe|tclsh|jrunscript|osascript|rlwrap|xdg-open"
)
# Inside backticks only commands nobody names in prose or docs (`env` is a
# parameter name in documentation, `id` is not).
_BACKTICK = (
    r"id|whoami|uname|wget|curl|nc|ncat|netcat|ping|cat|ls|sleep|bash|sh|ifconfig|ipconfig"
    r"|netstat|pwd|nslookup|dir|ps|reboot|shutdown|perl|chmod|hostname"
)
# ... and those named in prose as often as run, only with their argument
# (```echo``` is a word in docs, ```touch /tmp/x``` a command).
_BACKTICK_WITH_ARGS = r"(?:python[23]?\s+-c|rm\s+-|echo\s|touch\s)[^`]{0,200}"
# A wider Unix/Windows command vocabulary (in the spirit of CRS's
# unix-shell.data) used only right after a shell separator or at the start
# of a value followed by a flag or a path.
_UNIX = (
    r"ansible(?:-[a-z]+)?|apt(?:-get)?|aria2c|ash|awk|base32|basenc|bridge|bunzip2|bzcat|bzip2"
    r"|cancel|capsh|cd|chattr|chgrp|chroot|cksum|column|comm|cpan|cpio|crash|csplit|ctr|cupsfilter"
    r"|curl|cut|dash|date|dc|dd|debugfs|diff|dmesg|dmidecode|dnf|docker|dpkg|du|easy_install"
    r"|ed|emacs|env|eqn|ex|expand|expect|facter|file|find|finger|flock|fmt|fold|ftp|gawk|gcc"
    r"|gdb|gem|genisoimage|gimp|git|grc|grep|gtester|gzip|hd|head|hexdump|highlight|hping3|iconv"
    r"|iftop|install|ionice|ip|irb|ispell|jjs|join|journalctl|jq|jrunscript|ksh|ksshell|kubectl"
    r"|latex|ld|ldconfig|less|lftp|ln|loginctl|logsave|look|lp|ltrace|lua|lwp-download|lwp-request"
    r"|mail|make|man|mawk|more|mount|mtr|mysql|nano|nawk|nice|nl|nmap|node|nohup|npm|nroff|nsenter"
    r"|octave|od|openssl|openvpn|passwd|paste|pdb|pdflatex|perf|perl|php|pic|pico|pip|pkexec"
    r"|pkg|pr|pry|psql|puppet|python[23]?|rake|readelf|red|restic|rev|rlogin|rlwrap|rmt(?:-[a-z]+)?"
    r"|rpm|rsync|rtorrent|ruby|run-mailcap|run-parts|rview|rvim|scp|screen|script|sed|service"
    r"|setarch|sftp|sg|shuf|smbclient|socat|soelim|sort|split|sqlite3|ss|ssh(?:-keygen|-keyscan)?"
    r"|start-stop-daemon|stdbuf|strace|strings|su|sysctl|systemctl|tac|tail|tar|taskset|tbl|tclsh"
    r"|tee|telnet|tftp|time|timeout|tmux|top|troff|ul|unexpand|uniq|rc|unshare|unzip|update-alternatives"
    r"|uudecode|uuencode|valgrind|vi|view|vigr|vim|vimdiff|vipw|visudo|w3m|watch|wc|wget|whois"
    r"|wish|xargs|xxd|xz|yarn|yelp|yum|zip|zsh|zsoelim|zypper|uconv|bcdboot|acpi|aptitude|lastlog|htop|apt|bsdtar|cscli"
)
_ARGS = r"(?:$|\s*[;|&`<>)'\"$]|\s+a?uxw*\b|\s+(?:https?|ftp)://|\s+-{1,2}[a-z0-9]|\s+[/\\~.$%'\"\d]|\s+[a-z]:(?:$|\s|[/\\|])|\s*\n)"
# Tools whose name starting a value, followed by a flag or a path, is a command
# line ("uname -a", "ls -l /", "ping.exe -n 3 10.0.0.1"); English words excluded.
_TOOLS = (
    r"ls|cat|id|uname|whoami|wget|curl|nc|ncat|netcat|ping|bash|sh|zsh|python[23]?|perl|ruby"
    r"|php|nslookup|ifconfig|ipconfig|netstat|chmod|chown|rm|telnet|powershell|cmd|certutil"
    r"|systeminfo|tasklist|taskkill|sleep|dir|net|netsh|reg|wmic|which|echo|pwd|uptime|ps"
    r"|kill|sudo|nmap|dig|traceroute|tracert|route|arp|mkdir|touch|cp|mv|busybox|base64"
)
# A newline only separates commands when the command starts the line at once
# ("%0aid"); indented lines ("  id" in a GraphQL query) are not shell.
_SEP = r"(?:[;|]\s*|&&?\s*|\|\|\s*|\$\(\s*|\)\s*;\s*|\n|\\n)"


def _words_of(alternation: str) -> set[str]:
    """The plain command names of a regex alternation (``python[23]?`` -> python...)."""
    words = set()
    for item in alternation.split("|"):
        if item.endswith("[23]?"):
            base = item[: -len("[23]?")]
            words |= {base, base + "2", base + "3"}
        elif re.fullmatch(r"[a-z0-9_-]+", item):
            words.add(item)
    return words


# Commands that are an attack wherever they run: identity and system recon,
# shells, network tools that open or proxy connections, Windows admin tools.
_DANGEROUS = frozenset(
    {
        *("id", "whoami", "uname", "ifconfig", "ipconfig", "netstat", "hostname", "nslookup"),
        *("nc", "ncat", "netcat", "telnet", "socat", "mkfifo", "bash", "sh", "zsh", "ksh", "csh"),
        *("tcsh", "dash", "powershell", "pwsh", "cmd", "certutil", "bitsadmin", "systeminfo"),
        *("tasklist", "taskkill", "wmic", "busybox", "getent", "passwd", "useradd", "net", "reg"),
        *("xterm", "rundll32", "regsvr32", "mshta", "cscript", "wscript", "msiexec", "vssadmin"),
        *("bcdedit", "nmap", "uptime", "lsb_release", "visudo", "shutdown", "reboot", "netsh"),
        *("env", "printenv", "who", "w", "rc"),
    }
)
# Every command name the rules know, plus developer tools: a segment that
# starts (or ends) with one is a command line, not data.
_COMMANDS = frozenset(
    _words_of(_STRONG)
    | _words_of(_UNIX)
    | _words_of(_TOOLS)
    | {
        *("git", "npm", "npx", "yarn", "pnpm", "pip", "pip3", "docker", "kubectl", "helm"),
        *("cargo", "go", "brew", "apt", "apt-get", "uvicorn", "pytest", "ruff", "mypy", "mvn"),
        *("gradle", "dotnet", "composer", "bundle", "rails", "terraform", "export", "cd"),
        *("history", "du", "df", "jq", "rsync", "systemctl", "journalctl", "ln", "alias"),
    }
)
# The chained command: separators, then the word.
_CHAINED = re.compile(r"[^;|&\n`$(]*(?:[;|&\n`]|\$\(|\\n)+\s*([a-z][\w.-]*)")
_SEGMENT_SPLIT = re.compile(r"[;|&\n`]|\$\(|\\n")
# Arguments that make a command line recon or an attack: the root, system
# directories, a Windows drive, an IP address.
_RISKY_ARGS = re.compile(
    r"\s/(?:\s|$|[;|&])|(?:^|\s)/(?:etc|bin|sbin|tmp|dev|proc|root|boot|home|var/www)\b|\s[a-z]:[/\\]?(?:\s|$)"
    r"|\s[a-z]:[/\\]+(?:windows|winnt|users|documents and settings|program files|programdata|inetpub|boot\.ini)\b"
    r"|\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"
)
# echo ... | program: data fed to a program (echo cGF5 | base64 -d | sh).
_ECHO_PIPE = re.compile(r"\s*(?:echo|printf)\b[^|;&\n]*\|(?!\|)")
_SEPARATOR = re.compile(r"&&|\|\||[;|&\n`]|\$\(|\\n")
_NEXT_WORD = re.compile(r"[\s;|&`$(]*([a-z][\w.-]*)")
_PROSE_BEFORE = re.compile(r"[a-z]{2,}[,:]? +$")
_PROSE_AFTER = re.compile(r" +[a-z]{2,}\b(?![=(])")


def _risky(line: str) -> bool:
    """A :data:`_DANGEROUS` command among the first words (``time sh -c whoami``,
    ``which nc``) or system arguments (:data:`_RISKY_ARGS`)."""
    words = re.split(r"[\s;|&`'\"()]+", line[:200])
    return any(w.removesuffix(".exe") in _DANGEROUS for w in words[:8]) or bool(
        _RISKY_ARGS.search(line)
    )


def _is_command(word: str) -> bool:
    """A known command, or a script run by its path (``./configure``)."""
    return word.removesuffix(".exe") in _COMMANDS or word.startswith("./")


def _breakout(score: int) -> Check:
    """``score`` when the chained command breaks out of data (``8.8.8.8; ls``,
    ``x' | id``, ``;cat``); 0 when what comes before the separator is itself a
    command line (``cd ~/project && make test``, ``ls | wc -l``), or the
    substitution sits in prose (``use $(pwd) to get``), and the command is not
    :data:`_DANGEROUS`: that is a command someone wrote, as developers write
    them in chats, docs and tickets, not an injection. A match without a
    separator is a command line (:func:`_command_line`)."""
    whole_line = _command_line(score)

    def check(text: str, start: int, end: int) -> int:
        sep = _SEPARATOR.search(text, start, end)
        if sep is None:
            return whole_line(text, start, end)
        found = _NEXT_WORD.match(text, sep.end())
        word = found.group(1) if found else ""
        if word.removesuffix(".exe") in _DANGEROUS:
            return score
        if sep.group(0) in ("$(", "`"):
            return 0 if _in_prose(text, sep.start(), sep.end()) else score
        left = _SEGMENT_SPLIT.split(text[: sep.start()].rstrip(" ;|&"))[-1].split()
        if sep.group(0) == "|" and left and left[0] in ("echo", "printf"):
            return score  # echo ... | program: data fed to a program (base64 -d | sh)
        if left and (_is_command(left[0]) or _is_command(left[-1])) and not _risky(text):
            return 0
        return score

    return check


def _in_prose(text: str, open_at: int, inner: int) -> bool:
    """A ``$(...)`` or backtick expression between prose words (Markdown code
    in a sentence: ``Use `cat file | head` to peek``)."""
    closing = text.find(")" if text[open_at] == "$" else "`", inner)
    if closing < 0:
        return False
    before = _PROSE_BEFORE.search(text, max(0, open_at - 40), open_at) is not None
    after = _PROSE_AFTER.match(text, closing + 1) is not None
    return before or after


def _not_in_prose(score: int) -> Check:
    """``score`` unless the match follows a word of a sentence
    (``the alias ll='ls -la' is handy``) rather than a separator or the start."""

    def check(text: str, start: int, end: int) -> int:
        return 0 if _PROSE_BEFORE.search(text, max(0, start - 40), start) else score

    return check


def _path_mentioned(score: int) -> Check:
    """A path to a program (``/usr/bin/python3``) named in a sentence is no
    command (:func:`~pynomaly_security.detection.rules.traversal.mentioned`);
    other matches (``sh -c``, ``nc -e``) keep ``score``."""
    path_check = mentioned(score)

    def check(text: str, start: int, end: int) -> int:
        piece = text[start:end].lstrip(" \t\n;|&`'\"(=:>")
        return path_check(text, start, end) if piece.startswith("/") else score

    return check


def _backtick(score: int) -> Check:
    """Backtick substitution, unless it is Markdown code in prose running a
    command that is not :data:`_DANGEROUS`."""

    def check(text: str, start: int, end: int) -> int:
        tick = text.find("`", start, end)
        found = _NEXT_WORD.match(text, tick + 1)
        if found is None or found.group(1) in _DANGEROUS:
            return score
        return 0 if _in_prose(text, tick, tick + 1) else score

    return check


def _command_line(score: int) -> Check:
    """``score`` when a value that starts with a command runs a
    :data:`_DANGEROUS` one or points it at the system (``ls -la /``,
    ``ping -n 3 10.0.0.9``); 0 for the everyday command lines of developers
    (``git log --oneline``, ``pip install -r requirements.txt``)."""

    def check(text: str, start: int, end: int) -> int:
        line = text[start:]
        return score if _risky(line) or _ECHO_PIPE.match(line) else 0

    return check


# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("cmdi-chain", "cmdi", _SEP + r"(?:" + _STRONG + r")(?:\.exe)?" + _ARGS, CRITICAL, check=_breakout(CRITICAL)),
    # Not before "/": "curl/8.0" and "Wget/1.21" are product tokens (User-Agent), not commands.
    Rule("cmdi-chain-word", "cmdi", r"(?:^|[;|`]|&&|\|\|)\s*(?:whoami|uname|wget|curl|netcat|nslookup|ifconfig|ipconfig|netstat|systeminfo|tasklist|powershell|certutil|bitsadmin|busybox|getent)(?:$|[^\w/.-])", ERROR, check=_breakout(ERROR)),
    Rule("cmdi-subshell", "cmdi", r"\$\(\s*(?:" + _STRONG + r")\b|\$\(\(|<\(\s*\w|<\(\)", CRITICAL, check=_breakout(CRITICAL)),
    Rule("cmdi-subshell-any", "cmdi", r"\$\([^)]{0,200}\)", WARNING),
    # A quote closed, then a separator and a command: "||echo x, ';id
    Rule("cmdi-quote-break", "cmdi", r"['\"]\s*(?:;|\|\|?|&&?|\n)\s*(?:" + _STRONG + r")\b", CRITICAL),
    Rule("cmdi-leading-command", "cmdi", r"^\s*[;|&]+\s*(?:" + _STRONG + r"|for|if)\b|^\n(?:" + _STRONG + r")\b", CRITICAL),
    Rule("cmdi-command-line", "cmdi", r"^\s*(?:" + _TOOLS + r")(?:\.exe)?(?:\s+-{1,2}[a-z]|\s+[/\\~$]|\s+[a-z]:(?:$|\s|[/\\|])|\s+\d{1,3}\.\d|\s+(?:add|localgroup|user|firewall|query|delete)\b|\s*[|;&`])", CRITICAL, check=_command_line(CRITICAL)),
    Rule("cmdi-chain-unix", "cmdi", r"(?:[;|&]|\|\||\$\()\s*(?:" + _UNIX + r")(?:$|\s|;|\||['\"])", ERROR, check=_breakout(ERROR)),
    Rule("cmdi-chain-unix-args", "cmdi", r"(?:[;|&]|\|\||\$\()\s*(?:" + _UNIX + r")(?:\s+(?:/[a-z]\b|-[a-z])|\s*[<>])", CRITICAL, check=_breakout(CRITICAL)),
    Rule("cmdi-chain-unix-tight", "cmdi", r"(?:^|[^\w\s`])(?:[;|&]|\|\||\$\()(?:" + _UNIX + r")(?:$|\s|;|\||['\"])", CRITICAL, check=_breakout(CRITICAL)),
    Rule("cmdi-unix-command-line", "cmdi", r"^\s*(?:" + _UNIX + r")(?:\s+-{1,2}[a-z]|\s+[/\\~$]|\s+[\w.-]+\.(?:sh|py|pl|rb|yml|yaml|txt|conf)\b|\s+[\w-]+\s+-)", CRITICAL, check=_command_line(CRITICAL)),
    Rule("cmdi-prefixed-command", "cmdi", r"(?:^|[;|&]\s*)(?:time|nohup|strace|ltrace|nice|stdbuf|sudo|exec|watch|xargs|which|whereis|command\s+-v|cpulimit(?:\s+-\w+\s+\S+)*\s+-f)\s*(?:;\s*)?(?:-\S+\s+)*(?:" + _STRONG + r"|" + _UNIX + r")(?:$|\s|;|\|)", CRITICAL, check=_breakout(CRITICAL)),
    Rule("cmdi-shell-var-split", "cmdi", r"[a-z]\$[_!@*#?$0-9-][a-z]*[\s+]+/|<<<|[<>]\(\s*\w|[<>]\(\)|[;|&]\s*['\"](?:" + _STRONG + r")['\"]|[;|&]\s*['\"](?:" + _UNIX + r")['\"](?:\s+-|\s*$|\s*[;|&])|\|\s*\$\w+\s+(?:" + _STRONG + r")\b", CRITICAL),
    Rule("cmdi-bare-recon", "cmdi", r"^\s*['\"`]?\s*(?:whoami|uname|ifconfig|ipconfig|netstat|systeminfo|tasklist|nslookup|visudo)\s*['\"`]?\s*$|^\s*\n\s*(?:" + _STRONG + r")\s*$|^\s*\\(?:ls|cat|id|whoami|uname|wget|curl)\b|^\s*sleep\s+\d+\s*$|^\s*['\"]?`(?:true|false|id)`['\"]?\s*$", CRITICAL, plain=True),
    Rule("cmdi-plus-spaced", "cmdi", r"(?:^|[|&;$+])\+*(?:dir|ls|cat|type)[+\s][a-z]:[/\\+|]*(?:$|[\s+|&;])|(?:\\033|\\x1b|\\e|\x1b)\[\d*[a-z]|\\n(?:echo|exit|curl|wget|sleep|id|whoami)\b", CRITICAL),
    Rule("cmdi-brace-quote-tricks", "cmdi", r"\{,[^}\s]{1,40}\}|\{[\w$'\"-]{1,20},\}|\{[a-z]{1,8},-?[a-z]{1,8}\}[a-z]|[a-z]\{[a-z]{1,8},[a-z]{1,8}\}[a-z]|(?:^|[\s;|&=])'[a-z]{1,4}'[a-z]{2,}|^\s*['\"]\s*id\s*['\"]\s*$", CRITICAL),
    Rule("cmdi-admin-tool", "cmdi", r"(?:^|[;|&]\s*)['\"]?(?:ansible(?:-[a-z]+)?|chef-[a-z]+|visudo|cscli|aa-[a-z]+|lastlogin|c\d\d\s+-wrapper)\b|\$\w+\s+-[a-z]*[lnvpe]{2,}|[a-z]\$\(\)[a-z]*\s+[\d-]|[a-z]{2,}\$[a-z]\s+-[a-z]", CRITICAL),
    Rule("cmdi-misc-forms", "cmdi", r"^\s*~[-+]?\d*\s*$|^\s*!(?:!|-?\d+)(?:!-?\d+)*\s*$|['\"]\s+(?:ping|nc|curl|wget)(?:\.exe)?\s+-|\.\\?['\"]?(?:shell|system|sh)\b\s+(?:" + _STRONG + r")\b|\bset\s+[-+]o\s+\w+|\bif\s+(?:not\s+)?\S*%\d|\bif\s+\d+\s+(?:equ|neq|lss|leq|gtr|geq)\s+\d+|\|\s*(?:ba|z|k|da)?sh\b\s*(?:$|[#;&|])|\btrap\s+['\"]|\brm\s+-[rf]{1,2}\s+(?:[/~*$]|\.(?:\s|$))|(?:[;|&])\s*\$[a-z_]\w*\s+[\w$]|\b[a-z]+(?:''|\"\")[a-z]+\s+(?:-\w|curl|wget|\w+\.\w+)|(?:^|\s)'[a-z]+'\s+(?:" + _STRONG + r")\b", CRITICAL),
    Rule("cmdi-interpreter-eval", "cmdi", r"\b(?:perl|ruby|python[23]?|php|node|lua)\s+-[ecr]\s", CRITICAL),
    Rule("cmdi-win-for-if", "cmdi", r"\bfor\s+(?:/[a-z]\s+(?:[a-z]:\\\s+)?)*(?:\"[^\"]{0,60}\"\s+)?%%?[\w\]]+\s+in\s*\(|\bif\s+(?:not\s+)?(?:\[[^\]]{0,30}\]|\([^)]{0,30}\))\s*(?:==|equ|neq|lss|leq|gtr|geq)\s|\bif\s+(?:/i\s+)?(?:not\s+)?(?:exist\s|errorlevel\s|cmdextversion\s|defined\s|%[\w!]+%|\"[^\"]{0,40}\"\s*(?:==|equ|neq|lss|leq|gtr|geq)|\[%\d\]\s*==|[\w\"!%]+==[\w\"!%]+\s+\w)", CRITICAL),
    Rule("cmdi-glob-path", "cmdi", r"/(?:[\w]*[?*\[][\w?*\[\]!^-]*)/[\w?*\[\]!^-]+|/[?*]{2,}/|/\w*\[[^\]\s]{1,10}\][\w?*\[\]-]*(?:/|$|\s)|/\w+\*/\*?\w*", CRITICAL),
    Rule("cmdi-quote-split", "cmdi", r"(?:[a-z](?:''|\"\"|\\|\^)){3,}[a-z]|(?:\"\"[a-z]){3,}", CRITICAL),
    Rule("cmdi-alias", "cmdi", r"\balias\s+(?:[-+]\w+\s+)*['\"]?[\w.-]+['\"]?\s*=", CRITICAL, check=_not_in_prose(CRITICAL)),
    Rule("cmdi-forkbomb", "cmdi", r"\(\s*\)\s*\{[^}]{0,40}\|[^}]{0,40}&\s*\}", CRITICAL),
    Rule("cmdi-powershell", "cmdi", r"\b(?:invoke-(?:webrequest|expression|restmethod|command|item|wmimethod)|new-object\s+(?:net\.webclient|system\.)|start-process|get-wmiobject|downloadstring|downloadfile|set-executionpolicy|add-type|-encodedcommand|-exec\s+bypass)\b", CRITICAL),
    Rule("cmdi-mail-ftp", "cmdi", r"\r\n?\s*(?:retr|stor|dele|mail\s+from|rcpt\s+to|helo|ehlo|rset|vrfy|expn|site\s+exec|quit|help|data|top\s+\d|apop|auth|[a-z]\w{0,4}\s+(?:login|select|fetch|uid|list|capability|copy|store|search|examine|logout|append|rename|create|delete|noop|authenticate|status))\b", CRITICAL),
    # Not after another backtick: Markdown fences (```python) are not shell.
    Rule("cmdi-backtick", "cmdi", r"(?:^|[^`])`\s*(?:(?:" + _BACKTICK + r")(?:\s[^`]{0,200})?|" + _BACKTICK_WITH_ARGS + r")`", CRITICAL, check=_backtick(CRITICAL)),
    # A plain ${name} is everyday docs ("the env var is ${DATABASE_URL}"); glued to
    # letters it splits a command word (c${u}at), with :offset it cuts letters out.
    Rule("cmdi-ifs", "cmdi", r"\$\{?ifs\b|\$\{[a-z_]+:-?\d*(?::\d+)?\}|[a-z]\$\{[\w.]+\}|\$\{[\w.]+\}[a-z]|(?:^|[^\w\s])\$\{[\w.#{}]+\}|\{(?:" + _STRONG + r"),[^}\s]{1,80}\}|[a-z]\$@|\$@[a-z]", CRITICAL),
    Rule("cmdi-shellshock", "cmdi", r"\(\s*\)\s*\{[^}]{0,40};\s*\}\s*;|(?:^|[=:'\";])\s*\(\s*\)\s*\{|\(\s*\)[\s.]{0,3}\{[\s.]{0,3}:[\s.]{0,3};[\s.]{0,3}\}[\s.]{0,3};", CRITICAL),
    Rule("cmdi-shell-path", "cmdi", r"(?:^|[\s;|&`'\"(=:>])(?:/usr)?(?:/local)?/s?bin/(?:ba|z|k|c|da|tc)?sh\b|/bin/(?:cat|ls|id|nc|busybox|echo|ping|uname|whoami|bash|python\w*|perl|sleep|wget|curl)\b|\bcmd(?:\.exe)?\s*/[ck]\b|\bpowershell(?:\.exe)?\s+-|\bnc(?:at)?\s+-[elvnpu]|\b(?:ba|z|k|c|da|tc)?sh\s+-[ci]\b|/dev/(?:tcp|udp)/|(?:^|[\s;|&'\"=(])/(?:usr/)?s?bin/\w", CRITICAL, check=_path_mentioned(CRITICAL)),
    Rule("cmdi-redirect", "cmdi", r"(?:>>?|<)\s*/(?:tmp|dev|etc|var|proc)/|2>&1|>\s*&\s*\d", WARNING),
    # The whole value is a download command: what a shell runs, not a mention in prose.
    Rule("cmdi-download-value", "cmdi", r"^\s*[;|&`$(]*\s*(?:wget|curl)\s+(?:-[a-z]+\s+)*(?:https?|ftp)://\S+\s*$", CRITICAL),
    Rule("cmdi-download-exec", "cmdi", r"\b(?:wget|curl)\s+(?:-[a-z]+\s+)*(?:https?|ftp)://|\|\s*(?:ba)?sh\b|\bchmod\s+[+0-7]", ERROR),
    Rule("cmdi-ping-sleep", "cmdi", r"\bping\s+-[a-z]\s*\d|\bping\s+\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\bsleep\s+\d+\s*(?:$|[;|&`])|\btimeout\s+/t\b", ERROR),
    Rule("cmdi-win-cmd", "cmdi", r"\b(?:net\s+(?:user|localgroup|view|share)|reg\s+(?:query|add|delete|save|export)\b|for\s+/[fdlr]\b|%comspec%|%systemroot%|%windir%|type\s+[a-z]:\\)", ERROR),
    Rule("cmdi-metachar-leading", "cmdi", r"^[\s;|&]*[;|&]\s*[a-z]", NOTICE, level=2),
    # A whole value that is a command line (a command, its flags, a path and at most
    # one more word) ended by a newline (%0a): what a shell reads as one command, the
    # app's own text following on the next line.
    Rule("cmdi-newline-terminated", "cmdi", r"^\s*(?:shutdown|reboot|halt|poweroff|whoami|uname|id|ifconfig|ipconfig|netstat|pwd)\s*\n\s*$|^\s*(?:" + _TOOLS + r")(?:\.exe)?(?:\s+-{1,2}[a-z][\w-]*)*\s+[/\\~]\S*(?:\s+\S+)?[ \t]*\n\s*$", CRITICAL),
    # The whole value asks where a network or shell tool is installed: the probe a
    # command injection sends first to see what it can run.
    Rule("cmdi-tool-probe", "cmdi", r"^\s*(?:which|whereis|command\s+-v|type\s+-[pa])\s+(?:curl|wget|nc|ncat|netcat|socat|telnet|nmap|bash|sh|busybox|gcc)\s*$", CRITICAL),
    # Perl's @{[ ... ]} runs code inside a string that is interpolated.
    Rule("cmdi-perl-interpolation", "cmdi", r"@\{\[[^\]]{0,80}\b(?:system|exec|qx|readpipe)\b", CRITICAL),
)
# fmt: on
