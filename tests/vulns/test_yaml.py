"""The fast YAML reader gives what the libyaml safe loader gives: on every shared YAML
advisory, and on the corners of YAML an advisory could carry (typed scalars, aliases,
explicit tags, merge keys, errors)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from pynomaly_security.vulns._yaml import safe_load
from tests.conftest import require_shared

_SAFE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _reference(text: str | bytes) -> Any:
    return yaml.load(text, Loader=_SAFE)


def test_every_shared_yaml_record_reads_the_same() -> None:
    root = require_shared("datasets", "advisories")
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    assert len(files) >= 2661  # the PyPA database at least
    differ = [p for p in files if safe_load(p.read_bytes()) != _reference(p.read_bytes())]
    assert differ == []


@pytest.mark.parametrize(
    "text",
    [
        "id: X\npublished: 2021-07-21T00:00:00Z\nmodified: 2021-07-21 10:00:00.5\n",
        "versions: [1.0, 1.10, 0x1f, 0o17, 1_000, .inf, -.inf, .nan, 2, +3, -4, 1e3]\n",
        "a: yes\nb: No\nc: ~\nd: null\ne: ''\nf: true\ng: 'true'\nh: \"1.0\"\ni:\n",
        "base: &b {k: 1, v: [x, 2021-01-01]}\nsame: *b\nlist: &l [1, 2]\nagain: *l\n",
        "explicit: !!str 1.0\nnumber: !!int '7'\nfloat: !!float '1'\n",
        "base: &b {k: 1}\nmerged:\n  <<: *b\n  v: 2\n",
        "set: !!set {a, b}\n",
        "? [1, 2]\n: unhashable key\n",
        "1: int key\n2.5: float key\nnull: none key\n",
        "",
        "# only a comment\n",
        "just a string",
        "- top\n- level\n- list\n",
        "multi: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
        "dup: 1\ndup: 2\n",
        "id: X\n---\nid: Y\n",
        "id: X\naffected: [\n",
        "binary: !!binary aGVsbG8=\n",
        "tagged: !custom value\n",
        "= : value key\n",
    ],
)
def test_same_objects_or_same_error(text: str) -> None:
    try:
        expected = _reference(text)
    except yaml.YAMLError as exc:
        error = exc
    else:
        error = None
    if error is not None:
        with pytest.raises(type(error)) as raised:
            safe_load(text)
        assert str(raised.value) == str(error)
        return
    got = safe_load(text.encode())
    assert got == expected
    assert repr(got) == repr(expected)  # the same types too (1.0 stays a float, 1 an int)


def test_recursive_alias_is_the_same_object() -> None:
    data = safe_load("a: &x [1, *x]\n")
    assert data["a"][1] is data["a"]
