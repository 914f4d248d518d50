"""The one byte reader: every file and object access of imagezarr goes through here.

Local paths use plain ``os`` calls. URLs (``s3://``, ``gs://``, ``az://``, ``https://``, ...) go
through obstore: one Rust client per root with connection pooling, retries with exponential
backoff on transient errors and timeouts, and credentials from the standard places
(environment, profiles, instance metadata) or ``storage_options``. Options and credentials
live only in memory: they are never written into a manifest and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

try:  # obstore is the optional "remote" extra
    from obstore.exceptions import BaseError as _ObstoreError
except ImportError:  # pragma: no cover
    _ObstoreError = OSError  # type: ignore[assignment, misc]

# what a read may raise: local OS errors, and obstore's errors (not all of them OSErrors)
READ_ERRORS: tuple[type[Exception], ...] = (OSError, RuntimeError, ValueError, _ObstoreError)

__all__ = [
    "READ_ERRORS",
    "FileStat",
    "ObjectRoot",
    "error_text",
    "is_url",
    "range_reader",
    "read_bytes",
    "stat",
]

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


def error_text(e: BaseException) -> str:
    """One line saying what went wrong: the OS reason, or the first line of obstore's
    multi-line report (which also holds request details nobody needs in an error)."""
    return getattr(e, "strerror", None) or str(e).strip().split("\n", 1)[0][:300]


def is_url(root: str) -> bool:
    """True for a remote root such as ``s3://bucket/prefix``; False for local paths.

    >>> is_url("s3://lab/exp"), is_url("/data/exp"), is_url("file:///data/exp")
    (True, False, False)
    """
    return root.lower().startswith(URL_SCHEMES)


@dataclass(frozen=True, slots=True)
class FileStat:
    """Size in bytes, modification time in integer nanoseconds, and the etag when known."""

    size: int
    mtime_ns: int
    etag: str | None = None


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


def _ns(when: datetime | None) -> int:
    return 0 if when is None else int(when.timestamp() * 1e9)


@dataclass(eq=False)
class ObjectRoot:
    """A remote root (bucket prefix or URL base) opened lazily with obstore.

    ``options`` are passed to ``obstore.store.from_url`` (``config``, ``client_options``,
    ``retry_config``, ``credential_provider``, ...). The object pickles, so dask workers
    reopen it; the client itself is rebuilt on each worker.
    """

    url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    _store: Any = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "options": dict(self.options), "_store": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:  # never print options: they may hold credentials
        return f"ObjectRoot({self.url!r})"

    @property
    def store(self) -> Any:
        if self._store is None:
            from obstore.store import from_url

            self._store = from_url(self.url.rstrip("/"), **dict(self.options))
        return self._store

    def list(self) -> Iterator[tuple[str, int, int, str | None]]:
        """Every object below the root as ``(relative path, size, mtime_ns, etag)``."""
        import obstore

        for batch in obstore.list(self.store, chunk_size=1000):
            for meta in batch:
                yield meta["path"], int(meta["size"]), _ns(meta["last_modified"]), meta["e_tag"]

    def head(self, path: str) -> FileStat:
        import obstore

        meta = obstore.head(self.store, path)
        return FileStat(int(meta["size"]), _ns(meta["last_modified"]), meta["e_tag"])

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        import obstore

        return bytes(obstore.get_range(self.store, path, start=offset, length=length))

    def read(self, path: str) -> tuple[bytes, FileStat]:
        """The whole object with the size, mtime and etag of the very response that carried it."""
        import obstore

        result = obstore.get(self.store, path)
        meta = result.meta
        data = bytes(result.bytes())
        return data, FileStat(int(meta["size"]), _ns(meta["last_modified"]), meta["e_tag"])

    async def read_async(self, path: str) -> tuple[bytes, FileStat]:
        import obstore

        result = await obstore.get_async(self.store, path)
        meta = result.meta
        data = bytes(await result.bytes_async())
        return data, FileStat(int(meta["size"]), _ns(meta["last_modified"]), meta["e_tag"])
