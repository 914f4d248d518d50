"""Store: a read-only zarr-3 store over a manifest. Each image file is one chunk.

Metadata documents and coordinate arrays are built once, with zarr itself, into memory. Chunk
keys of the image arrays map to files; :meth:`ImageZarrStore.get` returns a file's raw bytes
through the manifest's root, after the one freshness check
(:func:`imagezarr.roots.stale`), and zarr's own pipeline decodes them with the image codec the
array declares (which insists that the decoded image is exactly the declared chunk).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Unpack

import numpy as np
from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype, cpu

from . import limits
from .access import Access, AccessKeywords, OnError
from .codecs import SourceBuffer, pin_codecs, prefer_fused_pipeline, warn_filled
from .errors import ChunkDecodeError, ChunkReadError, ProbeError, SourceChangedError
from .hierarchy import ChunkMap, build_metadata
from .layout import natural_key
from .manifest import Manifest, ManifestLike, Opened, check_codecs, open_manifest
from .probe import probe_bytes
from .roots import (
    READ_ERRORS,
    ChangedWhileReading,
    Check,
    FileStat,
    error_text,
    stale,
)

__all__ = ["ImageZarrStore", "ManifestLike", "OnError"]

logger = logging.getLogger(__name__)
_FIX = (
    "run `imagezarr verify MANIFEST` to list every problem, then `imagezarr update MANIFEST` "
    "to accept the changes"
)
_COPIED = (
    " If the folder was copied without keeping modification times, open it with "
    "check='size' (CLI --check size), or 'checksum' when checksums were recorded."
)


class ImageZarrStore(Store):
    """Read-only zarr store serving a :class:`Manifest` as a zarr v3 hierarchy.

    Parameters
    ----------
    manifest
        The dataset: a :class:`Manifest`, the path or URL of a saved one, or one already
        opened (:func:`~imagezarr.manifest.open_manifest`).
    access, **options
        How the images are reached and trusted (:class:`~imagezarr.access.Access`; keywords
        ``root``, ``storage_options``, ``allow_outside_root``, ``check``, ``on_error``, which
        win over ``access``). ``check`` is how a file is judged unchanged before its bytes are
        returned: ``"mtime"`` (default; size, modification time and etag), ``"size"`` (for
        copies that did not keep times), ``"checksum"`` (content hashes recorded by
        ``scan(checksum=True)``) or ``"none"``. ``on_error="raise"`` (default): a missing,
        changed, unreadable or undecodable file is an error naming it; ``"fill"``: it reads as
        the array's fill value (0) and one :class:`~imagezarr.errors.FilledChunkWarning` names
        the file and what was wrong.
    pipeline
        ``"auto"`` (default) switches zarr to its fused codec pipeline if zarr's pipeline is
        still the default (zarr chooses pipelines globally, not per store). ``None`` leaves
        zarr's config alone.

    Examples
    --------
    >>> import imagezarr.testing, tempfile, zarr
    >>> d = tempfile.mkdtemp()
    >>> _ = imagezarr.testing.make_psii_experiment(d, plants=1, nights=1, steps=1, frames=2,
    ...                                            shape=(4, 6), holes=0)
    >>> store = ImageZarrStore(imagezarr.scan(d, pattern=imagezarr.testing.PSII_PATTERN))
    >>> zarr.open_group(store, mode="r")["image"].shape
    (2, 4, 6)
    """

    supports_writes = False
    supports_deletes = False
    supports_listing = True
    supports_partial_writes = False

    def __init__(
        self,
        manifest: ManifestLike | Opened,
        *,
        access: Access | None = None,
        pipeline: str | None = "auto",
        read_only: bool = True,
        **options: Unpack[AccessKeywords],
    ) -> None:
        if not read_only:
            msg = "an ImageZarrStore is always read-only: it never writes into the source"
            raise ValueError(msg)
        super().__init__(read_only=True)
        self.opened = open_manifest(manifest, access, **options)
        check_codecs(self.opened.manifest)
        if pipeline == "auto" and prefer_fused_pipeline():
            logger.debug("imagezarr selected zarr's FusedCodecPipeline for fast local reads")
        self._setup()

    @property
    def manifest(self) -> Manifest:
        """The manifest served (re-rooted when the access named a root)."""
        return self.opened.manifest

    @property
    def access(self) -> Access:
        """The access this store was opened with (what was said; defaults left ``None``)."""
        return self.opened.access

    @property
    def check(self) -> Check:
        return self.opened.check

    @property
    def on_error(self) -> str:
        return self.opened.on_error

    def with_access(self, access: Access) -> ImageZarrStore:
        """This store with ``access`` laid over its own; itself when that changes nothing."""
        opened = self.opened.with_access(access)
        return self if opened is self.opened else type(self)(opened, pipeline=None)

    def _setup(self) -> None:
        pin_codecs()
        self._root = self.opened.source
        self._check, self._fill = self.opened.check, self.opened.on_error == "fill"
        self._meta = build_metadata(self.manifest)
        self.chunks = ChunkMap(self.manifest.nodes)

    def __getstate__(self) -> dict[str, Any]:
        return {"opened": self.opened}

    def __setstate__(self, state: dict[str, Any]) -> None:
        Store.__init__(self, read_only=True)
        self.opened = state["opened"]
        self._setup()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageZarrStore):
            return False
        a, b = self.manifest, other.manifest
        return a is b or (
            self.access == other.access
            and (a.root, a.files, a.created) == (b.root, b.files, b.created)
            and [n.path for n in a.nodes] == [n.path for n in b.nodes]
            and all(
                np.array_equal(x.file_index, y.file_index)
                for x, y in zip(a.nodes, b.nodes, strict=True)
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ImageZarrStore({self.manifest.root!r}, files={len(self.manifest.files)})"

    def with_read_only(self, read_only: bool = False) -> ImageZarrStore:
        # docstring inherited
        if not read_only:
            msg = (
                f"with_read_only is not implemented for the {type(self)} store type: an "
                "ImageZarrStore is always read-only, it never writes into the source"
            )
            raise NotImplementedError(msg)
        return type(self)(self.opened, pipeline=None)

    # -- reading ---------------------------------------------------------------------------

    @property
    def _supports_sync_io(self) -> bool:
        # zarr's fused pipeline runs sync reads in a pool of one thread per core: right for
        # local files, starving for object stores, which get the async path and its concurrency
        return self._root.sync_reads

    def _failed(self, index: int, e: Exception) -> ChunkReadError:
        rel = self.manifest.files.paths[index]
        if isinstance(e, FileNotFoundError):
            return ChunkReadError(f"{rel}: file is missing (it was scanned); {_FIX}", path=rel)
        if isinstance(e, ChangedWhileReading):
            msg = f"{rel}: file changed while it was read; refusing its bytes; {_FIX}"
            return SourceChangedError(msg, path=rel)
        return ChunkReadError(f"{rel}: cannot read: {error_text(e)}; {_FIX}", path=rel)

    def _checked(self, index: int, data: bytes, st: FileStat) -> SourceBuffer:
        """The bytes, if the file is still the one scanned; else SourceChangedError."""
        entry = self.manifest.files[index]
        reason = stale(entry, st, self._check, data)
        if reason is not None:
            hint = _COPIED if reason.startswith("modification time") else ""
            msg = (
                f"{entry.path}: file changed since the scan ({reason}); refusing to return "
                f"pixels that may be wrong; {_FIX}.{hint}"
            )
            raise SourceChangedError(msg, path=entry.path)
        _refuse_bomb(entry.path, data)
        return SourceBuffer.of(data, entry.path, fill=self._fill)

    def _filled(self, error: ChunkReadError) -> None:
        """With on_error="fill", a file that cannot be read becomes a missing chunk (zarr
        fills it) and one warning names it; otherwise the error stands."""
        if not self._fill:
            raise error
        path = error.path or "a chunk"
        warn_filled(path, str(error).removeprefix(f"{path}: ").split("; run `", 1)[0])

    def _read_sync(self, index: int) -> SourceBuffer:
        rel = self.manifest.files.paths[index]
        try:
            data, st = self._root.read(rel, limit=int(self.manifest.files.sizes[index]))
        except READ_ERRORS as e:
            raise self._failed(index, e) from e
        return self._checked(index, data, st)

    async def _read_async(self, index: int) -> SourceBuffer:
        rel = self.manifest.files.paths[index]
        try:
            data, st = await self._root.read_async(rel, limit=int(self.manifest.files.sizes[index]))
        except READ_ERRORS as e:
            raise self._failed(index, e) from e
        return self._checked(index, data, st)

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """Synchronous :meth:`get`, used by zarr's fused codec pipeline."""
        meta = self._meta.get(key)
        if meta is not None:
            return _wrap(_slice(meta, byte_range), prototype)
        index = self.chunks.file(key)
        if index is None or index < 0:
            return None
        try:
            buf = self._read_sync(index)
        except ChunkReadError as e:
            return self._filled(e)
        return _answer(buf, prototype, byte_range)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        # docstring inherited; object reads stay on the event loop, so many run at once
        meta = self._meta.get(key)
        if meta is not None:
            return _wrap(_slice(meta, byte_range), prototype)
        index = self.chunks.file(key)
        if index is None or index < 0:
            return None
        try:
            buf = await self._read_async(index)
        except ChunkReadError as e:
            return self._filled(e)
        return _answer(buf, prototype, byte_range)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        # docstring inherited
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        # docstring inherited
        if key in self._meta:
            return True
        index = self.chunks.file(key)
        return index is not None and index >= 0

    async def getsize(self, key: str) -> int:
        # docstring inherited; from the manifest, so no file is read
        meta = self._meta.get(key)
        if meta is not None:
            return len(meta)
        index = self.chunks.file(key)
        if index is None or index < 0:
            raise FileNotFoundError(key)
        return self.manifest.files[index].size

    # -- listing ---------------------------------------------------------------------------

    def _keys(self, prefix: str = "") -> Iterable[str]:
        yield from (k for k in self._meta if k.startswith(prefix))
        yield from self.chunks.keys(prefix)

    async def list(self) -> AsyncIterator[str]:
        # docstring inherited
        for key in self._keys():
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        # docstring inherited
        for key in self._keys(prefix):
            yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        # docstring inherited; derived from the chunk grids, so a million files list in no time
        prefix = prefix.rstrip("/")
        start = f"{prefix}/" if prefix else ""
        children = {k[len(start) :].split("/", 1)[0] for k in self._meta if k.startswith(start)}
        children |= self.chunks.children(prefix)
        for child in sorted(children, key=natural_key):  # A2 before A10, as the labels sort
            yield child

    # -- writing is refused ------------------------------------------------------------------

    async def set(self, key: str, value: Buffer) -> None:
        # docstring inherited
        self._check_writable()

    def set_sync(self, key: str, value: Buffer) -> None:
        """Refused: the store is read-only."""
        self._check_writable()

    async def delete(self, key: str) -> None:
        # docstring inherited
        self._check_writable()

    def delete_sync(self, key: str) -> None:
        """Refused: the store is read-only."""
        self._check_writable()


def _refuse_bomb(path: str, data: bytes) -> None:
    """ChunkDecodeError when the bytes' header declares more pixels than the budget.

    The scan checked the file, but a file swapped since (with the same size, or with no
    check) could be a decompression bomb; its header is read before any pixel is decoded.
    """
    try:
        info = probe_bytes(data, name=path, budget=False)
    except ProbeError:
        return  # not an image header we know: the decoder says what is wrong with it
    why = limits.over_budget(info.shape, info.dims)
    if why is not None:
        msg = f"{path}: {why}; refusing to decode it"
        raise ChunkDecodeError(msg, path=path)


def _answer(
    buf: SourceBuffer, prototype: BufferPrototype | None, byte_range: ByteRequest | None
) -> Buffer:
    if byte_range is not None or (prototype is not None and prototype.buffer is not cpu.Buffer):
        return _wrap(_slice(buf.to_bytes(), byte_range), prototype)
    return buf


def _slice(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[-byte_range.suffix :] if byte_range.suffix else b""
    msg = f"Unexpected byte_range, got {byte_range!r}."
    raise TypeError(msg)


def _wrap(data: bytes, prototype: BufferPrototype | None) -> Buffer:
    return (prototype.buffer if prototype is not None else cpu.Buffer).from_bytes(data)
