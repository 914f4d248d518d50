"""WebP header probe.

What ``imagecodecs.webp_decode`` (libwebp, the ``imagecodecs_webp`` codec) returns: RGB
``(h, w, 3)`` ``uint8`` unless the bitstream says it has alpha, then RGBA ``(h, w, 4)``.
The alpha decision follows libwebp's ``WebPGetFeatures``: the alpha flag of a VP8X chunk,
the ``alpha_is_used`` bit of a lossless VP8L header, never for a simple lossy VP8 file.
Animated WebP decodes to a stack of frames and raises ``UnsupportedImageError``.
"""

from __future__ import annotations

import struct

from imagezarr.probe._common import ImageInfo, Source

__all__ = ["probe_webp"]

_CODEC = {"name": "imagecodecs_webp"}


def probe_webp(src: Source) -> ImageInfo:
    """Return the decoded shape and dtype of the WebP in ``src``."""
    kind = src.exact(12, 4, "WebP chunk header")
    if kind not in (b"VP8 ", b"VP8L", b"VP8X"):
        src.fail(f"corrupt WebP: first chunk is {kind!r}, not VP8, VP8L or VP8X")
    data = src.exact(20, 10, f"WebP {kind.decode().strip()} header")
    if kind == b"VP8 ":
        height, width, alpha = _vp8(src, data)
    elif kind == b"VP8L":
        height, width, alpha = _vp8l(src, data)
    elif kind == b"VP8X":
        height, width, alpha = _vp8x(src, data)
    else:
        msg = f"corrupt WebP: first chunk is {kind!r}, not VP8, VP8L or VP8X"
        src.fail(msg)
    src.check_size(height, width)
    return ImageInfo("webp", (height, width, 4 if alpha else 3), "uint8", dict(_CODEC))


def _vp8(src: Source, data: bytes) -> tuple[int, int, bool]:
    if data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        msg = "corrupt WebP: VP8 chunk does not start with a key frame"
        src.fail(msg)
    width, height = struct.unpack("<HH", data[6:10])
    return height & 0x3FFF, width & 0x3FFF, False


def _vp8l(src: Source, data: bytes) -> tuple[int, int, bool]:
    if data[0] != 0x2F:
        msg = f"corrupt WebP: VP8L signature byte is {data[0]:#x}, not 0x2f"
        src.fail(msg)
    (bits,) = struct.unpack("<I", data[1:5])
    if bits >> 29:
        msg = f"corrupt WebP: VP8L version {bits >> 29}"
        src.fail(msg)
    return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1, bool(bits >> 28 & 1)


def _vp8x(src: Source, data: bytes) -> tuple[int, int, bool]:
    flags = data[0]
    if flags & 0x02:
        msg = "animated WebP decodes to a stack of frames; only still images are supported"
        src.reject(msg)
    width = int.from_bytes(data[4:7], "little") + 1
    height = int.from_bytes(data[7:10], "little") + 1
    return height, width, bool(flags & 0x10)
