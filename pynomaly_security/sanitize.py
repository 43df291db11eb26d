"""Markup sanitizing with nh3 (the maintained successor of bleach).

The inspection middleware never rewrites request bodies (the app receives
them byte for byte); sanitizing is applied where the app chooses: call
:meth:`InputSanitizer.sanitize`, or declare a model field as
:data:`SanitizedStr` / ``Annotated[str, sanitizer.validator]``.

Levels, when ``allow_html`` is true (with ``allow_html`` false every tag is
removed and only text is kept, whatever the level; the text is returned
unescaped, and never holds a tag, even one written with entities such as
``&lt;script&gt;``):

- ``strict``: inline emphasis only (``b i em strong code br``); control
  characters removed; Unicode NFKC-normalized.
- ``moderate``: formatting, lists, quotes and links (``rel="noopener noreferrer"``,
  http/https/mailto only); control characters removed.
- ``permissive``: nh3's default allow-list.

The integration guide's spelling is the same object:
``InputSanitizer(SanitizationConfig(level="strict", max_length=5000, allow_html=False))``,
``sanitize_string`` (= :meth:`InputSanitizer.sanitize`) and ``sanitize_dict`` (every
string of a nested structure, keys included, within ``max_depth`` and ``max_items``:
a structure past either is refused with ``ValueError``, never returned half-cleaned).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any

import nh3
from pydantic import AfterValidator

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.settings import SanitizationLevel, SecuritySettings

__all__ = ["InputSanitizer", "SanitizationConfig", "SanitizedStr"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# What an HTML parser reads as the start of a tag, a comment or a declaration.
_TAG_START = re.compile(r"<[A-Za-z!/?]")
_PLAIN_ROUNDS = 4
"""Times plain text is cleaned (each round peels one layer of entities or of nested
``<``); text nested deeper loses every ``<`` left after the last round."""
_STRICT_TAGS = {"b", "i", "em", "strong", "code", "br"}
_MODERATE_TAGS = _STRICT_TAGS | {
    "p",
    "ul",
    "ol",
    "li",
    "blockquote",
    "pre",
    "a",
    "span",
    "h1",
    "h2",
    "h3",
    "h4",
    "hr",
}


_JSON_SCALARS = (int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class SanitizationConfig:
    """The integration guide's options of one :class:`InputSanitizer`.

    Args:
        level: ``strict``, ``moderate`` or ``permissive``.
        max_length: longer strings are cut to this many characters first (``None``: no cut).
        allow_html: keep the allowed tags of the level; false removes every tag.
        max_depth: nesting :meth:`InputSanitizer.sanitize_dict` accepts.
        max_items: strings, numbers and container entries ``sanitize_dict`` accepts in one
            structure (keys count apart from their values).
    """

    level: SanitizationLevel | str = SanitizationLevel.STRICT
    max_length: int | None = None
    allow_html: bool = False
    max_depth: int = 32
    max_items: int = 10_000


class InputSanitizer:
    """Clean untrusted text for storage or display.

    Args:
        level: ``strict``, ``moderate`` or ``permissive``, or a whole
            :class:`SanitizationConfig` (the guide's form; then the keywords must be
            left out).
        allow_html: keep the allowed tags of the level; false removes every tag.
        max_length: longer input is cut to this many characters first (>= 1).

    Raises:
        ConfigurationError: an unknown level, a limit below 1, or a config together
            with keywords.
    """

    def __init__(
        self,
        level: SanitizationConfig | SanitizationLevel | str = SanitizationLevel.STRICT,
        *,
        allow_html: bool | None = None,
        max_length: int | None = None,
    ) -> None:
        if isinstance(level, SanitizationConfig):
            if allow_html is not None or max_length is not None:
                raise ConfigurationError(
                    "pass either a SanitizationConfig or allow_html=/max_length=, not both"
                )
            config = level
        else:
            config = SanitizationConfig(level, max_length, bool(allow_html))
        level, allow_html, max_length = config.level, config.allow_html, config.max_length
        for name in ("max_depth", "max_items"):
            if getattr(config, name) < 1:
                raise ConfigurationError(f"{name} must be >= 1, got {getattr(config, name)!r}")
        self.max_depth = config.max_depth
        self.max_items = config.max_items
        try:
            self.level = SanitizationLevel(level)
        except ValueError:
            choices = ", ".join(member.value for member in SanitizationLevel)
            raise ConfigurationError(
                f"sanitization level must be one of {choices}, got {level!r}"
            ) from None
        if max_length is not None and max_length < 1:
            raise ConfigurationError(f"max_length must be >= 1, got {max_length!r}")
        self.allow_html = allow_html
        self.max_length = max_length
        if not allow_html:
            self._tags: set[str] | None = set()
            self._attrs: dict[str, set[str]] | None = {}
        elif self.level is SanitizationLevel.STRICT:
            self._tags, self._attrs = set(_STRICT_TAGS), {}
        elif self.level is SanitizationLevel.MODERATE:
            self._tags, self._attrs = set(_MODERATE_TAGS), {"a": {"href", "title"}}
        else:
            self._tags, self._attrs = None, None  # nh3 defaults

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> InputSanitizer:
        """The sanitizer of ``SANITIZATION_LEVEL`` and ``ALLOW_HTML``."""
        return cls(settings.sanitization_level, allow_html=settings.allow_html)

    def sanitize(self, text: str) -> str:
        """``text`` cut to ``max_length``, cleaned for the level (see the module).
        The guide calls it ``sanitize_string``."""
        if self.max_length is not None:
            text = text[: self.max_length]
        if self.level is not SanitizationLevel.PERMISSIVE:
            text = _CONTROL.sub("", text)
        if self.level is SanitizationLevel.STRICT:
            text = unicodedata.normalize("NFKC", text)
        kwargs: dict[str, Any] = {"url_schemes": {"http", "https", "mailto"}}
        if self._tags is not None:
            kwargs["tags"] = self._tags
        if self._attrs is not None:
            kwargs["attributes"] = self._attrs
        if self.allow_html:
            return nh3.clean(text, **kwargs)
        # With no tags allowed nh3 escapes what is left ("&lt;" for a lone "<"): plain
        # text is kept plain, unescaped. But nh3 decodes the input's own entities too,
        # so "&lt;script&gt;" would come out as "<script>", a tag in text promised to
        # have none: the text is cleaned again while it still holds one.
        for _ in range(_PLAIN_ROUNDS):
            cleaned = _unescape(nh3.clean(text, **kwargs))
            if cleaned == text or _TAG_START.search(cleaned) is None:
                return cleaned
            text = cleaned
        return cleaned.replace("<", "")  # nested past the rounds: no "<" is kept at all

    sanitize_string = sanitize

    def sanitize_dict(self, data: dict[str, Any]) -> dict[str, Any]:
        """The guide's name: :meth:`sanitize_data` of a ``dict`` (keys included), within
        ``max_depth`` and ``max_items``."""
        if not isinstance(data, dict):
            raise TypeError(f"sanitize_dict takes a dict, got {type(data).__name__}")
        result: dict[str, Any] = self.sanitize_data(data)
        return result

    def sanitize_data(
        self, value: Any, *, max_depth: int | None = None, max_items: int | None = None
    ) -> Any:
        """Sanitize every string in a JSON-like structure (keys included).

        Raises:
            ValueError: nested deeper than ``max_depth`` or holding more than ``max_items``
                strings, numbers and entries (the config's by default); the message names
                the limit and where (keys cut to 40 characters), never a value.
            TypeError: a value that is not JSON-like (bytes, sets, objects): its text
                could not be cleaned, so it is refused rather than passed through.
        """
        budget = [self.max_items if max_items is None else max_items]
        depth = self.max_depth if max_depth is None else max_depth
        return self._walk(value, depth, budget, "$")

    def _walk(self, value: Any, depth: int, budget: list[int], path: str) -> Any:
        if depth <= 0:
            raise ValueError(f"value nested too deeply to sanitize (at {path})")
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueError(f"value has too many items to sanitize (at {path})")
        if isinstance(value, str):
            return self.sanitize(value)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                key = self._walk(k, depth, budget, path) if isinstance(k, str) else k
                if not isinstance(key, str | int | float | bool | None):
                    raise TypeError(f"cannot sanitize a {type(k).__name__} key (at {path})")
                out[key] = self._walk(v, depth - 1, budget, f"{path}.{_label(key)}")
            return out
        if isinstance(value, list | tuple):
            items = [self._walk(v, depth - 1, budget, f"{path}[{i}]") for i, v in enumerate(value)]
            return type(value)(items)
        if isinstance(value, _JSON_SCALARS):
            return value
        raise TypeError(f"cannot sanitize a {type(value).__name__} value (at {path})")

    def would_change(self, text: str) -> bool:
        """Whether sanitizing alters ``text`` (markup that would not survive)."""
        return self.sanitize(text) != text

    @property
    def validator(self) -> AfterValidator:
        """A pydantic ``AfterValidator``: ``Annotated[str, sanitizer.validator]``."""
        return AfterValidator(self.sanitize)


def _label(key: Any) -> str:
    """A key as shown in an error's path: cut, so the message stays short."""
    text = str(key)
    return text if len(text) <= 40 else text[:40] + "..."


def _unescape(text: str) -> str:
    """Undo the five escapes nh3 writes in text."""
    return (
        text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&#39;", "'")
        .replace("&amp;", "&")
    )


SanitizedStr = Annotated[str, InputSanitizer().validator]
"""A ``str`` model field with every tag removed (strict, no HTML)."""
