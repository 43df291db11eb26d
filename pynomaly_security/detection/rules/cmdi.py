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

from pynomaly_security.detection.rules.base import CRITICAL, ERROR, NOTICE, WARNING, Rule

__all__ = ["RULES"]

# Unambiguous tools: seeing one right after a shell separator is enough.
_STRONG = (
    r"whoami|uname|wget|curl|ncat|netcat|nc|ping|bash|sh|zsh|ksh|csh|tcsh|dash|python[23]?"
    r"|perl|ruby|php|nslookup|ifconfig|ipconfig|netstat|chmod|chown|telnet|powershell|pwsh"
    r"|cmd|certutil|bitsadmin|systeminfo|tasklist|taskkill|wmic|usleep|base64|xxd|busybox"
    r"|getent|hostname|passwd|useradd|nohup|xterm|socat|mkfifo|crontab|sudo|lsb_release"
    r"|sleep|id|ls|cat|dir|net|ver|env|pwd|uptime|w|who|ps|rm|echo|nmap|tftp|ftp|ssh|scp"
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
    r"|netstat|pwd|nslookup|dir|ps|reboot|shutdown|perl|python[23]?\s+-c|rm\s+-|chmod|echo\s"
    r"|touch\s|hostname"
)
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
    r"|tee|telnet|tftp|time|timeout|tmux|top|troff|ul|unexpand|uniq|unshare|unzip|update-alternatives"
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

# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("cmdi-chain", "cmdi", _SEP + r"(?:" + _STRONG + r")(?:\.exe)?" + _ARGS, CRITICAL),
    # Not before "/": "curl/8.0" and "Wget/1.21" are product tokens (User-Agent), not commands.
    Rule("cmdi-chain-word", "cmdi", r"(?:^|[;|`]|&&|\|\|)\s*(?:whoami|uname|wget|curl|netcat|nslookup|ifconfig|ipconfig|netstat|systeminfo|tasklist|powershell|certutil|bitsadmin|busybox|getent)(?:$|[^\w/.-])", ERROR),
    Rule("cmdi-subshell", "cmdi", r"\$\(\s*(?:" + _STRONG + r")\b|\$\(\(|<\(\s*\w|<\(\)", CRITICAL),
    Rule("cmdi-subshell-any", "cmdi", r"\$\([^)]{0,200}\)", WARNING),
    # A quote closed, then a separator and a command: "||echo x, ';id
    Rule("cmdi-quote-break", "cmdi", r"['\"]\s*(?:;|\|\|?|&&?|\n)\s*(?:" + _STRONG + r")\b", CRITICAL),
    Rule("cmdi-leading-command", "cmdi", r"^\s*[;|&]+\s*(?:" + _STRONG + r"|for|if)\b|^\n(?:" + _STRONG + r")\b", CRITICAL),
    Rule("cmdi-command-line", "cmdi", r"^\s*(?:" + _TOOLS + r")(?:\.exe)?(?:\s+-{1,2}[a-z]|\s+[/\\~$]|\s+[a-z]:(?:$|\s|[/\\|])|\s+\d{1,3}\.\d|\s+(?:add|localgroup|user|firewall|query|delete)\b|\s*[|;&`])", CRITICAL),
    Rule("cmdi-chain-unix", "cmdi", r"(?:[;|&]|\|\||\$\()\s*(?:" + _UNIX + r")(?:$|\s|;|\||['\"])", ERROR),
    Rule("cmdi-chain-unix-args", "cmdi", r"(?:[;|&]|\|\||\$\()\s*(?:" + _UNIX + r")(?:\s+(?:/[a-z]\b|-[a-z])|\s*[<>])", CRITICAL),
    Rule("cmdi-chain-unix-tight", "cmdi", r"(?:^|[^\w\s`])(?:[;|&]|\|\||\$\()(?:" + _UNIX + r")(?:$|\s|;|\||['\"])", CRITICAL),
    Rule("cmdi-unix-command-line", "cmdi", r"^\s*(?:" + _UNIX + r")(?:\s+-{1,2}[a-z]|\s+[/\\~$]|\s+[\w.-]+\.(?:sh|py|pl|rb|yml|yaml|txt|conf)\b|\s+[\w-]+\s+-)", CRITICAL),
    Rule("cmdi-prefixed-command", "cmdi", r"(?:^|[;|&]\s*)(?:time|nohup|strace|ltrace|nice|stdbuf|sudo|exec|watch|xargs|which|whereis|command\s+-v|cpulimit(?:\s+-\w+\s+\S+)*\s+-f)\s*(?:;\s*)?(?:-\S+\s+)*(?:" + _STRONG + r"|" + _UNIX + r")(?:$|\s|;|\|)", CRITICAL),
    Rule("cmdi-shell-var-split", "cmdi", r"[a-z]\$[_!@*#?$0-9-][a-z]*[\s+]+/|<<<|[<>]\(\s*\w|[<>]\(\)|[;|&]\s*['\"](?:" + _STRONG + r")['\"]|\|\s*\$\w+\s+(?:" + _STRONG + r")\b", CRITICAL),
    Rule("cmdi-bare-recon", "cmdi", r"^\s*['\"`]?\s*(?:whoami|uname|ifconfig|ipconfig|netstat|systeminfo|tasklist|nslookup|visudo)\s*['\"`]?\s*$|^\s*\n\s*(?:" + _STRONG + r")\s*$|^\s*\\(?:ls|cat|id|whoami|uname|wget|curl)\b|^\s*sleep\s+\d+\s*$|^\s*['\"]?`(?:true|false|id)`['\"]?\s*$", CRITICAL, plain=True),
    Rule("cmdi-plus-spaced", "cmdi", r"(?:^|[|&;$+])\+*(?:dir|ls|cat|type)[+\s][a-z]:[/\\+|]|(?:\\033|\\x1b|\\e|\x1b)\[\d*[a-z]|\\n(?:echo|exit|curl|wget|sleep|id|whoami)\b", CRITICAL),
    Rule("cmdi-brace-quote-tricks", "cmdi", r"\{,[^}\s]{1,40}\}|\{[\w$'\"-]{1,20},\}|\{[a-z]{1,8},-?[a-z]{1,8}\}[a-z]|[a-z]\{[a-z]{1,8},[a-z]{1,8}\}[a-z]|(?:^|[\s;|&=])'[a-z]{1,4}'[a-z]{2,}|^\s*['\"]\s*id\s*['\"]\s*$", CRITICAL),
    Rule("cmdi-admin-tool", "cmdi", r"(?:^|[;|&]\s*)['\"]?(?:ansible(?:-[a-z]+)?|chef-[a-z]+|visudo|cscli|aa-[a-z]+|lastlogin|c\d\d\s+-wrapper)\b|\$\w+\s+-[a-z]*[lnvpe]{2,}|[a-z]\$\(\)[a-z]*\s+[\d-]|[a-z]{2,}\$[a-z]\s+-[a-z]", CRITICAL),
    Rule("cmdi-misc-forms", "cmdi", r"^\s*~[-+]?\d*\s*$|^\s*!(?:!|-?\d+)(?:!-?\d+)*\s*$|['\"]\s+(?:ping|nc|curl|wget)(?:\.exe)?\s+-|\.\\?['\"]?(?:shell|system|sh)\b\s+(?:" + _STRONG + r")\b|\bset\s+[-+]o\s+\w+|\bif\s+(?:not\s+)?\S*%\d|\bif\s+\d+\s+(?:equ|neq|lss|leq|gtr|geq)\s+\d+|\|\s*(?:ba|z|k|da)?sh\b\s*(?:$|[#;&|])|\btrap\s+['\"]|\brm\s+-[rf]{1,2}\s+[/\w.~*]|(?:[;|&])\s*\$[a-z_]\w*\s+[\w$]|\b[a-z]+(?:''|\"\")[a-z]+\s+(?:-\w|curl|wget|\w+\.\w+)|(?:^|\s)'[a-z]+'\s+(?:" + _STRONG + r")\b", CRITICAL),
    Rule("cmdi-interpreter-eval", "cmdi", r"\b(?:perl|ruby|python[23]?|php|node|lua)\s+-[ecr]\s", CRITICAL),
    Rule("cmdi-win-for-if", "cmdi", r"\bfor\s+(?:/[a-z]\s+(?:[a-z]:\\\s+)?)*(?:\"[^\"]{0,60}\"\s+)?%%?[\w\]]+\s+in\s*\(|\bif\s+(?:not\s+)?(?:\[[^\]]{0,30}\]|\([^)]{0,30}\))\s*(?:==|equ|neq|lss|leq|gtr|geq)\s|\bif\s+(?:/i\s+)?(?:not\s+)?(?:exist\s|errorlevel\s|cmdextversion\s|defined\s|%[\w!]+%|\"[^\"]{0,40}\"\s*(?:==|equ|neq|lss|leq|gtr|geq)|\[%\d\]\s*==|[\w\"!%]+==[\w\"!%]+\s+\w)", CRITICAL),
    Rule("cmdi-glob-path", "cmdi", r"/(?:[\w]*[?*\[][\w?*\[\]!^-]*)/[\w?*\[\]!^-]+|/[?*]{2,}/|/\w*\[[^\]\s]{1,10}\][\w?*\[\]-]*(?:/|$|\s)|/\w+\*/\*?\w*", CRITICAL),
    Rule("cmdi-quote-split", "cmdi", r"(?:[a-z](?:''|\"\"|\\|\^)){3,}[a-z]|(?:\"\"[a-z]){3,}", CRITICAL),
    Rule("cmdi-alias", "cmdi", r"\balias\s+(?:[-+]\w+\s+)*['\"]?[\w.-]+['\"]?\s*=", CRITICAL),
    Rule("cmdi-forkbomb", "cmdi", r"\(\s*\)\s*\{[^}]{0,40}\|[^}]{0,40}&\s*\}", CRITICAL),
    Rule("cmdi-powershell", "cmdi", r"\b(?:invoke-(?:webrequest|expression|restmethod|command|item|wmimethod)|new-object\s+(?:net\.webclient|system\.)|start-process|get-wmiobject|downloadstring|downloadfile|set-executionpolicy|add-type|-encodedcommand|-exec\s+bypass)\b", CRITICAL),
    Rule("cmdi-mail-ftp", "cmdi", r"\r\n?\s*(?:retr|stor|dele|mail\s+from|rcpt\s+to|helo|ehlo|rset|vrfy|expn|site\s+exec|quit|help|data|top\s+\d|apop|auth|[a-z]\w{0,4}\s+(?:login|select|fetch|uid|list|capability|copy|store|search|examine|logout|append|rename|create|delete|noop|authenticate|status))\b", CRITICAL),
    # Not after another backtick: Markdown fences (```python) are not shell.
    Rule("cmdi-backtick", "cmdi", r"(?:^|[^`])`\s*(?:" + _BACKTICK + r")(?:\s[^`]{0,200})?`", CRITICAL),
    Rule("cmdi-ifs", "cmdi", r"\$\{?ifs\b|\$\{[a-z_]+(?::-?\d*)?(?::\d+)?\}|\{(?:" + _STRONG + r"),[^}\s]{1,80}\}|[a-z]\$@|\$@[a-z]", CRITICAL),
    Rule("cmdi-shellshock", "cmdi", r"\(\s*\)\s*\{[^}]{0,40};\s*\}\s*;|(?:^|[=:'\";])\s*\(\s*\)\s*\{", CRITICAL),
    Rule("cmdi-shell-path", "cmdi", r"(?:^|[\s;|&`'\"(=:>])(?:/usr)?(?:/local)?/s?bin/(?:ba|z|k|c|da|tc)?sh\b|/bin/(?:cat|ls|id|nc|busybox|echo|ping|uname|whoami|bash|python\w*|perl|sleep|wget|curl)\b|\bcmd(?:\.exe)?\s*/[ck]\b|\bpowershell(?:\.exe)?\s+-|\bnc(?:at)?\s+-[elvnpu]|\b(?:ba|z|k|c|da|tc)?sh\s+-[ci]\b|/dev/(?:tcp|udp)/|(?:^|[\s;|&'\"=(])/(?:usr/)?s?bin/\w", CRITICAL),
    Rule("cmdi-redirect", "cmdi", r"(?:>>?|<)\s*/(?:tmp|dev|etc|var|proc)/|2>&1|>\s*&\s*\d", WARNING),
    Rule("cmdi-download-exec", "cmdi", r"\b(?:wget|curl)\s+(?:-[a-z]+\s+)*(?:https?|ftp)://|\|\s*(?:ba)?sh\b|\bchmod\s+[+0-7]", ERROR),
    Rule("cmdi-ping-sleep", "cmdi", r"\bping\s+-[a-z]\s*\d|\bping\s+\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\bsleep\s+\d+\s*(?:$|[;|&`])|\btimeout\s+/t\b", ERROR),
    Rule("cmdi-win-cmd", "cmdi", r"\b(?:net\s+(?:user|localgroup|view|share)|reg\s+(?:query|add|delete|save|export)\b|for\s+/[fdlr]\b|%comspec%|%systemroot%|%windir%|type\s+[a-z]:\\)", ERROR),
    Rule("cmdi-metachar-leading", "cmdi", r"^\s*[;|&]+\s*[a-z]", NOTICE, level=2),
)
# fmt: on
