"""GIF header probe.

The ``imagecodecs_gif`` codec calls ``gif_decode(data, asrgb=False)`` without an index,
which returns the palette INDICES of every frame: ``(h, w)`` ``uint8`` for a single-frame
file, ``(frames, h, w)`` for an animation, where ``h, w`` is the logical screen size.
Animated (multi-frame) GIFs raise ``UnsupportedImageError``.

Counting frames means walking every block of the file, whose image data is a chain of
sub-blocks of at most 255 bytes: there is no way to find the end of a frame but to follow that
chain, so a single-frame file is read to its end. The walk reads in windows that grow from
64 KiB to 4 MiB (few requests on an object store) and stops at the second frame or the trailer.
The overall read limit is raised, per frame, by the most image data a valid frame of its size
can hold: a big valid GIF is read through, a hostile one stays bounded by its own header.
"""

from __future__ import annotations

import hashlib
from typing import Any

from imagezarr.probe._common import MAX_PIXELS, ImageInfo, Source

__all__ = ["SIGNATURES", "probe_gif"]

SIGNATURES = (b"GIF87a", b"GIF89a")
_CODEC = {"name": "imagecodecs_gif"}
_WINDOW = 64 * 1024
_MAX_WINDOW = 4 * 1024 * 1024


class _Cursor:
    """Sequential byte access to ``src`` through windows growing from 64 KiB to 4 MiB."""

    def __init__(self, src: Source, offset: int) -> None:
        self.src = src
        self.offset = offset
        self._start = 0
        self._data = b""
        self._window = _WINDOW

    def byte(self, what: str) -> int:
        """Return the byte at the cursor and advance; raise 'truncated' at end of file."""
        index = self.offset - self._start
        if not 0 <= index < len(self._data):
            self._start = self.offset
            self._data = self.src.read(self.offset, self._window)
            self._window = min(2 * self._window, _MAX_WINDOW)
            index = 0
            if not self._data:
                self.src.fail(f"truncated GIF: end of file inside {what}")
        self.offset += 1
        return self._data[index]

    def at_end(self) -> bool:
        """Return whether the cursor is at the end of the file."""
        if 0 <= self.offset - self._start < len(self._data):
            return False
        return not self.src.read(self.offset, 1)

    def skip_sub_blocks(self, what: str) -> None:
        """Skip a chain of data sub-blocks up to and including its empty terminator."""
        while length := self.byte(what):
            self.offset += length


def probe_gif(src: Source) -> ImageInfo:
    """Return the decoded shape and dtype of the single-frame GIF in ``src``."""
    width, height, flags = src.unpack("<HHB", 6, "GIF logical screen descriptor")
    src.check_size(height, width)
    palette = hashlib.sha1(src.exact(13, _table_size(flags), "GIF colour table"))
    cursor = _Cursor(src, 13 + _table_size(flags))
    frames = 0
    while not (frames and cursor.at_end()):
        intro = cursor.byte("GIF block")
        if intro == 0x3B:  # trailer
            break
        if intro == 0x21:  # extension: label, then sub-blocks
            cursor.byte("GIF extension")
            cursor.skip_sub_blocks("GIF extension")
        elif intro == 0x2C:
            frames += 1
            if frames > 1:
                src.reject(
                    "animated GIF (more than one frame) decodes to a stack of frames; only "
                    "single-frame GIFs are supported"
                )
            _skip_image(cursor, palette)
        else:
            src.fail(f"corrupt GIF: unknown block {intro:#04x} at offset {cursor.offset}")
    if not frames:
        src.fail("corrupt GIF: no image in the file")
    # the pixels are palette indices: arrays may only stack files that share a palette
    return ImageInfo(
        "gif", (height, width), "uint8", dict(_CODEC), palette=palette.hexdigest()[:16]
    )


def _table_size(flags: int) -> int:
    """Return the byte size of the colour table announced by ``flags``."""
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _skip_image(cursor: _Cursor, palette: Any) -> None:
    """Skip an image descriptor, its local colour table (hashed) and its LZW data."""
    src = cursor.src
    width, height = src.unpack("<HH", cursor.offset + 4, "GIF image descriptor")
    if width * height > MAX_PIXELS:
        src.fail(f"corrupt GIF: frame of {width}x{height} pixels at offset {cursor.offset - 1}")
    src.allow(_max_image_data(width * height))
    cursor.offset += 8
    flags = cursor.byte("GIF image descriptor")
    size = _table_size(flags)
    palette.update(cursor.src.exact(cursor.offset, size, "GIF local colour table"))
    cursor.offset += size
    cursor.byte("GIF image data")  # LZW minimum code size
    cursor.skip_sub_blocks("GIF image data")


def _max_image_data(pixels: int) -> int:
    """The most LZW sub-block bytes a valid frame of ``pixels`` pixels needs.

    Every LZW code is at most 12 bits and yields at least one pixel; allowing two codes per
    pixel covers encoders that emit clear codes as often as the "uncompressed GIF" trick does.
    Each 255 data bytes cost one length byte.
    """
    data = 3 * pixels + 1024
    return data + data // 255 + 1
