"""The zarr v3 description of a manifest: metadata documents, coordinate chunks, chunk keys.

Shared by the store and every export, so that all of them describe exactly the same arrays
(same grid, codec, coordinates and holes). Built with zarr itself into memory, so every
document and coordinate chunk is encoded by zarr's own code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import zarr
from numcodecs.vlen import VLenUTF8
from zarr.registry import get_codec_class

from .codecs import pin_codecs
from .layout import Coord, Node
from .manifest import Manifest

__all__ = ["build_metadata", "chunk_key", "chunk_refs", "image_array_path"]


def image_array_path(node: Node) -> str:
    """The key prefix of a node's image array: ``"A1/image"`` or ``"image"``."""
    return f"{node.path}/image" if node.path else "image"


def chunk_key(node: Node, index: tuple[int, ...]) -> str:
    """The zarr chunk key of the image at outer ``index`` of ``node``."""
    parts = [str(int(i)) for i in index] + ["0"] * len(node.image.shape)
    return f"{image_array_path(node)}/c/" + "/".join(parts)


def chunk_refs(manifest: Manifest) -> Iterator[tuple[str, int]]:
    """Every present image chunk as ``(key, file index)``, node by node, in C order."""
    for node in manifest.nodes:
        for row in np.argwhere(node.file_index >= 0):
            idx = tuple(int(i) for i in row)
            yield chunk_key(node, idx), int(node.file_index[idx])


_INT_MIN = np.iinfo(np.int64).min


def _coord_array(c: Coord, sizes: dict[str, int]) -> tuple[np.ndarray, dict[str, Any]]:
    """A coordinate as a numpy array plus the attributes xarray needs to decode it."""
    shape = tuple(sizes[d] for d in c.dims)
    holes = any(v is None for v in c.values)
    if c.kind == "datetime":
        whole = all(v is None or v.microsecond == 0 for v in c.values)  # type: ignore[union-attr]
        unit, scale = ("seconds", 1) if whole else ("microseconds", 10**6)
        epoch = datetime(1970, 1, 1, tzinfo=None)
        vals = [
            _INT_MIN if v is None else _since(v, epoch, scale)  # type: ignore[arg-type]
            for v in c.values
        ]
        attrs = {"units": f"{unit} since 1970-01-01", "calendar": "proleptic_gregorian"}
        return np.array(vals, dtype=np.int64).reshape(shape), attrs
    if c.kind == "str":
        arr = np.array(["" if v is None else v for v in c.values], dtype=object)
        return arr.reshape(shape), {}
    if c.kind == "float" or holes:
        arr = np.array([np.nan if v is None else v for v in c.values], dtype=np.float64)
        return arr.reshape(shape), {}
    return np.array(c.values, dtype=np.int64).reshape(shape), {}


def _since(v: datetime, epoch: datetime, scale: int) -> int:
    # aware values count from the UTC epoch; naive ones are taken as they are written
    if v.tzinfo is not None:
        v = v.astimezone(UTC).replace(tzinfo=None)
    delta = v - epoch
    return (delta.days * 86400 + delta.seconds) * scale + delta.microseconds * scale // 10**6


class Metadata(Mapping[str, bytes]):
    """Metadata documents and coordinate chunks by key; some chunks encoded on first use.

    The ``path`` coordinate of a million files takes most of the time to encode, and xarray
    reads non-index coordinates lazily: deferring it keeps opening a large manifest fast.
    """

    def __init__(self, ready: dict[str, bytes], deferred: dict[str, Callable[[], bytes]]) -> None:
        self._ready = ready
        self._deferred = deferred

    def __getitem__(self, key: str) -> bytes:
        if key not in self._ready:
            make = self._deferred[key]  # KeyError for unknown keys, as a Mapping should
            self._ready[key] = make()
        return self._ready[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._ready
        yield from (k for k in self._deferred if k not in self._ready)

    def __len__(self) -> int:
        return len(self._ready.keys() | self._deferred.keys())

    def __contains__(self, key: object) -> bool:
        return key in self._ready or key in self._deferred


def build_metadata(manifest: Manifest) -> Metadata:
    """Every metadata document and coordinate chunk of the hierarchy, as bytes by key.

    Image chunks are not included: they are the files themselves (see :func:`chunk_refs`).
    """
    pin_codecs()
    mem = zarr.storage.MemoryStore()
    root = zarr.open_group(mem, mode="w", zarr_format=3)
    root.attrs.update({"imagezarr": {"root": manifest.root, "files": len(manifest.files)}})
    deferred: dict[str, Callable[[], bytes]] = {}
    for node in manifest.nodes:
        group = root.require_group(node.path) if node.path else root
        group.attrs.update(dict(node.attrs))
        _add_node(group, node, manifest, deferred)
    return Metadata({key: buf.to_bytes() for key, buf in mem._store_dict.items()}, deferred)


def _path_chunk(paths: list[str], chunks: np.ndarray) -> bytes:
    # what zarr's vlen-utf8 codec writes (it delegates to numcodecs), with no compressor
    table = np.array([*paths, ""], dtype=object)  # index -1 -> "" for holes
    return bytes(VLenUTF8().encode(np.ascontiguousarray(table[chunks])))


def _add_node(
    group: zarr.Group, node: Node, manifest: Manifest, deferred: dict[str, Callable[[], bytes]]
) -> None:
    sizes = dict(zip(node.dims, node.shape, strict=True))
    extra = []
    for name, c in node.coords.items():
        data, attrs = _coord_array(c, sizes)
        _array(group, name, data, c.dims, attrs)
        if c.dims != (name,):
            extra.append(name)
    path = group.create_array(
        "path",
        shape=node.shape,
        dtype=str,
        chunks=node.shape,
        compressors=None,
        fill_value="",
        dimension_names=node.dims,
    )
    key = f"{path.path}/{path.metadata.encode_chunk_key((0,) * len(node.shape))}"
    deferred[key] = functools.partial(_path_chunk, manifest.files.paths, node.file_index)
    _array(group, "present", node.file_index >= 0, node.dims, {})
    codec = get_codec_class(node.image.codec["name"]).from_dict(node.image.codec)
    group.create_array(
        "image",
        shape=node.shape + tuple(node.image.shape),
        chunks=(1,) * len(node.shape) + tuple(node.image.shape),
        dtype=node.image.dtype,
        serializer=codec,
        compressors=None,
        fill_value=0,
        dimension_names=node.image_dims,
        attributes={
            "coordinates": " ".join(["path", "present", *extra]),
            "imagezarr": {"format": node.image.format},
        },
    )


def _array(
    group: zarr.Group, name: str, data: np.ndarray, dims: tuple[str, ...], attrs: dict[str, Any]
) -> None:
    dtype: Any = str if data.dtype == object else data.dtype
    arr = group.create_array(
        name,
        shape=data.shape,
        dtype=dtype,
        chunks=data.shape,
        compressors=None,
        fill_value=_fill(data),
        dimension_names=dims,
        attributes=attrs,
    )
    arr[...] = data


def _fill(data: np.ndarray) -> Any:
    if data.dtype == object:
        return ""
    if data.dtype == bool:
        return False
    return np.nan if data.dtype.kind == "f" else 0
