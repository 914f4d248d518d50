"""The image formats imagezarr reads: one record per format, from which everything derives.

The probes (which header reader, which magic test, the default extensions), the codecs
(which zarr codec name and class each format pins), the manifest loader (which formats and
codec names a manifest may declare), the contact sheet (which formats have a reduced
decode) and the tests (which imagecodecs functions encode and decode each format) all read
:data:`FORMATS`; none keeps a table of its own. Adding a format is one record here plus its
probe module and codec class.

Only the standard library is imported: reading this costs nothing at start-up. The probe and
codec are named by where they live and imported when first used.

>>> by_name("jpeg2k").label, by_name("jpeg2k").codec
('JPEG 2000', 'imagecodecs_jpeg2k')
>>> detect_format(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(24))
'png'
>>> ".jfif" in EXTENSIONS, by_extension(".TIF").name
(True, 'tiff')
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CODEC_NAMES",
    "EXTENSIONS",
    "FORMATS",
    "NAMES",
    "Format",
    "by_codec",
    "by_extension",
    "by_name",
    "detect_format",
]

_BMP_INFO_SIZES = (12, 40, 52, 56, 64, 108, 124)  # OS/2 1.x and 2.x, Windows 3 to 5


def _starts(*signatures: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(signatures)


def _is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _is_bmp(head: bytes) -> bool:
    """``BM`` and a known info-header size: two letters alone match too much text."""
    return len(head) >= 18 and head[:2] == b"BM" and _u32le(head, 14) in _BMP_INFO_SIZES


def _u32le(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


@dataclass(frozen=True, slots=True)
class Format:
    """What imagezarr knows of one image format.

    Attributes
    ----------
    name
        The format as manifests record it (``"jpeg2k"``).
    label
        As people name it, for messages (``"JPEG 2000"``).
    extensions
        Lower-case file extensions a scan picks up by default.
    magic
        ``magic(head) -> bool``: whether the first bytes of a file are this format.
    probe
        ``"module:function"`` of the header reader (``probe(source) -> ImageInfo``).
    codec
        The zarr codec name a probe writes into the manifest.
    codec_class
        The class in :mod:`imagezarr.codecs` that decodes it (pinned in zarr's registry).
    decoder, encoder
        The ``imagecodecs`` functions that decode and encode it (``encoder`` for tests that
        write sample files; ``None`` when imagecodecs cannot write it).
    available
        The ``imagecodecs`` attribute saying whether this build has the format.
    reduced
        How a thumbnail can be decoded smaller than the image (``"dct"``: JPEG's scaled
        IDCT; ``"levels"``: JPEG 2000 resolution levels), or ``None`` (decode in full).
    many_images
        Whether one file can hold several images (pages, frames, levels).
    """

    name: str
    label: str
    extensions: tuple[str, ...]
    magic: Callable[[bytes], bool]
    probe: str
    codec: str
    codec_class: str
    decoder: str
    encoder: str | None
    available: str
    reduced: str | None = None
    many_images: bool = False

    def probe_function(self) -> Callable[..., Any]:
        """The header reader, imported on first use."""
        module, _, function = self.probe.partition(":")
        return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]

    def is_available(self) -> bool:
        """Whether the installed imagecodecs decodes this format."""
        import imagecodecs

        return bool(getattr(imagecodecs, self.available).available)


def _record(
    name: str, label: str, extensions: str, magic: Callable[[bytes], bool], **kw: Any
) -> Format:
    codec_name = kw.pop("codec", None) or f"imagecodecs_{name}"
    return Format(
        name=name,
        label=label,
        extensions=tuple(extensions.split()),
        magic=magic,
        probe=f"imagezarr.probe._{name}:probe_{name}",
        codec=codec_name,
        codec_class=kw.pop("codec_class", None) or name.capitalize(),
        decoder=kw.pop("decoder", None) or f"{name}_decode",
        encoder=kw.pop("encoder", f"{name}_encode"),
        available=kw.pop("available", None) or name.upper(),
        **kw,
    )


# PNG first: the commonest format is tested first
FORMATS: tuple[Format, ...] = (
    _record("png", "PNG", ".png", _starts(b"\x89PNG\r\n\x1a\n"), many_images=True),
    _record(
        "jpeg",
        "JPEG",
        ".jpg .jpeg .jpe .jfif",
        _starts(b"\xff\xd8\xff"),
        decoder="jpeg8_decode",
        encoder="jpeg8_encode",
        available="JPEG8",
        reduced="dct",
    ),
    _record(
        "tiff",
        "TIFF",
        ".tif .tiff",
        lambda head: head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
        many_images=True,
    ),
    _record("webp", "WebP", ".webp", _is_webp, many_images=True),
    _record("bmp", "BMP", ".bmp .dib", _is_bmp),
    _record("gif", "GIF", ".gif", _starts(b"GIF87a", b"GIF89a"), many_images=True),
    _record(
        "jpeg2k",
        "JPEG 2000",
        ".jp2 .j2k .j2c .jpc .jpx",
        _starts(b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51"),
        reduced="levels",
    ),
    _record(
        "jpegxl",
        "JPEG XL",
        ".jxl",
        _starts(b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n"),
        many_images=True,
    ),
)

_BY_NAME = {f.name: f for f in FORMATS}
_BY_CODEC = {f.codec: f for f in FORMATS}
_BY_EXTENSION = {e: f for f in FORMATS for e in f.extensions}

NAMES: tuple[str, ...] = tuple(_BY_NAME)
"""Every format name, in the order magic tests run."""
CODEC_NAMES: frozenset[str] = frozenset(_BY_CODEC)
"""The codecs probes write: a manifest may declare no other."""
EXTENSIONS: frozenset[str] = frozenset(_BY_EXTENSION)
"""The extensions a scan picks up without ``--glob``/``extensions=``."""


def by_name(name: str) -> Format:
    """The record of format ``name`` (``KeyError`` naming the known ones)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        msg = f"unknown image format {name!r}; known: {', '.join(NAMES)}"
        raise KeyError(msg) from None


def by_codec(codec: str) -> Format:
    """The record whose zarr codec is ``codec``."""
    return _BY_CODEC[codec]


def by_extension(extension: str) -> Format | None:
    """The record a file extension (with its dot, any case) stands for, if any."""
    return _BY_EXTENSION.get(extension.lower())


def detect_format(head: bytes) -> str | None:
    """The format named by the magic bytes at the start of ``head``, or None."""
    for f in FORMATS:
        if f.magic(head):
            return f.name
    return None
