"""The decompression-bomb guard: how many pixels one image may declare before it is decoded.

A 249 KB PNG can declare 16000 x 16000 pixels and take gigabytes to decode. Every image is
checked against this budget where its header is first read (the scan's probe), where a
manifest declares it (load) and again before its bytes are decoded (store, preview, server),
so a file swapped for a bomb after the scan is refused before any pixel is allocated.

The default is Pillow's ``DecompressionBombError`` threshold, the limit image users already
meet elsewhere. Raise it with ``IMAGEZARR_MAX_PIXELS=N`` (``0`` or ``none``: no budget beyond
the header sanity limits), ``--max-pixels N`` or :func:`set_max_pixels`.

>>> from imagezarr import limits
>>> limits.pixels_of((2048, 2448, 3), ("y", "x", "c"))
5013504
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ENV",
    "PLANES",
    "max_pixels",
    "over_budget",
    "pixels_of",
    "set_max_pixels",
    "using_max_pixels",
]

ENV = "IMAGEZARR_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 178_956_970  # 2 x Pillow's Image.MAX_IMAGE_PIXELS (its error threshold)
PLANES = 16  # an image of several planes may hold this many budgets in all
_UNSET = object()
_chosen: object = _UNSET  # set_max_pixels wins over the environment


def _from_environment() -> int | None:
    text = os.environ.get(ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    if text.lower() in ("0", "none"):
        return None
    if not (text.isascii() and text.isdigit()):
        msg = f"{ENV}={text!r}: give a whole number of pixels, or 0 (or none) for no budget"
        raise ValueError(msg)
    return int(text)


def max_pixels() -> int | None:
    """The pixels one image may declare (None: no budget)."""
    return _from_environment() if _chosen is _UNSET else _chosen  # type: ignore[return-value]


def set_max_pixels(limit: int | None) -> None:
    """Set the budget for this process (None or 0: none), over ``IMAGEZARR_MAX_PIXELS``."""
    global _chosen
    if limit is not None and (type(limit) is not int or limit < 0):
        msg = f"max_pixels must be a whole number >= 0 or None, not {limit!r}"
        raise ValueError(msg)
    _chosen = limit or None


@contextmanager
def using_max_pixels(limit: int | None) -> Iterator[None]:
    """Within the block, images may declare up to ``limit`` pixels (None: no budget)."""
    global _chosen
    before = _chosen
    set_max_pixels(limit)
    try:
        yield
    finally:
        _chosen = before


def pixels_of(shape: Sequence[int], dims: Sequence[str]) -> int:
    """The pixels an image of that decoded shape holds: every axis but its channels."""
    return math.prod(s for s, d in zip(shape, dims, strict=False) if d != "c")


def over_budget(shape: Sequence[int], dims: Sequence[str]) -> str | None:
    """Why an image of that shape may not be decoded, or None when it may.

    One plane (``y x``) may hold the budget; an image of many planes (the pages of a
    z-stack, say) :data:`PLANES` times the budget in all: a 100-page 2048 x 2048 stack is
    fine, a 15,000-page one is refused rather than decoded into tens of gigabytes.
    """
    limit = max_pixels()
    if limit is None:
        return None
    plane = math.prod(s for s, d in zip(shape, dims, strict=False) if d in ("y", "x"))
    pixels = pixels_of(shape, dims)
    if plane <= limit and pixels <= limit * PLANES:
        return None
    sides = " x ".join(map(str, shape))
    what = (
        f"{limit:,} pixels per image"
        if plane > limit
        else f"{limit * PLANES:,} pixels per image of many planes ({PLANES} x the budget)"
    )
    need = plane if plane > limit else -(-pixels // PLANES)
    return (
        f"declares {sides} = {pixels:,} pixels, over the budget of {what} (a decompression-"
        f"bomb guard); if the image is genuine, raise the budget: "
        f"`imagezarr --max-pixels {need} ...` or {ENV}={need}"
    )
