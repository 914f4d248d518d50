"""A real Zarr v3 copy: decoded pixels, recompressed, optionally sharded and OME-Zarr 0.5.

Pixels are read through :class:`~imagezarr.store.ImageZarrStore`, so every read-time check
applies (a changed file fails the copy instead of copying wrong pixels). Everything but the
image arrays (coordinates, ``path``, ``present``, group attributes) is written byte for byte from
:func:`imagezarr.hierarchy.build_metadata`; each image array keeps its shape, chunk grid,
dtype, fill value, dimension names and attributes and only changes its codecs.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Unpack

import zarr
from zarr.codecs import ZstdCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from ..access import Access, AccessKeywords
from ..errors import ExportError
from ..hierarchy import build_metadata, image_array_path, ome_attributes
from ..layout import Node
from ..manifest import ManifestLike, Opened, open_manifest
from ..store import ImageZarrStore
from ._common import Progress, check_output, staged_dir

__all__ = ["export_zarr"]

BATCH = 16  # images per read/write call when not sharded: zarr fetches them concurrently


def export_zarr(
    manifest: ManifestLike | Opened,
    out: str | os.PathLike[str],
    *,
    compressor: Any = "zstd",
    level: int = 3,
    shards: int | None = None,
    ome: bool = False,
    ome_axes: Mapping[str, str] | None = None,
    access: Access | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    force: bool = False,
    **options: Unpack[AccessKeywords],
) -> Path:
    """Copy the decoded images into a Zarr v3 folder at ``out``.

    Parameters
    ----------
    compressor
        ``"zstd"`` (zarr's own codec, at ``level``), ``None`` for none, or a zarr v3
        bytes-to-bytes codec object or dict.
    shards
        Put up to this many images in one shard (one file), filling the innermost outer
        dims first; ``None`` writes one file per image.
    ome
        Add OME-Zarr 0.5 ``multiscales`` metadata to every group (see :func:`ome_attributes`).
    ome_axes
        OME axis types of outer dims whose names do not say it, e.g. ``{"wl": "channel"}``.
    access, **options
        Where the images are and how they are trusted (:class:`~imagezarr.access.Access`):
        ``check`` is the freshness check applied to every image read, ``on_error`` whether a
        file that fails it (or does not decode) stops the copy or is copied as the fill value
        with a warning (see :class:`ImageZarrStore`).
    progress
        Called as ``progress(done, total)`` in images.

    >>> import tempfile, zarr
    >>> from imagezarr.testing import small_manifest
    >>> m = small_manifest(group_by="barcode", dims=("frame",))
    >>> out = export_zarr(m, f"{tempfile.mkdtemp()}/psii.zarr", shards=2)
    >>> zarr.open_group(out, mode="r")["A1/image"].shards
    (2, 8, 8)
    """
    opened = open_manifest(manifest, access, **options)
    manifest = opened.manifest
    path = check_output(manifest, out, overwrite=overwrite, force=force)
    if shards is not None and shards < 1:
        msg = f"shards must be a positive number of images per shard, not {shards!r}"
        raise ExportError(msg)
    ome_attrs = {n.path: ome_attributes(n, ome_axes) for n in manifest.nodes} if ome else {}
    source = zarr.open_group(ImageZarrStore(opened), mode="r", zarr_format=3)
    total = sum(math.prod(n.shape) for n in manifest.nodes)
    done = 0
    with staged_dir(path) as tmp:
        store = zarr.storage.LocalStore(tmp)
        images = {image_array_path(n) + "/zarr.json" for n in manifest.nodes}
        proto = default_buffer_prototype()
        for key, data in build_metadata(manifest).items():
            if key not in images:
                sync(store.set(key, proto.buffer.from_bytes(data)))
        root = zarr.open_group(store, mode="r+", zarr_format=3)
        for node in manifest.nodes:
            group = root[node.path] if node.path else root
            if node.path in ome_attrs:
                group.attrs.update(ome_attrs[node.path])  # type: ignore[union-attr]
            src = source[image_array_path(node)]
            dst = _create_image(group, src, node, compressor, level, shards)  # type: ignore[arg-type]
            for region in _blocks(node, shards or BATCH):
                dst[region] = src[region]
                done += math.prod(s.stop - s.start for s in region)
                if progress is not None:
                    progress(done, total)
    return path


def _create_image(
    group: zarr.Group, src: Any, node: Node, compressor: Any, level: int, shards: int | None
) -> zarr.Array:
    meta = src.metadata
    outer = len(node.shape)
    compressors: Any = ZstdCodec(level=level) if compressor == "zstd" else compressor
    shard_shape = None
    if shards is not None:
        block = _block_shape(node.shape, shards)
        shard_shape = block + tuple(meta.shape[outer:])
    return group.create_array(
        "image",
        shape=meta.shape,
        chunks=meta.chunks,
        shards=shard_shape,
        dtype=src.dtype,
        compressors=compressors,
        fill_value=meta.fill_value,
        dimension_names=meta.dimension_names,
        attributes=dict(meta.attributes),
    )


def _block_shape(shape: tuple[int, ...], n: int) -> tuple[int, ...]:
    """Up to ``n`` images: whole innermost outer dims first.

    >>> _block_shape((12, 2, 4, 3), 16)
    (1, 1, 4, 3)
    >>> _block_shape((5, 7), 3)
    (1, 3)
    """
    block = [1] * len(shape)
    left = n
    for i in reversed(range(len(shape))):
        take = min(shape[i], left)
        block[i] = take
        if take < shape[i]:
            break
        left //= shape[i]
        if left <= 1:
            break
    return tuple(block)


def _blocks(node: Node, n: int) -> Iterator[tuple[slice, ...]]:
    """Outer-index regions of at most ``n`` images covering ``node``, aligned to blocks."""
    block = _block_shape(node.shape, n)
    starts = [range(0, s, b) for s, b in zip(node.shape, block, strict=True)]
    for corner in itertools.product(*starts):
        yield tuple(
            slice(c, min(c + b, s)) for c, b, s in zip(corner, block, node.shape, strict=True)
        )
