"""zarr-3 image codecs: imagecodecs' own implementations, pinned, with errors that name the file.

The arrays imagezarr serves declare imagecodecs' codec names (``imagecodecs_png``, ...), so any
zarr reader with ``imagecodecs-zarr`` installed decodes them. Another package may register the
same names with a different codec kind, so :func:`pin_codecs` selects an implementation through
zarr's config. The selected classes are thin subclasses of imagecodecs' own: they decode exactly
the same way, but check that the decoded image is exactly the declared chunk and turn any
failure into a :class:`ChunkDecodeError` that names the file (the store hands each chunk over
in a :class:`SourceBuffer` that knows its path).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import imagecodecs
import imagecodecs.zarr as icz
import numpy as np
import zarr
from zarr.core.buffer import cpu
from zarr.registry import register_codec

from . import formats
from .errors import ChunkDecodeError, FilledChunkWarning
from .formats import FORMATS

if TYPE_CHECKING:
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

__all__ = [
    "CODEC_NAMES",
    "FUSED_PIPELINE",
    "SourceBuffer",
    "pin_codecs",
    "prefer_fused_pipeline",
    "warn_filled",
]

BATCHED_PIPELINE = "zarr.core.codec_pipeline.BatchedCodecPipeline"
FUSED_PIPELINE = "zarr.core.codec_pipeline.FusedCodecPipeline"


class SourceBuffer(cpu.Buffer):
    """A CPU buffer that remembers which file its bytes came from, and whether a file that
    does not decode should read as the fill value (``on_error="fill"``) instead of raising."""

    source: str | None
    fill: bool

    def __init__(self, array_like: Any, source: str | None = None, fill: bool = False) -> None:
        super().__init__(array_like)
        self.source = source
        self.fill = fill

    @classmethod
    def of(cls, data: bytes, source: str, *, fill: bool = False) -> SourceBuffer:
        return cls(np.frombuffer(data, dtype="B"), source, fill)


def warn_filled(source: str, reason: str, fill_value: object = 0) -> None:
    """The one warning per file read as the fill value (``on_error="fill"``)."""
    msg = f"{source}: read as fill value {fill_value} ({reason})"
    warnings.warn(msg, FilledChunkWarning, stacklevel=2)


def _declared(decoded: np.ndarray, spec: ArraySpec) -> str | None:
    """How ``decoded`` differs from the chunk the array declares, or None when it matches.

    An image chunk is ``(1, ..., 1, *image shape)``: the outer dims hold one image each.
    """
    shape, dtype = tuple(spec.shape), spec.dtype.to_native_dtype()
    outer = max(0, len(shape) - decoded.ndim)
    image = shape[outer:]
    if any(s != 1 for s in shape[:outer]) or image != decoded.shape or decoded.dtype != dtype:
        return f"decoded {decoded.shape} {decoded.dtype}, declared {image} {dtype}"
    return None


class _Checked:
    """Mixin: decode with imagecodecs' own function and options, then insist that the result
    is exactly the declared chunk, and name the source file in every failure.

    imagecodecs' codecs reshape the decoded image to the chunk shape and zarr casts it to the
    array's dtype, so a manifest declaring ``int8`` for ``uint8`` files, or ``(160, 120)`` for
    ``120 x 160`` images, would read plausible but wrong pixels. Here any difference is a
    :class:`ChunkDecodeError`; nothing is reshaped or cast.
    """

    format = "image"

    def _decode_raw(self, data: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def reduced(self, data: np.ndarray, factor: int) -> tuple[np.ndarray, int] | None:
        """The image decoded at ``1/scale`` of its size for a thumbnail reduced ``factor``
        times, and that scale (a divisor of ``factor``); None where the format cannot.

        JPEG's DCT scaling and JPEG 2000's resolution levels skip the full-size work
        (memory and time): a thumbnail of a 6000 x 4000 JPEG decodes 750 x 500 pixels.
        """
        return None

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        source = getattr(chunk_bytes, "source", None) or "a chunk"
        try:
            decoded = self._decode_raw(chunk_bytes.as_numpy_array())
        except Exception as e:
            what = f"cannot decode as {self.format}: {type(e).__name__}: {e}"
            msg = (
                f"{source}: {what}. The file is corrupt, truncated or not the image the "
                f"manifest says; {_UNDECODABLE}"
            )
            if getattr(chunk_bytes, "fill", False):
                return _filled(source, what, chunk_spec)
            raise ChunkDecodeError(msg, path=None if source == "a chunk" else source) from e
        problem = _declared(decoded, chunk_spec)
        if problem is not None:
            what = f"the {self.format} image does not match the array ({problem})"
            if getattr(chunk_bytes, "fill", False):
                return _filled(source, what, chunk_spec)
            msg = (
                f"{source}: {what}; refusing to reshape or cast it. The file was replaced by a "
                f"different image, or the manifest is wrong; {_UNDECODABLE}"
            )
            raise ChunkDecodeError(msg, path=None if source == "a chunk" else source)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(decoded.reshape(chunk_spec.shape))


_UNDECODABLE = (
    "`imagezarr verify --decode MANIFEST` lists every such file, `imagezarr update "
    "--drop-undecodable MANIFEST` turns them into holes, and on_error='fill' (--on-error fill) "
    "reads them as the fill value"
)


def _filled(source: str, reason: str, spec: ArraySpec) -> NDBuffer:
    fill = spec.fill_value
    warn_filled(source, reason, fill)
    dtype = spec.dtype.to_native_dtype()
    return spec.prototype.nd_buffer.from_numpy_array(np.full(spec.shape, fill, dtype=dtype))


# Each _decode_raw repeats the one decode call of the imagecodecs codec it subclasses (same
# function, same options), because those codecs reshape before a check could see the shape.


class Png(_Checked, icz.Png):
    def _decode_raw(self, data: np.ndarray) -> np.ndarray:
        return imagecodecs.png_decode(data)


class Jpeg(_Checked, icz.Jpeg):
    def _decode_raw(self, data: np.ndarray) -> np.ndarray:
        buf: bytes | np.ndarray = data
        if self.header is not None:
            buf = b"".join((self.header, bytes(data), b"\xff\xd9"))
        return imagecodecs.jpeg8_decode(
            buf,
            tables=self.tables,
            colorspace=self.colorspace_jpeg,
            outcolorspace=self.colorspace_data,
            fancyupsampling=self.fancyupsampling,
        )

    def reduced(self, data: np.ndarray, factor: int) -> tuple[np.ndarray, int] | None:
        scale = _power_of_two(factor, 8)  # libjpeg-turbo scales by 1/2, 1/4 and 1/8
        if scale == 1 or self.header is not None:
            return None
        decoded = imagecodecs.jpeg8_decode(
            data,
            tables=self.tables,
            colorspace=self.colorspace_jpeg,
            outcolorspace=self.colorspace_data,
            fancyupsampling=self.fancyupsampling,
            scale=scale,
        )
        return decoded, scale


class Tiff(_Checked, icz.Tiff):
    def _decode_raw(self, data: np.ndarray) -> np.ndarray:
        return imagecodecs.tiff_decode(
            data, index=self.index, asrgb=self.asrgb, verbose=self.verbose
        )


class Webp(_Checked, icz.Webp):
    def _decode_raw(self, data: np.ndarray) -> np.ndarray:
        return imagecodecs.webp_decode(data, index=self.index, hasalpha=self.hasalpha)


class Bmp(_Checked, icz.Bmp):
    def _decode_raw(self, data: np.ndarray) -> np.ndarray:
        return imagecodecs.bmp_decode(data, asrgb=self.asrgb)


class Gif(_Checked, icz.Gif):
    def _decode_raw(self, data: np.ndarray) -> np.ndarray:
        return imagecodecs.gif_decode(data, asrgb=False)


class Jpeg2k(_Checked, icz.Jpeg2k):
    def _decode_raw(self, data: np.ndarray) -> np.ndarray:
        return imagecodecs.jpeg2k_decode(
            data,
            planar=self.planar,
            skipres=self.skipres,
            verbose=self.verbose,
            numthreads=self.numthreads,
        )

    def reduced(self, data: np.ndarray, factor: int) -> tuple[np.ndarray, int] | None:
        scale = _power_of_two(factor, 32)
        if scale == 1 or self.planar:
            return None
        try:
            decoded = imagecodecs.jpeg2k_decode(
                data, skipres=self.skipres + scale.bit_length() - 1, numthreads=self.numthreads
            )
        except imagecodecs.Jpeg2kError:  # fewer resolution levels than asked for
            return None
        return decoded, scale


def _power_of_two(factor: int, most: int) -> int:
    """The largest power of two that divides ``factor`` and is <= ``most``: the reduced image,
    box-averaged by the rest of the factor, then has the thumbnail's size exactly."""
    factor = max(1, factor)
    return min(most, factor & -factor)


class Jpegxl(_Checked, icz.Jpegxl):
    def _decode_raw(self, data: np.ndarray) -> np.ndarray:
        return imagecodecs.jpegxl_decode(
            data,
            index=self.index,
            keeporientation=self.keeporientation,
            numthreads=self.numthreads,
        )


# the codec name each format's record names -> the class above its record names
_PINNED: dict[str, type[_Checked]] = {f.codec: globals()[f.codec_class] for f in FORMATS}
for _f in FORMATS:
    _PINNED[_f.codec].format = _f.label  # how messages name it
CODEC_NAMES = formats.CODEC_NAMES  # the codecs probes emit; a manifest may declare no other


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
    own. For local image files the fused pipeline is markedly faster (README, Performance);
    stores without synchronous I/O keep zarr's async path under it. Returns True when it
    changed the config.
    """
    if zarr.config.get("codec_pipeline.path") != BATCHED_PIPELINE:
        return False
    zarr.config.set({"codec_pipeline.path": FUSED_PIPELINE})
    return True
