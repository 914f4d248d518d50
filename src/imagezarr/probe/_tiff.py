"""TIFF header probe (classic and BigTIFF, either byte order).

What ``imagecodecs.tiff_decode`` (libtiff, the ``imagecodecs_tiff`` codec) returns for the
first IFD, checked against imagecodecs 2026.8.16 and 2026.10.10 (``tests/test_probe.py`` and
the generated files of ``tests/test_probe_differential.py``):

- chunky (PlanarConfiguration 1) images: ``(h, w)`` or ``(h, w, samples)``;
- planar (PlanarConfiguration 2) images with several samples: ``(samples, h, w)`` — the
  samples axis comes FIRST, exactly as the codec returns it; an ImageDepth > 1 adds a depth
  axis before the height;
- JPEG (Compression 7) decodes like every other compression, planar files included: YCbCr
  JPEG is converted to RGB in place, 8-bit samples are ``uint8``, 12 and 16-bit ``uint16``.
  imagecodecs before 2026.8.16 read JPEG through libtiff's RGBA interface instead (planar
  files came back chunky, 12-bit failed), so there JPEG-compressed TIFF is refused;
- old-style JPEG (Compression 6), YCbCr without JPEG and CMYK (Photometric 5) without JPEG
  go through libtiff's RGBA interface: only 8-bit samples, ``uint8``, CMYK converted to RGB
  ``(h, w, 3)``, the others cut to their sample count; layouts that interface refuses are
  refused here too;
- 1-bit unsigned integers are ``bool``; other integers of up to 32 bits round up to 8, 16 or
  32 bits (signed 1-bit data to ``int8``), 64-bit ones stay; floats are 16, 32 or 64-bit;
  palette images return the indices, not colours.

A tag repeated in one IFD counts with its FIRST value, as libtiff ignores later duplicates.

Multi-page files: the zarr codec decodes with ``index=None``, which stacks every page whose
shape and dtype match the first page. Every IFD of the main chain is read, and a file whose
pages all agree is one image with a leading ``p`` (page) axis, ``(pages, h, w[, c])``; pages
that differ (or that go through the RGBA interface) raise ``UnsupportedImageError`` naming
the first that differs. SubIFDs (e.g. pyramid levels) are not pages and are ignored.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from imagezarr.probe._common import ImageInfo, Source, image_shape

__all__ = ["SIGNATURES", "probe_tiff"]

SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_CODEC = {"name": "imagecodecs_tiff"}
_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q", 6: "b", 8: "h", 9: "i", 17: "q", 7: "B", 13: "I"}
_WANTED = {256, 257, 258, 259, 262, 277, 284, 332, 339, 513, 530, 32997}
_COMPRESSIONS = {1, 2, 3, 4, 5, 6, 7, 8, 32773, 32908, 32909, 32946, 34676, 34677, 34925}
_COMPRESSIONS |= {34887, 50000, 50001}  # 34887: LERC
_MAX_ENTRIES = 4096
MAX_PAGES = 4096  # pages of one file; every IFD is read to check that the pages agree
_JPEG_BITS = (8, 12, 16)  # what libtiff's JPEG codec decodes; other precisions fail


def _native_jpeg() -> bool:
    """Whether the installed imagecodecs decodes TIFF JPEG natively (2026.8.16 and later)."""
    try:
        found = re.match(r"(\d+)\.(\d+)\.(\d+)", version("imagecodecs"))
    except PackageNotFoundError:
        return False
    return found is not None and tuple(map(int, found.groups())) >= (2026, 8, 16)


_JPEG_NATIVE = _native_jpeg()


@dataclass(frozen=True, slots=True)
class _Layout:
    """Byte order and field sizes of a classic or Big TIFF."""

    order: str
    big: bool

    @property
    def count_fmt(self) -> str:
        return self.order + ("Q" if self.big else "H")

    @property
    def offset_fmt(self) -> str:
        return self.order + ("Q" if self.big else "I")

    @property
    def entry_size(self) -> int:
        return 20 if self.big else 12


def probe_tiff(src: Source) -> ImageInfo:
    """Return the decoded shape and dtype of the TIFF in ``src``: its page, or its pages
    stacked along a leading ``p`` (page) axis."""
    layout, first = _read_header(src)
    tags, next_ifd = _read_ifd(src, layout, first)
    shape, dtype, axes = _decoded(src, tags)
    pages = _pages(src, layout, next_ifd, {first})
    if not pages:
        return ImageInfo("tiff", shape, dtype, dict(_CODEC), axes)
    if _through_rgba(tags):
        msg = (
            f"TIFF with {1 + len(pages)} pages in a layout libtiff decodes through its RGBA "
            "interface (old-style JPEG, YCbCr or CMYK); its pages cannot be stacked"
        )
        src.reject(msg)
    for number, page in enumerate(pages, start=2):
        if _through_rgba(page) or _decoded(src, page) != (shape, dtype, axes):
            other, kind, _ = _decoded(src, page)
            msg = (
                f"TIFF pages differ: page {number} is {_shape_text(other)} {kind}, page 1 "
                f"{_shape_text(shape)} {dtype}; the pages of a file are one array, so they must "
                "agree in shape and dtype (split the file, or keep such files apart)"
            )
            src.reject(msg)
    # the codec's index=None stacks every page matching the first: here, all of them
    inner = axes or ("yx" if len(shape) == 2 else "yxc")
    return ImageInfo("tiff", (1 + len(pages), *shape), dtype, dict(_CODEC), "p" + inner)


def _shape_text(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))


def _through_rgba(tags: dict[int, list[int]]) -> bool:
    """Whether libtiff decodes the IFD through its RGBA interface (see the module doc)."""
    compression, photometric = tags.get(259, [1])[0], tags.get(262, [0])[0]
    return compression == 6 or (compression != 7 and photometric in (5, 6))


def _read_header(src: Source) -> tuple[_Layout, int]:
    head = src.exact(0, 8, "TIFF header")
    order = "<" if head[:2] == b"II" else ">"
    (version,) = struct.unpack(order + "H", head[2:4])
    if version == 42:
        layout = _Layout(order, big=False)
        (first,) = struct.unpack(order + "I", head[4:8])
    else:
        layout = _Layout(order, big=True)
        bytesize, _, first = src.unpack(order + "HHQ", 4, "BigTIFF header")
        if bytesize != 8:
            msg = f"corrupt BigTIFF header: offset size {bytesize}"
            src.fail(msg)
    if first < 8:
        msg = f"corrupt TIFF: first IFD offset {first}"
        src.fail(msg)
    return layout, first


def _read_ifd(src: Source, layout: _Layout, offset: int) -> tuple[dict[int, list[int]], int]:
    """Return the wanted tags of the IFD at ``offset`` and the next IFD offset."""
    (count,) = src.unpack(layout.count_fmt, offset, "TIFF IFD entry count")
    if not 0 < count <= _MAX_ENTRIES:
        msg = f"corrupt TIFF: IFD at offset {offset} has {count} entries"
        src.fail(msg)
    start = offset + (8 if layout.big else 2)
    size = layout.entry_size
    table = src.exact(start, count * size + struct.calcsize(layout.offset_fmt), "TIFF IFD")
    tags = {}
    for i in range(count):
        entry = table[i * size : (i + 1) * size]
        tag = struct.unpack(layout.order + "H", entry[:2])[0]
        if tag in _WANTED and tag not in tags:  # libtiff ignores later duplicates
            tags[tag] = _values(src, layout, entry)
    (next_ifd,) = struct.unpack(layout.offset_fmt, table[count * size :])
    return tags, next_ifd


def _values(src: Source, layout: _Layout, entry: bytes) -> list[int]:
    """Return the integer values of one IFD entry (at most 64 of them)."""
    order = layout.order
    if layout.big:
        kind, count = struct.unpack(order + "HQ", entry[2:12])
        inline = entry[12:20]
    else:
        kind, count = struct.unpack(order + "HI", entry[2:8])
        inline = entry[8:12]
    code = _TYPES.get(kind)
    if code is None or count == 0:
        msg = f"corrupt TIFF: tag {entry[:2].hex()} has type {kind}, count {count}"
        src.fail(msg)
    count = min(count, 64)
    nbytes = count * struct.calcsize(code)
    if nbytes > len(inline):
        (where,) = struct.unpack(layout.offset_fmt, inline)
        data = src.exact(where, nbytes, "TIFF tag values")
    else:
        data = inline[:nbytes]
    return list(struct.unpack(f"{order}{count}{code}", data))


def _pages(src: Source, layout: _Layout, offset: int, seen: set[int]) -> list[dict[int, list[int]]]:
    """The wanted tags of the further IFDs in the main chain, as far as libtiff follows it:
    an offset outside the file, a loop or an empty IFD ends it (SubIFDs, such as pyramid
    levels, are not in the chain)."""
    pages: list[dict[int, list[int]]] = []
    while offset and offset not in seen:
        if len(pages) + 1 >= MAX_PAGES:
            msg = f"TIFF with more than {MAX_PAGES} pages"
            src.reject(msg)
        data = src.read(offset, 8 if layout.big else 2)
        if len(data) != struct.calcsize(layout.count_fmt):
            break
        (count,) = struct.unpack(layout.count_fmt, data)
        if not 0 < count <= _MAX_ENTRIES:
            break
        seen.add(offset)
        tags, offset = _read_ifd(src, layout, offset)
        pages.append(tags)
    return pages


def _first(src: Source, tags: dict[int, list[int]], tag: int, default: int) -> int:
    """Return a tag's value, insisting that per-sample values agree."""
    values = tags.get(tag, [default])
    if any(v != values[0] for v in values):
        msg = f"TIFF with differing per-sample values {values} in tag {tag}"
        src.reject(msg)
    return values[0]


def _decoded(src: Source, tags: dict[int, list[int]]) -> tuple[tuple[int, ...], str, str]:
    """Return the decoded shape, dtype and axis letters ('' for the usual yx / yxc)."""
    if 256 not in tags or 257 not in tags:
        msg = "corrupt TIFF: the first IFD has no ImageWidth or ImageLength tag"
        src.fail(msg)
    width, height = tags[256][0], tags[257][0]
    src.check_size(height, width)
    samples = _first(src, tags, 277, 1)
    depth = max(1, _first(src, tags, 32997, 1))
    compression = _first(src, tags, 259, 1)
    photometric = _first(src, tags, 262, 0)
    planar = _first(src, tags, 284, 1) == 2
    bits = _first(src, tags, 258, 1)
    if not 0 < samples <= 64 or depth > 65536 or height * width * depth * samples > 2**34:
        msg = f"absurd TIFF: {samples} samples per pixel, image depth {depth}"
        src.fail(msg)
    if compression not in _COMPRESSIONS:
        msg = f"TIFF compression {compression} is not decodable by libtiff"
        src.reject(msg)
    if photometric in (32844, 32845):
        msg = "TIFF with LogLuv/LogL photometric interpretation"
        src.reject(msg)
    if compression == 6 or (compression != 7 and photometric in (5, 6)):
        return _rgba(src, tags, height, width), "uint8", ""
    if compression == 7 and not _JPEG_NATIVE:
        msg = (
            "JPEG-compressed TIFF needs imagecodecs 2026.8.16 or later (older versions return "
            "another layout); upgrade imagecodecs"
        )
        src.reject(msg)
    if compression == 7 and bits not in _JPEG_BITS:
        msg = f"JPEG-compressed TIFF with {bits}-bit samples is not decodable by libtiff"
        src.reject(msg)
    dtype = _dtype(src, _first(src, tags, 339, 1), bits)
    if planar and samples > 1:
        dims = (("c", samples), ("z", depth), ("y", height), ("x", width))
    else:
        dims = (("z", depth), ("y", height), ("x", width), ("c", samples))
    # the codec drops every axis of length 1 except height and width
    kept = [(a, n) for a, n in dims if n > 1 or a in "yx"]
    axes = "".join(a for a, _ in kept)
    return tuple(n for _, n in kept), dtype, "" if axes in ("yx", "yxc") else axes


def _rgba(src: Source, tags: dict[int, list[int]], height: int, width: int) -> tuple[int, ...]:
    """The shape libtiff's RGBA interface yields, refusing what it cannot read."""
    compression = _first(src, tags, 259, 1)
    photometric = _first(src, tags, 262, 0)
    planar = _first(src, tags, 284, 1) == 2
    samples = _first(src, tags, 277, 1)
    bits = _first(src, tags, 258, 1)
    depth = max(1, _first(src, tags, 32997, 1))
    kind = "old-style JPEG" if compression == 6 else "CMYK" if photometric == 5 else "YCbCr"
    if bits != 8:
        msg = f"{kind} TIFF with {bits}-bit samples: not decodable by libtiff (8-bit only)"
        src.reject(msg)
    if depth > 1:
        msg = (
            f"{kind} TIFF with image depth {depth}: libtiff's RGBA reader would return only its "
            "first slice"
        )
        src.reject(msg)
    if compression == 6:
        ok = samples <= 4
    elif photometric == 5:
        ok = _first(src, tags, 332, 1) == 1 and (samples == 4 if planar else samples >= 4)
    else:
        ok = samples == 3 and (not planar or tags.get(530) == [1, 1])
    if not ok:
        msg = (
            f"{kind} TIFF with {samples} samples per pixel, planar configuration "
            f"{2 if planar else 1}: not decodable by libtiff"
        )
        src.reject(msg)
    blocks = [*tags.get(530, []), 2, 2][:2]  # YCbCrSubSampling, default 2x2
    # an old-style JPEG stream (JPEGInterchangeFormat) overrides the tag with its own factors,
    # which the header does not show: such a file too small for them fails only when read
    stream = compression == 6 and 513 in tags
    if photometric == 6 and not stream and (width < blocks[0] or height < blocks[1]):
        msg = (
            f"YCbCr TIFF of {width}x{height} pixels, smaller than its {blocks[0]}x{blocks[1]} "
            "chroma sub-sampling block: not decodable by libtiff"
        )
        src.reject(msg)
    if photometric == 5 and compression != 6:
        return (height, width, 3)  # CMYK is converted to RGB
    return image_shape(height, width, samples)


def _dtype(src: Source, sampleformat: int, bits: int) -> str:
    if sampleformat == 1 and bits == 1:
        return "bool"
    if sampleformat in (1, 2) and (0 < bits <= 32 or bits == 64):
        kind = "uint" if sampleformat == 1 else "int"
        return f"{kind}{max(8, 1 << (bits - 1).bit_length())}"
    if sampleformat == 3 and bits in (16, 32, 64):
        return f"float{bits}"
    if sampleformat == 6 and bits in (64, 128):
        return f"complex{bits}"
    msg = f"TIFF sample format {sampleformat} with {bits} bits per sample"
    return src.reject(msg)
