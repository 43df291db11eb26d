"""``safe_load(data)``: what ``yaml.load(data, Loader=yaml.CSafeLoader)`` returns, faster.

The PyPA advisory database is YAML, and reading it dominated an import: libyaml
parses in C, but PyYAML's safe constructor then resolves every plain scalar with up to
three regular expressions and builds every node through its generic (recursive,
generator-based) machinery. Here libyaml still parses and composes the nodes; the
resolution of a plain scalar is the safe loader's own rule (its implicit resolvers, in
its order) remembered per value in a bounded dict (version strings repeat thousands of
times), and the tree is built by one small walk. A scalar the safe loader types (int,
float, bool, null, timestamp) is built by the safe constructor itself, so the result is
the same object; anything the walk does not handle (explicit tags, merge keys, sets)
sends the document through the plain ``CSafeLoader``. ``tests/vulns/test_osv.py``
checks the two give equal records on every shared advisory.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

__all__ = ["safe_load"]

_STR: str = BaseResolver.DEFAULT_SCALAR_TAG
_SEQ: str = BaseResolver.DEFAULT_SEQUENCE_TAG
_MAP: str = BaseResolver.DEFAULT_MAPPING_TAG
_MERGE = "tag:yaml.org,2002:merge"
_RESOLVERS: dict[Any, list[tuple[str, Any]]] = yaml.SafeLoader.yaml_implicit_resolvers
_CONSTRUCTORS: dict[Any, Any] = SafeConstructor.yaml_constructors
_CONSTRUCTOR = SafeConstructor()  # its scalar methods read only the node
_TAGS: dict[Any, str] = {}  # plain scalar -> the safe loader's tag
_TAGS_MAX = 8192
# Without libyaml there is nothing to gain: the pure-Python safe loader as before.
_C_BASE: Any = getattr(yaml, "CBaseLoader", None)
_C_SAFE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Unhandled(Exception):
    """A node the walk leaves to the full safe loader."""


def _plain_tag(value: str) -> str:
    tag = _TAGS.get(value)
    if tag is None:
        tag = _STR
        # BaseResolver.resolve's rule (the safe loader registers no wildcard resolver)
        for candidate, pattern in _RESOLVERS.get(value[:1], ()):
            if pattern.match(value):
                tag = candidate
                break
        if len(_TAGS) >= _TAGS_MAX:
            _TAGS.clear()  # bounded: a record's own strings, not a corpus, are worth keeping
        _TAGS[value] = tag
    return tag


if _C_BASE is not None:

    class _Composer(_C_BASE):  # type: ignore[misc]
        """libyaml's parser and composer with the safe loader's tags, resolved quickly."""

        def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
            if kind is ScalarNode:
                if not implicit[0]:
                    return _STR  # quoted or block: a string
                tag: str | None = _TAGS.get(value)  # once per node: the cache lookup inline
                return _plain_tag(value) if tag is None else tag
            return _SEQ if kind is SequenceNode else _MAP

        def descend_resolver(self, parent: Any, index: Any) -> None:
            return None  # no path resolvers

        def ascend_resolver(self) -> None:
            return None


def _build(node: Node, memo: dict[int, Any]) -> Any:
    tag = node.tag
    if tag == _STR and type(node) is ScalarNode:
        return node.value
    done = memo.get(id(node))
    if done is not None:
        return done  # an alias: the same object, as the safe loader gives
    if tag == _MAP and type(node) is MappingNode:
        mapping: dict[Any, Any] = {}
        memo[id(node)] = mapping
        for key, value in node.value:
            if key.tag == _MERGE:
                raise _Unhandled
            mapping[_build(key, memo)] = _build(value, memo)
        return mapping
    if tag == _SEQ and type(node) is SequenceNode:
        items: list[Any] = []
        memo[id(node)] = items
        items.extend(_build(item, memo) for item in node.value)
        return items
    if type(node) is ScalarNode and tag in _CONSTRUCTORS and tag != _MERGE:
        return _CONSTRUCTORS[tag](_CONSTRUCTOR, node)
    raise _Unhandled


def safe_load(data: bytes | str) -> Any:
    """The document as ``yaml.load(data, Loader=yaml.CSafeLoader)`` reads it (same
    objects, same :class:`yaml.YAMLError` on bad input)."""
    if _C_BASE is None:
        return yaml.load(data, Loader=_C_SAFE)  # noqa: S506 (the safe loader)
    composer = _Composer(data)
    try:
        node = composer.get_single_node()
    finally:
        composer.dispose()
    if node is None:
        return None
    try:
        return _build(node, {})
    except (_Unhandled, TypeError, RecursionError):
        # TypeError: an unhashable key, which the safe loader reports as a YAMLError.
        return yaml.load(data, Loader=_C_SAFE)  # noqa: S506 (the safe loader)
