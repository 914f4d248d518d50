"""The one byte reader: every file access of imagezarr goes through here.

Local files only for now; remote sources plug in behind the same three verbs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FileStat", "range_reader", "read_bytes", "stat"]


@dataclass(frozen=True, slots=True)
class FileStat:
    """Size in bytes and modification time in integer nanoseconds."""

    size: int
    mtime_ns: int


def stat(path: str) -> FileStat:
    """Stat ``path``, following symbolic links."""
    st = os.stat(path)
    return FileStat(st.st_size, st.st_mtime_ns)


def read_bytes(path: str) -> tuple[bytes, FileStat]:
    """Read a whole file and return its bytes with the stat taken from the open handle.

    The stat comes from the same file descriptor that was read, so a concurrent replace of the
    path cannot pair new bytes with an old stat.
    """
    with open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        data = f.read()
    return data, FileStat(st.st_size, st.st_mtime_ns)


def range_reader(path: str) -> tuple[Callable[[int, int], bytes], Callable[[], None]]:
    """Return ``(read, close)`` where ``read(offset, length)`` reads a byte range of ``path``."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))

    def read(offset: int, length: int) -> bytes:
        return os.pread(fd, length, offset)

    def close() -> None:
        os.close(fd)

    return read, close
