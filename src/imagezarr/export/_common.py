"""What every export shares: output checks, atomic placement, file urls."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ExportError
from ..io import is_url
from ..manifest import Manifest

__all__ = ["Progress", "check_output", "checked_stat", "file_url", "staged_dir", "staged_file"]

Progress = Callable[[int, int], None]


def check_output(
    manifest: Manifest, out: str | os.PathLike[str], *, overwrite: bool, force: bool
) -> Path:
    """Resolve ``out`` and refuse what would be unsafe; return the absolute output path.

    Refuses an output inside the source folder (unless ``force``), an existing output
    (unless ``overwrite``), and, always, replacing a folder that holds the source.
    """
    path = Path(os.path.abspath(os.fspath(out)))
    root = Path(os.path.realpath(manifest.root))
    real = Path(os.path.realpath(path))
    if not force and (real.is_relative_to(root) or path.is_relative_to(manifest.root)):
        msg = (
            f"refusing to write {str(path)!r} inside the source folder {manifest.root!r}: "
            "imagezarr never writes into the source; choose an output elsewhere or pass "
            "force=True (--force)"
        )
        raise ExportError(msg)
    if os.path.lexists(path):
        if not overwrite:
            msg = (
                f"{str(path)!r} already exists; choose another output or pass overwrite=True "
                "(--overwrite) to replace it"
            )
            raise ExportError(msg)
        if root.is_relative_to(real):
            msg = (
                f"refusing to replace {str(path)!r}: it contains the source folder "
                f"{manifest.root!r}; choose another output"
            )
            raise ExportError(msg)
    return path


def _place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` onto ``out``; an existing ``out`` is moved aside first, then removed."""
    old = None
    if os.path.lexists(out):
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        old.rmdir()
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()


@contextmanager
def staged_dir(out: Path) -> Iterator[Path]:
    """A fresh folder beside ``out``; renamed onto ``out`` on success, removed on failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield tmp
        _place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def staged_file(out: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``out``, then rename it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _place(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def file_url(path: str) -> str:
    """``file://`` url of an absolute local path, not percent-encoded (fsspec reads it as is).

    >>> file_url("/data/night 1/é.png")
    'file:///data/night 1/é.png'
    """
    if is_url(path):  # a remote manifest's files are URLs already
        return path
    posix = Path(path).as_posix()
    return "file://" + (posix if posix.startswith("/") else "/" + posix)


def checked_stat(manifest: Manifest, index: int) -> os.stat_result:
    """``os.stat`` of file ``index``, refusing a missing file or one changed since the scan."""
    entry = manifest.files[index]
    path = manifest.file_path(index)
    if manifest.remote:
        msg = (
            f"{path}: this export needs local files, and the manifest's root is remote; "
            "use the kerchunk export (urls) or copy the images first"
        )
        raise ExportError(msg)
    try:
        st = os.stat(path)
    except OSError as e:
        msg = (
            f"{path!r}: cannot export a reference to it: {e.strerror or e}; run `imagezarr "
            "verify MANIFEST`, then re-scan the folder"
        )
        raise ExportError(msg) from e
    if st.st_size != entry.size or st.st_mtime_ns != entry.mtime_ns:
        msg = (
            f"{path!r} changed since the scan (size or mtime differ from the manifest); "
            "refusing to export a reference to it; re-scan the folder"
        )
        raise ExportError(msg)
    return st
