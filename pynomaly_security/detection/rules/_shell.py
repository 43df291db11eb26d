"""Reads a value the way a POSIX shell would, so obfuscated commands match.

``;c\\at /e\\tc/pa\\sswd``, ``;i"d"``, ``; c''a''t``, ``;$'\\x69\\x64'``,
``; a=i;b=d;$a$b`` and ``;{i\\d,}`` all run ``cat /etc/passwd`` or ``id`` in a
shell, but none of them spells the command word, so rules over the
normalized text miss them. :func:`shell_view` gives the text the shell would
execute, which the command-injection and path rules scan as well:

1. ANSI-C quoting ``$'...'`` decoded (``\\xHH``, ``\\NNN``, ``\\uHHHH``, ``\\n``...);
2. words split, quotes and backslash escapes removed by :mod:`shlex`
   (POSIX mode, ``;|&<>()`` and backtick as punctuation, line by line); an unbalanced
   quote is read as closing the application's own quote (``name'; id``), or
   failing that as closed at the end;
3. simple assignments at command position (``a=i``) recorded and ``$a``,
   ``${a}`` expanded (unknown variables and ``$@``/``$*``/``$1``: empty;
   ``$IFS``: a space), empty ``$()`` and backtick pairs dropped;
4. one brace list per word expanded (``{cat,/etc/passwd}``, ``{id,}``).

Cost is bounded: only values with obfuscation inside a word and a separator,
substitution or brace list are read, only the lines with quotes, escapes or
expansions are split (by :mod:`shlex`, which is slow), at most
``MAX_SHELL_CHARS`` characters per call (a longer text is read in overlapping
windows by the caller, :class:`~pynomaly_security.detection._engine.RuleEngine`,
its CPU budget checked between them), with at most ``MAX_VARIABLES``
variables of ``MAX_VARIABLE_CHARS`` each and ``MAX_BRACE_ITEMS`` brace items.
The view over-approximates (``'$a'`` is expanded too): it only ever adds
evidence for rules that also need a command shape to match.

References:
    POSIX Shell Command Language, 2.2 Quoting, 2.6 Word Expansions:
    https://pubs.opengroup.org/onlinepubs/9699919799/utilities/V3_chap02.html
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import re2

__all__ = ["MAX_SHELL_CHARS", "may_read_differently", "shell_view"]

MAX_SHELL_CHARS = 2048
MAX_VARIABLES = 32
MAX_VARIABLE_CHARS = 64
MAX_BRACE_ITEMS = 16

# Obfuscation inside a word: what makes a shell read a value differently from
# its letters. Prose apostrophes ("don't", "rock 'n' roll") and whole quoted
# words are not enough: most values never get a shell reading (it costs).
# RE2: one linear scan, much cheaper than Python's re over this alternation.
_TRIGGER: Any = re2.compile(
    r"""[a-z0-9]\\[a-z0-9/]|[a-z](?:''|"")|(?:''|"")[a-z]|[a-z]"[a-z]|[a-z]'[a-z]{1,12}'|'[a-z]{1,12}'[a-z]"""
    r"""|\$'|[a-z]\$[a-z{@*0-9]|[\w}]\$\{?[a-z]|\$\{?[a-z_]\w*\}?\$|\$\(\s*\)|(?:^|[^`])`\s*`(?:[^`]|$)"""
    r"""|\$\{?ifs|(?:^|[;\s])[a-z_]\w{0,30}=[^\s;&|"'<>]{1,64}\s*;|\{[^{}\s":]{1,80},[^{}\s":]{0,80}\}"""
)
# Where a shell reading can matter: a separator, a substitution or a brace
# list (an injected command needs one to run after the application's own).
_SHELL_CHARS = re.compile(r"[\\'\"$`{]")
_COMMAND_CONTEXT = re.compile(r"[;|&`\n{]|\$\(")
_ANSI_C = re.compile(r"\$'((?:[^'\\]|\\.)*)'?", re.DOTALL)
_ANSI_ESCAPE = re.compile(r"\\(?:x([0-9a-f]{1,2})|u([0-9a-f]{1,4})|([0-7]{1,3})|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b",
                   "f": "\f", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}  # fmt: skip
_ASSIGNMENT = re.compile(r"([a-z_]\w{0,30})=(.*)", re.DOTALL)
_EXPANSION = re.compile(r"\$(?:\{([^}]{0,40})\}|([a-z_]\w{0,30})|([@*#?!$0-9-]))")
_NAME_END = re.compile(r"\$([a-z_]\w{0,30})(?=[\\'\"])")
_EMPTY_SUBST = re.compile(r"\$\(\s*\)|`\s*`")
_BRACE = re.compile(r"\{([^{}]{0,200},[^{}]{0,200})\}")
_BRACE_WORD = re.compile(r"[a-z/]")
_SEPARATORS = frozenset({";", "&", "&&", "|", "||", "(", ")"})


def _ansi_c(match: re.Match[str]) -> str:
    def one(escape: re.Match[str]) -> str:
        hex_code, unicode_code, octal, simple = escape.groups()
        if hex_code or unicode_code:
            return chr(int(hex_code or unicode_code, 16))
        if octal:
            return chr(int(octal, 8) & 0xFF)
        return _SIMPLE_ESCAPES.get(simple, "\\" + simple)

    # Re-quoted with single quotes so shlex keeps the decoded text as one word.
    return "'" + _ANSI_ESCAPE.sub(one, match.group(1)).replace("'", "'\\''") + "'"


def _words(text: str) -> list[str]:
    # An unbalanced quote usually closes the application's own quote
    # (``name'; id``): read it as opened before the value first, then as
    # closed after it.
    for candidate in (text, "'" + text, '"' + text, text + "'", text + '"'):
        # A backtick is a token of its own, kept as it is (the rules read
        # ```id``` as command substitution).
        lexer = shlex.shlex(candidate, posix=True, punctuation_chars=";&|()<>`")
        lexer.whitespace_split = True
        lexer.commenters = ""  # '#' is not a comment inside an injected fragment
        try:
            return list(lexer)
        except ValueError:  # "No closing quotation": try the next reading
            continue
    return text.split()


def _expand(word: str, variables: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        braced, name, special = match.groups()
        if special is not None:
            return ""  # $@ $* $1 ...: empty in an injected command
        key = (braced or name or "").split(":", 1)[0].strip()
        if key == "ifs":
            return " "
        return variables.get(key, "")

    return _EXPANSION.sub(one, _EMPTY_SUBST.sub("", word))


def _brace(word: str) -> str:
    found = _BRACE.search(word)
    if found is None or not _BRACE_WORD.search(found.group(1)):
        return word  # {1,5}: a regular expression's repeat, not a command list
    head, tail = word[: found.start()], word[found.end() :]
    items = found.group(1).split(",")[:MAX_BRACE_ITEMS]
    return " ".join(f"{head}{item}{tail}" for item in items if head or item or tail)


def may_read_differently(text: str) -> bool:
    """Whether any part of ``text`` might get a shell reading (two character-class
    searches): a caller reading a long text window by window asks once."""
    return _SHELL_CHARS.search(text) is not None and _COMMAND_CONTEXT.search(text) is not None


def shell_view(text: str) -> str | None:
    """What a shell would run for ``text`` (normalized, lower case), or ``None``
    when the value has no quoting, escapes or expansions to undo."""
    if (
        _SHELL_CHARS.search(text) is None  # one character class: the cheap test first
        or _COMMAND_CONTEXT.search(text) is None
        or _TRIGGER.search(text) is None
    ):
        return None
    text = text[:MAX_SHELL_CHARS]
    if "$'" in text:
        text = _ANSI_C.sub(_ansi_c, text)
    variables: dict[str, str] = {}
    lines = []
    # Line by line, each keeping its indentation: rules read a newline as a
    # separator only when a command follows at once (not in indented code).
    for line in text.split("\n"):
        body = line.lstrip(" \t")
        if _SHELL_CHARS.search(body) is None:
            lines.append(line)  # nothing to undo on this line (shlex is slow)
            continue
        # A quote or backslash ends a variable's name (``$u\\c`` is ``$u`` then ``c``), but shlex
        # removes it before names are read: braced first, the name keeps its end.
        indent = line[: len(line) - len(body)]
        body = _NAME_END.sub(r"${\1}", body)
        lines.append(indent + _join(_line_words(body, variables)))
    view = "\n".join(lines)[: 2 * MAX_SHELL_CHARS]  # expansions may lengthen it
    return view if view != text else None


def _line_words(line: str, variables: dict[str, str]) -> list[str]:
    out: list[str] = []
    command_position = True
    for word in _words(line):
        if word in _SEPARATORS or (word and set(word) <= {";", "&", "|", "`"}):
            out.append(word)
            command_position = True
            continue
        if command_position:
            assignment = _ASSIGNMENT.fullmatch(word)
            if assignment is not None:
                if len(variables) < MAX_VARIABLES:
                    value = _expand(assignment.group(2), variables)[:MAX_VARIABLE_CHARS]
                    variables[assignment.group(1)] = value
                out.append(word)
                continue  # an assignment prefix: the next word is still a command
        command_position = False
        if "$" in word or "`" in word:
            word = _expand(word, variables)
        if "{" in word and "," in word:
            word = _brace(word)
        out.append(word)
    return out


def _join(words: list[str]) -> str:
    """Words joined by spaces, backticks without (```id```, as rules expect)."""
    parts: list[str] = []
    glue = ""
    for word in words:
        if not word:
            continue
        if word == "`":
            parts.append(word)
            glue = ""
            continue
        parts.append(glue + word)
        glue = " "
    return "".join(parts)
