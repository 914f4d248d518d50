"""Helpers of the probe tests: encode test images, hand-build TIFFs, decode as the store does."""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from typing import Any
from unittest import mock

import imagecodecs
import numpy as np
import tifffile
import zarr
import zarr.registry
from PIL import Image
from zarr.storage import MemoryStore

from imagezarr.codecs import SourceBuffer, pin_codecs
from imagezarr.formats import FORMATS

__all__ = ["AVAILABLE", "DECODER_FUNCTIONS", "codec_decode", "pil", "tif", "tiff_from_tags"]

# Whether this imagecodecs build has each format (probe tests skip the ones it lacks).
AVAILABLE = {f.name: f.is_available() for f in FORMATS}

# The imagecodecs function each zarr codec calls to decode a chunk.
DECODER_FUNCTIONS = {f.codec: f.decoder for f in FORMATS}


def pil(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def tif(data: np.ndarray, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, **kwargs)
    return buf.getvalue()


def codec_decode(
    data: bytes, codec: dict[str, Any], shape: Sequence[int], dtype: str
) -> tuple[np.ndarray | None, np.ndarray | Exception]:
    """Serve ``data`` as the one chunk of a zarr array of ``shape`` and read it back.

    The array uses imagezarr's pinned codec class, exactly as the store does. Returns what the
    codec's imagecodecs function decoded before the codec reshaped it to ``shape`` (None when
    the decoder failed) and the array zarr served (or the exception it raised). A codec only
    reshapes, so comparing the first with the probe is what proves the probe right.
    """
    pin_codecs()
    codec_cls = zarr.registry.get_codec_class(codec["name"])
    function = DECODER_FUNCTIONS[codec["name"]]
    original = getattr(imagecodecs, function)
    raw: list[np.ndarray] = []

    def recording(*args: Any, **kwargs: Any) -> np.ndarray:
        out = original(*args, **kwargs)
        raw.append(out)
        return out

    chunks: dict[str, Any] = {}
    array = zarr.create_array(
        MemoryStore(chunks),
        shape=tuple(shape),
        chunks=tuple(shape),
        dtype=dtype,
        serializer=codec_cls.from_dict(codec),
        compressors=None,
        fill_value=0,
    )
    chunks["c/" + "/".join("0" * len(shape))] = SourceBuffer.of(data, "x")
    served: np.ndarray | Exception
    with mock.patch.object(imagecodecs, function, recording):
        try:
            served = array[...]
        except Exception as exc:
            served = exc
    return (raw[0] if raw else None), served


_TYPE_CODES = {1: "B", 2: "s", 3: "H", 4: "I", 6: "b", 7: "B", 8: "h", 9: "i", 16: "Q", 17: "q"}
DATA = -1  # a tag value meaning "the offset of the payload"


def tiff_from_tags(
    tags: Sequence[tuple[int, int, Sequence[int]]], payload: bytes = b"", order: str = "<"
) -> bytes:
    """A classic TIFF: header, ``payload`` at offset 8, then one IFD with ``tags`` as given.

    Tags are written in the given order (duplicates and disorder included); a value ``DATA``
    stands for the payload's offset, e.g. in StripOffsets.
    """
    ifd = 8 + len(payload) + len(payload) % 2
    extra_at = ifd + 2 + 12 * len(tags) + 4
    entries, extra = b"", b""
    for tag, kind, values in tags:
        values = [8 if v == DATA else v for v in values]
        raw = struct.pack(f"{order}{len(values)}{_TYPE_CODES[kind]}", *values)
        if len(raw) <= 4:
            entries += struct.pack(order + "HHI", tag, kind, len(values)) + raw.ljust(4, b"\0")
        else:
            entries += struct.pack(order + "HHII", tag, kind, len(values), extra_at + len(extra))
            extra += raw + b"\0" * (len(raw) % 2)
    magic = b"II*\0" if order == "<" else b"MM\0*"
    head = magic + struct.pack(order + "I", ifd) + payload + b"\0" * (len(payload) % 2)
    return head + struct.pack(order + "H", len(tags)) + entries + bytes(4) + extra
