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
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

import nh3
from pydantic import AfterValidator

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.settings import SanitizationLevel, SecuritySettings

__all__ = ["InputSanitizer", "SanitizedStr"]

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


class InputSanitizer:
    """Clean untrusted text for storage or display.

    Args:
        level: ``strict``, ``moderate`` or ``permissive``.
        allow_html: keep the allowed tags of the level; false removes every tag.
        max_length: longer input is cut to this many characters first (>= 1).

    Raises:
        ConfigurationError: an unknown level, or ``max_length`` below 1.
    """

    def __init__(
        self,
        level: SanitizationLevel | str = SanitizationLevel.STRICT,
        *,
        allow_html: bool = False,
        max_length: int | None = None,
    ) -> None:
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
        """``text`` cut to ``max_length``, cleaned for the level (see the module)."""
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

    def sanitize_data(self, value: Any, *, max_depth: int = 32) -> Any:
        """Sanitize every string in a JSON-like structure (keys included)."""
        if max_depth <= 0:
            raise ValueError("value nested too deeply to sanitize")
        if isinstance(value, str):
            return self.sanitize(value)
        if isinstance(value, dict):
            return {
                self.sanitize(k) if isinstance(k, str) else k: self.sanitize_data(
                    v, max_depth=max_depth - 1
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self.sanitize_data(v, max_depth=max_depth - 1) for v in value)
        return value

    def would_change(self, text: str) -> bool:
        """Whether sanitizing alters ``text`` (markup that would not survive)."""
        return self.sanitize(text) != text

    @property
    def validator(self) -> AfterValidator:
        """A pydantic ``AfterValidator``: ``Annotated[str, sanitizer.validator]``."""
        return AfterValidator(self.sanitize)


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
