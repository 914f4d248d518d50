"""JPEG 2000 header probe (JP2 box container and raw J2K codestream).

What ``imagecodecs.jpeg2k_decode`` (OpenJPEG, the ``imagecodecs_jpeg2k`` codec) returns:
``(h, w)`` for one component, else ``(h, w, components)``; ``uint8``/``int8`` up to 8 bits,
``uint16``/``int16`` up to 16 bits. The size and components come from the SIZ marker
segment of the codestream (``Xsiz - XOsiz`` by ``Ysiz - YOsiz``). Components with
different precision or sub-sampling, more than 16 bits and JP2 palettes (``pclr``, expanded
by the decoder) raise ``UnsupportedImageError``.
"""

from __future__ import annotations

from imagezarr.probe._common import MAX_STEPS, ImageInfo, Source, image_shape

__all__ = ["SIGNATURES", "probe_jpeg2k"]

JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
J2K_SIGNATURE = b"\xff\x4f\xff\x51"
SIGNATURES = (JP2_SIGNATURE, J2K_SIGNATURE)
_CODEC = {"name": "imagecodecs_jpeg2k"}


def probe_jpeg2k(src: Source) -> ImageInfo:
    """Return the decoded shape and dtype of the JPEG 2000 image in ``src``."""
    start = 0 if src.head.startswith(J2K_SIGNATURE) else _codestream_offset(src)
    if src.exact(start, 4, "JPEG 2000 codestream") != J2K_SIGNATURE:
        src.fail("corrupt JPEG 2000: codestream does not start with SOC and SIZ")
    (lsiz, _, xsiz, ysiz, xosiz, yosiz) = src.unpack(">HHIIII", start + 4, "SIZ segment")
    (ncomp,) = src.unpack(">H", start + 40, "SIZ segment")
    if not 0 < ncomp <= 16384 or lsiz != 38 + 3 * ncomp:
        src.fail(f"corrupt JPEG 2000: SIZ length {lsiz} for {ncomp} components")
    height, width = ysiz - yosiz, xsiz - xosiz
    src.check_size(height, width)
    comps = src.exact(start + 42, 3 * ncomp, "SIZ component list")
    specs = {comps[3 * i : 3 * i + 3] for i in range(ncomp)}
    if len(specs) > 1:
        src.reject("JPEG 2000 components differ in precision or sub-sampling")
    ssiz, dx, dy = specs.pop()
    bits, signed = (ssiz & 0x7F) + 1, bool(ssiz & 0x80)
    if (dx, dy) != (1, 1) or bits > 16:
        src.reject(f"JPEG 2000 with sub-sampling {dx}x{dy} or {bits}-bit samples")
    dtype = ("int" if signed else "uint") + ("8" if bits <= 8 else "16")
    return ImageInfo("jpeg2k", image_shape(height, width, ncomp), dtype, dict(_CODEC))


def _boxes(src: Source, offset: int, end: int | None) -> list[tuple[bytes, int, int | None]]:
    """Return ``(type, data offset, data end)`` of the boxes from ``offset`` to ``end``."""
    boxes: list[tuple[bytes, int, int | None]] = []
    while end is None or offset < end:
        if len(boxes) >= MAX_STEPS or not src.read(offset, 1):
            break
        length, kind = src.unpack(">I4s", offset, "JP2 box header")
        header = 8
        if length == 1:
            (length,) = src.unpack(">Q", offset + 8, "JP2 box length")
            header = 16
        if length == 0:
            boxes.append((kind, offset + header, end))
            break
        if length < header:
            src.fail(f"corrupt JP2: box {kind!r} at offset {offset} has length {length}")
        boxes.append((kind, offset + header, offset + length))
        if kind == b"jp2c":
            break
        offset += length
    return boxes


def _codestream_offset(src: Source) -> int:
    """Return the offset of the codestream in the ``jp2c`` box, checking ``jp2h``."""
    for kind, start, end in _boxes(src, 0, None):
        if kind == b"jp2h" and any(k == b"pclr" for k, _, _ in _boxes(src, start, end)):
            src.reject("JP2 with a palette (pclr box) is not supported")
        if kind == b"jp2c":
            return start
    return src.fail("corrupt JP2: no codestream (jp2c) box found")
