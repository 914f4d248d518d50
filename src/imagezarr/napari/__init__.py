"""Napari: an npe2 reader plugin for ``*.imagezarr.json`` manifests.

``napari exp.imagezarr.json`` (or File > Open) shows one image layer per array, that is one
per group of a grouped manifest (in grid mode when there are several): lazy dask data with
one chunk per image file, so napari decodes only the images it displays; axis labels from the
dims; RGB images as RGB; contrast limits from a few sample images; the current slice's labels
(``night=2020-06-01``, not slider index 1) in the text overlay; holes as a red layer of their
own and ``(hole: no file)`` in the overlay. The functions here return napari's ``LayerData`` tuples
and never import napari, so they work and are tested without it.

The manifest (``napari.yaml`` beside this file) is found through the ``napari.manifest``
entry point; ``pip install imagezarr[napari]`` installs napari.

>>> import imagezarr.testing
>>> [(kind, meta["name"], meta["axis_labels"])
...  for _, meta, kind in layers(imagezarr.testing.small_manifest(dims=("barcode", "frame")))]
[('image', 'imagezarr-...', ('barcode', 'frame', 'y', 'x'))]
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from .. import display
from ..access import Access, AccessKeywords
from ..errors import ChunkReadError
from ..hierarchy import image_array_path
from ..layout import Node
from ..manifest import SUFFIX, Manifest, ManifestLike, Opened
from ..preview import format_label, labels_of
from ..store import ImageZarrStore
from ._viewer import KEY, attach, holes_layer, slice_text

__all__ = ["LayerData", "attach", "get_reader", "layers", "read", "slice_text"]

logger = logging.getLogger(__name__)
LayerData = tuple[Any, dict[str, Any], str]
SAMPLES = 3  # images read for the contrast limits: first, middle and last present
MAX_LABELS = 1000  # coordinate labels kept in the layer metadata, per dim

PathOrPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """napari's reader hook: :func:`read` for manifests, ``None`` for anything else."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(os.fspath(p).endswith(SUFFIX) for p in paths):
        return None
    return read


def read(path: PathOrPaths) -> list[LayerData]:
    """The layers of one or more manifest files; napari's current viewer (when there is one)
    then shows each slice's labels and holes, and a grid for several groups (:func:`attach`)."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    out: list[LayerData] = []
    for p in paths:
        out.extend(layers(p))
    viewer = _current_viewer()
    if viewer is not None:
        attach(viewer)
    return out


def _current_viewer() -> Any:
    napari = sys.modules.get("napari")  # the reader runs inside napari, which is imported
    current = getattr(napari, "current_viewer", None)
    return current() if callable(current) else None


def layers(
    manifest: ManifestLike | Opened,
    *,
    access: Access | None = None,
    **options: Unpack[AccessKeywords],
) -> list[LayerData]:
    """One ``(data, kwargs, "image")`` tuple per array of ``manifest``.

    The access keywords (see :class:`~imagezarr.access.Access`) say where the images are and
    how they are trusted, as for :func:`imagezarr.open_store`.

    ``data`` is a dask array over the store (one chunk per image file, channels last for
    RGB); ``kwargs`` hold ``name`` (the group, or the manifest's name), ``axis_labels``,
    ``rgb``, ``contrast_limits`` and ``metadata["imagezarr"]`` (manifest, group, dims and
    their labels).
    """
    import dask.array as da
    import zarr

    store = ImageZarrStore(manifest, access=access, **options)
    m = store.manifest
    group = zarr.open_group(store, mode="r", zarr_format=3)
    base = _name(manifest, m)
    out: list[LayerData] = []
    for node in m.nodes:
        array = group[image_array_path(node)]
        data = da.from_zarr(array)  # zarr's chunks: one image each
        dims = list(node.image_dims)
        rgb = "c" in dims and array.shape[dims.index("c")] in (3, 4)
        if rgb and dims[-1] != "c":  # e.g. planar TIFF (c, y, x): napari wants channels last
            order = [i for i, d in enumerate(dims) if d != "c"] + [dims.index("c")]
            data = data.transpose(order)
            dims = [dims[i] for i in order]
        kwargs: dict[str, Any] = {
            "name": node.path or base,
            "axis_labels": tuple(dims[:-1] if rgb else dims),
            "rgb": rgb,
            "metadata": {KEY: _metadata(manifest, m, node)},
        }
        limits = _contrast_limits(array, node, rgb)
        if limits is not None:
            kwargs["contrast_limits"] = limits
        out.append((data, kwargs, "image"))
        inner = data.shape[len(node.dims) : data.ndim - 1 if rgb else data.ndim]
        holes = holes_layer(node.file_index >= 0, inner, kwargs["name"], kwargs["metadata"][KEY])
        if holes is not None:
            out.append(holes)
    return out


def _name(manifest: ManifestLike, m: Manifest) -> str:
    if isinstance(manifest, str | os.PathLike):
        return Path(os.fspath(manifest)).name.removesuffix(SUFFIX)
    return Path(m.root).name or "imagezarr"


def _metadata(manifest: ManifestLike, m: Manifest, node: Node) -> dict[str, Any]:
    where = os.fspath(manifest) if isinstance(manifest, str | os.PathLike) else None
    return {
        "manifest": where,
        "root": m.root,
        "group": node.path,
        "dims": node.dims,
        "present": node.file_index >= 0,
        "labels": {
            d: [format_label(v) for v in labels_of(node, d)[:MAX_LABELS]] for d in node.dims
        },
    }


def _contrast_limits(array: Any, node: Node, rgb: bool) -> tuple[float, float] | None:
    """Percentiles (as the contact sheet uses) of a few images; None where napari's own
    default fits (8-bit RGB) or nothing could be read (then viewing shows the error)."""
    dtype = np.dtype(node.image.dtype)
    if dtype.kind == "b":
        return (0.0, 1.0)
    if rgb and dtype == np.uint8:
        return None
    present = np.argwhere(node.file_index >= 0)
    picks = sorted({0, len(present) // 2, len(present) - 1}) if len(present) else []
    values = []
    for k in picks[:SAMPLES]:
        idx = tuple(int(i) for i in present[k])
        try:
            values.append(np.asarray(array[idx]).ravel())
        except ChunkReadError as e:
            logger.warning("contrast limits: skipping a sample image: %s", e)
    if not values:
        return None
    sample = np.concatenate(values)
    if dtype.kind == "c":
        sample = np.abs(sample)
    if sample.dtype.kind == "f" and not np.isfinite(sample).any():
        return None
    lo, hi = display.limits_of([sample], display.PERCENTILES)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
