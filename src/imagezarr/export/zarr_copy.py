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

import numpy as np
import zarr
from zarr.codecs import ZstdCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from ..access import Access, AccessKeywords
from ..errors import ExportError
from ..hierarchy import build_metadata, image_array_path
from ..layout import Node
from ..manifest import ManifestLike, Opened, open_manifest
from ..store import ImageZarrStore
from ._common import Progress, check_output, staged_dir

__all__ = ["export_zarr", "ome_attributes"]

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


# axis types OME-Zarr knows, by the names microscopy sequences use for their fields
_TYPES_BY_NAME = {
    **dict.fromkeys(("t", "time", "timepoint", "frame_time"), "time"),
    **dict.fromkeys(("c", "ch", "channel", "channels", "wavelength"), "channel"),
    **dict.fromkeys(("z", "zplane", "plane", "slice", "depth"), "space"),
}
_ORDER = {"time": 0, "other": 1, "channel": 1, "space": 2}


def _axis_types(node: Node, given: Mapping[str, str]) -> list[str]:
    types = [given.get(d) or _TYPES_BY_NAME.get(d.lower(), "other") for d in node.dims]
    types += ["channel" if a == "c" else "space" for a in node.image.dims]
    return types


def ome_attributes(node: Node, axis_types: Mapping[str, str] | None = None) -> dict[str, Any]:
    """OME-Zarr 0.5 attributes for ``node``'s image array (one level, scale 1).

    NGFF 0.5 allows 2 to 5 axes: at most one ``time`` axis, then at most one ``channel`` (or
    custom-typed) axis, then 2 or 3 ``space`` axes. Outer dims are typed by name (``t`` or
    ``time`` -> time; ``c`` or ``channel`` -> channel; ``z`` or ``plane`` -> space; anything
    else the one custom axis, ``"other"``) unless ``axis_types`` names their type; image
    axes ``z, y, x`` are space and ``c`` is channel. A channel dim's labels become the
    channel names (``omero`` block). Layouts that do not fit (more outer dims, or channels
    last as in RGB images) raise :class:`ExportError`.

    >>> from imagezarr.testing import synthetic_manifest
    >>> node = synthetic_manifest(1, 1, 2, 3).node("")
    >>> ome_attributes(node)
    Traceback (most recent call last):
    imagezarr.errors.ExportError: the root group has dims (barcode, day, param, frame, y, x), ...
    """
    given = dict(axis_types or {})
    unknown = sorted(set(given) - set(node.dims))
    bad = sorted(t for t in given.values() if t not in _ORDER)
    if unknown or bad:
        msg = f"axis_types: unknown dims {unknown} or types {bad} (time, channel, space, other)"
        raise ExportError(msg)
    types = _axis_types(node, given)
    rank = [_ORDER[t] for t in types]
    fits = (
        rank == sorted(rank)
        and types.count("time") <= 1
        and types.count("other") + types.count("channel") <= 1
        and 2 <= types.count("space") <= 3
    )
    if not fits:
        where = f"group {node.path!r}" if node.path else "the root group"
        msg = (
            f"{where} has dims ({', '.join(node.image_dims)}), which OME-Zarr 0.5 cannot "
            "express: it allows at most one time axis, then one channel or other axis, then "
            "2-3 space axes, in that order (channels-last RGB images do not fit). Export "
            "without --ome, or re-scan with --group-by on the extra fields"
        )
        raise ExportError(msg)
    names = node.image_dims
    axes = [{"name": n, "type": t} for n, t in zip(names, types, strict=True)]
    scale = {"type": "scale", "scale": [1.0] * len(names)}
    dataset = {"path": "image", "coordinateTransformations": [scale]}
    multiscale = {"name": node.path or "image", "axes": axes, "datasets": [dataset]}
    ome: dict[str, Any] = {"version": "0.5", "multiscales": [multiscale]}
    channel = next((d for d, t in zip(node.dims, types, strict=False) if t == "channel"), None)
    if channel is not None and channel in node.coords:
        ome["omero"] = _omero(node, [str(v) for v in node.coords[channel].values])
    return {"ome": ome}


def _omero(node: Node, labels: list[str]) -> dict[str, Any]:
    """Channel names for viewers; the display window spans the dtype (no pixel is read)."""
    kind = np.dtype(node.image.dtype)
    low, high = (0.0, 1.0) if kind.kind == "f" else map(float, _int_range(kind))
    window = {"min": low, "max": high, "start": low, "end": high}
    return {
        "channels": [
            {"label": label, "active": True, "color": "FFFFFF", "window": window}
            for label in labels
        ]
    }


def _int_range(kind: np.dtype) -> tuple[int, int]:
    info = np.iinfo(kind) if kind.kind in "iu" else np.iinfo(np.uint8)
    return int(info.min), int(info.max)
