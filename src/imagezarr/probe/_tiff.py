"""TIFF header probe (classic and BigTIFF, either byte order).

What ``imagecodecs.tiff_decode`` (libtiff, the ``imagecodecs_tiff`` codec) returns for the
first IFD, checked against imagecodecs 2026.10:

- chunky (PlanarConfiguration 1) images: ``(h, w)`` or ``(h, w, samples)``;
- planar (PlanarConfiguration 2) images with several samples: ``(samples, h, w)`` — the
  samples axis comes FIRST, exactly as the codec returns it;
- JPEG/OJPEG-compressed and YCbCr images are read as RGBA and cut to the sample count
  (``uint8``); CMYK (Photometric 5) is converted to RGB ``(h, w, 3)`` ``uint8``;
- 1-bit integer data is ``bool``; other bit depths round up to 8, 16, 32 or 64-bit integers;
  floats are 16, 32 or 64-bit; palette images return the indices, not colours;
- an ImageDepth > 1 adds a depth axis before the height.

Multi-page files: the zarr codec decodes with ``index=None``, which stacks every page whose
shape and dtype match the first page. That shape depends on every IFD in the file, so a TIFF
with more than one page in its main IFD chain raises ``UnsupportedImageError``; SubIFDs (e.g.
pyramid levels) are not pages and are ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from imagezarr.probe._common import MAX_STEPS, ImageInfo, Source

__all__ = ["SIGNATURES", "probe_tiff"]

SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_CODEC = {"name": "imagecodecs_tiff"}
_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q", 6: "b", 8: "h", 9: "i", 17: "q", 7: "B", 13: "I"}
_WANTED = {256, 257, 258, 259, 262, 277, 284, 339, 32997}
_COMPRESSIONS = {1, 2, 3, 4, 5, 6, 7, 8, 32773, 32908, 32909, 32946, 34676, 34677, 34925}
_COMPRESSIONS |= {50000, 50001}
_MAX_ENTRIES = 4096


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
    """Return the decoded shape and dtype of the single-page TIFF in ``src``."""
    layout, first = _read_header(src)
    tags, next_ifd = _read_ifd(src, layout, first)
    pages = 1 + _count_pages(src, layout, next_ifd, {first})
    if pages > 1:
        more = "more than " if pages > MAX_STEPS else ""
        msg = (
            f"TIFF with {more}{min(pages, MAX_STEPS)} pages; only single-image TIFFs are "
            "supported (the codec would stack matching pages into one chunk); split the "
            "pages into separate files"
        )
        src.reject(msg)
    shape, dtype = _shape_dtype(src, tags)
    return ImageInfo("tiff", shape, dtype, dict(_CODEC), _axes_for(src, tags, shape))


def _axes_for(src: Source, tags: dict[int, list[int]], shape: tuple[int, ...]) -> str:
    """Axis letters when they differ from the usual ``yx`` / ``yxc`` (planar or deep images)."""
    planar = _first(src, tags, 284, 1) == 2 and len(shape) == 3 and shape[0] > 1
    planes = _first(src, tags, 277, 1) if planar else 1
    depth = max(1, _first(src, tags, 32997, 1))
    letters = "".join(a for a, n in (("c", planes), ("z", depth), ("y", 2), ("x", 2)) if n > 1)
    letters += "c" * (len(shape) - len(letters))
    return "" if letters in ("yx", "yxc") or len(letters) != len(shape) else letters


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
        if tag in _WANTED:
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


def _count_pages(src: Source, layout: _Layout, offset: int, seen: set[int]) -> int:
    """Count the further IFDs in the main chain (stops at invalid offsets or loops)."""
    pages = 0
    while offset and offset not in seen and pages <= MAX_STEPS:
        data = src.read(offset, 8 if layout.big else 2)
        if len(data) != struct.calcsize(layout.count_fmt):
            break
        (count,) = struct.unpack(layout.count_fmt, data)
        if not 0 < count <= _MAX_ENTRIES:
            break
        seen.add(offset)
        pages += 1
        where = offset + len(data) + count * layout.entry_size
        data = src.read(where, struct.calcsize(layout.offset_fmt))
        if len(data) != struct.calcsize(layout.offset_fmt):
            break
        (offset,) = struct.unpack(layout.offset_fmt, data)
    return pages


def _first(src: Source, tags: dict[int, list[int]], tag: int, default: int) -> int:
    """Return a tag's value, insisting that per-sample values agree."""
    values = tags.get(tag, [default])
    if any(v != values[0] for v in values):
        msg = f"TIFF with differing per-sample values {values} in tag {tag}"
        src.reject(msg)
    return values[0]


def _shape_dtype(src: Source, tags: dict[int, list[int]]) -> tuple[tuple[int, ...], str]:
    if 256 not in tags or 257 not in tags:
        msg = "corrupt TIFF: the first IFD has no ImageWidth or ImageLength tag"
        src.fail(msg)
    width, height = tags[256][0], tags[257][0]
    src.check_size(height, width)
    samples = _first(src, tags, 277, 1)
    depth = max(1, _first(src, tags, 32997, 1))
    compression = _first(src, tags, 259, 1)
    photometric = _first(src, tags, 262, 0)
    if not 0 < samples <= 64 or depth > 65536 or height * width * depth * samples > 2**34:
        msg = f"absurd TIFF: {samples} samples per pixel, image depth {depth}"
        src.fail(msg)
    if compression not in _COMPRESSIONS:
        msg = f"TIFF compression {compression} is not decodable by libtiff"
        src.reject(msg)
    if compression in (6, 7) or photometric == 6:
        return _squeeze(1, 1, height, width, min(samples, 4)), "uint8"
    if photometric == 5:
        return (height, width, 3), "uint8"
    if photometric in (32844, 32845):
        msg = "TIFF with LogLuv/LogL photometric interpretation"
        src.reject(msg)
    dtype = _dtype(src, _first(src, tags, 339, 1), _first(src, tags, 258, 1))
    if _first(src, tags, 284, 1) == 2:
        return _squeeze(samples, depth, height, width, 1), dtype
    return _squeeze(1, depth, height, width, samples), dtype


def _squeeze(planes: int, depth: int, height: int, width: int, samples: int) -> tuple[int, ...]:
    """Drop the axes of length 1 except height and width, as the codec does."""
    dims = (planes, depth, height, width, samples)
    return tuple(s for i, s in enumerate(dims) if s > 1 or i in (2, 3))


def _dtype(src: Source, sampleformat: int, bits: int) -> str:
    if sampleformat == 1 and bits == 1:
        return "bool"
    if sampleformat == 1 and 1 < bits <= 64:
        return f"uint{max(8, 1 << (bits - 1).bit_length())}"
    if sampleformat == 2 and bits in (8, 16, 32, 64):
        return f"int{bits}"
    if sampleformat == 3 and bits in (16, 32, 64):
        return f"float{bits}"
    if sampleformat == 6 and bits in (64, 128):
        return f"complex{bits}"
    msg = f"TIFF sample format {sampleformat} with {bits} bits per sample"
    return src.reject(msg)
