"""Log output an attacker cannot forge: control characters escaped, secrets kept out.

Request paths, host names and user names are attacker text. Written raw into a
line-oriented log (structlog's default ``ConsoleRenderer``, a terminal, a file
read with ``tail``), a ``\\n`` starts a forged line and ``\\x1b[...`` rewrites the
operator's terminal; a lone surrogate (``"\\ud800"``, which ``json.loads``
produces from ``"\\ud800"``) makes the UTF-8 write raise. So:

* :func:`safe_text` is what the library applies to attacker text it logs
  itself (one ``str.isprintable`` call when there is nothing to escape); it
  also cuts the text at :data:`LOG_TEXT_MAX` characters, so a 60 KB path is
  not copied whole into every line that names it;
* :class:`EscapeControlCharacters` is a structlog processor doing the same for
  every string of every event, the app's own included: put it in the app's
  processor chain before the renderer (the library never configures
  structlog itself, STYLE 2.9). ``JSONRenderer`` already escapes control
  characters; the console renderer and key-value renderers do not;
* :class:`RedactQueryStrings` is a :mod:`logging` filter for uvicorn's access
  log, which writes each request line with its full query string (a token or
  password sent in a query string lands in the log). ``python -m examples``
  installs it; an app adds it with
  ``logging.getLogger("uvicorn.access").addFilter(RedactQueryStrings())``.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

__all__ = ["LOG_TEXT_MAX", "EscapeControlCharacters", "RedactQueryStrings", "safe_text"]

_MAX_DEPTH = 8
LOG_TEXT_MAX = 1024
"""Characters of one attacker-controlled value a log line keeps (before escaping)."""


def safe_text(text: str, limit: int | None = LOG_TEXT_MAX) -> str:
    """``text`` with every non-printable character (controls, escape sequences,
    line and paragraph separators, lone surrogates, ...) written as its Python
    escape (``\\n``, ``\\x1b``, ``\\u2028``, ``\\ud800``), and cut at ``limit``
    characters with a marker saying how many were left out (``None``: not cut);
    short printable text is returned as it is."""
    if limit is not None and len(text) > limit:
        return safe_text(text[:limit], None) + f"...[{len(text) - limit} more]"
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def _escape(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return safe_text(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {_escape(k, depth + 1): _escape(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_escape(v, depth + 1) for v in value)
    return value


class EscapeControlCharacters:
    """structlog processor: escape non-printable characters in every string of an
    event (keys and values, nested dicts, lists and tuples), so no logged value
    can break a line, drive a terminal or fail to encode.

    Place it last before the renderer::

        structlog.configure(processors=[..., EscapeControlCharacters(), ConsoleRenderer()])
    """

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        escaped: dict[str, Any] = _escape(dict(event_dict), 0)
        event_dict.clear()
        event_dict.update(escaped)
        return event_dict


class RedactQueryStrings(logging.Filter):
    """A :mod:`logging` filter for ``uvicorn.access``: the request line keeps its
    path and loses its query string (``/reset?token=...`` is logged as
    ``/reset?[redacted]``), and the path's control characters are escaped.

    uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with the arguments ``(client,
    method, path with query, http version, status)``; records of another shape
    pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, sep, _ = args[2].partition("?")
            record.args = (*args[:2], safe_text(path) + ("?[redacted]" if sep else ""), *args[3:])
        return True
