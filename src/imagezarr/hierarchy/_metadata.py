"""The zarr v3 description of a manifest: metadata documents and coordinate chunks.

Shared by the store, ``serve`` and every export, so that all of them describe exactly the
same arrays (same grid, codec, coordinates and holes). Built with zarr itself into memory,
so every document and coordinate chunk is encoded by zarr's own code. The variants serve
needs (another image codec, OME attributes, the root hidden, consolidated) are options of
the one builder, not rewrites of its JSON.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import zarr
from numcodecs.vlen import VLenUTF8
from zarr.errors import ZarrUserWarning
from zarr.registry import get_codec_class

from ..codecs import pin_codecs
from ..errors import ExportError
from ..layout import Coord, Node
from ..manifest import Manifest
from ..paths import PathColumn
from ._ome import ome_attributes

__all__ = ["Metadata", "build_metadata", "path_chunk_shape"]

PATH_CHUNK = 1 << 20  # entries per chunk of the path coordinate: one chunk reads in ~0.1 s


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

    def __init__(
        self,
        ready: dict[str, bytes],
        deferred: dict[str, Callable[[], bytes]],
        not_ome: Mapping[str, str] | None = None,
    ) -> None:
        self._ready = ready
        self._deferred = deferred
        self.not_ome = dict(not_ome or {})
        """Groups that asked for OME attributes but got none, and why."""

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


def build_metadata(
    manifest: Manifest,
    *,
    image_codecs: Sequence[Any] | None = None,
    ome: bool = False,
    hide_root: bool = False,
    consolidated: bool = False,
) -> Metadata:
    """Every metadata document and coordinate chunk of the hierarchy, as bytes by key.

    Image chunks are not included: they are the files themselves (see
    :class:`~imagezarr.hierarchy.ChunkMap`). Variants, for ``serve``:

    - ``image_codecs``: the image arrays' codecs (zarr codec objects, serializer first)
      instead of the files' own image codec, for chunks re-encoded by the server.
    - ``ome``: OME-Zarr 0.5 attributes on every group whose layout fits; the others are
      listed with the reason in :attr:`Metadata.not_ome`.
    - ``hide_root``: leave out where the images lie (clients learn how many there are).
    - ``consolidated``: zarr-python's consolidated metadata in the root ``zarr.json``.
    """
    pin_codecs()
    mem = zarr.storage.MemoryStore()
    root = zarr.open_group(mem, mode="w", zarr_format=3)
    info: dict[str, Any] = {"files": len(manifest.files)}
    if not hide_root:
        info = {"root": manifest.root, **info}
    root.attrs.update({"imagezarr": info})
    deferred: dict[str, Callable[[], bytes]] = {}
    not_ome: dict[str, str] = {}
    for node in manifest.nodes:
        group = root.require_group(node.path) if node.path else root
        attrs = dict(node.attrs)
        if ome:
            try:
                attrs |= ome_attributes(node)
            except ExportError as e:
                not_ome[node.path] = str(e)
        group.attrs.update(attrs)
        _add_node(group, node, manifest, deferred, image_codecs)
    if consolidated:
        with warnings.catch_warnings():
            # "not part of the Zarr 3 specification": other readers ignore the key
            # (must_understand is false); zarr-python and xarray use it
            warnings.simplefilter("ignore", ZarrUserWarning)
            zarr.consolidate_metadata(mem)
    ready = {key: buf.to_bytes() for key, buf in mem._store_dict.items()}
    return Metadata(ready, deferred, not_ome)


def path_chunk_shape(shape: tuple[int, ...], target: int | None = None) -> tuple[int, ...]:
    """Chunks of the ``path`` coordinate: whole trailing dims while ``target`` entries hold
    them, then a slice of the next dim, 1 further out.

    >>> path_chunk_shape((10_000, 50, 4, 5))
    (1048, 50, 4, 5)
    >>> path_chunk_shape((3, 4))
    (3, 4)
    """
    out, room = [], target or PATH_CHUNK
    for size in reversed(shape):
        take = max(1, min(size, room))
        out.append(take)
        room = max(1, room // max(size, 1)) if take == size else 1
    return tuple(reversed(out))


def _path_chunk(paths: Sequence[str], index: np.ndarray) -> bytes:
    """One chunk of the ``path`` coordinate, ``index`` its file indices (-1: a hole),
    as zarr's vlen-utf8 codec writes it (it delegates to numcodecs), with no compressor."""
    flat = index.ravel()
    valid = flat[flat >= 0]
    lo, hi = (int(valid.min()), int(valid.max()) + 1) if valid.size else (0, 0)
    if isinstance(paths, PathColumn) and hi - lo > 3 * valid.size:
        # files scattered over the table (a grid in another order than the paths): decode
        # only these, where decoding the whole run would cost more
        table = np.array([*paths.pick(valid), ""], dtype=object)
        at = np.full(flat.shape, -1, np.int64)
        at[flat >= 0] = np.arange(valid.size)
    else:  # a chunk's files usually lie close together in the table: decode that run
        run = paths.strings(lo, hi) if isinstance(paths, PathColumn) else list(paths[lo:hi])
        table = np.array([*run, ""], dtype=object)  # index -1 -> "" for holes
        at = np.where(flat >= 0, flat - lo, -1)
    return bytes(VLenUTF8().encode(table[at].reshape(index.shape)))


def _add_node(
    group: zarr.Group,
    node: Node,
    manifest: Manifest,
    deferred: dict[str, Callable[[], bytes]],
    image_codecs: Sequence[Any] | None,
) -> None:
    sizes = dict(zip(node.dims, node.shape, strict=True))
    extra = []
    for name, c in node.coords.items():
        data, attrs = _coord_array(c, sizes)
        _array(group, name, data, c.dims, attrs)
        if c.dims != (name,):
            extra.append(name)
    chunks = path_chunk_shape(node.shape)
    path = group.create_array(
        "path",
        shape=node.shape,
        dtype=str,
        chunks=chunks,
        compressors=None,
        fill_value="",
        dimension_names=node.dims,
    )
    # edge chunks are whole chunks to zarr: padded with holes (read as the fill value "")
    pad = [(0, -s % c) for s, c in zip(node.shape, chunks, strict=True)]
    grid = (
        np.pad(node.file_index, pad, constant_values=-1)
        if any(p for _, p in pad)
        else node.file_index
    )
    for at in itertools.product(
        *(range(-(-s // c)) for s, c in zip(node.shape, chunks, strict=True))
    ):
        part = tuple(slice(i * c, (i + 1) * c) for i, c in zip(at, chunks, strict=True))
        key = f"{path.path}/{path.metadata.encode_chunk_key(at)}"
        deferred[key] = functools.partial(_path_chunk, manifest.files.paths, grid[part])
    _array(group, "present", node.file_index >= 0, node.dims, {})
    if image_codecs:
        serializer, compressors = image_codecs[0], tuple(image_codecs[1:])
    else:
        serializer = get_codec_class(node.image.codec["name"]).from_dict(node.image.codec)
        compressors = ()
    group.create_array(
        "image",
        shape=node.shape + tuple(node.image.shape),
        chunks=(1,) * len(node.shape) + tuple(node.image.shape),
        dtype=node.image.dtype,
        serializer=serializer,
        compressors=compressors or None,
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
