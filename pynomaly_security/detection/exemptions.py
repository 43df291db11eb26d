"""``@inspection_exempt``: exempt a route, or some of its fields, in code.

    @app.post("/cms/pages")
    @inspection_exempt(fields=["body.content"])
    async def save_page(page: Page) -> ...: ...

    @app.post("/admin/sql")
    @inspection_exempt()
    async def sql_console(...) -> ...: ...

The decorator only stores metadata on the endpoint function (the function is
returned unchanged, so FastAPI's signature inspection is not disturbed). The
middleware runs before routing, so it resolves the route itself:
:func:`match_route_policy` walks the app's routes with Starlette's own
``route.matches(scope)`` and returns the route template (for
``RequestParts.route``) and the policy from :func:`route_policy_for` plus the
route's typed fields from :func:`typed_fields_of`; pass the policy as
``Inspector.inspect(parts, route_policy=...)``.
"""

from __future__ import annotations

import datetime
import enum
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pynomaly_security.detection.policy import RoutePolicy

__all__ = [
    "EXEMPTION_ATTR",
    "Exemption",
    "inspection_exempt",
    "route_policy_for",
    "typed_fields_of",
]

EXEMPTION_ATTR = "__pynomaly_inspection_exempt__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Exemption:
    """``fields is None`` exempts the whole route."""

    fields: frozenset[str] | None = None


def inspection_exempt(*, fields: Iterable[str] | None = None) -> Callable[[F], F]:
    """Mark an endpoint as not inspected (``fields=None``) or some fields only."""
    spec = Exemption(None if fields is None else frozenset(fields))

    def decorate(endpoint: F) -> F:
        setattr(endpoint, EXEMPTION_ATTR, spec)
        return endpoint

    return decorate


def _type_name(annotation: Any) -> str | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        names = {_type_name(arg) for arg in typing.get_args(annotation) if arg is not type(None)}
        return names.pop() if len(names) == 1 else None
    if origin is typing.Literal:
        return "enum"
    if not isinstance(annotation, type):
        return None
    if issubclass(annotation, bool):
        return "bool"
    if issubclass(annotation, enum.Enum):
        return "enum"
    if issubclass(annotation, int):
        return "int"
    if issubclass(annotation, float):
        return "float"
    if issubclass(annotation, uuid.UUID):
        return "uuid"
    if issubclass(annotation, datetime.datetime):
        return "datetime"
    if issubclass(annotation, datetime.date):
        return "date"
    return None


def typed_fields_of(route: Any) -> dict[str, str]:
    """Declared scalar types of a FastAPI route's query, header and cookie
    parameters, as ``{"query.limit": "int", ...}``; ``{}`` for anything else."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return {}
    typed: dict[str, str] = {}
    for prefix, params in (
        ("query", getattr(dependant, "query_params", ())),
        ("header", getattr(dependant, "header_params", ())),
        ("cookie", getattr(dependant, "cookie_params", ())),
    ):
        for param in params:
            info = getattr(param, "field_info", None)
            name = _type_name(getattr(info, "annotation", None))
            alias = getattr(param, "alias", None) or getattr(param, "name", "")
            if name and alias:
                key = alias.lower().replace("_", "-") if prefix == "header" else alias
                typed[f"{prefix}.{key}"] = name
    typed.update(_typed_body_fields(dependant))
    return typed


def _typed_body_fields(dependant: Any) -> dict[str, str]:
    """Scalar fields of the route's body models: ``{"body.price": "float", ...}``.

    FastAPI reads a single body model at the top of the JSON document and several
    (or an ``embed=True`` one) under their names; nested models are followed a few
    levels deep. Form fields (``Form()``) land under ``body.<name>`` the same way.
    """
    params = list(getattr(dependant, "body_params", ()))
    if not params:
        return {}
    typed: dict[str, str] = {}
    embed = len(params) > 1 or bool(getattr(getattr(params[0], "field_info", None), "embed", False))
    for param in params:
        info = getattr(param, "field_info", None)
        annotation = getattr(info, "annotation", None)
        alias = getattr(param, "alias", None) or getattr(param, "name", "")
        prefix = f"body.{alias}" if embed else "body"
        name = _type_name(annotation)
        if name is not None:
            typed[prefix if embed else f"body.{alias}"] = name
        else:
            _model_fields(annotation, prefix, typed, depth=4)
    return typed


def _model_fields(model: Any, prefix: str, typed: dict[str, str], depth: int) -> None:
    fields = getattr(model, "model_fields", None)
    if depth <= 0 or not isinstance(fields, dict):
        return
    for field_name, info in fields.items():
        key = f"{prefix}.{getattr(info, 'alias', None) or field_name}"
        annotation = getattr(info, "annotation", None)
        name = _type_name(annotation)
        if name is not None:
            typed[key] = name
        else:
            _model_fields(annotation, key, typed, depth - 1)


def route_policy_for(
    endpoint: Callable[..., Any] | None,
    *,
    typed_fields: Mapping[str, str] | None = None,
) -> RoutePolicy | None:
    """The policy from an endpoint's ``@inspection_exempt`` plus typed fields."""
    spec = getattr(endpoint, EXEMPTION_ATTR, None) if endpoint is not None else None
    if spec is None and not typed_fields:
        return None
    exempt = isinstance(spec, Exemption) and spec.fields is None
    fields = spec.fields if isinstance(spec, Exemption) and spec.fields else frozenset()
    return RoutePolicy(exempt=exempt, exempt_fields=fields, typed_fields=dict(typed_fields or {}))


def match_route_policy(
    routes: Iterable[Any], scope: Mapping[str, Any]
) -> tuple[str | None, RoutePolicy | None]:
    """The template and policy of the first route that fully matches ``scope``.

    ``routes`` are Starlette/FastAPI routes (``app.router.routes``); mounts are
    descended with the child scope Starlette computes. Never raises: anything
    unexpected gives ``(None, None)`` and the request is inspected in full.
    """
    try:
        for route in routes:
            match, child = route.matches(scope)
            if getattr(match, "name", "") != "FULL":
                continue
            nested = getattr(route, "routes", None)
            if nested and getattr(route, "endpoint", None) is None:
                template, policy = match_route_policy(nested, {**scope, **child})
                if template is not None:
                    return template, policy
                continue
            endpoint = getattr(route, "endpoint", None)
            return getattr(route, "path", None), route_policy_for(
                endpoint, typed_fields=typed_fields_of(route)
            )
    except Exception:  # a route we do not understand must not break inspection
        return None, None
    return None, None
