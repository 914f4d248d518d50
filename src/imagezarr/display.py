"""Pixels to screen: one set of rules for the contact sheet, the viewer and napari.

- :func:`plane`: the image as ``(y, x)`` or ``(y, x, 3|4)``: channels last; 3 or 4 samples
  are colour, any other count shows its first channel; other axes (z, t) at index 0.
- :func:`reduce`: box averages of ``factor x factor`` blocks, partial edge blocks averaged
  over the pixels they hold (no edge repeated); :func:`factor_for` picks the factor that
  fits a size.
- :func:`stretch`: 8-bit pixels, linear between two percentiles (:data:`PERCENTILES` unless
  stated) of all the images shown together, so brightness compares across them; uint8 is
  shown as stored unless limits are given; booleans as 0 and 255; NaN as 0.

>>> a = np.arange(15, dtype=np.uint16).reshape(3, 5)
>>> reduce(a, 2).tolist()
[[3.0, 5.0, 6.5], [10.5, 12.5, 14.0]]
>>> shown, limits = stretch([np.array([[0.0, 1000.0], [2000.0, np.nan]])], (0, 100))
>>> shown[0].tolist(), limits
([[0, 128], [255, 0]], (0.0, 2000.0))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["PERCENTILES", "factor_for", "limits_of", "plane", "reduce", "stretch"]

PERCENTILES = (0.5, 99.5)  # a few hot or dead pixels do not set the scale


def plane(pixels: np.ndarray, axes: Sequence[str]) -> np.ndarray:
    """``(y, x)`` or ``(y, x, 3|4)`` of an image whose axes are ``axes`` (``""``/short axes
    mean ``y, x[, c]``): channels last, every other axis at index 0."""
    axes = tuple(axes)
    if len(axes) != pixels.ndim:
        axes = ("y", "x", "c")[: pixels.ndim]
    order = [axes.index(a) for a in ("y", "x", "c") if a in axes]
    rest = [i for i in range(len(axes)) if i not in order]
    out = np.transpose(pixels, [*rest, *order])[(0,) * len(rest)]
    if out.ndim == 3 and out.shape[2] not in (3, 4):
        out = out[..., 0]
    return out


def factor_for(shape: Sequence[int], size: int) -> int:
    """The reduction factor that brings the longer side of ``shape`` to at most ``size``.

    >>> factor_for((480, 640), 256), factor_for((10, 12), 256)
    (3, 1)
    """
    return max(1, math.ceil(max(shape[0], shape[1]) / size)) if size > 0 else 1


def reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Box-average ``factor x factor`` blocks of a ``(y, x)`` or ``(y, x, c)`` image.

    uint8 stays uint8 (rounded half up); anything else becomes float32; booleans count as 0
    and 255, complex numbers by their magnitude. Pillow's ``reduce`` does the work (C, ten
    times numpy's reshape-mean) with exactly the rule of the module docstring.

    >>> reduce(np.array([[1, 2, 2], [2, 2, 2]], np.uint8), 3).tolist()
    [[2]]
    """
    from PIL import Image

    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    elif pixels.dtype.kind == "c":
        pixels = np.abs(pixels)
    if factor == 1:
        return pixels if pixels.dtype == np.uint8 else pixels.astype(np.float32)
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    # Pillow's 8-bit reduction rounds in fixed point (off by one for some sums of 3 x 3
    # blocks): average in float32 (exact for these sums) and round half up here
    out = [
        np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., k], np.float32)).reduce(factor))
        for k in range(planes.shape[2])
    ]
    means = out[0] if pixels.ndim == 2 else np.stack(out, axis=-1)
    if pixels.dtype == np.uint8:
        return np.floor(means + 0.5).astype(np.uint8)
    return means


def limits_of(
    images: Sequence[np.ndarray], percentiles: tuple[float, float] = PERCENTILES
) -> tuple[float, float]:
    """The values shown as 0 and 255: ``percentiles`` of every finite pixel of ``images``."""
    values = (
        np.concatenate([np.asarray(t, np.float64).ravel() for t in images])
        if images
        else np.zeros(0)
    )
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0, 1.0
    lo, hi = np.percentile(values, percentiles)
    return float(lo), float(hi)


def stretch(
    images: Sequence[np.ndarray],
    percentiles: tuple[float, float] = PERCENTILES,
    lo: float | None = None,
    hi: float | None = None,
) -> tuple[list[np.ndarray], tuple[float, float] | None]:
    """The images as uint8, and the values shown as 0 and 255 (``None``: shown as stored).

    ``lo``/``hi`` fix either end; the other comes from ``percentiles`` of all images.
    """
    if lo is None and hi is None and all(t.dtype in (np.uint8, bool) for t in images):
        return [t.astype(np.uint8) * 255 if t.dtype == bool else t for t in images], None
    if lo is None or hi is None:
        auto = limits_of(images, percentiles)
        lo = auto[0] if lo is None else lo
        hi = auto[1] if hi is None else hi
    span = hi - lo if hi > lo else 1.0
    out = []
    for t in images:
        scaled = (np.asarray(t, np.float64) - lo) * (255.0 / span) + 0.5
        out.append(np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255).astype(np.uint8))
    return out, (lo, hi)
