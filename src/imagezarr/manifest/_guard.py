"""Saves that lose no one else's: a manifest is replaced only if it is still the one an update
started from.

Two updates of one manifest (``update --watch`` running while someone runs ``update``) each
list the folder, then save. Without a guard, the one that listed first and saves last
replaces the other's save, and the files only the other had seen are gone from the manifest.
Here a save names the *stamp* (a hash of the bytes) of the manifest it started from; under a
lock file beside the manifest, it compares that stamp with the file as it is now and writes
only when they agree. When they do not, the caller makes its update again from the newer
file (see :func:`imagezarr.update`'s ``save``).

The lock is an operating-system lock (``filelock``: ``fcntl.flock`` on POSIX,
``msvcrt.locking`` on Windows), so a process killed while holding it releases it; it is held
only for the compare and the write, never during a scan. Remote manifests (``s3://``) have
no lock: the stamp is compared just before the write, which narrows the window to that
moment but cannot close it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import xxhash

from ..errors import ManifestChangedError, ManifestError
from ..roots import READ_ERRORS, is_url, read_location, write_location

__all__ = ["LOCK_TIMEOUT", "lock_path", "read_stamp", "save_replacing", "stamp_of"]

#: seconds a save waits for another process's save to finish (a save takes well under that)
LOCK_TIMEOUT = 120.0


def stamp_of(data: bytes) -> str:
    """The stamp of a manifest's bytes: what a guarded save compares.

    >>> stamp_of(b"{}")
    'xxh128:...'
    """
    return "xxh128:" + xxhash.xxh3_128_hexdigest(data)


def read_stamp(target: str, storage_options: Mapping[str, Any] | None = None) -> str | None:
    """The stamp of the manifest at ``target`` as it is now; None when there is none."""
    if not is_url(target) and not os.path.lexists(target):
        return None
    try:
        return stamp_of(read_location(target, storage_options))
    except FileNotFoundError:
        return None
    except READ_ERRORS as e:
        msg = f"cannot read {target!r} to check that no other update saved it meanwhile: {e}"
        raise ManifestError(msg) from e


def lock_path(target: str) -> Path:
    """The lock file of a local manifest: hidden, beside it (``.exp.imagezarr.json.lock``)."""
    p = Path(target)
    return p.with_name(f".{p.name}.lock")


@contextmanager
def _locked(target: str, timeout: float) -> Iterator[None]:
    if is_url(target):
        yield
        return
    import filelock  # here: only saves that guard need it

    where = lock_path(target)
    where.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(where, timeout=timeout)
    try:
        lock.acquire()
    except filelock.Timeout as e:
        msg = (
            f"another process has been saving {target!r} for {timeout:g} s (it holds the "
            f"lock {str(where)!r}); nothing was saved: try again when it is done"
        )
        raise ManifestChangedError(msg) from e
    try:
        yield
    finally:
        lock.release()


def save_replacing(
    data: bytes,
    target: str,
    expect: str | None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    timeout: float = LOCK_TIMEOUT,
) -> tuple[str, str]:
    """Write ``data`` to ``target`` if the file there still has the stamp ``expect`` (None:
    there is no file); return where it went and the new stamp.

    Raises :class:`~imagezarr.errors.ManifestChangedError` when another process replaced
    (or created, or removed) the file since ``expect`` was taken.
    """
    with _locked(target, timeout):
        now = read_stamp(target, storage_options)
        if now != expect:
            what = "removed" if now is None else "created" if expect is None else "replaced"
            msg = f"{target!r} was {what} by another process since this update read it"
            raise ManifestChangedError(msg)
        out = write_location(target, data, storage_options)
    return out, stamp_of(data)
