"""zarr-3 image codecs: imagecodecs' own implementations, pinned, with errors that name the file.

The arrays imagezarr serves declare imagecodecs' codec names (``imagecodecs_png``, ...), so any
zarr reader with ``imagecodecs-zarr`` installed decodes them. Another package may register the
same names with a different codec kind, so :func:`pin_codecs` selects an implementation through
zarr's config. The selected classes are thin subclasses of imagecodecs' own: they decode exactly
the same way, and only turn a decoder failure into a :class:`ChunkDecodeError` that names the
file (the store hands each chunk over in a :class:`SourceBuffer` that knows its path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import imagecodecs.zarr as icz
import numpy as np
import zarr
from zarr.core.buffer import cpu
from zarr.registry import register_codec

from .errors import ChunkDecodeError

if TYPE_CHECKING:
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

__all__ = ["CODEC_FORMATS", "FUSED_PIPELINE", "SourceBuffer", "pin_codecs", "prefer_fused_pipeline"]

BATCHED_PIPELINE = "zarr.core.codec_pipeline.BatchedCodecPipeline"
FUSED_PIPELINE = "zarr.core.codec_pipeline.FusedCodecPipeline"


class SourceBuffer(cpu.Buffer):
    """A CPU buffer that remembers which file its bytes came from."""

    source: str | None

    def __init__(self, array_like: Any, source: str | None = None) -> None:
        super().__init__(array_like)
        self.source = source

    @classmethod
    def of(cls, data: bytes, source: str) -> SourceBuffer:
        return cls(np.frombuffer(data, dtype="B"), source)


class _NamedErrors:
    """Mixin: re-raise any decoder failure as a ChunkDecodeError naming the source file."""

    format = "image"

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        try:
            return super()._decode_sync(chunk_bytes, chunk_spec)  # type: ignore[misc, no-any-return]
        except Exception as e:
            source = getattr(chunk_bytes, "source", None) or "a chunk"
            msg = (
                f"{source}: cannot decode as {self.format} into shape {chunk_spec.shape}: "
                f"{type(e).__name__}: {e}. The file is corrupt, truncated "
                "or not the image the manifest says; run `imagezarr verify --decode` and re-scan."
            )
            raise ChunkDecodeError(msg, path=None if source == "a chunk" else source) from e


class Png(_NamedErrors, icz.Png):
    format = "PNG"


class Jpeg(_NamedErrors, icz.Jpeg):
    format = "JPEG"


class Tiff(_NamedErrors, icz.Tiff):
    format = "TIFF"


class Webp(_NamedErrors, icz.Webp):
    format = "WebP"


class Bmp(_NamedErrors, icz.Bmp):
    format = "BMP"


class Gif(_NamedErrors, icz.Gif):
    format = "GIF"


class Jpeg2k(_NamedErrors, icz.Jpeg2k):
    format = "JPEG 2000"


class Jpegxl(_NamedErrors, icz.Jpegxl):
    format = "JPEG XL"


_PINNED: dict[str, type] = {
    "imagecodecs_png": Png,
    "imagecodecs_jpeg": Jpeg,
    "imagecodecs_tiff": Tiff,
    "imagecodecs_webp": Webp,
    "imagecodecs_bmp": Bmp,
    "imagecodecs_gif": Gif,
    "imagecodecs_jpeg2k": Jpeg2k,
    "imagecodecs_jpegxl": Jpegxl,
}
CODEC_FORMATS = frozenset(_PINNED)


def pin_codecs() -> None:
    """Register imagezarr's codec classes and select them in zarr's config (idempotent)."""
    wanted = {}
    for name, cls in _PINNED.items():
        register_codec(name, cls)
        wanted[f"codecs.{name}"] = f"{cls.__module__}.{cls.__qualname__}"
    current = zarr.config.get("codecs", {})
    if any(current.get(k.split(".", 1)[1]) != v for k, v in wanted.items()):
        zarr.config.set(wanted)


def prefer_fused_pipeline() -> bool:
    """Select zarr's fused codec pipeline unless the user already chose a pipeline.

    zarr picks the pipeline per array from its global config, so a store cannot choose its
    own. For local image files the fused pipeline reads 400 camera-size PNGs at 0.98x the
    decode floor against 1.25x for the default (``benchmarks/run.py``); stores without
    synchronous I/O keep zarr's async path under it. Returns True when it changed the config.
    """
    if zarr.config.get("codec_pipeline.path") != BATCHED_PIPELINE:
        return False
    zarr.config.set({"codec_pipeline.path": FUSED_PIPELINE})
    return True
