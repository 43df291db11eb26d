"""The inspection layer's memory of bodiless requests it found clean.

Clients repeat the same requests (polling, health checks, a page's API calls):
a request known clean passes the inspection layer with one key built and one set
lookup, instead of extracting and looking up every value again. The key is what
a bodiless request's verdict depends on and nothing more: its path as sent, its
query and the headers the inspector reads, each with its value. So it never
holds a credential: ``Authorization`` and the other headers the inspector does
not read are not in it, and a request carrying a cookie or an API-key header
(``extract.SECRET_HEADERS`` and the app's ``API_KEY_HEADERS``, which the
inspector reads but whose values must not be kept) gets no key at all.

Never a key for a request the inspector could refuse on something the key
leaves out (more header lines than its limit, framing headers), nor for a
request that announces a body, nor over HTTP/2 or /3, where a body needs no
header to announce it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pynomaly_security.detection import Inspector

__all__ = ["CleanRequests"]

_MAX_ENTRIES = 8192  # emptied when full: bounded memory, no LRU upkeep
_MAX_KEY_BYTES = 4096  # path, query, header names and values; longer requests rarely repeat
_MAX_FLAGS = 1024


class CleanRequests:
    """Bodiless requests the inspector found clean (with no route exemption), by key.

    Args:
        inspector: the inspector whose verdicts are remembered: which headers it
            reads, which are secrets, how many header lines it takes.
    """

    def __init__(self, inspector: Inspector) -> None:
        self._max_headers = inspector.limits.max_headers
        self._reads = inspector.reads_header
        self._secret = inspector.secret_headers
        self._flags: dict[bytes, bool] = {}
        """Header name -> ``True`` (part of the key) or ``False`` (not read); learnt
        by :meth:`_key_checked`. Unknown names and the framing headers (whose
        values decide) are not in it."""
        self._clean: set[tuple[str | bytes, ...]] = set()
        self.known: Callable[[object], bool] = self._clean.__contains__
        """Whether the request with this :meth:`key` was found clean: the set's own
        ``__contains__``, a C call on every request instead of a Python one."""
        # A live change of the detection level or mode makes earlier verdicts stale.
        inspector.on_reconfigure(self._clean.clear)

    def key(
        self, path: str | bytes, query_string: bytes, headers: Sequence[Sequence[bytes]]
    ) -> tuple[str | bytes, ...] | None:
        """The key of a bodiless HTTP/1 request, or ``None`` when it is not kept.
        One cached flag per header name; an unseen name, or a header that may
        announce a body, takes :meth:`_key_checked`. (Its size is checked when it
        is remembered, :meth:`add`: a long key is looked up, never kept.)"""
        if len(headers) > self._max_headers:
            return None
        get = self._flags.get
        key: tuple[str | bytes, ...] = (path, query_string)  # built as a tuple: few kept
        for name, value in headers:
            flag = get(name)
            if flag:
                key += (name, value)
            elif flag is None:
                return self._key_checked(path, query_string, headers)
            # else: not read by the inspector, not part of the key
        return key

    def _key_checked(
        self, path: str | bytes, query_string: bytes, headers: Sequence[Sequence[bytes]]
    ) -> tuple[str | bytes, ...] | None:
        """:meth:`key` with each header name's role looked up (and its flag learnt),
        and the body headers' values read."""
        flags = self._flags
        if len(flags) >= _MAX_FLAGS:
            flags.clear()  # bounded: header names are the clients' few, but not trusted
        key: tuple[str | bytes, ...] = (path, query_string)
        lengths = 0
        for name, value in headers:
            if name == b"transfer-encoding" or name == b"content-length":
                lengths += 1
                if name == b"transfer-encoding" or value.strip() not in (b"0", b"") or lengths > 1:
                    # A body follows, or the framing is ambiguous: the verdict is not
                    # a function of the key.
                    return None
            elif name in self._secret:
                return None  # its value is a secret: not kept (flag left unlearnt)
            elif self._reads(name):
                flags[name] = True
                key += (name, value)
            else:
                flags[name] = False
        return key

    def add(self, key: tuple[str | bytes, ...]) -> None:
        """Remember a request the inspector found clean with no route policy; a long
        one (path, query and header values) is not kept: long requests rarely repeat."""
        if sum(map(len, key)) > _MAX_KEY_BYTES:
            return
        if len(self._clean) >= _MAX_ENTRIES:
            self._clean.clear()  # the same set: ``known`` (its __contains__) stays bound
        self._clean.add(key)

    def __len__(self) -> int:
        return len(self._clean)
