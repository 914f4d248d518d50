"""Thumbnails: each image file read through the store, decoded small, box-averaged.

The bytes come from :meth:`ImageZarrStore.get_sync`, so a preview applies the same freshness
check and names a missing or changed file exactly as a read does. Decoding is cheaper than a
read where the format allows it: JPEG decodes at 1/2, 1/4 or 1/8 scale in the DCT (Pillow's
draft mode; imagecodecs' ``jpeg8_decode`` has no scaled output) and JPEG 2000 skips
resolution levels (``imagecodecs.jpeg2k_decode(skipres=...)``). Any other format, and any
file the shortcut does not fit exactly, is decoded in full with the array's own codec and
checked against the declared shape and dtype, as the store's codecs do.

A thumbnail is the box average of ``factor x factor`` pixel blocks (a partial block at the
right or bottom edge averages the pixels it has), so its size is ``ceil(h / factor)`` by
``ceil(w / factor)`` whichever way it was decoded.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import imagecodecs
import numpy as np
from zarr.registry import get_codec_class

from ..codecs import pin_codecs
from ..display import plane, reduce
from ..errors import ChunkDecodeError
from ..formats import by_name
from ..hierarchy import chunk_key
from ..layout import Node
from ..store import ImageZarrStore

__all__ = ["Thumbnailer", "box_reduce", "shown_channels", "thumbnail_factor"]

MAX_DCT_SCALE = 8  # libjpeg scales by 1/2, 1/4 or 1/8 in the DCT


def thumbnail_factor(height: int, width: int, size: int) -> tuple[int, int]:
    """``(factor, zoom)``: shrink by ``factor`` so the longer side is at most ``size``; images
    already smaller are enlarged ``zoom`` times (pixel copies), so that they stay visible.

    >>> thumbnail_factor(480, 640, 160), thumbnail_factor(8, 8, 160), thumbnail_factor(90, 160, 160)
    ((4, 1), (1, 20), (1, 1))
    """
    if size < 1:
        msg = f"size must be at least 1 pixel, not {size}"
        raise ValueError(msg)
    longer = max(height, width, 1)
    factor = max(1, math.ceil(longer / size))
    zoom = max(1, size // longer) if factor == 1 else 1
    return factor, zoom


def shown_channels(dims: tuple[str, ...], shape: tuple[int, ...]) -> tuple[int, str]:
    """``(channels of the decoded image, what is shown)``: ``"rgb"`` for 3 or 4 channels
    (alpha is not shown), else ``"gray"`` (the first channel of 2 or of more than 4)."""
    n = shape[dims.index("c")] if "c" in dims else 1
    return n, "rgb" if n in (3, 4) else "gray"


def _standard(pixels: np.ndarray, dims: tuple[str, ...]) -> np.ndarray:
    """The image as ``(y, x)`` or ``(y, x, 3)``: the display plane, alpha left out (a sheet
    is opaque; the caption says so)."""
    out = plane(pixels, dims)
    return out[..., :3] if out.ndim == 3 else out


box_reduce = reduce  # the sheet's name for the display rule


@dataclass
class Thumbnailer:
    """Makes the thumbnails of one node: ``thumbnailer(file index) -> pixels``.

    Thread-safe: the store and the codec keep no per-read state. Raises
    :class:`~imagezarr.errors.ChunkReadError` (or a subclass) naming the file.
    """

    store: ImageZarrStore
    node: Node
    factor: int

    def __post_init__(self) -> None:
        pin_codecs()
        info = self.node.image
        self._codec: Any = get_codec_class(info.codec["name"]).from_dict(info.codec)
        self._dims = info.dims
        self._declared = (tuple(info.shape), np.dtype(info.dtype))
        self._plain = set(info.codec) == {"name"} and info.dims[:2] == ("y", "x")

    @property
    def shape(self) -> tuple[int, ...]:
        """The thumbnail's shape: ``(h, w)`` or ``(h, w, 3)``."""
        dims, shape = self._dims, self.node.image.shape
        h, w = shape[dims.index("y")], shape[dims.index("x")]
        size = (math.ceil(h / self.factor), math.ceil(w / self.factor))
        return (*size, 3) if shown_channels(dims, tuple(shape))[1] == "rgb" else size

    def __call__(self, where: tuple[int, ...]) -> np.ndarray:
        """The thumbnail of the image at outer index ``where`` (which must not be a hole)."""
        file = int(self.node.file_index[where])
        path = self.store.manifest.files.paths[file]
        buf = self.store.get_sync(chunk_key(self.node, where))
        if buf is None:  # pragma: no cover - the store raises for a present chunk instead
            msg = f"{path}: no bytes for a present chunk"
            raise ChunkDecodeError(msg, path=path)
        data = buf.as_numpy_array()
        pixels, done = self._decode(data, path)
        return box_reduce(_standard(pixels, self._dims), self.factor // done)

    def _decode(self, data: np.ndarray, path: str) -> tuple[np.ndarray, int]:
        """The decoded pixels and the factor by which they are already reduced."""
        reduced = by_name(self.node.image.format).reduced
        try:
            if self._plain and reduced is not None and self.factor > 1:
                small = getattr(self, f"_reduced_{reduced}")(data)
                if small is not None:
                    return small
            decoded = self._codec._decode_raw(data)  # the store's codec, same options
        except Exception as e:
            what = f"cannot decode as {self._codec.format}: {type(e).__name__}: {e}"
            msg = f"{path}: {what}"
            raise ChunkDecodeError(msg, path=path) from e
        shape, dtype = self._declared
        if decoded.shape != shape or decoded.dtype != dtype:
            msg = (
                f"{path}: the {self._codec.format} image does not match the array (decoded "
                f"{decoded.shape} {decoded.dtype}, declared {shape} {dtype}); refusing to show it"
            )
            raise ChunkDecodeError(msg, path=path)
        return decoded, 1

    def _expected(self, scale: int) -> tuple[int, ...]:
        shape = self._declared[0]
        return (math.ceil(shape[0] / scale), math.ceil(shape[1] / scale), *shape[2:])

    def _reduced_dct(self, data: np.ndarray) -> tuple[np.ndarray, int] | None:
        """Decode at 1/scale in the DCT, or None when this file does not fit the shortcut
        (then the full decode runs, and reports any real problem)."""
        from PIL import Image

        scale = _largest_power_of_two(self.factor, MAX_DCT_SCALE)
        shape, dtype = self._declared
        mode = {2: "L", 3: "RGB"}.get(len(shape)) if dtype == np.uint8 else None
        if scale == 1 or mode is None or (len(shape) == 3 and shape[2] != 3):
            return None
        if Image.MAX_IMAGE_PIXELS and shape[0] * shape[1] > Image.MAX_IMAGE_PIXELS:
            return None  # Pillow would warn about a decompression bomb; decode in full
        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.format != "JPEG" or im.mode != mode or im.size != (shape[1], shape[0]):
                    return None
                # Pillow picks the scale from the size asked for: ask for floor(size / scale)
                im.draft(mode, (max(1, shape[1] // scale), max(1, shape[0] // scale)))
                pixels = np.asarray(im)
        except (OSError, ValueError, SyntaxError):
            return None
        return (pixels, scale) if pixels.shape == self._expected(scale) else None

    def _reduced_levels(self, data: np.ndarray) -> tuple[np.ndarray, int] | None:
        """Decode skipping resolution levels (as many as the file has, up to the factor),
        or None when it has none to skip."""
        scale = _largest_power_of_two(self.factor, 2**5)
        while scale > 1:
            try:
                pixels = imagecodecs.jpeg2k_decode(data, skipres=scale.bit_length() - 1)
            except imagecodecs.Jpeg2kError:
                scale //= 2  # fewer levels in this file: skip fewer
                continue
            ok = pixels.shape == self._expected(scale) and pixels.dtype == self._declared[1]
            return (pixels, scale) if ok else None
        return None


def _largest_power_of_two(factor: int, most: int) -> int:
    """The largest power of two <= ``most`` that divides ``factor``: the scaled decode must
    leave an integer factor for the box average, so every path gives the same thumbnail."""
    scale = 1
    while scale * 2 <= most and factor % (scale * 2) == 0:
        scale *= 2
    return scale
