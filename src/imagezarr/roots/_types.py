"""Values every root speaks in: a file's recorded entry and a fresh stat of it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FileEntry", "FileStat"]


@dataclass(frozen=True, slots=True)
class FileStat:
    """Size in bytes, modification time in integer nanoseconds, and the etag when known."""

    size: int
    mtime_ns: int
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a dataset: its path relative to the root (POSIX separators), size, mtime.

    ``mtime_ns`` is the modification time in integer nanoseconds, as ``os.stat`` reports it
    (for objects: their last-modified time); ``etag`` is the object store's entity tag;
    ``checksum`` the content hash recorded by ``scan(checksum=True)``.
    """

    path: str
    size: int
    mtime_ns: int
    etag: str | None = None
    checksum: str | None = None
