"""What the server serves: every key of the hierarchy as bytes with its validators.

The keys, their documents and coordinate chunks come from :func:`imagezarr.hierarchy.build_metadata`
(so the served hierarchy is the one the store and every export describe); image chunks are read
through :class:`~imagezarr.store.ImageZarrStore` (so every read-time freshness check applies).
With ``codec="original"`` a chunk is the file's bytes under the imagecodecs codec the array
declares. With ``raw``, ``zstd`` or ``gzip`` it is the decoded image (decoded by the pinned
image codec, which insists on the declared shape and dtype), encoded by zarr's own ``bytes``
codec (and ``zstd`` or ``gzip``), and the image array's ``zarr.json`` declares exactly those
codecs, so readers without imagecodecs decode it.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

from zarr.abc.codec import ArrayBytesCodec, BytesBytesCodec
from zarr.codecs import BytesCodec, GzipCodec, ZstdCodec
from zarr.core.array_spec import ArrayConfig, ArraySpec
from zarr.core.buffer import Buffer, default_buffer_prototype
from zarr.core.metadata.v3 import ArrayV3Metadata
from zarr.registry import get_codec_class

from ..hierarchy import build_metadata, image_array_path
from ..layout import Node
from ..store import ImageZarrStore

__all__ = ["CODECS", "LEVEL", "Codec", "Content", "Entity"]

Codec = Literal["original", "raw", "zstd", "gzip"]
CODECS: tuple[Codec, ...] = ("original", "raw", "zstd", "gzip")
# fast levels: serving is latency-bound and the pixels cross a LAN or loopback, not an ocean
LEVEL = {"zstd": 1, "gzip": 1}
JSON = "application/json"
OCTETS = "application/octet-stream"


@dataclass(frozen=True)
class Entity:
    """One served key: its bytes and the validators HTTP caches compare."""

    body: bytes | memoryview
    etag: str
    last_modified: str | None
    content_type: str


@dataclass(frozen=True)
class _Image:
    """An image array: how its chunks are decoded and re-encoded for ``raw``/``zstd``/``gzip``."""

    node: Node
    decoder: ArrayBytesCodec
    spec: ArraySpec
    serializer: ArrayBytesCodec | None
    compressors: tuple[BytesBytesCodec, ...]

    @property
    def ndim(self) -> int:
        return len(self.spec.shape)


def _etag(data: bytes) -> str:
    return f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'


def _http_date(ns: int) -> str | None:
    if ns <= 0:  # unknown (synthetic entries): no date rather than 1970
        return None
    return format_datetime(datetime.fromtimestamp(ns / 1e9, UTC), usegmt=True)


def _created(text: str) -> str | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return format_datetime(when.astimezone(UTC), usegmt=True)


def _served_codecs(codec: Codec) -> list[Any]:
    """The codec chain of a decoded image array (``raw``, ``zstd``, ``gzip``)."""
    chain: list[Any] = [BytesCodec()]
    if codec == "zstd":
        chain.append(ZstdCodec(level=LEVEL["zstd"]))
    elif codec == "gzip":
        chain.append(GzipCodec(level=LEVEL["gzip"]))
    return chain


class Content:
    """The served hierarchy of one manifest.

    Parameters
    ----------
    store
        The store every image chunk is read through (with its ``check``; it must raise on a
        bad file, ``on_error="raise"``, so that no stale bytes are ever served).
    codec
        ``"original"``, ``"raw"``, ``"zstd"`` or ``"gzip"`` (see the module docstring).
    ome
        Add OME-Zarr 0.5 ``multiscales`` to every group whose layout fits
        (:func:`imagezarr.hierarchy.ome_attributes`); others are served without.
    consolidated
        Put zarr-python's consolidated metadata into the root ``zarr.json``, so zarr and
        xarray open the whole hierarchy with one request. ``None``: only when every served
        codec is a standard zarr codec, because zarr-python refuses to open a group whose
        consolidated metadata names a codec it lacks (imagecodecs' ones, for ``original``).
    """

    def __init__(
        self,
        store: ImageZarrStore,
        codec: Codec = "original",
        *,
        ome: bool = True,
        consolidated: bool | None = None,
    ) -> None:
        if codec not in CODECS:
            msg = f"codec must be one of {', '.join(CODECS)}, not {codec!r}"
            raise ValueError(msg)
        if store.on_error != "raise":
            msg = "serve needs a store with on_error='raise': a bad file must be an error"
            raise ValueError(msg)
        self.store = store
        self.codec = codec
        manifest = store.manifest
        self.consolidated = codec != "original" if consolidated is None else consolidated
        # one build, with the variants served: no document is rewritten afterwards
        self.meta = build_metadata(
            manifest,
            image_codecs=None if codec == "original" else _served_codecs(codec),
            ome=ome,
            hide_root=True,  # clients learn how many files there are, not where they lie
            consolidated=self.consolidated,
        )
        self.not_ome: dict[str, str] = self.meta.not_ome  # served without OME, and why
        self.ome = [n.path for n in manifest.nodes if ome and n.path not in self.not_ome]
        self.created = _created(manifest.created)
        self.images = {image_array_path(n): self._image(n) for n in manifest.nodes}
        self._etags: dict[str, str] = {}

    def _image(self, node: Node) -> _Image:
        served = ArrayV3Metadata.from_dict(
            json.loads(self.meta[f"{image_array_path(node)}/zarr.json"])
        )
        spec = ArraySpec(
            shape=served.chunk_grid.chunk_shape,  # type: ignore[attr-defined]
            dtype=served.dtype,
            fill_value=served.fill_value,
            config=ArrayConfig.from_dict({}),
            prototype=default_buffer_prototype(),
        )
        serializer = next(c for c in served.codecs if isinstance(c, ArrayBytesCodec))
        compressors = tuple(c for c in served.codecs if isinstance(c, BytesBytesCodec))
        decoder = get_codec_class(node.image.codec["name"]).from_dict(node.image.codec)
        if self.codec == "original":
            return _Image(node, decoder, spec, None, ())
        return _Image(node, decoder, spec, serializer, compressors)

    # -- serving -----------------------------------------------------------------------------

    def document(self, key: str) -> Entity | None:
        """A metadata document or coordinate chunk, or None when ``key`` is not one.

        Coordinate chunks encoded on first use (the ``path`` chunk) are built by the caller's
        thread: call it off the event loop.
        """
        if key not in self.meta:
            return None
        body = self.meta[key]
        etag = self._etags.get(key)
        if etag is None:
            etag = self._etags[key] = _etag(body)
        kind = JSON if key.endswith("zarr.json") else OCTETS
        return Entity(body, etag, self.created, kind)

    def deferred(self, key: str) -> bool:
        """Whether :meth:`document` may have to encode ``key`` first (a slow call)."""
        return key in self.meta and key not in self._etags

    def chunk_file(self, key: str) -> int | None:
        """The file index of an image chunk key, -1 for a hole, None for any other key."""
        if key in self.meta:
            return None
        return self.store.chunks.file(key)

    def validators(self, index: int) -> tuple[str, str | None]:
        """ETag and Last-Modified of the chunk in file ``index``: the scanned version of the
        file, as served with this codec (the read-time check ensures it is still that one).

        Built from the file table's columns, without hashing the file: this runs on the event
        loop for every chunk request.
        """
        files = self.store.manifest.files
        path, size, mtime = files.paths[index], int(files.sizes[index]), int(files.mtimes[index])
        extra = ""
        if files.checksums is not None and files.checksums[index]:
            extra = "-" + str(files.checksums[index])
        tag = f'"{zlib.crc32(path.encode()):08x}-{size:x}-{mtime:x}{extra}-{self.codec}"'
        return tag, _http_date(mtime)

    def image_of(self, key: str) -> _Image:
        """The image array an image chunk key belongs to."""
        ref = self.store.chunks.parse(key)
        if ref is None:  # pragma: no cover - only called for keys chunk_file resolved
            raise KeyError(key)
        return self.images[ref.array]

    def encode(self, key: str, raw: Buffer) -> Buffer:
        """The served bytes of image chunk ``key`` from the file's bytes ``raw`` (a
        :class:`~imagezarr.codecs.SourceBuffer`, so decode errors name the file).

        CPU-bound (decoding): call it from a worker thread.
        """
        if self.codec == "original":
            return raw
        image = self.image_of(key)
        decoded = image.decoder._decode_sync(raw, image.spec)  # type: ignore[attr-defined]
        out = image.serializer._encode_sync(decoded, image.spec)  # type: ignore[union-attr]
        for c in image.compressors:
            out = c._encode_sync(out, image.spec)  # type: ignore[attr-defined]
        return out

    def chunk_sync(self, key: str, *, encode: bool = True) -> Buffer | None:
        """Read (with the freshness check) and, if ``encode``, encode one image chunk.

        Blocking: call it from a worker thread. None when the chunk is a hole.
        """
        raw = self.store.get_sync(key)
        if raw is None or not encode:
            return raw
        return self.encode(key, raw)

    async def read_async(self, key: str) -> Buffer | None:
        """The file's bytes through the store's async path (roots without cheap sync reads)."""
        return await self.store.get(key, default_buffer_prototype())
