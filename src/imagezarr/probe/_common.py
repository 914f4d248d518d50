"""Shared pieces of the header probes: the result type, limits and a bounded byte source.

Every probe reads through ``Source``, which caches the first read, refuses to read more than
``MAX_READ`` bytes in total and turns short reads into ``ProbeError`` naming the file. A probe
that must walk over data a valid file of that shape necessarily contains (a GIF frame's LZW
sub-blocks) raises its own limit by that amount with ``Source.allow``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from imagezarr.errors import ProbeError, UnsupportedImageError

__all__ = [
    "HEAD_SIZE",
    "MAX_PIXELS",
    "MAX_READ",
    "MAX_SIDE",
    "MAX_STEPS",
    "ImageInfo",
    "Source",
    "image_shape",
]

HEAD_SIZE = 64 * 1024  # the first read: enough for nearly every header
MAX_READ = 16 * 1024 * 1024  # total bytes one probe may read
MAX_STEPS = 4096  # segments, chunks, boxes, IFDs or blocks one probe may walk
MAX_SIDE = 2**20  # largest accepted image side
MAX_PIXELS = 2**31  # largest accepted height * width


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What one image file decodes to with its imagecodecs zarr-3 codec.

    Attributes
    ----------
    format : str
        The format's name in :data:`imagezarr.formats.FORMATS` (``"png"``, ``"jpeg2k"``, ...).
    shape : tuple of int
        The decoded array shape, usually ``(h, w)`` or ``(h, w, c)``.
    dtype : str
        The numpy dtype name of the decoded array.
    codec : dict
        The zarr v3 codec JSON that decodes the file bytes into that array.
    axes : str
        One letter per decoded axis (``y``, ``x``, ``c`` channels/samples, ``z`` depth);
        empty means the usual ``yx`` / ``yxc``.
    palette : str
        For images decoded as palette indices (GIF): a digest of the colour table, so only
        files sharing one palette end up in one array. Empty otherwise.
    """

    format: str
    shape: tuple[int, ...]
    dtype: str
    codec: dict[str, Any]
    axes: str = ""
    palette: str = ""

    @property
    def dims(self) -> tuple[str, ...]:
        """The names of the decoded axes, e.g. ``("y", "x", "c")``."""
        return tuple(self.axes) if self.axes else ("y", "x", "c")[: len(self.shape)]


def image_shape(height: int, width: int, channels: int) -> tuple[int, ...]:
    """Return ``(height, width)`` for one channel, else ``(height, width, channels)``."""
    return (height, width) if channels == 1 else (height, width, channels)


class Source:
    """A bounded, caching view of ``read(offset, length)`` for one named file."""

    def __init__(
        self, read: Callable[[int, int], bytes], head: bytes, size: int | None, name: str
    ) -> None:
        self._read = read
        self.head = head
        self.size = size
        self.name = name
        self.bytes_read = len(head)
        self.limit = MAX_READ

    def allow(self, extra: int) -> None:
        """Let this probe read ``extra`` more bytes than ``MAX_READ``.

        For data the walk must cross whose size the header bounds (a GIF frame's image data
        cannot exceed what its pixel count needs): a large valid file is then read to the end
        instead of being called corrupt, while hostile input stays bounded by its own header.
        """
        self.limit += max(0, extra)

    def fail(self, what: str) -> NoReturn:
        """Raise a ProbeError saying ``<name>: <what>`` (a corrupt or truncated header)."""
        msg = f"{self.name}: {what}"
        raise ProbeError(msg, path=self.name)

    def reject(self, what: str) -> NoReturn:
        """Raise an UnsupportedImageError saying ``<name>: <what>`` (a real, unservable image)."""
        msg = f"{self.name}: {what}"
        raise UnsupportedImageError(msg, path=self.name)

    def read(self, offset: int, length: int) -> bytes:
        """Return up to ``length`` bytes at ``offset`` (fewer at end of file)."""
        if offset < 0 or length < 0:
            msg = f"corrupt header: negative offset {offset} or length {length}"
            self.fail(msg)
        if offset + length <= len(self.head):
            return self.head[offset : offset + length]
        if self.size is not None:
            length = max(0, min(length, self.size - offset))
        if length == 0:
            return b""
        if self.bytes_read + length > self.limit:
            msg = (
                f"header walk needs more than {self.limit} bytes; the file is corrupt or "
                "its header is unusually large"
            )
            self.fail(msg)
        self.bytes_read += length
        return bytes(self._read(offset, length))[:length]

    def exact(self, offset: int, length: int, what: str) -> bytes:
        """Return exactly ``length`` bytes at ``offset`` or raise 'truncated <what>'."""
        data = self.read(offset, length)
        if len(data) != length:
            msg = f"truncated file: {what} needs {length} bytes at offset {offset}, got {len(data)}"
            self.fail(msg)
        return data

    def unpack(self, fmt: str, offset: int, what: str) -> tuple[Any, ...]:
        """Read and ``struct.unpack`` the format ``fmt`` at ``offset``."""
        return struct.unpack(fmt, self.exact(offset, struct.calcsize(fmt), what))

    def check_size(self, height: int, width: int) -> None:
        """Raise ProbeError for empty or absurd image dimensions."""
        if height <= 0 or width <= 0:
            msg = f"corrupt header: image size {width}x{height} (width x height)"
            self.fail(msg)
        if height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
            msg = (
                f"absurd image size {width}x{height} (width x height); the limit is "
                f"{MAX_SIDE} per side and {MAX_PIXELS} pixels; the header is corrupt"
            )
            self.fail(msg)
