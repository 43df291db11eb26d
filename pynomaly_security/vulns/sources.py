"""Where OSV records come from: a directory (or git checkout), an ``all.zip`` export, a file.

:class:`OSVSource` streams one record at a time (a zip is read member by member), so
importing all of an ecosystem holds one record in memory, never the export (a zip is
read with ``stream-unzip``, entry after entry: ``zipfile`` would first load one
``ZipInfo`` per record, over 100 MB for 200,000 records). While it
streams it hashes what it read: the SHA-256 of a zip or file is of its bytes (what
osv.dev publishes), a directory's is over each record's relative path and bytes in
sorted order; a git checkout also names its ``HEAD`` commit. Those digests go into
the database and the audit event of an import.

A record that cannot be read is reported (file, line) and skipped, not fatal: one bad
record in an export of 200,000 must not stop the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pynomaly_security.vulns._yaml import safe_load
from pynomaly_security.vulns.osv import AdvisoryError

__all__ = ["MAX_RECORD_BYTES", "OSVSource", "RecordError"]

MAX_RECORD_BYTES = 16 * 1024 * 1024
"""A record larger than this is refused (a zip bomb or a wrong file, not an advisory)."""

_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class RecordError:
    """One record that was skipped, with where and why."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def decode(name: str, data: bytes) -> dict[str, Any]:
    """One OSV record from its bytes; :class:`AdvisoryError` names the line at fault."""
    if len(data) > MAX_RECORD_BYTES:
        raise AdvisoryError(f"{name}: larger than {MAX_RECORD_BYTES} bytes")
    parsed: Any
    if name.endswith(".json"):
        try:
            parsed = json.loads(data)
        except json.JSONDecodeError as exc:
            raise AdvisoryError(f"{name}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
        except UnicodeDecodeError as exc:
            raise AdvisoryError(f"{name}: line 1: not UTF-8: {exc.reason}") from None
    else:
        try:
            parsed = safe_load(data)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise AdvisoryError(
                f"{name}: {where}invalid YAML: {getattr(exc, 'problem', exc)}"
            ) from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("id"), str):
        raise AdvisoryError(f"{name}: line 1: not an OSV record (no top-level `id`)")
    return parsed


@dataclass
class OSVSource:
    """One path given to ``vulndb import``: iterate :meth:`records`, then read the digest."""

    path: Path
    kind: str = ""
    sha256: str = ""
    commit: str | None = None
    records: int = 0
    errors: list[RecordError] = field(default_factory=list)
    error_count: int = 0
    max_errors: int = 50  # kept to show; all are counted

    def __post_init__(self) -> None:
        if self.path.is_dir():
            self.kind = "git" if (self.path / ".git").exists() else "directory"
            self.commit = _git_head(self.path) if self.kind == "git" else None
        elif self.path.is_file():
            self.kind = "zip" if zipfile.is_zipfile(self.path) else "file"
        else:
            raise AdvisoryError(f"{self.path}: no such file or directory")

    def describe(self) -> dict[str, Any]:
        """What the database and the audit event record of this source."""
        out: dict[str, Any] = {
            "path": str(self.path),
            "kind": self.kind,
            "sha256": self.sha256,
            "records": self.records,
            "errors": self.error_count,
        }
        if self.commit:
            out["commit"] = self.commit
        return out

    def _skip(self, exc: AdvisoryError | OSError, where: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            message = str(exc) if isinstance(exc, AdvisoryError) else f"cannot read: {exc}"
            self.errors.append(RecordError(where, message.removeprefix(f"{where}: ")))

    def iter_records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(where, record)`` for every readable record; digest complete at the end."""
        digest = hashlib.sha256()
        if self.kind == "zip":
            yield from self._zip(digest)
        elif self.kind == "file":
            data = self.path.read_bytes()
            digest.update(data)
            yield from self._one(str(self.path), self.path.name, data)
        else:
            for rel, file in _record_files(self.path):
                try:
                    with open(file, "rb") as handle:
                        data = handle.read()
                except OSError as exc:
                    self._skip(exc, file)
                    continue
                digest.update(rel.encode() + b"\0" + data)
                yield from self._one(file, os.path.basename(file), data)
        self.sha256 = digest.hexdigest()

    def _zip(self, digest: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        # stream-unzip reads the local entries in order: zipfile would first load the
        # central directory, one ZipInfo per record (111 MB for 200,000 records).
        from stream_unzip import UnzipError, stream_unzip

        def chunks() -> Iterator[bytes]:
            with self.path.open("rb") as handle:
                while chunk := handle.read(1 << 16):
                    digest.update(chunk)
                    yield chunk

        try:
            for raw_name, _size, parts in stream_unzip(chunks()):
                name = raw_name.decode("utf-8", "replace")
                record = name.endswith(_SUFFIXES)
                data, too_large = bytearray(), False
                for part in parts:  # read to its end even unused: the stream goes on from there
                    if not record or too_large:
                        continue
                    if len(data) + len(part) > MAX_RECORD_BYTES:
                        too_large, data = True, bytearray()
                    else:
                        data += part
                if not record:
                    continue
                where = f"{self.path}!{name}"
                if too_large:
                    self._skip(AdvisoryError(f"larger than {MAX_RECORD_BYTES} bytes"), where)
                    continue
                yield from self._one(where, name, bytes(data))
        except UnzipError as exc:
            raise AdvisoryError(f"{self.path}: not a readable zip: {type(exc).__name__}") from None

    def _one(self, where: str, name: str, data: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
        try:
            record = decode(name, data)
        except AdvisoryError as exc:
            self._skip(AdvisoryError(str(exc).removeprefix(f"{name}: ")), where)
            return
        self.records += 1
        yield where, record


def _record_files(root: Path) -> list[tuple[str, str]]:
    # A git checkout's own metadata is never a record, whatever its suffix. os.walk and
    # strings, not rglob and Path objects: listing 5,000 records that way cost as much
    # as reading them. ``(relative path with /, path)`` in the order sorted Paths had
    # (part by part), which the directory's digest depends on; symbolic links to
    # folders are not followed (nor were they by rglob).
    found: list[tuple[list[str], str]] = []
    for folder, folders, files in os.walk(root):
        folders[:] = [f for f in folders if f != ".git"]
        rel = os.path.relpath(folder, root)
        parts = [] if rel == "." else rel.split(os.sep)
        for name in files:
            path = os.path.join(folder, name)
            if os.path.splitext(name)[1] in _SUFFIXES and os.path.isfile(path):
                found.append(([*parts, name], path))
    found.sort(key=lambda item: item[0])
    return [("/".join(parts), path) for parts, path in found]


def _git_head(root: Path) -> str | None:
    """The checked-out commit, read from ``.git`` (no ``git`` binary needed)."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree or submodule: "gitdir: PATH"
            git = (root / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    except (OSError, IndexError):
        return None
    return None
