"""Stage 1, discover: list the files of a source with their size and mtime, reading no pixels."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from .errors import DiscoveryError
from .io import READ_ERRORS, ObjectRoot, error_text, is_url
from .io import stat as io_stat
from .paths import check_relative

__all__ = [
    "FileEntry",
    "FileTable",
    "discover",
    "discover_objects",
    "read_file_list",
    "stat_listed",
]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a dataset: its path relative to the root (POSIX separators), size, mtime.

    ``mtime_ns`` is the modification time in integer nanoseconds, as ``os.stat`` reports it
    (for objects: their last-modified time); ``etag`` is the object store's entity tag.
    """

    path: str
    size: int
    mtime_ns: int
    etag: str | None = None


def _walk(root: str, rel: str = "") -> Iterator[tuple[str, os.DirEntry[str]]]:
    # os.scandir instead of os.walk/pathlib: one syscall per directory gives names and types,
    # which is what makes listing 100,000 files fast.
    try:
        it = os.scandir(os.path.join(root, rel) if rel else root)
    except OSError as e:
        msg = f"cannot list {os.path.join(root, rel)!r}: {e.strerror}"
        raise DiscoveryError(msg) from e
    with it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            sub = f"{rel}/{entry.name}" if rel else entry.name
            # symlinked directories are not followed: they can form cycles or leave the root
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(root, sub)
            elif entry.is_file():
                yield sub, entry


def _matcher(glob: str | None, extensions: Iterable[str]) -> re.Pattern[str]:
    if glob is None:
        exts = "|".join(re.escape(e.lower()) for e in sorted(extensions))
        return re.compile(rf".*(?:{exts})", re.IGNORECASE | re.DOTALL)
    return re.compile(fnmatch.translate(glob), re.IGNORECASE)


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def discover_objects(
    root: ObjectRoot, *, glob: str | None = None, extensions: Iterable[str] = ()
) -> list[FileEntry]:
    """List the objects below a remote root, with size, last-modified time and etag."""
    match = _matcher(glob, extensions).fullmatch
    try:
        out = [
            FileEntry(rel, size, mtime, etag)
            for rel, size, mtime, etag in root.list()
            if match(rel) and not _hidden(rel)
        ]
    except READ_ERRORS as e:
        msg = f"cannot list {root.url}: {error_text(e)}"
        raise DiscoveryError(msg) from e
    out.sort(key=lambda e: e.path)
    return out


def discover(
    root: str | os.PathLike[str],
    *,
    glob: str | None = None,
    extensions: Iterable[str] = (),
    allow_outside_root: bool = False,
) -> list[FileEntry]:
    """List the files below ``root`` (recursively, hidden files skipped) in path order.

    ``glob`` is matched case-insensitively against the path relative to the root (``*`` also
    crosses folders); without it, files whose extension is one of ``extensions`` are kept.
    A symbolic link to a file outside the root is an error unless ``allow_outside_root``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.PNG").write_bytes(b"x"); _ = (d / "notes.txt").write_text("x")
    >>> [e.path for e in discover(d, extensions={".png"})]
    ['a.PNG']
    """
    top = os.fspath(root)
    if not os.path.isdir(top):
        msg = f"source folder {top!r} does not exist or is not a folder"
        raise DiscoveryError(msg)
    match = _matcher(glob, extensions).fullmatch
    out = []
    undecodable = []
    outside = []
    real_top = os.path.realpath(top)
    for rel, entry in _walk(top):
        if not rel.isascii() and not _utf8(rel):
            undecodable.append(rel)
            continue
        if match(rel):
            if entry.is_symlink() and not allow_outside_root:
                target = os.path.realpath(entry.path)
                if os.path.commonpath([real_top, target]) != real_top:
                    outside.append(f"{rel} -> {target}")
                    continue
            st = entry.stat()
            out.append(FileEntry(rel, st.st_size, st.st_mtime_ns))
    if undecodable:
        shown = ", ".join(repr(p) for p in undecodable[:5])
        msg = (
            f"{len(undecodable)} file name(s) under {top!r} are not valid UTF-8 and cannot be "
            f"labels or manifest entries: {shown}; rename them (e.g. with convmv)"
        )
        raise DiscoveryError(msg)
    if outside:
        shown = ", ".join(repr(p) for p in outside[:5])
        msg = (
            f"{len(outside)} symbolic link(s) under {top!r} point outside it: {shown}; "
            "scan the folder they point into, or pass allow_outside_root=True "
            "(--allow-outside-root) to follow them"
        )
        raise DiscoveryError(msg)
    out.sort(key=lambda e: e.path)
    return out


def _utf8(name: str) -> bool:
    # os.scandir hands undecodable bytes over as lone surrogates
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class FileTable(Sequence[FileEntry]):
    """The file table of a manifest, stored by column: paths, sizes, mtimes.

    Behaves as a sequence of :class:`FileEntry`, but holds a million files in two numpy arrays
    and one list of strings instead of a million objects.

    >>> t = FileTable.from_entries([FileEntry("a.png", 3, 7)])
    >>> t[0], len(t), int(t.sizes.sum())
    (FileEntry(path='a.png', size=3, mtime_ns=7, etag=None), 1, 3)
    """

    __slots__ = ("etags", "mtimes", "paths", "sizes")

    def __init__(
        self,
        paths: list[str],
        sizes: np.ndarray,
        mtimes: np.ndarray,
        etags: list[str | None] | None = None,
    ) -> None:
        if not len(paths) == len(sizes) == len(mtimes) == len(etags or paths):
            msg = "file table columns differ in length"
            raise ValueError(msg)
        self.paths = paths
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.mtimes = np.asarray(mtimes, dtype=np.int64)
        self.etags = etags

    @classmethod
    def from_entries(cls, entries: Iterable[FileEntry]) -> FileTable:
        rows = list(entries)
        etags = [e.etag for e in rows]
        return cls(
            [e.path for e in rows],
            np.fromiter((e.size for e in rows), np.int64, len(rows)),
            np.fromiter((e.mtime_ns for e in rows), np.int64, len(rows)),
            etags if any(t is not None for t in etags) else None,
        )

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> FileEntry: ...
    @overload
    def __getitem__(self, index: slice) -> FileTable: ...
    def __getitem__(self, index: int | slice) -> FileEntry | FileTable:
        etags = self.etags
        if isinstance(index, slice):
            sub = None if etags is None else etags[index]
            return FileTable(self.paths[index], self.sizes[index], self.mtimes[index], sub)
        etag = None if etags is None else etags[index]
        return FileEntry(self.paths[index], int(self.sizes[index]), int(self.mtimes[index]), etag)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileTable):
            return (
                self.paths == other.paths
                and np.array_equal(self.sizes, other.sizes)
                and np.array_equal(self.mtimes, other.mtimes)
                and self.etags == other.etags
            )
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FileTable({len(self)} files, {int(self.sizes.sum())} bytes)"


REMOTE_WORKERS = 32  # concurrent requests to an object store


def read_file_list(
    files: str | os.PathLike[str] | Sequence[str], options: Mapping[str, Any]
) -> list[str]:
    if not isinstance(files, str | os.PathLike):
        return [str(f) for f in files]
    name = os.fspath(files)
    if is_url(name):
        base, _, leaf = name.rpartition("/")
        text = ObjectRoot(base, options).read(leaf)[0].decode()
    else:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    return [line.strip() for line in text.splitlines() if line.strip()]


def stat_listed(root: str, remote: ObjectRoot | None, paths: Sequence[str]) -> list[FileEntry]:
    """Stat an explicit list of files (HEAD requests for a remote root), in a thread pool."""
    for p in paths:
        check_relative(p, "files=")

    def stat(rel: str) -> FileEntry:
        try:
            st = remote.head(rel) if remote is not None else io_stat(os.path.join(root, rel))
        except READ_ERRORS as e:
            msg = f"{rel}: listed in files= but cannot be reached under {root}: {error_text(e)}"
            raise DiscoveryError(msg) from e
        return FileEntry(rel, st.size, st.mtime_ns, st.etag)

    with ThreadPoolExecutor(max_workers=REMOTE_WORKERS if remote is not None else 4) as pool:
        return sorted(pool.map(stat, paths), key=lambda e: e.path)
