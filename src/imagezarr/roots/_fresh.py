"""The one freshness check: is the file behind a recorded entry still the one scanned?

Every reader of image bytes (the store, ``verify``, ``update``, the exports) asks
:func:`stale` and nothing else, so all of them agree on what "changed" means and honour the
same ``check`` modes:

``"mtime"`` (default; ``"stat"`` is its old name)
    size, modification time (at the precision the file system keeps) and, for objects, etag.
``"size"``
    size only: for copies that did not keep modification times.
``"checksum"``
    size and the content hash recorded by ``scan(checksum=True)``; times are ignored.
``"none"``
    trust the files.

Size + mtime cannot see an in-place rewrite that keeps the size and restores the time
(``os.utime``, ``touch -r``); only ``"checksum"`` can.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import xxhash

from ._types import FileEntry, FileStat

__all__ = ["CHECKS", "Check", "checksum", "normalize_check", "same_time", "stale", "time_text"]

Check = Literal["mtime", "size", "checksum", "none"]
CHECKS: tuple[str, ...] = ("mtime", "size", "checksum", "none")
_ALIASES = {"stat": "mtime"}
CHECKSUM_PREFIX = "xxh3:"

# Granularities file systems keep, coarsest first: FAT 2 s, ext3/HFS+ 1 s, exFAT 10 ms,
# SMB/NTFS 100 ns. A timestamp divisible by one of them may have been cut to it by a copy.
_GRANULES = (2 * 10**9, 10**9, 10**7, 10**6, 10**3, 100, 1)


def normalize_check(check: str) -> Check:
    """The canonical name of a check mode; ValueError naming the choices otherwise.

    >>> normalize_check("stat"), normalize_check("size")
    ('mtime', 'size')
    """
    mode = _ALIASES.get(check, check)
    if mode not in CHECKS:
        msg = f"check must be one of {', '.join(map(repr, CHECKS))}, not {check!r}"
        raise ValueError(msg)
    return mode  # type: ignore[return-value]


def checksum(data: bytes | bytearray | memoryview) -> str:
    """The content hash recorded per file: xxHash's XXH3 (64 bit), tens of GB/s.

    A fast non-cryptographic hash is enough: it guards against accidents (a rewrite, a bad
    copy), not against someone forging images.

    >>> checksum(b"plant")
    'xxh3:...'
    """
    return CHECKSUM_PREFIX + xxhash.xxh3_64_hexdigest(data)


def _granule(ns: int) -> int:
    return next(g for g in _GRANULES if ns % g == 0)


def same_time(recorded_ns: int, now_ns: int) -> bool:
    """Equal at the precision the coarser of the two timestamps shows.

    A copy onto FAT keeps 2 s, exFAT 10 ms: a time cut to such a granule (rounded either
    way) still counts as the same.

    >>> same_time(1_700_000_001_234_567_891, 1_700_000_002_000_000_000)  # FAT copy
    True
    >>> same_time(1_700_000_001_234_567_891, 1_700_000_001_234_567_999)
    False
    """
    if recorded_ns == now_ns:
        return True
    return abs(recorded_ns - now_ns) < max(_granule(recorded_ns), _granule(now_ns))


def time_text(ns: int) -> str:
    """A modification time for messages, in UTC; works for times before 1970 on every OS.

    >>> time_text(-86_400 * 10**9)
    '1969-12-31 00:00:00 UTC'
    """
    # datetime.fromtimestamp raises OSError for negative times on Windows
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def stale(
    entry: FileEntry, now: FileStat, check: Check, data: bytes | bytearray | None = None
) -> str | None:
    """Why the file described by ``now`` (and its bytes ``data``, when read) is not the one
    recorded in ``entry``; ``None`` when it is.

    ``data`` is checked against the recorded size, and, with ``check="checksum"``, against
    the recorded hash (or ``now.checksum`` is, when a rescan computed one); with neither, a
    checksum check compares sizes only.

    >>> e = FileEntry("a.png", 10, 2_000_000_000_123)
    >>> stale(e, FileStat(10, 2_000_000_000_123), "mtime") is None
    True
    >>> stale(e, FileStat(11, 2_000_000_000_123), "mtime")
    'size: manifest 10 bytes, now 11 bytes'
    >>> stale(e, FileStat(10, 9_000_000_000_000), "size") is None
    True
    """
    if check == "none":
        return None
    if now.size != entry.size or (data is not None and len(data) != entry.size):
        size = now.size if now.size != entry.size else len(data)  # type: ignore[arg-type]
        return f"size: manifest {entry.size} bytes, now {size} bytes"
    if check == "checksum":
        if entry.checksum is None:
            return "no checksum recorded: re-scan with --checksum (checksum=True) to use it"
        found = checksum(data) if data is not None else now.checksum
        if found is not None and found != entry.checksum:
            return f"content: checksum {entry.checksum} in the manifest, now {found}"
        return None
    if check == "mtime":
        if entry.etag is not None and now.etag is not None and now.etag != entry.etag:
            return f"etag: manifest {entry.etag}, now {now.etag}"
        if not same_time(entry.mtime_ns, now.mtime_ns):
            return (
                f"modification time: manifest {time_text(entry.mtime_ns)}, "
                f"now {time_text(now.mtime_ns)}"
            )
    return None
