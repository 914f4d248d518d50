"""PNG header probe.

What ``imagecodecs.png_decode`` (the ``imagecodecs_png`` codec) returns, checked against
imagecodecs 2026.10:

- gray ``(h, w)``, gray+alpha ``(h, w, 2)``, RGB ``(h, w, 3)``, RGBA ``(h, w, 4)``;
- palette images are expanded to RGB ``(h, w, 3)``, or RGBA ``(h, w, 4)`` with a tRNS chunk;
- a tRNS chunk adds an alpha channel to gray and RGB images too;
- 1, 2 and 4-bit gray is scaled to ``uint8`` (0..255), 16-bit stays ``uint16``.

Only the IHDR chunk and the chunk headers before the first IDAT are read.
"""

from __future__ import annotations

import struct

from imagezarr.probe._common import (
    MAX_PIXELS,
    MAX_SIDE,
    MAX_STEPS,
    ImageInfo,
    Source,
    image_shape,
)

__all__ = ["SIGNATURE", "png_info", "probe_png", "read_head"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
_CODEC = {"name": "imagecodecs_png"}
_IHDR = struct.Struct(">I4sIIBBBBB")  # length, type and the 13 IHDR bytes, at offset 8
_CHUNK = struct.Struct(">I4s")


def probe_png(src: Source) -> ImageInfo:
    """Return the decoded shape and dtype of the PNG in ``src``."""
    length, kind = src.unpack(">I4s", 8, "IHDR chunk")
    if kind != b"IHDR" or length != 13:
        msg = f"corrupt PNG: first chunk is {kind!r} of {length} bytes, not IHDR"
        src.fail(msg)
    width, height, depth, colour, _, _, interlace = src.unpack(">IIBBBBB", 16, "IHDR chunk")
    src.check_size(height, width)
    if depth not in _DEPTHS.get(colour, ()) or interlace > 1:
        msg = (
            f"corrupt PNG: invalid IHDR (bit depth {depth}, colour type {colour}, "
            f"interlace {interlace})"
        )
        src.fail(msg)
    channels = _CHANNELS[colour]
    if colour in (0, 2, 3) and _has_trns(src):
        channels += 1
    return png_info(height, width, channels, depth)


def _has_trns(src: Source) -> bool:
    """Walk the chunk headers after IHDR up to the first IDAT; report a tRNS chunk."""
    offset = 33
    for _ in range(MAX_STEPS):
        length, kind = src.unpack(">I4s", offset, "PNG chunk header (no IDAT chunk found)")
        if kind == b"tRNS":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        if length > 2**31 - 1:
            msg = f"corrupt PNG: chunk {kind!r} at offset {offset} has length {length}"
            src.fail(msg)
        offset += 12 + length
    msg = f"corrupt PNG: more than {MAX_STEPS} chunks before the first IDAT"
    return src.fail(msg)


def read_head(head: bytes) -> tuple[int, int, int, int] | None:
    """``(height, width, channels, depth)`` of a well-formed PNG from ``head`` alone, else None.

    Scanning 100,000 small files, the general probe's bounded ``Source`` reads cost more than
    the file system. This path reads only ``head`` and gives up (None) on anything unusual:
    not a PNG, a corrupt IHDR, a chunk walk leaving ``head``; :func:`probe_png` then decides,
    so every error message still comes from one place. :func:`png_info` makes the result.
    """
    if len(head) < 33 or not head.startswith(SIGNATURE):
        return None
    length, kind, width, height, depth, colour, _, _, interlace = _IHDR.unpack_from(head, 8)
    if length != 13 or kind != b"IHDR" or interlace > 1:
        return None
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE and height * width <= MAX_PIXELS):
        return None
    if depth not in _DEPTHS.get(colour, ()):
        return None
    channels = _CHANNELS[colour]
    if colour in (0, 2, 3):
        offset = 33
        for _ in range(MAX_STEPS):
            if offset + 8 > len(head):
                return None
            length, kind = _CHUNK.unpack_from(head, offset)
            if kind == b"tRNS":
                channels += 1
                break
            if kind in (b"IDAT", b"IEND"):
                break
            if length > 2**31 - 1:
                return None
            offset += 12 + length
        else:
            return None
    return height, width, channels, depth


def png_info(height: int, width: int, channels: int, depth: int) -> ImageInfo:
    """The ImageInfo of a PNG with that IHDR (channels counting a tRNS alpha)."""
    dtype = "uint16" if depth == 16 else "uint8"
    return ImageInfo("png", image_shape(height, width, channels), dtype, dict(_CODEC))
