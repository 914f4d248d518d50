"""Discover: list the files of a source with their size and mtime, reading no pixels."""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import pairwise
from typing import Any, overload

import numpy as np

from .errors import DiscoveryError
from .executor import Executor
from .paths import check_relative
from .roots import (
    READ_ERRORS,
    FileEntry,
    Root,
    checksum,
    error_text,
    open_root,
    read_location,
    stale,
)

__all__ = [
    "FileEntry",
    "FileTable",
    "NameFilter",
    "add_checksums",
    "discover",
    "in_path_order",
    "listing_errors",
    "prefix_groups",
    "read_file_list",
    "stat_listed",
    "top_prefixes",
    "visible",
]


def _matcher(glob: str | None, extensions: Iterable[str]) -> re.Pattern[str]:
    if glob is None:
        exts = "|".join(re.escape(e.lower()) for e in sorted(extensions))
        return re.compile(rf".*(?:{exts})", re.IGNORECASE | re.DOTALL)
    if "/" not in glob:  # a bare name pattern: matched against the whole path, * crosses /
        return re.compile(fnmatch.translate(glob), re.IGNORECASE)
    return re.compile(path_glob(glob.removeprefix("./")), re.IGNORECASE | re.DOTALL)


_GLOB_PARTS = re.compile(r"\*\*/|\*\*|\*|\?|\[[^\]/]+\]|.", re.DOTALL)


def path_glob(glob: str) -> str:
    """A glob with folders as a regex: ``*`` and ``?`` stay inside one folder, ``**/`` is any
    number of folders (none included). Hand-written: ``glob.translate`` does this from
    Python 3.13 on only.

    >>> [bool(re.fullmatch(path_glob(g), "old/a.png")) for g in ("*.png", "**/*.png")]
    [False, True]
    """
    out = []
    for part in _GLOB_PARTS.findall(glob):
        if part == "**/":
            out.append("(?:.*/)?")
        elif part == "**":
            out.append(".*")
        elif part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        elif part.startswith("[") and len(part) > 2:
            # ranges such as a-z stay ranges (re.escape would make "-" a literal); only a
            # backslash needs escaping inside a class
            inner = part[1:-1].replace("\\", "\\\\")
            negated = inner[0] in "!^"
            out.append("[^" + inner[1:] + "/]" if negated else "[" + inner + "]")
        else:
            out.append(re.escape(part))
    return "".join(out)


def visible(rel: str) -> bool:
    """No component of the relative path ``rel`` is hidden (starts with a dot)."""
    return not any(part.startswith(".") for part in rel.split("/"))


@dataclass(frozen=True)
class NameFilter:
    """Which listed paths :func:`discover` keeps: ``glob`` or ``extensions``, and, where the
    root's listing returns hidden names (object stores), none of those. A value, so it
    pickles to dask workers that list part of a source."""

    glob: str | None
    extensions: tuple[str, ...]
    visible_only: bool

    @classmethod
    def of(cls, root: Root, glob: str | None, extensions: Iterable[str]) -> NameFilter:
        return cls(glob, tuple(sorted(extensions)), not root.skips_hidden)

    @cached_property
    def _rx(self) -> re.Pattern[str]:
        return _matcher(self.glob, self.extensions)

    def __call__(self, rel: str) -> bool:
        return self._rx.fullmatch(rel) is not None and (not self.visible_only or visible(rel))


def discover(
    root: Root | str | os.PathLike[str],
    *,
    glob: str | None = None,
    extensions: Iterable[str] = (),
    allow_outside_root: bool = False,
) -> list[FileEntry]:
    """List the files below ``root`` (recursively, hidden files skipped) in path order.

    ``root`` is a :class:`~imagezarr.roots.Root` or a folder path. ``glob`` is matched
    case-insensitively against the path relative to the root: a bare name pattern such as
    ``*.png`` at any depth (``*`` crosses folders); one with a ``/`` folder by folder, ``*``
    staying in one folder and ``**/`` any depth: ``./*.png`` is this folder only,
    ``night*/*.png`` one level down, ``**/*.png`` any depth. Without it,
    files whose extension is one of ``extensions`` are kept. A symbolic link to a
    file outside a local root is an error unless ``allow_outside_root``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.PNG").write_bytes(b"x"); _ = (d / "notes.txt").write_text("x")
    >>> [e.path for e in discover(d, extensions={".png"})]
    ['a.PNG']
    """
    if isinstance(root, str | os.PathLike):
        root = open_root(root, allow_outside_root=allow_outside_root)
    keep = NameFilter.of(root, glob, extensions)
    with listing_errors(root):
        out = root.list(keep)
    return in_path_order(out)


@contextmanager
def listing_errors(root: Root) -> Iterator[None]:
    """A listing of ``root`` that fails raises one :class:`DiscoveryError` naming it."""
    try:
        yield
    except DiscoveryError:
        raise
    except READ_ERRORS as e:
        msg = f"cannot list {root.url}: {error_text(e)}"
        raise DiscoveryError(msg) from e


def in_path_order(entries: list[FileEntry]) -> list[FileEntry]:
    """A listing sorted by path (in place), with a warning about paths differing in case."""
    entries.sort(key=lambda e: e.path)
    _warn_case_collisions(entries)
    return entries


def _warn_case_collisions(entries: Sequence[FileEntry]) -> None:
    """Warn about paths that differ only in case: one file on Windows and macOS."""
    # the common case, decided by one casefold of all paths at once (NUL folds to itself)
    if len(set("\0".join(e.path for e in entries).casefold().split("\0"))) == len(entries):
        return
    seen: dict[str, str] = {}
    clashes = []
    for e in entries:
        other = seen.setdefault(e.path.casefold(), e.path)
        if other != e.path:
            clashes.append(f"{other!r}, {e.path!r}")
    if clashes:
        msg = (
            f"{len(clashes)} pair(s) of files differ only in case ({'; '.join(clashes[:5])}): "
            "on Windows and macOS they are one file, so this manifest will not read the same "
            "there; rename one of each pair"
        )
        warnings.warn(msg, UserWarning, stacklevel=4)


class FileTable(Sequence[FileEntry]):
    """The file table of a manifest, stored by column: paths, sizes, mtimes (etags, checksums).

    Behaves as a sequence of :class:`FileEntry`, but holds a million files in two numpy arrays
    and one list of strings instead of a million objects.

    >>> t = FileTable.from_entries([FileEntry("a.png", 3, 7)])
    >>> t[0], len(t), int(t.sizes.sum())
    (FileEntry(path='a.png', size=3, mtime_ns=7, etag=None, checksum=None), 1, 3)
    """

    __slots__ = ("checksums", "etags", "mtimes", "paths", "sizes")

    def __init__(
        self,
        paths: list[str],
        sizes: np.ndarray,
        mtimes: np.ndarray,
        etags: list[str | None] | None = None,
        checksums: list[str | None] | None = None,
    ) -> None:
        n = len(paths)
        if not n == len(sizes) == len(mtimes) == len(etags or paths) == len(checksums or paths):
            msg = "file table columns differ in length"
            raise ValueError(msg)
        self.paths = paths
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.mtimes = np.asarray(mtimes, dtype=np.int64)
        self.etags = etags
        self.checksums = checksums

    @classmethod
    def from_entries(cls, entries: Iterable[FileEntry]) -> FileTable:
        rows = list(entries)
        etags = [e.etag for e in rows]
        sums = [e.checksum for e in rows]
        return cls(
            [e.path for e in rows],
            np.fromiter((e.size for e in rows), np.int64, len(rows)),
            np.fromiter((e.mtime_ns for e in rows), np.int64, len(rows)),
            etags if any(t is not None for t in etags) else None,
            sums if any(t is not None for t in sums) else None,
        )

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> FileEntry: ...
    @overload
    def __getitem__(self, index: slice) -> FileTable: ...
    def __getitem__(self, index: int | slice) -> FileEntry | FileTable:
        etags, sums = self.etags, self.checksums
        if isinstance(index, slice):
            return FileTable(
                self.paths[index],
                self.sizes[index],
                self.mtimes[index],
                None if etags is None else etags[index],
                None if sums is None else sums[index],
            )
        return FileEntry(
            self.paths[index],
            int(self.sizes[index]),
            int(self.mtimes[index]),
            None if etags is None else etags[index],
            None if sums is None else sums[index],
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileTable):
            return (
                self.paths == other.paths
                and np.array_equal(self.sizes, other.sizes)
                and np.array_equal(self.mtimes, other.mtimes)
                and self.etags == other.etags
                and self.checksums == other.checksums
            )
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FileTable({len(self)} files, {int(self.sizes.sum())} bytes)"


def read_file_list(
    files: str | os.PathLike[str] | Sequence[str], options: Mapping[str, Any]
) -> list[str]:
    """The relative paths ``files`` names: a list as it is, or an index file (path or URL)."""
    if not isinstance(files, str | os.PathLike):
        return [str(f) for f in files]
    text = read_location(files, options).decode()
    return [line.strip() for line in text.splitlines() if line.strip()]


def stat_listed(root: Root, paths: Sequence[str]) -> list[FileEntry]:
    """Stat an explicit list of files (HEAD requests for a remote root), in a thread pool."""
    for p in paths:
        check_relative(p, "files=")

    def stat(rel: str) -> FileEntry:
        try:
            st = root.stat(rel)
        except READ_ERRORS as e:
            msg = f"{rel}: listed in files= but cannot be reached under {root.url}: {error_text(e)}"
            raise DiscoveryError(msg) from e
        return FileEntry(rel, st.size, st.mtime_ns, st.etag)

    found = Executor().map(stat, paths, workers=min(root.workers, 32))
    return sorted(found, key=lambda e: e.path)


def add_checksums(
    root: Root,
    entries: Sequence[FileEntry],
    *,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[FileEntry]:
    """``entries`` with the content checksum of each file (every byte is read once).

    A file that changed since it was listed is an error naming it: its checksum would not
    describe the file the rest of the scan saw.
    """

    def one(entry: FileEntry) -> FileEntry:
        try:
            data, st = root.read(entry.path, limit=entry.size)
        except READ_ERRORS as e:
            msg = f"{entry.path}: cannot read it to compute its checksum: {error_text(e)}"
            raise DiscoveryError(msg) from e
        reason = stale(entry, st, "mtime", data)
        if reason is not None:
            msg = f"{entry.path}: changed while the folder was scanned ({reason}); scan again"
            raise DiscoveryError(msg)
        return replace(entry, checksum=checksum(data))

    ex = executor or Executor()
    if ex.on_cluster:  # every byte is read on the workers, in named tasks
        return ex.batches(checksum_task, root, entries, name="checksums", progress=progress)
    return ex.map(one, entries, workers=root.workers, progress=progress, step=256)


def checksum_task(root: Root, entries: Sequence[FileEntry]) -> list[FileEntry]:
    """A dask task: :func:`add_checksums` of a batch, over the worker's threads."""
    return add_checksums(root, entries)


# -- partitioned listing: a scale-out scan hands out prefixes, each task lists its own


def top_prefixes(
    root: Root, keep: Callable[[str], object], few: int
) -> tuple[list[str], list[FileEntry]]:
    """How a scale-out scan splits a listing: the prefixes to hand out to tasks and the
    files the client lists on the way (delimiter
    listings of the top level, and of the level below when the top has fewer than
    ``few`` prefixes)."""
    prefixes, loose = root.list_level(keep)
    # hidden prefixes hold only hidden paths, which discover skips anyway
    prefixes = [p for p in prefixes if visible(p)]
    if not prefixes or len(prefixes) >= few:
        return sorted(prefixes), loose
    levels = Executor().map(
        lambda p: root.list_level(keep, p), prefixes, workers=min(len(prefixes), root.workers)
    )
    deeper = [p for subs, _ in levels for p in subs if visible(p)]
    return sorted(deeper), loose + [e for _, files in levels for e in files]


def prefix_groups(prefixes: list[str], tasks: int) -> list[list[str]]:
    """``prefixes`` (sorted) in at most ``tasks`` runs of neighbours, as even in count as can
    be: one prefix each when there are no more than ``tasks``."""
    n = len(prefixes)
    tasks = max(1, min(n, tasks))
    bounds = [n * k // tasks for k in range(tasks + 1)]
    return [prefixes[a:b] for a, b in pairwise(bounds) if b > a]
