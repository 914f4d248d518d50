"""OME-Zarr 0.5 attributes of an image group: axes typed by their names, one scale level,
channel names from the channel dim's labels. Used by the OME copy and by ``serve``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ExportError
from ..layout import Node

__all__ = ["ome_attributes"]


# axis types OME-Zarr knows, by the names microscopy sequences use for their fields
_TYPES_BY_NAME = {
    **dict.fromkeys(("t", "time", "timepoint", "frame_time"), "time"),
    **dict.fromkeys(("c", "ch", "channel", "channels", "wavelength"), "channel"),
    **dict.fromkeys(("z", "zplane", "plane", "slice", "depth"), "space"),
}
_ORDER = {"time": 0, "other": 1, "channel": 1, "space": 2}


def _axis_types(node: Node, given: Mapping[str, str]) -> list[str]:
    types = [given.get(d) or _TYPES_BY_NAME.get(d.lower(), "other") for d in node.dims]
    types += [{"c": "channel", "p": "other"}.get(a, "space") for a in node.image.dims]
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
