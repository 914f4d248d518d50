"""The zarr v3 description of a manifest: metadata documents, coordinate chunks, chunk keys.

Shared by the store and every export, so that all of them describe exactly the same arrays
(same grid, codec, coordinates and holes). Built with zarr itself into memory, so every
document and coordinate chunk is encoded by zarr's own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import zarr
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
        for row in np.argwhere(node.chunks >= 0):
            idx = tuple(int(i) for i in row)
            yield chunk_key(node, idx), int(node.chunks[idx])


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


def build_metadata(manifest: Manifest) -> dict[str, bytes]:
    """Every metadata document and coordinate chunk of the hierarchy, as bytes by key.

    Image chunks are not included: they are the files themselves (see :func:`chunk_refs`).
    """
    pin_codecs()
    mem = zarr.storage.MemoryStore()
    root = zarr.open_group(mem, mode="w", zarr_format=3)
    root.attrs.update({"imagezarr": {"root": manifest.root, "files": len(manifest.files)}})
    for node in manifest.nodes:
        group = root.require_group(node.path) if node.path else root
        group.attrs.update(dict(node.attrs))
        _add_node(group, node, manifest)
    return {key: buf.to_bytes() for key, buf in mem._store_dict.items()}


def _add_node(group: zarr.Group, node: Node, manifest: Manifest) -> None:
    sizes = dict(zip(node.dims, node.shape, strict=True))
    extra = []
    for name, c in node.coords.items():
        data, attrs = _coord_array(c, sizes)
        _array(group, name, data, c.dims, attrs)
        if c.dims != (name,):
            extra.append(name)
    table = np.array([*manifest.files.paths, ""], dtype=object)  # index -1 -> "" for holes
    _array(group, "path", table[node.chunks], node.dims, {})
    _array(group, "present", node.chunks >= 0, node.dims, {})
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
