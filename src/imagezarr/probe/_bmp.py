"""BMP header probe (Windows ``BM`` files).

What ``imagecodecs.bmp_decode`` (the ``imagecodecs_bmp`` codec, ``asrgb=None``) returns,
always ``uint8``:

- 1, 4 and 8-bit palette images (uncompressed, RLE4, RLE8): ``(h, w)`` when the palette is
  the identity gray ramp (entry ``i`` is ``(i, i, i)`` for every entry), else the colours
  ``(h, w, 3)``; so the palette (at most 1 KiB) is read;
- 16 and 32-bit images: ``(h, w, 3)``, or ``(h, w, 4)`` with BI_BITFIELDS and a non-zero
  alpha mask in a V3/V4/V5 header; 24-bit images: ``(h, w, 3)``.

Embedded JPEG/PNG, OS/2 headers and BI_ALPHABITFIELDS raise ``UnsupportedImageError``.
"""

from __future__ import annotations

import struct

from imagezarr.probe._common import ImageInfo, Source, image_shape

__all__ = ["is_bmp", "probe_bmp"]

_INFO_SIZES = (40, 52, 56, 108, 124)
_CODEC = {"name": "imagecodecs_bmp"}


def is_bmp(head: bytes) -> bool:
    """Return whether ``head`` starts like a BMP file (``BM`` and a known info header)."""
    if len(head) < 18 or head[:2] != b"BM":
        return False
    return struct.unpack("<I", head[14:18])[0] in (12, 64, *_INFO_SIZES)


def probe_bmp(src: Source) -> ImageInfo:
    """Return the decoded shape and dtype of the BMP in ``src``."""
    (info_size,) = src.unpack("<I", 14, "BMP info header")
    if info_size not in _INFO_SIZES:
        msg = f"BMP with a {info_size}-byte (OS/2) info header"
        src.reject(msg)
    width, height, _, bits, compression = src.unpack("<iiHHI", 18, "BMP info header")
    (colours,) = src.unpack("<I", 46, "BMP info header")
    height = abs(height)
    src.check_size(height, width)
    if compression in (4, 5):
        msg = "BMP with an embedded JPEG or PNG stream"
        src.reject(msg)
    if bits in (1, 4, 8) and compression in (0, 1, 2):
        channels = 1 if _gray_palette(src, 14 + info_size, colours or 1 << bits) else 3
    elif bits == 24 and compression == 0:
        channels = 3
    elif bits in (16, 32) and compression in (0, 3):
        channels = 4 if compression == 3 and _alpha_mask(src, info_size) else 3
    else:
        msg = f"BMP with {bits} bits per pixel and compression {compression}"
        src.reject(msg)
    return ImageInfo("bmp", image_shape(height, width, channels), "uint8", dict(_CODEC))


def _gray_palette(src: Source, offset: int, colours: int) -> bool:
    if colours > 256:
        msg = f"corrupt BMP: {colours} palette entries"
        src.fail(msg)
    palette = src.exact(offset, 4 * colours, "BMP palette")
    return all(palette[4 * i : 4 * i + 3] == bytes((i, i, i)) for i in range(colours))


def _alpha_mask(src: Source, info_size: int) -> bool:
    if info_size < 56:
        return False
    (mask,) = src.unpack("<I", 14 + 52, "BMP alpha mask")
    return mask != 0
