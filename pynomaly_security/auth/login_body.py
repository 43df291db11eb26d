"""The user names a login request names, read the way FastAPI/Starlette will read them.

The login guard must know which account a login attempt is for *before* the
app checks the password (issue 12, item 9), and it must read the same name the
app will read, or an attacker varies what the guard sees while the app checks
the same account every time:

* no ``Content-Type`` or an ``application/json`` / ``+json`` one (as
  ``email.message`` parses it, FastAPI's test): JSON, duplicate keys resolved
  like ``json.loads`` (the last wins);
* ``application/x-www-form-urlencoded`` and ``multipart/form-data``: Starlette's
  own ``Request.form()`` over the buffered body (python-multipart's parsers),
  the last value of a repeated field as FastAPI takes it;
* the first ``Content-Type`` header, as ``Request.headers.get`` returns it.

Every configured user-name field present is returned (the app may read any of
them), so a body with ``username=a&email=b`` reserves attempts for both ``a``
and ``b``. A body we cannot read yields no names; the attempt then counts
against the client IP alone, which still bounds it.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.types import Message, Scope

from pynomaly_security.auth.users import normalize_username

__all__ = ["DEFAULT_USERNAME_FIELDS", "MAX_NAMES", "login_names"]

DEFAULT_USERNAME_FIELDS = ("username", "email", "login", "user")
MAX_NAMES = 4
"""Distinct names reserved per attempt at most (one per configured field)."""
_MAX_NAME = 256


def _content_type(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return bytes(value).decode("latin-1")
    return None


def _is_json(content_type: str | None) -> bool:
    # FastAPI (routing.get_request_handler): no (or an empty) Content-Type ->
    # JSON; otherwise the maintype must be "application" and the subtype "json"
    # or "*+json".
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _names(data: Mapping[str, Any], fields: Iterable[str]) -> tuple[str, ...]:
    names: list[str] = []
    for field in fields:
        value = data.get(field)
        if isinstance(value, str) and value:
            name = normalize_username(value[:_MAX_NAME])
            if name and name not in names:
                names.append(name)
        if len(names) >= MAX_NAMES:
            break
    return tuple(names)


async def login_names(
    scope: Scope, body: bytes, fields: Iterable[str] = DEFAULT_USERNAME_FIELDS
) -> tuple[str, ...]:
    """The normalized user names ``body`` gives in any of ``fields`` (possibly none)."""
    content_type = _content_type(scope)
    if _is_json(content_type):
        if not body:
            return ()
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return ()
        return _names(data, fields) if isinstance(data, dict) else ()
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    # A copy of the scope: Request caches what it parsed on the scope's state,
    # and the app must parse the body itself.
    request = Request({k: v for k, v in scope.items() if k not in ("state", "app")}, receive)
    try:
        form = await request.form()
    except Exception:  # malformed: the app answers 400/422 itself
        return ()
    try:
        # FastAPI reads one value per field with FormData.get(): the last one.
        return _names({k: form.get(k) for k in form}, fields)
    finally:
        await form.close()
