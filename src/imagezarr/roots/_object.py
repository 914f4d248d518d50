"""A bucket prefix or URL base as a root, through obstore.

One Rust client per root with connection pooling, retries with exponential backoff on
transient errors and timeouts, and credentials from the standard places (environment,
profiles, instance metadata) or ``storage_options``. Options and credentials live only in
memory: they are never written into a manifest and never printed.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import DiscoveryError
from ._types import FileEntry, FileStat

__all__ = ["ObjectRoot", "TooLarge"]


class TooLarge(OSError):
    """The object is larger than the caller allows (the manifest's size, say)."""


def _ns(when: datetime | None) -> int:
    return 0 if when is None else int(when.timestamp() * 1e9)


def _entry(meta: Mapping[str, Any]) -> FileEntry:
    return FileEntry(meta["path"], int(meta["size"]), _ns(meta["last_modified"]), meta["e_tag"])


def _stat(meta: Mapping[str, Any]) -> FileStat:
    return FileStat(int(meta["size"]), _ns(meta["last_modified"]), meta["e_tag"])


@dataclass(eq=False)
class ObjectRoot:
    """A remote root (``s3://bucket/prefix``, ``https://host/base``, ...), opened lazily.

    ``options`` are passed to ``obstore.store.from_url`` (``config``, ``client_options``,
    ``retry_config``, ``credential_provider``, ...). The object pickles, so dask workers
    reopen it; the client itself is rebuilt on each worker.
    """

    url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    _store: Any = field(default=None, repr=False)

    remote = True
    skips_hidden = False
    sync_reads = False  # every read waits on the network: many in flight on zarr's loop
    workers = 32  # concurrent requests for stat/probe
    first_batch = 8
    batch = 4  # small batches keep many requests in flight

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "options": dict(self.options), "_store": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:  # never print options: they may hold credentials
        return f"ObjectRoot({self.url!r})"

    @property
    def can_list(self) -> bool:
        """HTTP servers have no listing; buckets do."""
        return not self.url.lower().startswith(("http://", "https://"))

    @property
    def store(self) -> Any:
        if self._store is None:
            from obstore.store import from_url

            self._store = from_url(self.url, **dict(self.options))
        return self._store

    def location(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    def local_path(self, rel: str) -> str:
        msg = (
            f"{self.location(rel)}: this needs local files, and the root is remote; "
            "use the kerchunk export (urls) or copy the images first"
        )
        raise NotImplementedError(msg)

    def list(self, keep: Callable[[str], object], prefix: str = "") -> list[FileEntry]:
        """Every object below the root (or below ``prefix`` in it, a whole path segment)
        whose relative path ``keep`` accepts."""
        import obstore

        self._check_listing()
        return [
            _entry(meta)
            for batch in obstore.list(self.store, prefix or None, chunk_size=1000)
            for meta in batch
            if keep(meta["path"])
        ]

    def list_level(
        self, keep: Callable[[str], object], prefix: str = ""
    ) -> tuple[list[str], list[FileEntry]]:
        """The common prefixes directly below ``prefix`` (relative, no trailing ``/``) and
        the objects directly in it that ``keep`` accepts: one delimiter listing."""
        import obstore

        self._check_listing()
        got = obstore.list_with_delimiter(self.store, prefix or None)
        files = [_entry(meta) for meta in got["objects"] if keep(meta["path"])]
        return list(got["common_prefixes"]), files

    def _check_listing(self) -> None:
        if not self.can_list:
            msg = (
                f"cannot list {self.url}: HTTP servers have no listing; pass files= (a list "
                "of relative paths, or an index file with one per line; CLI --files)"
            )
            raise DiscoveryError(msg)

    def stat(self, rel: str) -> FileStat:
        import obstore

        return _stat(obstore.head(self.store, rel))

    async def stat_async(self, rel: str) -> FileStat:
        import obstore

        return _stat(await obstore.head_async(self.store, rel))

    def read_range(self, rel: str, offset: int, length: int) -> bytes:
        """One ranged GET."""
        import obstore

        return bytes(obstore.get_range(self.store, rel, start=offset, length=length))

    def head(self, rel: str, length: int) -> bytes:
        return self.read_range(rel, 0, length)

    def read(self, rel: str, *, limit: int | None = None) -> tuple[bytes, FileStat]:
        """The whole object with the size, mtime and etag of the very response that carried it.

        An object larger than ``limit`` is refused before its body is fetched.
        """
        import obstore

        result = obstore.get(self.store, rel)
        st = _stat(result.meta)
        _check_limit(st, limit)
        return bytes(result.bytes()), st

    async def read_async(self, rel: str, *, limit: int | None = None) -> tuple[bytes, FileStat]:
        import obstore

        result = await obstore.get_async(self.store, rel)
        st = _stat(result.meta)
        _check_limit(st, limit)
        return bytes(await result.bytes_async()), st

    def write(self, rel: str, data: bytes) -> str:
        """One PUT, which object stores make atomic; return the object's URL."""
        import obstore

        obstore.put(self.store, rel, data)
        return self.location(rel)


def _check_limit(st: FileStat, limit: int | None) -> None:
    if limit is not None and st.size > limit:
        msg = f"object is {st.size} bytes, more than the {limit} expected"
        raise TooLarge(errno.EFBIG, msg)
