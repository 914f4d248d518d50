"""A local folder (or network share) as a root: plain ``os`` calls, no POSIX-only ones.

Reads are hardened against what a folder can turn into between scan and read: a FIFO or
device in place of an image (refused at once; opened non-blocking so a FIFO cannot hang the
open), a file grown to gigabytes (at most ``limit`` bytes are read), a rewrite racing the read
(the handle is stat'ed before and after), and a folder swapped for a symbolic link leading
out of the root (the real path must stay inside unless ``allow_outside_root``).
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat as _stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType

from ..errors import DiscoveryError
from ..paths import portable_problems
from ._types import FileEntry, FileStat
from ._write import write_atomic

__all__ = [
    "ChangedWhileReading",
    "LocalRoot",
    "NotARegularFile",
    "OutsideRoot",
    "is_inside",
]

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)  # Windows: no newline translation
    | getattr(os, "O_NONBLOCK", 0)  # POSIX: opening a FIFO must not wait for a writer
    | getattr(os, "O_CLOEXEC", 0)
)
# os.pread does not exist on Windows; there a probe's handle is private to one thread, so
# seek + read is equivalent
_HAS_PREAD = hasattr(os, "pread")


class NotARegularFile(OSError):
    """The path is a FIFO, a device, a socket or a folder, not an image file."""


class OutsideRoot(OSError):
    """The path resolves (through a symbolic link or junction) to a place outside the root."""


class ChangedWhileReading(OSError):
    """The file's size or time changed between the start and the end of the read."""


def _stat_of(st: os.stat_result) -> FileStat:
    return FileStat(st.st_size, st.st_mtime_ns)


def _inside(real_top: str, target: str, pathmod: ModuleType = os.path) -> bool:
    """``target`` lies in ``real_top`` (both real paths); ``pathmod`` lets tests use ntpath."""
    try:
        top = pathmod.normcase(real_top)
        return pathmod.commonpath([top, pathmod.normcase(target)]) == top
    except ValueError:  # different drives on Windows: certainly not inside
        return False


def is_inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """True when ``path`` (existing or not) lies inside ``folder``, comparing real paths.

    Symbolic links, junctions and ``..`` are resolved first, so neither gets around the
    rule that imagezarr never writes into a source folder.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> is_inside(os.path.join(d, "out", "..", "m.json"), d), is_inside(d + "-other", d)
    (True, False)
    """
    return _inside(os.path.realpath(folder), os.path.realpath(path))


@dataclass(eq=False)
class LocalRoot:
    """A folder of image files.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.png").write_bytes(b"abc")
    >>> root = LocalRoot(str(d))
    >>> root.read("a.png")[0], root.stat("a.png").size
    (b'abc', 3)
    """

    path: str
    allow_outside_root: bool = False
    _real: str | None = field(default=None, repr=False)
    _prefix: str = field(default="", repr=False)

    # capabilities the layers above use instead of asking "local or remote?"
    remote = False
    can_list = True
    skips_hidden = True  # list() never descends into or returns dot-names
    sync_reads = True  # blocking reads are cheap: zarr's fused pipeline fits
    workers = min(
        16, 4 * (os.cpu_count() or 1)
    )  # threads for stat/probe when files turn out slow (a network share)
    first_batch = 64  # probe this many inline before deciding to go parallel
    batch = 64

    def __post_init__(self) -> None:
        self.path = os.path.abspath(self.path)
        # location() runs once per file of a scan: a prefix and a concatenation, not os.path.join
        self._prefix = os.path.join(self.path, "")

    @property
    def url(self) -> str:
        """What a manifest records and messages show: the absolute folder path."""
        return self.path

    @property
    def real(self) -> str:
        if self._real is None:
            self._real = os.path.realpath(self.path)
        return self._real

    def location(self, rel: str) -> str:
        """The absolute path of the file ``rel`` (POSIX separators) below the root."""
        return self._prefix + (rel if os.sep == "/" else rel.replace("/", os.sep))

    def local_path(self, rel: str) -> str:
        """A path other programs can open (links, Icechunk references): :meth:`location`."""
        return self.location(rel)

    def _checked_location(self, rel: str) -> str:
        full = self.location(rel)
        if not self.allow_outside_root and self._has_link(rel):
            # only a link below the root can lead out of it: resolve the whole path then
            target = os.path.realpath(full)
            if not _inside(self.real, target):
                msg = f"resolves to {target!r}, outside the root {self.real!r}"
                raise OutsideRoot(errno.EACCES, msg)
        return full

    def _has_link(self, rel: str) -> bool:
        """Whether a component of ``rel`` below the root is a link (or junction).

        One lstat per component below the root (usually two) instead of ``realpath``'s walk
        of the whole path, which cost most of a small file's read. Entries hold no ``..``
        (manifests are validated), so without links the path cannot leave the root.
        """
        path = self.path
        for part in rel.split("/"):
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except OSError:
                return False  # the open that follows reports the missing file
            if _stat.S_ISLNK(st.st_mode) or getattr(st, "st_reparse_tag", 0):
                return True
        return False

    # -- listing ---------------------------------------------------------------------------

    def list(self, keep: Callable[[str], object], prefix: str = "") -> list[FileEntry]:
        """Every regular file below the root (or its subfolder ``prefix``) whose relative
        path ``keep`` accepts.

        Hidden files and folders are skipped; symbolic links to folders are not followed
        (cycles, escapes); a link to a file outside the root is an error unless
        ``allow_outside_root``, as is a name that is not valid UTF-8.
        """
        self._check_folder()
        # "night 1/" and "night 1" name one folder, as for an object store's prefix
        return self._entries(_walk(self.path, prefix.strip("/")), keep)

    def list_level(
        self, keep: Callable[[str], object], prefix: str = ""
    ) -> tuple[list[str], list[FileEntry]]:
        """The subfolders directly in ``prefix`` (relative paths) and the files directly in
        it that ``keep`` accepts, with the checks and skips of :meth:`list`."""
        self._check_folder()
        folders: list[str] = []
        files: list[tuple[str, os.DirEntry[str]]] = []
        for rel, entry, is_folder in _level(self.path, prefix.strip("/")):
            if is_folder:
                folders.append(rel)
            else:
                files.append((rel, entry))
        return folders, self._entries(files, keep)

    def _check_folder(self) -> None:
        if not os.path.isdir(self.path):
            msg = f"source folder {self.path!r} does not exist or is not a folder"
            raise DiscoveryError(msg)

    def _entries(
        self, found: Iterable[tuple[str, os.DirEntry[str]]], keep: Callable[[str], object]
    ) -> list[FileEntry]:
        out, undecodable, outside = [], [], []
        for rel, entry in found:
            if not rel.isascii() and not _utf8(rel):
                undecodable.append(rel)
                continue
            if not keep(rel):
                continue
            if entry.is_symlink() and not self.allow_outside_root:
                target = os.path.realpath(entry.path)
                if not _inside(self.real, target):
                    outside.append(f"{rel} -> {target}")
                    continue
            st = entry.stat()
            out.append(FileEntry(rel, st.st_size, st.st_mtime_ns))
        unportable = [f"{p!r} ({why})" for p, why in portable_problems([e.path for e in out])]
        _raise_listing(self.path, undecodable, outside, unportable)
        return out

    # -- reading ---------------------------------------------------------------------------

    def stat(self, rel: str) -> FileStat:
        """Stat a file (following links, which must stay inside the root)."""
        st = os.stat(self._checked_location(rel))
        if not _stat.S_ISREG(st.st_mode):
            raise NotARegularFile(errno.EINVAL, "not a regular file")
        return _stat_of(st)

    def read(self, rel: str, *, limit: int | None = None) -> tuple[bytes, FileStat]:
        """The file's bytes (at most ``limit`` + 1 of them) and its stat.

        The stat is taken from the open handle before and after the read; if they differ the
        file was being rewritten and :class:`ChangedWhileReading` is raised, so torn bytes
        never pass for the old ones.
        """
        fd = os.open(self._checked_location(rel), _OPEN_FLAGS)
        try:
            before = os.fstat(fd)
            if not _stat.S_ISREG(before.st_mode):
                raise NotARegularFile(errno.EINVAL, "not a regular file (FIFO, device, ...)")
            want = before.st_size if limit is None else min(before.st_size, limit)
            data = _read_all(fd, want + 1)  # one byte more shows growth since the stat
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise ChangedWhileReading(errno.EAGAIN, "the file changed while it was read")
        return data, _stat_of(before)

    async def read_async(self, rel: str, *, limit: int | None = None) -> tuple[bytes, FileStat]:
        # blocking file I/O goes to a thread, as zarr's own LocalStore does
        return await asyncio.to_thread(self.read, rel, limit=limit)

    async def stat_async(self, rel: str) -> FileStat:
        return await asyncio.to_thread(self.stat, rel)

    def read_range(self, rel: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of a listed file (a header probe's read)."""
        fd = os.open(self.location(rel), _OPEN_FLAGS)
        try:
            if _HAS_PREAD:
                return os.pread(fd, length, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            return _read_all(fd, length)
        finally:
            os.close(fd)

    def head(self, rel: str, length: int) -> bytes:
        """The first ``length`` bytes of a listed file: one open, one read, one close."""
        return self.read_range(rel, 0, length)

    # -- writing (manifests, exports: never into the source, see the callers) --------------

    def write(self, rel: str, data: bytes) -> str:
        """Write ``data`` atomically to ``rel`` below the root; return its path."""
        out = self.location(rel)
        write_atomic(out, data)
        return out


def _read_all(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd``, looping over short reads (pipes, network shares)."""
    chunks = []
    left = limit
    while left > 0:
        got = os.read(fd, min(left, 1 << 30))
        if not got:
            break
        chunks.append(got)
        left -= len(got)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _walk(root: str, rel: str = "") -> Iterator[tuple[str, os.DirEntry[str]]]:
    for sub, entry, is_folder in _level(root, rel):
        if is_folder:
            yield from _walk(root, sub)
        else:
            yield sub, entry


def _level(root: str, rel: str = "") -> Iterator[tuple[str, os.DirEntry[str], bool]]:
    """The visible folders and regular files directly in ``rel``: (path, entry, is folder)."""
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
            # symlinked directories (and Windows junctions) are not followed: they can form
            # cycles or leave the root
            if entry.is_dir(follow_symlinks=False) and not entry.is_junction():
                yield sub, entry, True
            elif entry.is_file():
                yield sub, entry, False


def _utf8(name: str) -> bool:
    # os.scandir hands undecodable bytes over as lone surrogates
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _raise_listing(
    top: str, undecodable: list[str], outside: list[str], unportable: list[str]
) -> None:
    if unportable:
        msg = (
            f"{len(unportable)} file name(s) under {top!r} cannot be manifest entries: "
            f"{', '.join(unportable[:5])}. Windows cannot hold such names (':' in a name, "
            "device names like CON or NUL.png, a trailing dot or space), so a manifest holding "
            "them would not open there; rename them (e.g. ':' to '-')"
        )
        raise DiscoveryError(msg)
    if undecodable:
        shown = ", ".join(repr(p) for p in undecodable[:5])
        msg = (
            f"{len(undecodable)} file name(s) under {top!r} are not valid UTF-8 and cannot be "
            f"labels or manifest entries: {shown}; rename them (e.g. with convmv)"
        )
        raise DiscoveryError(msg)
    if outside:
        shown = ", ".join(repr(p) for p in outside[:5])
        msg = (
            f"{len(outside)} symbolic link(s) under {top!r} point outside it: {shown}; "
            "scan the folder they point into, or pass allow_outside_root=True "
            "(--allow-outside-root) to follow them"
        )
        raise DiscoveryError(msg)
