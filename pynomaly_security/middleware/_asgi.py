"""``__call__`` of a layer that passes most requests through untouched.

Such a layer (the login lockout for every path but the login paths, the
inspection layer for a request it remembers as clean, the sign-up/MFA limits for
every other route) is a plain function returning the awaitable of the app it
wraps, or of its own coroutine when the request concerns it: a request it passes
costs no coroutine frame of its own (measured: about 1,500 instructions per
layer and request under valgrind). Awaiting it is the same to every caller.

Servers that inspect an app to tell ASGI 3 from ASGI 2 (uvicorn's
``interface="auto"`` reads ``asyncio.iscoroutinefunction(app.__call__)``) must
still see a coroutine function when such a layer is the app they serve, so the
function is marked as one: ``inspect.markcoroutinefunction`` (Python 3.12+), or
on 3.11 the marker ``asyncio.iscoroutinefunction`` reads, as asgiref's
``markcoroutinefunction`` does.

:class:`Layer` is what such a layer (and the stack's outer layer) derives from to call
the next app cheaply: through the bound ``__call__`` of the next layer rather than the
instance itself. CPython 3.11 inlines a call of a bound Python method in the caller's
eval loop; a call of an instance goes through the type's ``tp_call`` slot, a method
lookup and a new C-level eval loop. Measured on the default stack's GET (five such
calls: the outer layer, the rate limiter, the login guard, inspection, the metrics'
timer): 561,354 -> 556,572 instructions per request (``bench/overhead.py
--instructions --only get``, bare 443,466-444,196).
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["Layer", "next_call", "passes_through"]

_F = TypeVar("_F", bound=Callable[..., Awaitable[None]])


def passes_through(func: _F) -> _F:
    """Mark ``func`` (an ASGI ``__call__`` returning an awaitable) as a coroutine function."""
    if sys.version_info >= (3, 12):
        return inspect.markcoroutinefunction(func)
    func._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    return func


def next_call(app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """How to call ``app`` cheapest: the bound ``__call__`` of an instance whose class
    defines it in Python, else ``app`` itself (a function, a C callable)."""
    call = _inherited_call(app)
    if isinstance(call, types.FunctionType):
        return types.MethodType(call, app)  # what ``app.__call__`` is
    return app


def _inherited_call(app: object) -> object:
    """``__call__`` as the type's MRO defines it (the class or a base)."""
    for klass in type(app).__mro__:
        if "__call__" in vars(klass):
            return vars(klass)["__call__"]
    return None


class Layer:
    """A layer with a next app: ``self.app`` as in every ASGI middleware, and
    ``self.call_app``, the same app as :func:`next_call` calls it, kept in step with
    every assignment of ``app`` (the stack's switches re-point ``app`` at run time:
    ``decisions/index.py``, ``policy/engine.py``)."""

    app: Callable[..., Awaitable[None]]
    call_app: Callable[..., Awaitable[None]]

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name == "app":
            object.__setattr__(self, "call_app", next_call(value))  # type: ignore[arg-type]
