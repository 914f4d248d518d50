"""JPEG XL header probe (naked codestream and ISOBMFF container).

Parses the codestream's SizeHeader and ImageMetadata bit fields (LSB-first, as in
ISO/IEC 18181-1) up to the colour space. What ``imagecodecs.jpegxl_decode`` (libjxl, the
``imagecodecs_jpegxl`` codec) returns: ``(h, w)`` gray, else ``(h, w, channels)`` with
channels = colour channels (1 gray or 3) + extra channels (alpha, ...); ``uint8`` up to 8
bits, ``uint16`` up to 16 bits, ``float16``/``float32`` for float samples. The decoder
applies the orientation, so orientations 5-8 swap height and width. Animations decode to a
stack of frames and raise ``UnsupportedImageError``.
"""

from __future__ import annotations

from imagezarr.probe._common import MAX_STEPS, ImageInfo, Source, image_shape

__all__ = ["SIGNATURES", "probe_jpegxl"]

CODESTREAM = b"\xff\x0a"
CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
SIGNATURES = (CODESTREAM, CONTAINER)
_CODEC = {"name": "imagecodecs_jpegxl"}
_HEADER_BYTES = 4096  # the image header of any real file fits in far less
_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}
_Dist = tuple[int, int]  # (bits, offset); bits 0 means the constant offset
_SIZE = ((9, 1), (13, 1), (18, 1), (30, 1))
_ENUM = ((0, 0), (0, 1), (4, 2), (6, 18))


class _Bits:
    """LSB-first bit reader over a byte string."""

    def __init__(self, data: bytes, src: Source) -> None:
        self.value = int.from_bytes(data, "little")
        self.limit = 8 * len(data)
        self.pos = 0
        self.src = src

    def u(self, n: int) -> int:
        if self.pos + n > self.limit:
            self.src.fail("truncated JPEG XL image header")
        out = (self.value >> self.pos) & ((1 << n) - 1)
        self.pos += n
        return out

    def u32(self, *dists: _Dist) -> int:
        bits, offset = dists[self.u(2)]
        return offset + (self.u(bits) if bits else 0)


def probe_jpegxl(src: Source) -> ImageInfo:
    """Return the decoded shape and dtype of the JPEG XL image in ``src``."""
    start = 0 if src.head.startswith(CODESTREAM) else _codestream_offset(src)
    data = src.read(start, _HEADER_BYTES)
    if data[:2] != CODESTREAM:
        src.fail("corrupt JPEG XL: codestream does not start with 0xff0a")
    bits = _Bits(data[2:], src)
    height, width = _size_header(bits)
    src.check_size(height, width)
    orientation, animated, dtype, channels = _metadata(bits, src)
    if animated:
        src.reject("animated JPEG XL decodes to a stack of frames; only still images are supported")
    if orientation > 4:
        height, width = width, height
    return ImageInfo("jpegxl", image_shape(height, width, channels), dtype, dict(_CODEC))


def _codestream_offset(src: Source) -> int:
    """Return the offset of the codestream in the first ``jxlc`` or ``jxlp`` box."""
    offset = 0
    for _ in range(MAX_STEPS):
        length, kind = src.unpack(">I4s", offset, "JPEG XL container box header")
        header = 8
        if length == 1:
            (length,) = src.unpack(">Q", offset + 8, "JPEG XL box length")
            header = 16
        if kind == b"jxlc":
            return offset + header
        if kind == b"jxlp":
            return offset + header + 4
        if length < header:
            src.fail(f"corrupt JPEG XL container: box {kind!r} length {length}")
        offset += length
    return src.fail("corrupt JPEG XL container: no codestream box found")


def _size_header(bits: _Bits) -> tuple[int, int]:
    small = bits.u(1)
    height = 8 * (bits.u(5) + 1) if small else bits.u32(*_SIZE)
    ratio = bits.u(3)
    if ratio:
        num, den = _RATIOS[ratio]
        return height, height * num // den
    return height, 8 * (bits.u(5) + 1) if small else bits.u32(*_SIZE)


def _metadata(bits: _Bits, src: Source) -> tuple[int, bool, str, int]:
    """Return orientation, animation flag, dtype and channel count from ImageMetadata."""
    if bits.u(1):  # all_default
        return 1, False, "uint8", 3
    orientation, animated = 1, False
    if bits.u(1):  # extra_fields
        orientation = bits.u(3) + 1
        if bits.u(1):  # intrinsic size
            _size_header(bits)
        if bits.u(1):
            _skip_preview(bits)
        animated = bool(bits.u(1))
    dtype = _bit_depth_dtype(bits, src)
    bits.u(1)  # modular_16bit_buffers
    extra = bits.u32((0, 0), (0, 1), (4, 2), (12, 1))
    if extra > 256:
        src.fail(f"corrupt JPEG XL: {extra} extra channels")
    for _ in range(extra):
        _skip_extra_channel(bits, src)
    bits.u(1)  # xyb_encoded
    gray = False
    if not bits.u(1):  # colour encoding not all_default
        bits.u(1)  # want_icc
        gray = bits.u32(*_ENUM) == 1
    return orientation, animated, dtype, (1 if gray else 3) + extra


def _skip_preview(bits: _Bits) -> None:
    div8 = bits.u(1)
    dist = ((0, 16), (0, 32), (5, 1), (9, 33)) if div8 else ((6, 1), (8, 65), (10, 321), (12, 1345))
    bits.u32(*dist)
    if not bits.u(3):
        bits.u32(*dist)


def _bit_depth_dtype(bits: _Bits, src: Source) -> str:
    if bits.u(1):  # float samples
        depth = bits.u32((0, 32), (0, 16), (0, 24), (6, 1))
        bits.u(4)  # exponent bits
        if depth in (16, 32):
            return f"float{depth}"
    else:
        depth = bits.u32((0, 8), (0, 10), (0, 12), (6, 1))
        if depth <= 16:
            return "uint8" if depth <= 8 else "uint16"
    return src.reject(f"JPEG XL with {depth}-bit samples")


def _skip_extra_channel(bits: _Bits, src: Source) -> None:
    if bits.u(1):  # d_alpha: default 8-bit alpha
        return
    kind = bits.u32(*_ENUM)
    _bit_depth_dtype_any(bits)
    bits.u32((0, 0), (0, 3), (0, 4), (3, 1))  # dim_shift
    name_len = bits.u32((0, 0), (4, 0), (5, 16), (10, 48))
    bits.u(8 * name_len)
    if kind == 0:
        bits.u(1)  # alpha_associated
    elif kind == 2:
        bits.u(64)  # spot colour: four F16
    elif kind == 5:
        bits.u32((0, 1), (2, 0), (4, 3), (8, 19))  # cfa_channel
    elif kind not in (1, 3, 4, 6, 15, 16):
        src.fail(f"corrupt JPEG XL: extra channel type {kind}")


def _bit_depth_dtype_any(bits: _Bits) -> None:
    if bits.u(1):
        bits.u32((0, 32), (0, 16), (0, 24), (6, 1))
        bits.u(4)
    else:
        bits.u32((0, 8), (0, 10), (0, 12), (6, 1))
