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
import warnings
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

import zarr
from zarr.abc.codec import ArrayBytesCodec, BytesBytesCodec
from zarr.codecs import BytesCodec, GzipCodec, ZstdCodec
from zarr.core.array_spec import ArrayConfig, ArraySpec
from zarr.core.buffer import Buffer, default_buffer_prototype
from zarr.core.metadata.v3 import ArrayV3Metadata
from zarr.errors import ZarrUserWarning

from ..errors import ExportError
from ..export.zarr_copy import ome_attributes
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


def _group_key(path: str) -> str:
    return f"{path}/zarr.json" if path else "zarr.json"


def _served_codecs(codec: Codec) -> list[dict[str, Any]]:
    """The codec chain of a decoded image array, as zarr itself writes it."""
    chain: list[Any] = [BytesCodec()]
    if codec == "zstd":
        chain.append(ZstdCodec(level=LEVEL["zstd"]))
    elif codec == "gzip":
        chain.append(GzipCodec(level=LEVEL["gzip"]))
    return [c.to_dict() for c in chain]


def _encode_doc(meta: ArrayV3Metadata) -> bytes:
    return meta.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()


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
        (:func:`imagezarr.export.zarr_copy.ome_attributes`); others are served without.
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
        self.meta = build_metadata(manifest)
        self.created = _created(manifest.created)
        self.docs: dict[str, bytes] = {}  # rewritten documents; every other key is self.meta's
        self.images: dict[str, _Image] = {}
        self.ome: list[str] = []  # groups given OME-Zarr metadata
        self.not_ome: dict[str, str] = {}  # groups served without it, and why
        self._hide_root()
        for node in manifest.nodes:
            self._add_image(node)
            if ome:
                self._add_ome(node)
        self.consolidated = codec != "original" if consolidated is None else consolidated
        if self.consolidated:
            self._consolidate()
        self._etags: dict[str, str] = {}
        self._index_parts = sorted({i.ndim for i in self.images.values()})

    # -- building ----------------------------------------------------------------------------

    def _hide_root(self) -> None:
        """Clients learn how many files there are, not where they lie on the server (the
        root attribute names an absolute folder or a bucket)."""
        doc = self._doc("zarr.json")
        info = doc.get("attributes", {}).get("imagezarr")
        if isinstance(info, dict) and info.pop("root", None) is not None:
            self.docs["zarr.json"] = json.dumps(doc, indent=2).encode()

    def _doc(self, key: str) -> dict[str, Any]:
        return json.loads(self.docs.get(key) or self.meta[key])

    def _add_image(self, node: Node) -> None:
        key = f"{image_array_path(node)}/zarr.json"
        declared = ArrayV3Metadata.from_dict(self._doc(key))
        chunk = declared.chunk_grid.chunk_shape  # type: ignore[attr-defined]
        spec = ArraySpec(
            shape=chunk,
            dtype=declared.dtype,
            fill_value=declared.fill_value,
            config=ArrayConfig.from_dict({}),
            prototype=default_buffer_prototype(),
        )
        serializer: ArrayBytesCodec | None = None
        compressors: tuple[BytesBytesCodec, ...] = ()
        if self.codec != "original":
            doc = self._doc(key)
            doc["codecs"] = _served_codecs(self.codec)
            served = ArrayV3Metadata.from_dict(doc)  # zarr evolves the codecs (endianness)
            serializer = next(c for c in served.codecs if isinstance(c, ArrayBytesCodec))
            compressors = tuple(c for c in served.codecs if isinstance(c, BytesBytesCodec))
            self.docs[key] = _encode_doc(served)
        decoder = next(c for c in declared.codecs if isinstance(c, ArrayBytesCodec))
        self.images[image_array_path(node)] = _Image(node, decoder, spec, serializer, compressors)

    def _add_ome(self, node: Node) -> None:
        try:
            attrs = ome_attributes(node)
        except ExportError as e:
            self.not_ome[node.path] = str(e)
            return
        key = _group_key(node.path)
        doc = self._doc(key)
        doc.setdefault("attributes", {}).update(attrs)
        self.docs[key] = json.dumps(doc, indent=2).encode()
        self.ome.append(node.path)

    def _consolidate(self) -> None:
        """Consolidate the served documents with zarr itself (in memory)."""
        mem = zarr.storage.MemoryStore()
        proto = default_buffer_prototype()
        for key in self.meta:
            if key.endswith("zarr.json"):
                mem._store_dict[key] = proto.buffer.from_bytes(self.docs.get(key) or self.meta[key])
        with warnings.catch_warnings():
            # "not part of the Zarr 3 specification": other readers ignore the key
            # (must_understand is false); zarr-python and xarray use it
            warnings.simplefilter("ignore", ZarrUserWarning)
            zarr.consolidate_metadata(mem)
        self.docs["zarr.json"] = mem._store_dict["zarr.json"].to_bytes()

    # -- serving -----------------------------------------------------------------------------

    def document(self, key: str) -> Entity | None:
        """A metadata document or coordinate chunk, or None when ``key`` is not one.

        Coordinate chunks encoded on first use (the ``path`` chunk) are built by the caller's
        thread: call it off the event loop.
        """
        if key in self.docs:
            body = self.docs[key]
        elif key in self.meta:
            body = self.meta[key]
        else:
            return None
        etag = self._etags.get(key)
        if etag is None:
            etag = self._etags[key] = _etag(body)
        kind = JSON if key.endswith("zarr.json") else OCTETS
        return Entity(body, etag, self.created, kind)

    def deferred(self, key: str) -> bool:
        """Whether :meth:`document` may have to encode ``key`` first (a slow call)."""
        return key not in self.docs and key in self.meta and key not in self._etags

    def chunk_file(self, key: str) -> int | None:
        """The file index of an image chunk key, -1 for a hole, None for any other key."""
        if key in self.meta:
            return None
        return self.store._chunk_file(key)

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
        parts = key.split("/")
        for k in self._index_parts:  # a dict lookup per chunk depth, not a scan of the groups
            if len(parts) > k and parts[-k - 1] == "c":
                image = self.images.get("/".join(parts[: -k - 1]))
                if image is not None and image.ndim == k:
                    return image
        raise KeyError(key)  # pragma: no cover - only called for keys chunk_file resolved

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
