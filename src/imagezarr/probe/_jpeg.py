"""JPEG header probe.

What ``imagecodecs.jpeg8_decode`` (libjpeg-turbo 3, the ``imagecodecs_jpeg`` codec) returns:
one component ``(h, w)``, three components (YCbCr or RGB) ``(h, w, 3)``, four components
(Adobe CMYK or YCCK, returned as CMYK without conversion) ``(h, w, 4)``; ``uint8`` for 8-bit
and ``uint16`` for 12-bit and lossless (SOF3) data of more than 8 bits. EXIF orientation is
not applied by the decoder, so it is ignored here too.

The marker segments before the SOF marker are skipped by their lengths, so a big EXIF or
APPn segment costs one small read per segment, not its size.
"""

from __future__ import annotations

from imagezarr.probe._common import MAX_STEPS, ImageInfo, Source, image_shape

__all__ = ["SIGNATURE", "probe_jpeg"]

SIGNATURE = b"\xff\xd8\xff"
_SOF_DECODABLE = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive", 0xC3: "lossless"}
_SOF_DECODABLE |= {0xC9: "arithmetic extended", 0xCA: "arithmetic progressive"}
_SOF_OTHER = {0xC5, 0xC6, 0xC7, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length
_CODEC = {"name": "imagecodecs_jpeg"}


def probe_jpeg(src: Source) -> ImageInfo:
    """Return the decoded shape and dtype of the JPEG in ``src``."""
    marker, offset = _find_sof(src)
    precision, height, width, ncomp = src.unpack(">BHHB", offset + 4, "JPEG SOF segment")
    if marker not in _SOF_DECODABLE:
        msg = (
            f"JPEG process SOF{marker - 0xC0} (hierarchical or lossless arithmetic) is not "
            "decodable by libjpeg-turbo; re-encode the image"
        )
        src.reject(msg)
    if height == 0:
        msg = "JPEG with height defined by a DNL marker is not supported"
        src.reject(msg)
    src.check_size(height, width)
    if ncomp not in (1, 3, 4):
        msg = f"JPEG with {ncomp} components is not supported (only 1, 3, 4)"
        src.reject(msg)
    lossless = marker == 0xC3
    if not (2 <= precision <= 16 if lossless else precision in (8, 12)):
        msg = f"corrupt JPEG: sample precision {precision} in SOF{marker - 0xC0}"
        src.fail(msg)
    dtype = "uint8" if precision <= 8 else "uint16"
    return ImageInfo("jpeg", image_shape(height, width, ncomp), dtype, dict(_CODEC))


def _find_sof(src: Source) -> tuple[int, int]:
    """Return the SOF marker and its offset, skipping other segments by their lengths."""
    offset = 2
    for _ in range(MAX_STEPS):
        head = src.exact(offset, 2, "JPEG marker (no SOF marker found)")
        if head[0] != 0xFF:
            msg = f"corrupt JPEG: expected a marker at offset {offset}, got {head!r}"
            src.fail(msg)
        marker = head[1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in _STANDALONE or marker == 0xD8:
            offset += 2
            continue
        if marker in (0xD9, 0xDA):
            msg = "corrupt JPEG: scan data or end of image before any SOF marker"
            src.fail(msg)
        if marker in _SOF_DECODABLE or marker in _SOF_OTHER:
            return marker, offset
        (length,) = src.unpack(">H", offset + 2, "JPEG segment length")
        if length < 2:
            msg = f"corrupt JPEG: segment length {length} at offset {offset}"
            src.fail(msg)
        offset += 2 + length
    msg = f"corrupt JPEG: more than {MAX_STEPS} segments before the SOF marker"
    return src.fail(msg)
