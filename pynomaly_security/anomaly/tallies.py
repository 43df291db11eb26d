"""A profile as tallies: the counts the shared backend and the JSON model file keep.

Keys are ``|``-separated, names percent-encoded (an attacker's path or parameter
name cannot forge a separator): ``n`` requests; ``m|GET``, ``d|/dir``, ``x|jsp``,
``h|host``, ``pc|<bit>`` site-wide; ``e|<endpoint>|n``, ``|m|``, ``|t|``, ``|g|``
(parameter sets), ``|go``, ``|po`` per endpoint; ``e|<endpoint>|p|<name>|n``,
``|c|<bit>``, ``|l|<bucket>``, ``|s|<shape>``, ``|so``, ``|v|<digest>``, ``|vo`` per
parameter. Adding two sets of tallies adds the profiles (workers, restarts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import TypeVar

from pynomaly_security.anomaly.profile import (
    Profile,
    ProfileBounds,
    _bounded_add,
    _Endpoint,
    _Param,
    _q,
    _u,
)

__all__ = ["load_tallies", "profile_tallies"]

_T = TypeVar("_T")


def profile_tallies(profile: Profile) -> dict[str, int]:
    """Every count of ``profile`` as a tally key."""
    out: Counter[str] = Counter()
    out["n"] = profile.n
    if profile.endpoint_other:
        out["eo"] = profile.endpoint_other
    for bit, c in enumerate(profile.path_classes):
        if c:
            out[f"pc|{bit}"] = c
    for name, c in profile.headers.items():
        out[f"h|{_q(name)}"] = c
    for head, table in (("m", profile.methods), ("d", profile.dirs), ("x", profile.extensions)):
        for name, c in table.items():
            out[f"{head}|{_q(name)}"] = c
    for epname, ep in profile.endpoints.items():
        e = f"e|{_q(epname)}|"
        out[e + "n"] = ep.n
        for m, c in ep.methods.items():
            out[e + "m|" + _q(m)] = c
        for t, c in ep.body_types.items():
            out[e + "t|" + t] = c
        for g, c in ep.signatures.items():
            out[e + "g|" + _q(g)] = c
        if ep.signature_other:
            out[e + "go"] = ep.signature_other
        if ep.param_other:
            out[e + "po"] = ep.param_other
        for pname, ps in ep.params.items():
            k = f"{e}p|{_q(pname)}|"
            out[k + "n"] = ps.n
            for bit, c in enumerate(ps.classes):
                if c:
                    out[f"{k}c|{bit}"] = c
            for bucket, c in ps.lengths.items():
                out[f"{k}l|{bucket}"] = c
            for s, c in ps.shapes.items():
                out[k + "s|" + _q(s)] = c
            if ps.shape_other:
                out[k + "so"] = ps.shape_other
            for v, c in ps.values.items():
                out[k + "v|" + v] = c
            if ps.value_other:
                out[k + "vo"] = ps.value_other
    return dict(out)


def load_tallies(profile: Profile, tallies: Mapping[str, int]) -> None:
    """Count ``tallies`` into the (empty) profile ``profile``. Keys past a bound (several
    workers may each have added up to it) keep the most frequent; malformed keys are
    ignored, so a foreign tally name cannot break loading or scoring."""
    b = profile.bounds
    for key, count in sorted(tallies.items(), key=lambda kv: -int(kv[1])):
        count = int(count)
        if count <= 0:
            continue
        try:
            _load(profile, key.split("|"), count, b)
        except (ValueError, IndexError):
            continue


def _load(profile: Profile, parts: list[str], count: int, b: ProfileBounds) -> None:
    head = parts[0]
    if head == "n":
        profile.n = count
    elif head == "eo":
        profile.endpoint_other += count
    elif head == "pc":
        profile.path_classes[int(parts[1])] = count
    elif head in ("m", "d", "x"):
        table = {"m": profile.methods, "d": profile.dirs, "x": profile.extensions}[head]
        _bounded_add(table, _u(parts[1]), 64 if head == "x" else b.endpoints, count)
    elif head == "h":
        _bounded_add(profile.headers, _u(parts[1]), b.headers, count)
    elif head == "e":
        ep = _entry(profile.endpoints, _u(parts[1]), b.endpoints, _Endpoint)
        if ep is None:
            return
        kind = parts[2]
        if kind == "n":
            ep.n = count
        elif kind == "m":
            ep.methods[_u(parts[3])] = count
        elif kind == "t":
            ep.body_types[parts[3]] = count
        elif kind == "g":
            if not _bounded_add(ep.signatures, _u(parts[3]), b.signatures, count):
                ep.signature_other += count
        elif kind == "go":
            ep.signature_other += count
        elif kind == "po":
            ep.param_other += count
        elif kind == "p":
            _load_param(ep, _u(parts[3]), parts[4:], count, b)


def _entry(table: dict[str, _T], name: str, cap: int, make: Callable[[], _T]) -> _T | None:
    """``table[name]``, made if the table has room (``cap`` names); None when it is full,
    so a stored profile never grows past the bounds it was learnt with."""
    found = table.get(name)
    if found is None and len(table) < cap:
        found = table[name] = make()
    return found


def _load_param(ep: _Endpoint, name: str, rest: list[str], count: int, b: ProfileBounds) -> None:
    ps = _entry(ep.params, name, b.params, _Param)
    if ps is None:
        return
    kind = rest[0]
    if kind == "n":
        ps.n = count
    elif kind == "c":
        ps.classes[int(rest[1])] = count
    elif kind == "l":
        ps.lengths[int(rest[1])] = count
    elif kind == "s":
        if not _bounded_add(ps.shapes, _u(rest[1]), b.shapes, count):
            ps.shape_other += count
    elif kind == "so":
        ps.shape_other += count
    elif kind == "v":
        if not _bounded_add(ps.values, rest[1], b.values, count):
            ps.value_other += count
    elif kind == "vo":
        ps.value_other += count
