"""Probe: read only the header bytes of an image and report format, shape and dtype.

The probes never decode pixels. The shape and dtype they report are exactly what the matching
``imagecodecs`` zarr-3 codec yields when it decodes the same file, because that codec is what
zarr uses to serve each image as one chunk (the codec only reshapes what it decodes, so a wrong
prediction of the same size would scramble pixels silently). ``tests/test_probe_differential.py``
checks that on generated files of every format; a file the decoder cannot read is refused.

Interface (stable; the format modules fill it in):

- ``ImageInfo``: frozen value with ``format``, ``shape``, ``dtype`` and ``codec``.
- ``probe(read, *, size, name) -> ImageInfo``: ``read(offset, length) -> bytes`` fetches bytes
  from any source (a local file, an object store); ``size`` is the file size when known;
  ``name`` is used in error messages only.
- ``probe_file(path) -> ImageInfo``: the local convenience.
- ``detect_format(head) -> str | None``: magic-byte sniffing of the first bytes.
- ``EXTENSIONS``: lower-case file extensions of the formats the probes know (default glob).

Which formats exist, their magic tests, extensions and probes: :mod:`imagezarr.formats`.
"""


# These probes are hand-written because no maintained library reports, from the header
# alone, the shape and dtype that the imagecodecs zarr codecs decode each format to.

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from imagezarr import formats, limits
from imagezarr.errors import ProbeError, UnsupportedImageError
from imagezarr.formats import detect_format
from imagezarr.probe import _png
from imagezarr.probe._common import HEAD_SIZE, ImageInfo, Source

__all__ = [
    "EXTENSIONS",
    "ImageInfo",
    "budgeted",
    "detect_format",
    "probe",
    "probe_bytes",
    "probe_file",
]

EXTENSIONS = formats.EXTENSIONS

_PROBES: dict[str, Callable[[Source], ImageInfo]] = {
    f.name: f.probe_function() for f in formats.FORMATS
}


def probe(
    read: Callable[[int, int], bytes],
    *,
    size: int | None = None,
    name: str = "<bytes>",
    budget: bool = True,
) -> ImageInfo:
    """Return format, decoded shape, dtype and zarr codec of one image from its header.

    Parameters
    ----------
    read : callable
        ``read(offset, length)`` returns up to ``length`` bytes at ``offset``.
    size : int, optional
        The file size, when known.
    name : str
        The file name used in error messages.
    budget : bool
        Refuse an image over the pixel budget (:mod:`imagezarr.limits`); False reports it.

    Raises
    ------
    ProbeError
        The bytes are not a recognised image, or its header is truncated or corrupt.
    UnsupportedImageError
        A real image that cannot be served as one chunk (e.g. a multi-page TIFF).
    """
    if size == 0:
        msg = f"{name}: empty file (0 bytes), not an image"
        raise ProbeError(msg, path=name)
    head = bytes(read(0, HEAD_SIZE if size is None else min(size, HEAD_SIZE)))
    if not head:
        msg = f"{name}: empty file (0 bytes), not an image"
        raise ProbeError(msg, path=name)
    found = _png.read_head(head)  # the commonest format gets a lean path
    if found is not None:
        info = _png.png_info(*found)
        return _within_budget(info, name) if budget else info
    fmt = detect_format(head)
    if fmt is None:
        msg = (
            f"{name}: not a recognised image (first bytes {head[:16]!r}); known formats: "
            f"{', '.join(_PROBES)}"
        )
        raise ProbeError(
            msg,
            path=name,
        )
    src = Source(read, head, size, name)
    try:
        info = _PROBES[fmt](src)
    except (struct.error, IndexError, ZeroDivisionError) as exc:
        msg = f"{name}: corrupt {fmt} header ({exc})"
        raise ProbeError(msg, path=name) from exc
    return _within_budget(info, name) if budget else info


def budgeted(info: ImageInfo) -> ImageInfo | str:
    """``info``, or why its image is over the pixel budget (:mod:`imagezarr.limits`)."""
    why = limits.over_budget(info.shape, info.dims)
    return info if why is None else why


def _within_budget(info: ImageInfo, name: str) -> ImageInfo:
    found = budgeted(info)
    if isinstance(found, str):
        msg = f"{name}: {found}"
        raise UnsupportedImageError(msg, path=name)
    return found


def probe_file(path: str | os.PathLike[str]) -> ImageInfo:
    """Probe a local file; errors name ``path``."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size

            def read(offset: int, length: int) -> bytes:
                fh.seek(offset)
                return fh.read(length)

            return probe(read, size=size, name=name)
    except OSError as exc:
        msg = f"{name}: cannot read file ({exc.strerror or exc})"
        raise ProbeError(msg, path=name) from exc


def probe_bytes(data: bytes, *, name: str = "<bytes>", budget: bool = True) -> ImageInfo:
    """Probe an in-memory image."""
    view = memoryview(data)
    return probe(
        lambda offset, length: bytes(view[offset : offset + length]),
        size=len(data),
        name=name,
        budget=budget,
    )
