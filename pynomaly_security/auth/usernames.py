"""Which user names sign-up accepts: normalized, plain, one script, not reserved, not confusable.

* Normalized: NFKC + casefold + strip (:func:`~pynomaly_security.auth.users.normalize_username`),
  so ``Alice``, ``ALICE`` and a full-width ``alice`` (U+FF41...) are one name.
* Plain: letters, marks, digits and ``. _ - @ +`` only, starting with a letter
  or digit: no controls, no format characters (zero-width, bidi overrides), no
  spaces, no markup (``< > & " ' /``...). A name is shown to other people.
* One script, no stray marks (UTS #39 section 5): the name meets ICU's
  *moderately restrictive* level (one script; or Latin with one other script
  that is not Cyrillic or Greek; or Latin with Han and Japanese or Korean), so
  ``alice`` with a Cyrillic ``a`` (U+0430) is refused outright; it uses only
  characters recommended for identifiers, does not mix digits of two scripts,
  and has no combining mark that NFC left standing after a letter of a script
  that spells with precomposed letters (Latin, Greek, Cyrillic): ``alice`` with
  a combining dot above (U+0307) after its ``i`` looks like ``alice`` but is
  another name. No mark hidden by its base (ICU's hidden-overlay check), none
  repeated, at most four in a row (section 5.4). Scripts that spell with marks
  (Devanagari, Thai, Arabic...) keep them. The price: a Latin letter with two
  accents and no precomposed form (Yoruba e with dot below and acute) is
  refused too.
* Not reserved: ``admin``, ``root``... (the ``reserved_usernames`` setting), nor
  anything that looks like one: the same skeleton once trailing separators are
  dropped (``admin.``, ``root_``) and digits and ``@`` read as the letters they
  stand for (``0``/``o``, ``1``/``l``/``i``, ``3``/``e``, ``4``/``a``, ``5``/``s``,
  ``7``/``t``, ``@``/``a``: ``r00t``, ``adm1n``).
* Not confusable with an existing name: two names whose Unicode TR39
  *skeletons* are equal look alike (``scope`` written in Cyrillic letters,
  U+0455 U+0441 U+043E U+0440 U+0435, and the Latin one; ``rn`` and ``m``). The
  skeleton comes from ICU's spoof checker (PyICU, the ``usernames`` extra: ICU
  is the reference implementation of UTS #39 and follows each Unicode release).
  Without ICU only ASCII names are accepted, with a small ASCII fold
  (``0``/``o``, ``1``/``l``, ``rn``/``m``, ``vv``/``w``): we refuse what we
  cannot compare rather than accept it unexamined, so each check above holds
  without the extra too (a non-ASCII name is refused).

References: Unicode Technical Standard #39 (Unicode Security Mechanisms,
section 4 "Confusable Detection", 5.2 "Restriction-Level Detection", 5.3
"Mixed-Number Detection", 5.4 "Optional Detection"); RFC 8265 (PRECIS
usernames); OWASP Authentication Cheat Sheet ("User IDs").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pynomaly_security.auth.users import normalize_username
from pynomaly_security.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = ["DEFAULT_RESERVED", "UsernamePolicy", "icu_script_check", "icu_skeleton"]

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
_SEPARATORS = "".join(sorted(_EXTRA_CHARACTERS))
_ALLOWED_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Nd"})
# Without ICU: ASCII look-alikes folded to one form (UTS #39 maps these too).
_ASCII_FOLD = str.maketrans({"0": "o", "1": "l", "|": "l"})
_ASCII_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))
# Reserved names only: digits and "@" read as the letters they stand in for, over
# a skeleton (which writes 0 as O and 1, I and | as l). l and i become one letter,
# since 1 stands for either.
_STAND_INS = str.maketrans(
    {"0": "o", "1": "i", "l": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a"}
)
# USPOOF_HIDDEN_OVERLAY (ICU 62+; PyICU has no name for it): a mark its base hides.
_HIDDEN_OVERLAY = 256
# UTS #39 section 5.4: more nonspacing marks in a row than any script needs.
_MAX_MARKS = 4


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


def icu_script_check() -> Callable[[str], str | None] | None:
    """ICU's UTS #39 section 5 checks of a normalized name (why it fails, or None),
    or None when PyICU is not installed."""
    try:
        import icu  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    checks = icu.USpoofChecks
    allowed = icu.UnicodeSet()  # a copy: the recommended set itself is frozen
    allowed.addAll(icu.SpoofChecker.getRecommendedUnicodeSet())
    allowed.addAll(_SEPARATORS)
    allowed.freeze()
    checker = icu.SpoofChecker()
    checker.setRestrictionLevel(icu.URestrictionLevel.MODERATELY_RESTRICTIVE)
    checker.setAllowedUnicodeSet(allowed)  # also turns on CHAR_LIMIT
    checker.setChecks(
        checks.RESTRICTION_LEVEL
        | checks.CHAR_LIMIT
        | checks.MIXED_NUMBERS
        | checks.INVISIBLE
        | _HIDDEN_OVERLAY
    )
    # Scripts whose accented letters NFC composes (and separators, digits): a mark
    # still standing after a letter of these is not spelling anything.
    precomposed = icu.UnicodeSet("[[:Latin:][:Greek:][:Cyrillic:][:Common:][:Inherited:]]")
    precomposed.freeze()

    def check(name: str) -> str | None:
        found = int(checker.check(name))
        if found & checks.CHAR_LIMIT:
            return "username may contain only letters recommended for identifiers (UTS #39)"
        if found & checks.RESTRICTION_LEVEL:
            return "username must not mix scripts"
        if found & checks.MIXED_NUMBERS:
            return "username must not mix digits of different scripts"
        if found & (checks.INVISIBLE | _HIDDEN_OVERLAY) or _stray_mark(name, precomposed):
            return "username must not contain combining marks that do not form a letter"
        return None

    return check


def _stray_mark(name: str, precomposed: Any) -> bool:
    """Whether a combining mark follows a base of a precomposing script, or more
    than :data:`_MAX_MARKS` marks follow one base."""
    base = ""
    marks = 0
    for char in name:
        if unicodedata.category(char).startswith("M"):
            marks += 1
            if marks > _MAX_MARKS or (base and precomposed.contains(base)):
                return True
        else:
            base, marks = char, 0
    return False


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
            Non-ASCII names need ICU (the script and mark checks):
            ``ascii_only=False`` without it raises :class:`ConfigurationError`.
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
        script_check = None if ascii_only else icu_script_check()
        if ascii_only is False and script_check is None:
            raise ConfigurationError(
                "non-ASCII user names need PyICU for their script checks: install "
                "pynomaly-security[usernames] or use ascii_only=True"
            )
        self.unicode = script_check is not None
        self._script_check = script_check
        if skeleton is None and self.unicode:
            skeleton = icu_skeleton()
        self._skeleton = skeleton or _ascii_skeleton
        self._reserved = frozenset(
            self._reserved_form(normalize_username(r)) for r in reserved if r
        )

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
        if self._script_check is not None:
            return self._script_check(name)
        return None

    def is_reserved(self, name: str) -> bool:
        """Whether the normalized ``name`` is, or looks like, a reserved name."""
        return self._reserved_form(name) in self._reserved

    def _reserved_form(self, name: str) -> str:
        """What a name is compared with reserved names as: its skeleton without
        trailing separators, with digits and ``@`` read as letters."""
        return self.skeleton(name.rstrip(_SEPARATORS) or name).lower().translate(_STAND_INS)
