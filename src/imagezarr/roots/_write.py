"""Atomic local writes: temp file beside the target, fsync, rename, fsync the folder.

Used for manifests and single-file exports. The written file gets the mode a plain ``open``
would give under the user's umask (colleagues on a lab server can read a manifest), or keeps
the mode of the file it replaces. A save killed half-way leaves a hidden temporary file; the
next save into the same folder removes such leftovers once they are old enough not to belong
to a save still running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

__all__ = ["place", "replace_retrying", "write_atomic"]

STALE_SECONDS = 3600  # a temporary file older than this belongs to no running save
_TMP_SUFFIX = ".tmp"


def _umask_mode() -> int:
    """The mode ``open`` gives a new file: 0o666 less the umask."""
    try:  # Linux shows the umask without changing it (setting it is not thread-safe)
        with open("/proc/self/status", encoding="ascii") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0)  # elsewhere it can only be read by setting it
        os.umask(mask)
    return 0o666 & ~mask


def _remove_stale(folder: Path, name: str) -> None:
    cutoff = time.time() - STALE_SECONDS
    for old in folder.glob(f".{glob_escape(name)}.*{_TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                old.unlink()


def glob_escape(name: str) -> str:
    """``name`` with glob wildcards escaped.

    >>> glob_escape("exp[1].json")
    'exp[[]1].json'
    """
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def replace_retrying(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """``os.replace``, retried for a few seconds while Windows reports the target in use.

    On Windows a file opened by another program (a viewer, an antivirus scan) cannot be
    replaced; such locks are usually released within moments.
    """
    delay = 0.05
    for _ in range(8):
        try:
            os.replace(src, dst)
        except PermissionError:
            if os.name != "nt":
                raise
            time.sleep(delay)
            delay *= 2
        else:
            return
    try:
        os.replace(src, dst)
    except PermissionError as e:
        msg = (
            f"cannot replace {os.fspath(dst)!r}: another program keeps it open "
            f"({e.strerror}); close it and try again"
        )
        raise PermissionError(e.errno, msg) from e


def place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` onto ``out``, whatever ``out`` is now (a file, a folder, a link).

    An existing ``out`` is moved aside first and removed only after the rename, so a failure
    leaves the old output in place.
    """
    old = None
    if os.path.lexists(out):
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        old.rmdir()
        replace_retrying(out, old)
    try:
        replace_retrying(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make a rename in ``folder`` durable; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new, never half.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.json"
    >>> write_atomic(p, b"{}"); p.read_bytes()
    b'{}'
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out.parent, out.name)
    try:
        mode = stat.S_IMODE(out.stat().st_mode)
    except OSError:
        mode = _umask_mode()
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600 whatever the umask
        if out.is_dir() and not out.is_symlink():
            place(Path(tmp), out)  # an export replacing a folder (overwrite=True)
        else:
            replace_retrying(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(out.parent)
