"""Which user names sign-up accepts: normalized, plain, not reserved, not confusable.

* Normalized: NFKC + casefold + strip (:func:`~pynomaly_security.auth.users.normalize_username`),
  so ``Alice``, ``ALICE`` and a full-width ``alice`` (U+FF41...) are one name.
* Plain: letters, marks, digits and ``. _ - @ +`` only, starting with a letter
  or digit: no controls, no format characters (zero-width, bidi overrides), no
  spaces, no markup (``< > & " ' /``...). A name is shown to other people.
* Not reserved: ``admin``, ``root``... (the ``reserved_usernames`` setting), nor
  anything that looks like one.
* Not confusable with an existing name: two names whose Unicode TR39
  *skeletons* are equal look alike (``alice`` with a Cyrillic ``a``, U+0430, and the Latin one;
  ``rn`` and ``m``). The skeleton comes from ICU's spoof checker (PyICU, the
  ``usernames`` extra: ICU is the reference implementation of UTS #39 and
  follows each Unicode release). Without ICU only ASCII names are accepted,
  with a small ASCII fold (``0``/``o``, ``1``/``l``, ``rn``/``m``, ``vv``/``w``):
  we refuse what we cannot compare rather than accept it unexamined.

References: Unicode Technical Standard #39 (Unicode Security Mechanisms,
section 4 "Confusable Detection"); RFC 8265 (PRECIS usernames); OWASP
Authentication Cheat Sheet ("User IDs").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from pynomaly_security.auth.users import normalize_username
from pynomaly_security.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = ["DEFAULT_RESERVED", "UsernamePolicy", "icu_skeleton"]

DEFAULT_RESERVED = (
    "admin",
    "administrator",
    "root",
    "system",
    "sysadmin",
    "support",
    "security",
    "superuser",
    "moderator",
    "staff",
    "owner",
    "webmaster",
    "hostmaster",
    "postmaster",
    "abuse",
    "noreply",
    "no-reply",
    "help",
    "info",
    "api",
    "null",
)
_EXTRA_CHARACTERS = frozenset("._-@+")
_ALLOWED_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Nd"})
# Without ICU: ASCII look-alikes folded to one form (UTS #39 maps these too).
_ASCII_FOLD = str.maketrans({"0": "o", "1": "l", "|": "l"})
_ASCII_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def icu_skeleton() -> Callable[[str], str] | None:
    """ICU's UTS #39 skeleton function, or None when PyICU is not installed."""
    try:
        import icu  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    checker = icu.SpoofChecker()

    def skeleton(name: str) -> str:
        return str(checker.getSkeleton(0, name))

    return skeleton


def _ascii_skeleton(name: str) -> str:
    folded = name.translate(_ASCII_FOLD)
    for pair, single in _ASCII_PAIRS:
        folded = folded.replace(pair, single)
    return folded


class UsernamePolicy:
    """Normalize user names and decide which sign-up accepts.

    Args:
        reserved: names refused, with every name confusable with one.
        min_length, max_length: bounds in characters, after normalization.
        skeleton: the UTS #39 skeleton function; default ICU's when installed,
            else ASCII names only with an ASCII fold.
        ascii_only: accept ASCII names only (with the ASCII fold as skeleton
            unless ``skeleton`` is given); default: when ICU is not installed.
    """

    def __init__(
        self,
        reserved: Iterable[str] = DEFAULT_RESERVED,
        *,
        min_length: int = 3,
        max_length: int = 64,
        skeleton: Callable[[str], str] | None = None,
        ascii_only: bool | None = None,
    ) -> None:
        if not 1 <= min_length <= max_length:
            raise ConfigurationError("need 1 <= min_length <= max_length for user names")
        self.min_length = min_length
        self.max_length = max_length
        if skeleton is None and not ascii_only:
            skeleton = icu_skeleton()
        self.unicode = not ascii_only if ascii_only is not None else skeleton is not None
        self._skeleton = skeleton or _ascii_skeleton
        self._reserved = frozenset(self.skeleton(normalize_username(r)) for r in reserved if r)

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> UsernamePolicy:
        return cls(settings.reserved_usernames)

    @staticmethod
    def normalize(name: str) -> str:
        return normalize_username(name)

    def skeleton(self, name: str) -> str:
        """The UTS #39 skeleton of a normalized name: equal skeletons look alike."""
        return self._skeleton(name)

    def problem(self, name: str) -> str | None:
        """Why the normalized ``name`` is not a well-formed user name, or None.

        Only the form is judged here, never whether the name exists.
        """
        if not self.min_length <= len(name) <= self.max_length:
            return f"username must be {self.min_length}-{self.max_length} characters"
        for char in name:
            if char in _EXTRA_CHARACTERS:
                continue
            if unicodedata.category(char) not in _ALLOWED_CATEGORIES:
                return "username may contain only letters, digits and . _ - @ +"
            if not self.unicode and not char.isascii():
                return "username must be ASCII letters, digits and . _ - @ +"
        if name[0] in _EXTRA_CHARACTERS or unicodedata.category(name[0]).startswith("M"):
            return "username must start with a letter or a digit"
        return None

    def is_reserved(self, name: str) -> bool:
        """Whether the normalized ``name`` is, or looks like, a reserved name."""
        return self.skeleton(name) in self._reserved
