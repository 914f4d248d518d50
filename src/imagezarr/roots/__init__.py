"""The one byte layer: every file and object access of imagezarr goes through a *root*.

:func:`open_root` turns a folder path or a URL (``s3://``, ``gs://``, ``az://``,
``https://``, ...) plus storage options into a :class:`Root` with one interface: list, stat,
read (whole, bounded, async) and ranged reads, and atomic writes. The layers above never ask
"local or remote?"; where the two really differ they read a capability of the root
(``sync_reads``, ``can_list``, ``workers``, ...). :func:`stale` is the one freshness check.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.png").write_bytes(b"abc")
>>> root = open_root(str(d))
>>> [e.path for e in root.list(lambda rel: True)], root.read("a.png")[0]
(['a.png'], b'abc')
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ._fresh import (
    CHECKS,
    Check,
    checksum,
    normalize_check,
    same_time,
    stale,
    time_text,
)
from ._local import ChangedWhileReading, LocalRoot, NotARegularFile, OutsideRoot
from ._local import is_inside as _local_inside
from ._object import ObjectRoot, TooLarge
from ._types import FileEntry, FileStat
from ._write import place, replace_retrying, write_atomic

try:  # obstore is the optional "remote" extra
    from obstore.exceptions import BaseError as _ObstoreError
except ImportError:  # pragma: no cover
    _ObstoreError = OSError  # type: ignore[assignment, misc]

__all__ = [
    "CHECKS",
    "READ_ERRORS",
    "ChangedWhileReading",
    "Check",
    "FileEntry",
    "FileStat",
    "LocalRoot",
    "NotARegularFile",
    "ObjectRoot",
    "OutsideRoot",
    "Root",
    "TooLarge",
    "authority",
    "checksum",
    "error_text",
    "is_inside",
    "is_url",
    "join_location",
    "normalize_check",
    "open_root",
    "parent_of",
    "place",
    "read_location",
    "relative_root",
    "replace_retrying",
    "root_url",
    "same_time",
    "stale",
    "time_text",
    "write_atomic",
    "write_location",
]

# what a read may raise: local OS errors, and obstore's errors (not all of them OSErrors)
READ_ERRORS: tuple[type[Exception], ...] = (OSError, RuntimeError, ValueError, _ObstoreError)

URL_SCHEMES = (
    "s3://",
    "s3a://",
    "gs://",
    "gcs://",
    "az://",
    "abfs://",
    "abfss://",
    "azure://",
    "http://",
    "https://",
    "memory://",
)


class Root(Protocol):
    """What every root offers; :class:`LocalRoot` and :class:`ObjectRoot` implement it."""

    url: str
    remote: bool
    skips_hidden: bool
    sync_reads: bool
    workers: int
    first_batch: int
    batch: int

    @property
    def can_list(self) -> bool: ...
    def location(self, rel: str) -> str: ...
    def local_path(self, rel: str) -> str: ...
    def list(self, keep: Callable[[str], object], prefix: str = "") -> list[FileEntry]: ...
    def list_level(
        self, keep: Callable[[str], object], prefix: str = ""
    ) -> tuple[list[str], list[FileEntry]]: ...
    def stat(self, rel: str) -> FileStat: ...
    async def stat_async(self, rel: str) -> FileStat: ...
    def read(self, rel: str, *, limit: int | None = None) -> tuple[bytes, FileStat]: ...
    async def read_async(self, rel: str, *, limit: int | None = None) -> tuple[bytes, FileStat]: ...
    def read_range(self, rel: str, offset: int, length: int) -> bytes: ...
    def head(self, rel: str, length: int) -> bytes: ...
    def write(self, rel: str, data: bytes) -> str: ...


def error_text(e: BaseException) -> str:
    """One line saying what went wrong: the OS reason, or the first line of obstore's
    multi-line report (which also holds request details nobody needs in an error)."""
    return getattr(e, "strerror", None) or str(e).strip().split("\n", 1)[0][:300]


def is_url(where: str) -> bool:
    """True for a remote location such as ``s3://bucket/prefix``; False for local paths.

    >>> is_url("s3://lab/exp"), is_url("/data/exp"), is_url("file:///data/exp")
    (True, False, False)
    """
    return where.lower().startswith(URL_SCHEMES)


def open_root(
    where: str | os.PathLike[str],
    options: Mapping[str, Any] | None = None,
    *,
    allow_outside_root: bool = False,
) -> Root:
    """The root for a folder path or a URL.

    ``options`` reach object stores (``obstore.store.from_url`` keywords); a local folder
    refuses them, as zarr's own stores do, rather than ignore them. ``allow_outside_root``
    lets local reads follow links out of the folder.

    >>> open_root("s3://lab/exp/")
    ObjectRoot('s3://lab/exp')
    >>> open_root("/data/exp", {"config": {"region": "eu"}})
    Traceback (most recent call last):
    ValueError: storage options ('config') reach remote roots (s3://, https://, ...); '/data/...
    """
    given = os.fspath(where)
    if is_url(given):
        return ObjectRoot(given, dict(options or {}))
    if options:
        msg = (
            f"storage options ({', '.join(map(repr, options))}) reach remote roots (s3://, "
            f"https://, ...); {given!r} is a local folder"
        )
        raise ValueError(msg)
    return LocalRoot(given, allow_outside_root=allow_outside_root)


def root_url(where: str | os.PathLike[str]) -> str:
    """The normal form a manifest records: URLs without a trailing slash, absolute paths.

    >>> root_url("s3://lab/exp/")
    's3://lab/exp'
    """
    given = os.fspath(where)
    return given.rstrip("/") if is_url(given) else os.path.abspath(given)


def _split(where: str) -> tuple[str, str]:
    """``(folder or base URL, name)`` of a single file's location."""
    if is_url(where):
        base, _, name = where.rstrip("/").rpartition("/")
        return base, name
    full = os.path.abspath(where)
    return os.path.dirname(full), os.path.basename(full)


def parent_of(where: str | os.PathLike[str]) -> str:
    """The folder (absolute) or base URL a file's location lies in.

    >>> parent_of("s3://lab/exp/m.json")
    's3://lab/exp'
    """
    return _split(os.fspath(where))[0]


def is_inside(where: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """True when ``where`` (existing or not) lies inside ``folder``: real paths compared for
    local places (links, junctions and ``..`` resolved), prefixes for URLs.

    >>> is_inside("s3://lab/exp/m.json", "s3://lab/exp"), is_inside("s3://lab/e.json", "/data")
    (True, False)
    """
    a, b = os.fspath(where), os.fspath(folder)
    if is_url(a) or is_url(b):
        return is_url(a) and is_url(b) and a.startswith(b.rstrip("/") + "/")
    return _local_inside(a, b)


def authority(where: str) -> str | None:
    """``scheme://host`` (or bucket) of a URL; None for a local path.

    >>> authority("S3://lab/exp/m.json"), authority("/data/exp")
    ('s3://lab', None)
    """
    if not is_url(where):
        return None
    scheme, _, rest = where.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0]}"


def join_location(base: str | os.PathLike[str], recorded: str) -> str:
    """Where ``recorded`` (a path or URL written in a manifest) points, seen from ``base``
    (the folder or base URL the manifest lives in). Below a URL everything stays on its host
    or bucket: ``..`` cannot climb above it, and an absolute path is taken from its top.

    >>> join_location("s3://lab/manifests", "../images"), join_location("/data/m", "../img")
    ('s3://lab/images', '/data/img')
    >>> join_location("https://host/m", "../../../evil.example/x")
    'https://host/evil.example/x'
    """
    top = os.fspath(base)
    if is_url(recorded):
        return recorded.rstrip("/")
    if is_url(top):
        scheme, _, rest = top.partition("://")
        host, _, path = rest.partition("/")
        joined = posixpath.normpath(posixpath.join("/", path, recorded))
        return f"{scheme}://{host}{joined}".rstrip("/")
    return os.path.normpath(os.path.join(os.path.abspath(top), recorded))


def relative_root(root: str, folder: str) -> str:
    """How a manifest in ``folder`` records ``root``: relative when both are local folders on
    one drive (moving them together keeps the manifest working), else absolute or the URL.

    >>> relative_root("/data/exp/images", "/data/exp"), relative_root("s3://lab/x", "/data")
    ('images', 's3://lab/x')
    """
    if is_url(root) or is_url(folder):
        return root_url(root)
    try:
        return os.path.relpath(root, folder).replace(os.sep, "/")
    except ValueError:  # different drives on Windows
        return root


def read_location(where: str | os.PathLike[str], options: Mapping[str, Any] | None = None) -> bytes:
    """The bytes of one file given by path or URL (a manifest, a file list, a sidecar table)."""
    base, name = _split(os.fspath(where))
    return open_root(base, options if is_url(base) else None, allow_outside_root=True).read(name)[0]


def write_location(
    where: str | os.PathLike[str], data: bytes, options: Mapping[str, Any] | None = None
) -> str:
    """Write one file atomically to a path or URL; return where it went."""
    base, name = _split(os.fspath(where))
    remote = options if is_url(base) else None
    return open_root(base, remote, allow_outside_root=True).write(name, data)
