"""What napari shows beside the pixels: the current slice's labels, holes, grid for groups.

napari's sliders know indices only (``night`` 1, not ``2020-06-01``), a hole decodes as a
black image like any dark one, and a grouped manifest would stack all its groups' layers on
top of each other. :func:`attach` fixes the three on a viewer through its public API: the
text overlay shows the labels of the slice under the sliders (updated as they move) and says
when it is a hole, and grid mode is turned on when more than one group is open. Holes are
also a layer of their own (:func:`holes_layer`): a red tile over every image position that has
no file. Nothing here imports napari; the viewer is passed in.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["KEY", "attach", "holes_layer", "slice_text"]

KEY = "imagezarr"  # the layer metadata entry that marks (and describes) our layers
MAX_LINES = 8  # layers described in the overlay at once (a grid of 60 would hide the image)
# viewers already connected, by id (napari's Viewer is a pydantic model: no extra attributes)
# holding a weak reference where the viewer allows one, so a closed viewer is not kept alive
_attached: dict[int, Callable[[], Any]] = {}


def holes_layer(
    present: np.ndarray, image_shape: Sequence[int], name: str, meta: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any], str] | None:
    """An image layer over the outer dims, one pixel per image scaled to the image's size
    (``image_shape``: the image layer's own axes after the outer ones, channels of RGB left
    out): 1 (red, half transparent) where there is no file; None when nothing is missing.

    >>> data, kwargs, kind = holes_layer(np.array([True, False]), (4, 6), "A1", {})
    >>> data.shape, kwargs["scale"], data.ravel().tolist()
    ((2, 1, 1), (1, 4, 6), [0, 1])
    """
    if present.all():
        return None
    inner = tuple(int(s) for s in image_shape)
    data = (~present).astype(np.uint8).reshape(*present.shape, *(1,) * len(inner))
    kwargs = {
        "name": f"{name} holes",
        "scale": (1,) * present.ndim + inner,
        # a pixel's centre sits at its index times the scale: shift the tile onto the image
        "translate": (0,) * present.ndim + tuple((s - 1) / 2 for s in inner),
        "colormap": "red",
        "contrast_limits": (0, 1),
        "opacity": 0.45,
        "blending": "additive",
        "metadata": {KEY: {**meta, "holes": True}},
    }
    return data, kwargs, "image"


def slice_text(meta: dict[str, Any], step: Sequence[int]) -> str:
    """The labels of the slice at ``step`` (the layer's outer indices), e.g.
    ``A1  night=2020-06-01  param=PSII0  frame=2``, and ``(hole: no file)`` for one.

    >>> meta = {"group": "A1", "dims": ["night", "frame"],
    ...         "labels": {"night": ["2020-05-31", "2020-06-01"], "frame": ["1", "2"]},
    ...         "present": [[True, True], [True, False]]}
    >>> slice_text(meta, (1, 1))
    'A1  night=2020-06-01  frame=2  (hole: no file)'
    >>> slice_text(meta, (2, 0))
    'A1  (nothing here: night 3 of 2)'
    """
    parts = [meta["group"]] if meta.get("group") else []
    for dim, i in zip(meta["dims"], step, strict=False):
        labels = meta["labels"].get(dim, [])
        if not 0 <= i < len(labels):  # another layer's slider goes further than this one's
            n = len(labels)
            return "  ".join([*parts, f"(nothing here: {dim} {i + 1} of {n})"])
        parts.append(f"{dim}={labels[i]}")
    present = np.asarray(meta.get("present", True), dtype=bool)
    index = tuple(step[: present.ndim])
    inside = present.ndim and len(index) == present.ndim and _inside(index, present.shape)
    if inside and not present[index]:
        parts.append("(hole: no file)")
    return "  ".join(parts)


def _inside(index: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    return all(0 <= i < s for i, s in zip(index, shape, strict=True))


def _text_overlay(viewer: Any) -> Any:
    """The text overlay: ``viewer.canvas.overlays.text`` from napari 0.9 (where the old
    ``viewer.text_overlay`` is deprecated), ``viewer.text_overlay`` before."""
    canvas = getattr(viewer, "canvas", None)
    overlays = getattr(canvas, "overlays", None)
    if overlays is not None:
        text = (
            overlays.get("text")
            if isinstance(overlays, Mapping)
            else getattr(overlays, "text", None)
        )
        if text is not None:
            return text
    return viewer.text_overlay


def _grid(viewer: Any) -> Any:
    """The grid settings: ``viewer.canvas.grid`` from napari 0.9, ``viewer.grid`` before."""
    canvas = getattr(viewer, "canvas", None)
    grid = getattr(canvas, "grid", None)
    return grid if grid is not None else viewer.grid


def _ours(viewer: Any) -> list[Any]:
    """The viewer's imagezarr image layers (not their holes layers), in layer-list order."""
    return [
        layer
        for layer in viewer.layers
        if KEY in getattr(layer, "metadata", {}) and not layer.metadata[KEY].get("holes")
    ]


def _outer_step(viewer: Any, layer: Any) -> tuple[int, ...]:
    """The layer's outer indices under the sliders: napari aligns a layer's dims with the
    viewer's last ones, and our outer dims have scale 1 and no offset."""
    meta = layer.metadata[KEY]
    ndim = int(layer.ndim)
    step = tuple(int(s) for s in viewer.dims.current_step)[-ndim:]
    return step[: len(meta["dims"])]


def refresh(viewer: Any) -> None:
    """Write the labels of every visible imagezarr layer's current slice to the overlay."""
    layers = [layer for layer in _ours(viewer) if layer.visible]
    lines = [slice_text(layer.metadata[KEY], _outer_step(viewer, layer)) for layer in layers]
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"... and {len(lines) - MAX_LINES} more layers"]
    overlay = _text_overlay(viewer)
    overlay.text = "\n".join(lines)
    overlay.visible = bool(lines)


def _on_inserted(viewer: Any, layer: Any) -> None:
    if layer is not None and KEY in getattr(layer, "metadata", {}):
        layer.events.visible.connect(lambda _event=None: refresh(viewer))
    if len({layer.metadata[KEY].get("group") for layer in _ours(viewer)}) > 1:
        _grid(viewer).enabled = True  # one cell per group, not 60 layers on top of each other
    refresh(viewer)


def attach(viewer: Any) -> None:
    """Keep ``viewer``'s text overlay on the current slice's labels; grid mode for groups.

    Called by the reader on napari's current viewer; safe to call again (it connects once).
    """
    known = _attached.get(id(viewer))
    if known is not None and known() is viewer:
        refresh(viewer)
        return
    viewer.dims.events.current_step.connect(lambda _event=None: refresh(viewer))
    viewer.layers.events.inserted.connect(
        lambda event=None: _on_inserted(viewer, getattr(event, "value", None))
    )
    viewer.layers.events.removed.connect(lambda _event=None: refresh(viewer))
    for layer in _ours(viewer):
        layer.events.visible.connect(lambda _event=None: refresh(viewer))
    try:
        _attached[id(viewer)] = weakref.ref(viewer)
    except TypeError:
        _attached[id(viewer)] = lambda: viewer
    refresh(viewer)
