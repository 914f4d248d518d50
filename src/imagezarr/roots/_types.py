"""Values every root speaks in: a file's recorded entry and a fresh stat of it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FileEntry", "FileStat"]


@dataclass(frozen=True, slots=True)
class FileStat:
    """Size in bytes, modification time in integer nanoseconds, the etag when known, and the
    content checksum when one was computed."""

    size: int
    mtime_ns: int
    etag: str | None = None
    checksum: str | None = None


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

    @property
    def stat(self) -> FileStat:
        """What a fresh stat of this file would say, to compare two scans with ``stale``."""
        return FileStat(self.size, self.mtime_ns, self.etag, self.checksum)
