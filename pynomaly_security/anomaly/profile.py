"""The per-endpoint profile: what each endpoint's traffic looks like, learned by counting.

For every endpoint the profile counts its requests, methods, body types and
parameter-name sets; for every parameter of an endpoint, how often it appears
(so which are required), the character classes of its values, their lengths
(powers of two), their shapes and (as keyed digests) their values; over all
requests, the header names and the path's character classes. Everything is a
count, so two workers' profiles merge by adding (the shared backend's tallies,
``TallyStore.add_tallies``), a restart loses nothing the backend kept, and the
profile saves as the same counts in a JSON file (:meth:`Profile.to_tallies`).

A request is scored by *surprisal*, in decimal digits: ``log10((n + 1) / (c +
0.5))`` for something seen ``c`` times in ``n`` chances, so 4 means "about one
in ten thousand". A never-seen shape or value counts with the Good-Turing
estimate of meeting something new (how many were seen once), so a free-text
field, whose shapes are mostly new, costs little, and a field with five values
costs a lot for a sixth. The request's score is the sum over what it has, and
each part is named (:class:`Finding`) for the alert's explanation.

Bounds (every map here is bounded; past a bound, new keys are counted as
"other", never stored): endpoints, parameters per endpoint, shapes, values and
parameter sets per parameter or endpoint, header names (:class:`ProfileBounds`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from pynomaly_security.anomaly.features import CHAR_CLASSES, RequestFeatures

__all__ = ["Finding", "Profile", "ProfileBounds", "surprisal"]


def surprisal(count: float, total: float) -> float:
    """``log10((total + 1) / (count + 0.5))``: decimal digits of surprise."""
    return math.log10((total + 1.0) / (count + 0.5))


@dataclass(frozen=True, slots=True)
class ProfileBounds:
    endpoints: int = 2_000
    params: int = 64
    """Parameters per endpoint."""
    shapes: int = 48
    """Shapes per parameter."""
    values: int = 48
    """Value digests per parameter."""
    signatures: int = 48
    """Parameter-name sets per endpoint."""
    headers: int = 128


@dataclass(frozen=True, slots=True)
class Finding:
    """One part of a request's surprisal: what was unusual, and how much (digits)."""

    what: str
    where: str
    surprisal: float

    def explain(self) -> dict[str, object]:
        return {"feature": self.what, "where": self.where, "surprisal": round(self.surprisal, 2)}


_NCLASS = len(CHAR_CLASSES)
_RARE = 1.0  # surprisal below this (more common than 1 in 10) is not reported


def _bits(mask: int) -> Iterable[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _bucket(length: int) -> int:
    return length.bit_length()


def _bounded_add(counts: dict[str, int], key: str, limit: int, amount: int = 1) -> bool:
    """Add to ``counts[key]`` if kept or room is left; False when it had to go to "other"."""
    if key in counts or len(counts) < limit:
        counts[key] = counts.get(key, 0) + amount
        return True
    return False


@dataclass(slots=True)
class _Param:
    n: int = 0
    classes: list[int] = field(default_factory=lambda: [0] * _NCLASS)
    lengths: dict[int, int] = field(default_factory=dict)
    shapes: dict[str, int] = field(default_factory=dict)
    shape_other: int = 0
    values: dict[str, int] = field(default_factory=dict)
    value_other: int = 0
    # Compiled for scoring (None: recompute).
    _new_shape: float | None = None
    _new_value: float | None = None

    def new_shape(self) -> float:
        if self._new_shape is None:
            once = sum(1 for c in self.shapes.values() if c == 1) + self.shape_other
            self._new_shape = surprisal(once, self.n)
        return self._new_shape

    def new_value(self) -> float:
        if self._new_value is None:
            once = sum(1 for c in self.values.values() if c == 1) + self.value_other
            self._new_value = surprisal(once, self.n)
        return self._new_value


@dataclass(slots=True)
class _Endpoint:
    n: int = 0
    methods: dict[str, int] = field(default_factory=dict)
    body_types: dict[str, int] = field(default_factory=dict)
    params: dict[str, _Param] = field(default_factory=dict)
    param_other: int = 0
    signatures: dict[str, int] = field(default_factory=dict)
    signature_other: int = 0


def _signature(features: RequestFeatures) -> str:
    return ",".join(sorted({p.name for p in features.params}))[:512]


class Profile:
    """Counts of what each endpoint's traffic looks like (module docstring).

    Args:
        bounds: the most of each thing kept.
        min_requests: requests of an endpoint before it is judged (fewer: its
            requests score as an unknown endpoint's would not, they score 0).
    """

    def __init__(self, bounds: ProfileBounds | None = None, *, min_requests: int = 20) -> None:
        self.bounds = bounds or ProfileBounds()
        self.min_requests = min_requests
        self.n = 0
        self.endpoints: dict[str, _Endpoint] = {}
        self.endpoint_other = 0
        self.headers: dict[str, int] = {}
        self.path_classes = [0] * _NCLASS
        # Site-wide: an unknown endpoint in a known directory with a known extension
        # is less surprising than one in a new place (`/x.jsp.BAK`, `/`).
        self.dirs: dict[str, int] = {}
        self.extensions: dict[str, int] = {}
        self.methods: dict[str, int] = {}

    # -- learning --------------------------------------------------------------------
    def learn(self, f: RequestFeatures, delta: Counter[str] | None = None) -> None:
        """Count one request; ``delta`` (when given) receives the same counts as tally
        keys (what a worker adds to the shared backend)."""
        b = self.bounds
        self.n += 1
        out = delta if delta is not None else _NO_DELTA
        out["n"] += 1
        for bit in _bits(f.path_mask):
            self.path_classes[bit] += 1
            out[f"pc|{bit}"] += 1
        for name in f.header_names:
            if _bounded_add(self.headers, name, b.headers):
                out[f"h|{_q(name)}"] += 1
        if _bounded_add(self.methods, f.method, 16):
            out["m|" + _q(f.method)] += 1
        if _bounded_add(self.dirs, _dir(f.endpoint), b.endpoints):
            out["d|" + _q(_dir(f.endpoint))] += 1
        if _bounded_add(self.extensions, f.extension, 64):
            out["x|" + _q(f.extension)] += 1
        ep = self.endpoints.get(f.endpoint)
        if ep is None:
            if len(self.endpoints) >= b.endpoints:
                self.endpoint_other += 1
                out["eo"] += 1
                return
            ep = self.endpoints[f.endpoint] = _Endpoint()
        e = f"e|{_q(f.endpoint)}|"
        ep.n += 1
        out[e + "n"] += 1
        if _bounded_add(ep.methods, f.method, 8):
            out[e + "m|" + _q(f.method)] += 1
        if _bounded_add(ep.body_types, f.body_type, 8):
            out[e + "t|" + f.body_type] += 1
        sig = _signature(f)
        if _bounded_add(ep.signatures, sig, b.signatures):
            out[e + "g|" + _q(sig)] += 1
        else:
            ep.signature_other += 1
            out[e + "go"] += 1
        seen: set[str] = set()
        for p in f.params:
            if p.name in seen:
                continue
            seen.add(p.name)
            ps = ep.params.get(p.name)
            if ps is None:
                if len(ep.params) >= b.params:
                    ep.param_other += 1
                    out[e + "po"] += 1
                    continue
                ps = ep.params[p.name] = _Param()
            k = f"{e}p|{_q(p.name)}|"
            ps.n += 1
            ps._new_shape = ps._new_value = None
            out[k + "n"] += 1
            for bit in _bits(p.mask):
                ps.classes[bit] += 1
                out[f"{k}c|{bit}"] += 1
            bucket = _bucket(p.length)
            ps.lengths[bucket] = ps.lengths.get(bucket, 0) + 1
            out[f"{k}l|{bucket}"] += 1
            if _bounded_add(ps.shapes, p.shape, b.shapes):
                out[k + "s|" + _q(p.shape)] += 1
            else:
                ps.shape_other += 1
                out[k + "so"] += 1
            if p.digest is not None:
                if _bounded_add(ps.values, p.digest, b.values):
                    out[k + "v|" + p.digest] += 1
                else:
                    ps.value_other += 1
                    out[k + "vo"] += 1

    # -- scoring ---------------------------------------------------------------------
    def score(self, f: RequestFeatures) -> tuple[float, list[Finding]]:
        """The request's surprisal (decimal digits) and its named parts, largest first."""
        found: list[Finding] = []
        total = self.n
        if total < self.min_requests:
            return 0.0, found
        for name in f.header_names:
            if name not in self.headers:
                found.append(Finding("unseen header", name, surprisal(0, total)))
        if f.method not in self.methods:
            found.append(Finding(f"method {f.method} never used", "site", surprisal(0, total)))
        ep = self.endpoints.get(f.endpoint)
        if ep is None or ep.n < self.min_requests:
            if ep is None:
                found.append(
                    Finding("unknown endpoint", f.endpoint, surprisal(self.endpoint_other, total))
                )
                where = _dir(f.endpoint)
                if where not in self.dirs:
                    found.append(Finding("unknown directory", where, _novel(self.dirs, total)))
                if f.extension not in self.extensions:
                    found.append(
                        Finding(
                            "unknown file extension", f.extension, _novel(self.extensions, total)
                        )
                    )
            for bit in _bits(f.path_mask):
                s = surprisal(self.path_classes[bit], total)
                if s >= _RARE:
                    found.append(Finding(f"unusual character {_cls(bit)} in path", "path", s))
            return _total(found)
        n = ep.n
        count = ep.methods.get(f.method)
        if count is None:
            found.append(Finding(f"method {f.method} never used here", f.endpoint, surprisal(0, n)))
        count = ep.body_types.get(f.body_type)
        if count is None:
            found.append(Finding(f"body type {f.body_type}", f.endpoint, surprisal(0, n)))
        present: set[str] = set()
        for p in f.params:
            if p.name in present:
                found.append(Finding("repeated parameter", p.name, surprisal(0, n)))
                continue
            present.add(p.name)
            ps = ep.params.get(p.name)
            if ps is None:
                found.append(Finding("unknown parameter", p.name, surprisal(ep.param_other, n)))
                continue
            pn = ps.n
            for bit in _bits(p.mask):
                s = surprisal(ps.classes[bit], pn)
                if s >= _RARE:
                    found.append(Finding(f"unusual character {_cls(bit)}", p.name, s))
            s = surprisal(ps.lengths.get(_bucket(p.length), 0), pn)
            if s >= _RARE:
                found.append(Finding(f"unusual length {p.length}", p.name, s))
            if p.shape not in ps.shapes:
                s = ps.new_shape()
                if s >= _RARE:
                    found.append(Finding("value of an unseen shape", p.name, s))
            if p.digest is not None and p.digest not in ps.values:
                s = ps.new_value()
                if s >= _RARE:
                    found.append(Finding("value never seen here", p.name, s))
        for name, ps in ep.params.items():
            if name not in present and ps.n * 50 >= n * 49:  # required: in >= 98%
                found.append(Finding("missing parameter", name, surprisal(n - ps.n, n)))
        if _signature(f) not in ep.signatures:
            once = sum(1 for c in ep.signatures.values() if c == 1) + ep.signature_other
            s = surprisal(once, n)
            if s >= _RARE:
                found.append(Finding("unseen set of parameters", f.endpoint, s))
        return _total(found)

    # -- persistence: the same counts as tally keys -----------------------------------
    def to_tallies(self) -> dict[str, int]:
        """Every count as a tally key (the shared backend's and the JSON file's form;
        :mod:`~pynomaly_security.anomaly.tallies`)."""
        from pynomaly_security.anomaly.tallies import profile_tallies

        return profile_tallies(self)

    @classmethod
    def from_tallies(
        cls,
        tallies: Mapping[str, int],
        bounds: ProfileBounds | None = None,
        *,
        min_requests: int = 20,
    ) -> Profile:
        """The profile these counts describe (:func:`~pynomaly_security.anomaly.tallies.
        load_tallies`: the bounds keep the most frequent, malformed keys are ignored)."""
        from pynomaly_security.anomaly.tallies import load_tallies

        profile = cls(bounds, min_requests=min_requests)
        load_tallies(profile, tallies)
        return profile

    def summary(self) -> dict[str, int]:
        return {
            "requests": self.n,
            "endpoints": len(self.endpoints),
            "parameters": sum(len(e.params) for e in self.endpoints.values()),
        }


def _total(found: list[Finding]) -> tuple[float, list[Finding]]:
    found.sort(key=lambda x: -x.surprisal)
    return sum(x.surprisal for x in found), found


def _dir(endpoint: str) -> str:
    return endpoint.rpartition("/")[0]


def _novel(counts: Mapping[str, int], total: int) -> float:
    """Surprisal of something new among ``counts`` (Good-Turing: as often as
    things seen once were)."""
    return surprisal(sum(1 for c in counts.values() if c == 1), total)


def _cls(bit: int) -> str:
    name = CHAR_CLASSES[bit]
    return repr(name) if len(name) == 1 else name


def _q(text: str) -> str:
    return quote(text, safe="")


def _u(text: str) -> str:
    return unquote(text)


class _NoDelta(Counter[str]):
    """Where counts go when nobody asked for them (offline training)."""

    def __missing__(self, key: str) -> int:
        return 0

    def __setitem__(self, key: str, value: int) -> None:
        pass


_NO_DELTA = _NoDelta()
