"""Markup sanitizing with nh3 (the maintained successor of bleach).

The inspection middleware never rewrites request bodies (the app receives
them byte for byte); sanitizing is applied where the app chooses: call
:meth:`InputSanitizer.sanitize`, or declare a model field as
:data:`SanitizedStr` / ``Annotated[str, sanitizer.validator]``.

Levels, when ``allow_html`` is true (with ``allow_html`` false every tag is
removed and only text is kept, whatever the level):

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

from pynomaly_security.settings import SanitizationLevel, SecuritySettings

__all__ = ["InputSanitizer", "SanitizedStr"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
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
        max_length: longer input is cut to this many characters first.
    """

    def __init__(
        self,
        level: SanitizationLevel | str = SanitizationLevel.STRICT,
        *,
        allow_html: bool = False,
        max_length: int | None = None,
    ) -> None:
        self.level = SanitizationLevel(level)
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
        return cls(settings.sanitization_level, allow_html=settings.allow_html)

    def sanitize(self, text: str) -> str:
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
        cleaned = nh3.clean(text, **kwargs)
        if not self.allow_html:
            # With no tags allowed nh3 escapes what is left ("&lt;" for a lone "<"):
            # keep plain text plain, it is not HTML.
            cleaned = (
                cleaned.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", '"')
                .replace("&#39;", "'")
                .replace("&amp;", "&")
            )
        return cleaned

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
        return AfterValidator(self.sanitize)


SanitizedStr = Annotated[str, InputSanitizer().validator]
"""A ``str`` model field with every tag removed (strict, no HTML)."""
