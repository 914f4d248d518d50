"""What every export shares: output checks, atomic placement, file urls."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import quote

from ..errors import ExportError
from ..executor import Executor
from ..manifest import Manifest, Opened
from ..roots import READ_ERRORS, FileStat, error_text, is_inside, is_url, place, stale

__all__ = [
    "Progress",
    "check_output",
    "checked_stat",
    "checked_stats",
    "file_url",
    "local_path",
    "staged_dir",
]

Progress = Callable[[int, int], None]


def check_output(
    manifest: Manifest, out: str | os.PathLike[str], *, overwrite: bool, force: bool
) -> Path:
    """Resolve ``out`` and refuse what would be unsafe; return the absolute output path.

    Refuses an output inside the source folder (unless ``force``), an existing output
    (unless ``overwrite``), and, always, replacing a folder that holds the source.
    """
    path = Path(os.path.abspath(os.fspath(out)))
    if not force and is_inside(path, manifest.root):
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
        if is_inside(manifest.root, path):
            msg = (
                f"refusing to replace {str(path)!r}: it contains the source folder "
                f"{manifest.root!r}; choose another output"
            )
            raise ExportError(msg)
    return path


@contextmanager
def staged_dir(out: Path) -> Iterator[Path]:
    """A fresh folder beside ``out``; renamed onto ``out`` on success, removed on failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # not tempfile.mkdtemp: it makes the folder 0700, and the export would keep that mode;
    # os.mkdir gives the umask's mode, as every other folder the user makes (exclusive: a
    # name already there raises, it is never shared)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.mkdir()
    try:
        yield tmp
        place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def file_url(path: str, *, encode: bool = False, windows: bool = os.name == "nt") -> str:
    """``file://`` url of an absolute local path; ``encode`` percent-encodes reserved characters.

    fsspec reads unencoded urls as they are; Icechunk chunk locations must be encoded. Windows
    paths get three slashes before the drive (``file:///C:/...``) and UNC paths name their
    server (``file://server/share/...``).

    >>> file_url("/data/night 1/é.png")
    'file:///data/night 1/é.png'
    >>> file_url("/data/night 1/a#1.png", encode=True)
    'file:///data/night%201/a%231.png'
    >>> file_url(r"C:\\data\\a.png", windows=True), file_url(r"\\\\srv\\lab\\a.png", windows=True)
    ('file:///C:/data/a.png', 'file://srv/lab/a.png')
    """
    if is_url(path):  # a remote manifest's files are URLs already
        return path
    posix = (PureWindowsPath(path) if windows else PurePosixPath(path)).as_posix()
    if encode:
        posix = quote(posix, safe="/:")
    if posix.startswith("//"):  # UNC: //server/share/...
        return "file:" + posix
    return "file://" + (posix if posix.startswith("/") else "/" + posix)


def local_path(opened: Opened, index: int) -> str:
    """The local path of file ``index``, for exports that need local files (links, Icechunk);
    an :class:`ExportError` for a remote root."""
    try:
        return opened.source.local_path(opened.manifest.files.paths[index])
    except NotImplementedError as e:
        raise ExportError(str(e)) from e


def checked_stat(opened: Opened, index: int) -> FileStat:
    """A fresh stat of file ``index`` for an export that references it in place.

    Refuses a missing file and one that the freshness check of the access it was opened
    with calls changed (with ``check="none"``, the recorded stat is taken as it is).
    """
    entry = opened.manifest.files[index]
    if opened.check == "none":
        return entry.stat
    where = opened.location(index)
    try:
        st = opened.source.stat(entry.path)
    except READ_ERRORS as e:
        msg = (
            f"{where!r}: cannot export a reference to it: {error_text(e)}; run `imagezarr "
            "verify MANIFEST`, then re-scan the folder"
        )
        raise ExportError(msg) from e
    reason = stale(entry, st, opened.check)
    if reason is not None:
        msg = (
            f"{where!r} changed since the scan ({reason}); refusing to export a reference to "
            "it; re-scan the folder (imagezarr update), or export with check='none' "
            "(--check none) to reference it as it is"
        )
        raise ExportError(msg)
    return st


def checked_stats(
    opened: Opened, indices: Sequence[int], progress: Progress | None = None
) -> list[FileStat]:
    """:func:`checked_stat` of every file in ``indices``, in order, many at once (stats of a
    network share or bucket wait on the network)."""
    if opened.check == "none":
        return [opened.manifest.files[i].stat for i in indices]
    return Executor().map(
        lambda i: checked_stat(opened, i),
        indices,
        workers=opened.source.workers,
        progress=progress,
        step=1024,
    )
