"""Stage 1, discover: list the files of a source with their size and mtime, reading no pixels."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .errors import DiscoveryError

__all__ = ["FileEntry", "discover"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a dataset: its path relative to the root (POSIX separators), size, mtime.

    ``mtime_ns`` is the modification time in integer nanoseconds, as ``os.stat`` reports it.
    """

    path: str
    size: int
    mtime_ns: int


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


def discover(
    root: str | os.PathLike[str],
    *,
    glob: str | None = None,
    extensions: Iterable[str] = (),
) -> list[FileEntry]:
    """List the files below ``root`` (recursively, hidden files skipped) in path order.

    ``glob`` is matched case-insensitively against the path relative to the root (``*`` also
    crosses folders); without it, files whose extension is one of ``extensions`` are kept.

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
    for rel, entry in _walk(top):
        if match(rel):
            st = entry.stat()
            out.append(FileEntry(rel, st.st_size, st.st_mtime_ns))
    out.sort(key=lambda e: e.path)
    return out
