"""FastAPI's 422 answer, rendered so that no input can break it.

FastAPI answers a request it cannot validate with ``{"detail": errors}``, each
error echoing the offending ``input``. Its own handler raises while encoding
what it cannot write as JSON (a lone surrogate from a ``\\ud800`` escape or a
UTF-7 multipart part, ``NaN`` in an ``int`` field), so the client got a 500;
and the echo is as large as the input. :func:`validation_error_response`
renders the same shape with every value made encodable and bounded: strings
cut to :data:`MAX_TEXT` characters with lone surrogates replaced, non-finite
floats and huge integers as text, at most :data:`MAX_ERRORS` errors and
:data:`MAX_ITEMS` items per container, :data:`MAX_DEPTH` levels deep.

:func:`install_validation_handler` registers it on a FastAPI app unless the app
already has its own handler (``setup_security_middleware`` calls it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = [
    "MAX_DEPTH",
    "MAX_ERRORS",
    "MAX_ITEMS",
    "MAX_TEXT",
    "install_validation_handler",
    "safe_value",
    "validation_error_response",
]

MAX_ERRORS = 20
MAX_ITEMS = 20
MAX_TEXT = 256
MAX_DEPTH = 4
_MAX_INT_BITS = 64  # larger integers are shown by size: their digits could be 4,300 long


def _text(value: str) -> str:
    if len(value) > MAX_TEXT:
        value = value[: MAX_TEXT - 1] + "…"
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    return value


def safe_value(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON that always encodes, bounded in size."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return (
            value if value.bit_length() <= _MAX_INT_BITS else f"<int of {value.bit_length()} bits>"
        )
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray):
        return _text(bytes(value[: MAX_TEXT * 4]).decode("utf-8", "replace"))
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        return {
            _text(str(key)): safe_value(item, depth + 1)
            for key, item in list(value.items())[:MAX_ITEMS]
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [safe_value(item, depth + 1) for item in list(value)[:MAX_ITEMS]]
    try:
        return _text(str(value))  # an exception in ``ctx``, a model, a date...
    except Exception:  # a __str__ that raises must not make this raise
        return type(value).__name__


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    """The 422 FastAPI would answer for ``exc``, every value safe and bounded."""
    errors = exc.errors()
    return JSONResponse(
        {"detail": [safe_value(error) for error in list(errors)[:MAX_ERRORS]]},
        status_code=422,
    )


async def _handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for that type only
        raise exc
    return validation_error_response(exc)


def install_validation_handler(app: FastAPI) -> bool:
    """Render ``app``'s request validation errors with :func:`validation_error_response`,
    unless the app registered its own handler; ``True`` when installed."""
    current = app.exception_handlers.get(RequestValidationError)
    if current is not None and current is not request_validation_exception_handler:
        return False
    app.add_exception_handler(RequestValidationError, _handler)
    return True
