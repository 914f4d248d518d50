"""Differential test: each header probe against its decoder, on generated valid files.

Hypothesis draws the parameters of a valid file of every supported format (encoder, bit depth,
channels, planar or chunky, compression, tiles, palettes, alpha, progressive, metadata, ...),
writes it with imagecodecs, tifffile, Pillow or by hand, and checks that the probe predicts
exactly the shape and dtype the zarr codec's decoder returns, that the array served through
zarr is that decoded array bit for bit, and that the axis names fit the image size.

A probe may refuse a file only when the decoder fails on it too, with one of the deliberate
refusals in ``DELIBERATE`` (a multi-page TIFF and the like), or for a compression libtiff's RGBA
reader cannot decompress (it returns blank pixels rather than fail). A decoder failure on a file
the probe accepted fails the test, unless the header cannot show it: an encoder quirk in
``HEADER_CANNOT_TELL`` or a case its generator marks ``unforeseeable``.

The run is derandomized and bounded for the normal suite (about 15 s); set
``IMAGEZARR_FUZZ_EXAMPLES=<n>`` for ``n`` examples per format in a longer hunt.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
from typing import Any

import imagecodecs
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from imagefiles import AVAILABLE, DATA, codec_decode, pil, tiff_from_tags
from imagezarr.errors import ProbeError, UnsupportedImageError
from imagezarr.probe import probe_bytes

# examples per format in the normal suite (about 15 s in all): TIFF has the most parameters
DEFAULT_EXAMPLES = {"tiff": 1500, "png": 300, "jpeg": 300, "gif": 200, "bmp": 200, "webp": 200}
DEFAULT_EXAMPLES |= {"jpeg2k": 200, "jpegxl": 200}
FUZZ_EXAMPLES = int(os.environ.get("IMAGEZARR_FUZZ_EXAMPLES", "0"))
# refusals that are policy, not a claim that the decoder fails
DELIBERATE = re.compile(
    r"pages|animated|pclr|components differ|differing per-sample|only its first"
)
# decoder failures the header cannot predict: the encoder wrote a self-contradictory file
HEADER_CANNOT_TELL = re.compile(r"Improper JPEG sampling factors")
# libtiff's RGBA interface (CMYK, YCbCr, old-style JPEG) returns blank pixels instead of failing
# on data it cannot decompress: refusing such a compression is right though the decode "works"
DECODER_HIDES_FAILURE = re.compile(r"TIFF compression \d+ is not decodable")


class Case:
    """One generated file and the image size known independently of any probe."""

    __slots__ = ("data", "height", "recipe", "unforeseeable", "width")

    def __init__(
        self, data: bytes, recipe: str, height: int, width: int, unforeseeable: bool = False
    ) -> None:
        self.data, self.recipe, self.height, self.width = data, recipe, height, width
        # the generator knows the decoder may fail for a reason the header does not show
        self.unforeseeable = unforeseeable

    def __repr__(self) -> str:  # the recipe reproduces the file; its bytes would flood the log
        return f"Case({self.recipe!r}, {len(self.data)} bytes, {self.height}x{self.width})"


def pixels(seed: int, shape: tuple[int, ...], dtype: str, bits: int | None = None) -> np.ndarray:
    """Random pixel values of ``dtype`` (limited to ``bits`` for integers), reproducibly."""
    rng = np.random.default_rng(seed)
    kind = np.dtype(dtype)
    if kind == np.dtype(bool):
        return rng.integers(0, 2, shape).astype(bool)
    if kind.kind in "fc":
        return rng.random(shape).astype(dtype)
    info = np.iinfo(kind)
    bits = bits or info.bits
    low = -(1 << (bits - 1)) if info.min < 0 else 0
    high = (1 << (bits - 1)) - 1 if info.min < 0 else (1 << bits) - 1
    return rng.integers(low, high, shape, endpoint=True, dtype=kind)


def encoded(recipe: str, make: Any, *args: Any, **kwargs: Any) -> bytes:
    """Call an encoder; an input it refuses is not a file, so the example is discarded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. tifffile dropping an unusable colormap
            return bytes(make(*args, **kwargs))
    except (ValueError, TypeError, OSError, RuntimeError, KeyError) as exc:
        assume(False)
        raise AssertionError(recipe) from exc  # unreachable: assume raised


# --- PNG -----------------------------------------------------------------------------------


@st.composite
def png_files(draw: st.DrawFn) -> Case:
    h, w, seed = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(0, 2**32))
    if draw(st.booleans()):
        channels = draw(st.sampled_from([1, 2, 3, 4]))
        dtype = draw(st.sampled_from(["uint8", "uint16"]))
        shape = (h, w) if channels == 1 else (h, w, channels)
        recipe = f"imagecodecs png {shape} {dtype}"
        return Case(
            encoded(recipe, imagecodecs.png_encode, pixels(seed, shape, dtype)), recipe, h, w
        )
    mode = draw(st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I;16"]))
    kwargs: dict[str, Any] = {"optimize": draw(st.booleans())}
    if mode == "1":
        image = Image.fromarray(pixels(seed, (h, w), "bool"))
    elif mode in ("L", "P"):
        bits = draw(st.sampled_from([1, 2, 4, 8]))
        image = Image.fromarray(pixels(seed, (h, w), "uint8", bits), "L")
        if mode == "P":
            image = image.convert("P")
            image.putpalette(list(pixels(seed + 1, (3 << bits,), "uint8")))
        if bits < 8:
            kwargs["bits"] = bits
    elif mode == "I;16":
        image = Image.fromarray(pixels(seed, (h, w), "uint16"))
    else:
        image = Image.fromarray(pixels(seed, (h, w, len(mode)), "uint8"), mode)
    if mode in ("L", "P", "RGB", "I;16") and draw(st.booleans()):
        kwargs["transparency"] = (1, 2, 3) if mode == "RGB" else 1
        if mode == "P" and draw(st.booleans()):
            kwargs["transparency"] = bytes(range(0, 256, 7))  # partial alpha table
    if draw(st.booleans()):
        info = PngImagePlugin.PngInfo()
        for i in range(draw(st.integers(1, 4))):
            info.add_text(f"k{i}", "v" * draw(st.integers(1, 3000)), zip=draw(st.booleans()))
        kwargs["pnginfo"] = info
    recipe = f"Pillow png {mode} {kwargs.keys()}"
    return Case(encoded(recipe, pil, image, "PNG", **kwargs), recipe, h, w)


# --- JPEG ----------------------------------------------------------------------------------


def with_segments(data: bytes, segments: list[bytes], fill: int) -> bytes:
    """Insert marker segments (and ``fill`` 0xFF fill bytes before each) after SOI."""
    body = b"".join(b"\xff" * fill + s for s in segments)
    return data[:2] + body + data[2:]


@st.composite
def jpeg_files(draw: st.DrawFn) -> Case:
    h, w, seed = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(0, 2**32))
    which = draw(st.sampled_from(["lossy", "lossless", "pillow"]))
    if which == "lossy":
        channels = draw(st.sampled_from([1, 3, 4]))
        bits = draw(st.sampled_from([8, 12]))
        shape = (h, w) if channels == 1 else (h, w, channels)
        kwargs: dict[str, Any] = {"bitspersample": bits, "optimize": draw(st.booleans())}
        if channels == 3:
            kwargs["subsampling"] = draw(st.sampled_from(["444", "422", "420", "411", "440"]))
            kwargs["outcolorspace"] = draw(st.sampled_from(["ycbcr", "rgb"]))
        if channels == 4:
            kwargs["colorspace"] = kwargs["outcolorspace"] = draw(st.sampled_from(["cmyk", "ycck"]))
        image = pixels(seed, shape, "uint8" if bits == 8 else "uint16", bits)
        recipe = f"imagecodecs jpeg {shape} {kwargs}"
        data = encoded(recipe, imagecodecs.jpeg8_encode, image, **kwargs)
    elif which == "lossless":
        channels = draw(st.sampled_from([1, 3]))
        bits = draw(st.integers(2, 16))
        shape = (h, w) if channels == 1 else (h, w, channels)
        kwargs = {"lossless": True, "bitspersample": bits, "predictor": draw(st.integers(1, 7))}
        image = pixels(seed, shape, "uint8" if bits <= 8 else "uint16", bits)
        recipe = f"imagecodecs lossless jpeg {shape} {kwargs}"
        data = encoded(recipe, imagecodecs.jpeg8_encode, image, **kwargs)
    else:
        mode = draw(st.sampled_from(["L", "RGB", "CMYK"]))
        kwargs = {
            "quality": draw(st.integers(5, 100)),
            "progressive": draw(st.booleans()),
            "optimize": draw(st.booleans()),
        }
        if mode == "RGB":
            kwargs["subsampling"] = draw(st.sampled_from([0, 1, 2]))
        if draw(st.booleans()):
            exif = Image.Exif()
            exif[0x0112] = draw(st.integers(1, 8))  # orientation: no decoder applies it
            exif[0x010E] = "x" * draw(st.integers(0, 5000))
            kwargs["exif"] = exif.tobytes()
        if draw(st.booleans()):
            kwargs["restart_marker_blocks"] = draw(st.integers(1, 4))
        shape = (h, w) if mode == "L" else (h, w, len(mode))
        image = Image.fromarray(pixels(seed, shape, "uint8"), mode)
        recipe = f"Pillow jpeg {mode} {kwargs.keys()}"
        data = encoded(recipe, pil, image, "JPEG", **kwargs)
    segments = [
        bytes([0xFF, draw(st.sampled_from([0xE1, 0xE2, 0xEE, 0xFE]))])
        + struct.pack(">H", 2 + (n := draw(st.integers(0, 300))))
        + bytes(n)
        for _ in range(draw(st.integers(0, 3)))
    ]
    return Case(with_segments(data, segments, draw(st.integers(0, 2))), recipe, h, w)


# --- TIFF ----------------------------------------------------------------------------------

TIFF_DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]
TIFF_DTYPES += ["float16", "float32", "float64", "complex64"]
TIFF_COMPRESSIONS = [None, "zlib", "lzw", "packbits", "zstd", "lzma", "deflate", "jpeg", "webp"]
TIFF_COMPRESSIONS += ["lerc", "jpeg2000", "png", "jpegxl"]  # the last three libtiff cannot read


def tiff_write(image: np.ndarray, pyramid: bool, pages: int, **kwargs: Any) -> bytes:
    """Write ``image`` with tifffile, optionally with a SubIFD level and more pages."""
    buf = io.BytesIO()
    options = {"bigtiff": kwargs.pop("bigtiff"), "byteorder": kwargs.pop("byteorder")}
    with tifffile.TiffWriter(buf, **options) as writer:
        writer.write(image, subifds=1 if pyramid else None, **kwargs)
        if pyramid:  # a reduced copy in a SubIFD: not a page
            writer.write(
                image[..., ::2, ::2, :]
                if kwargs.get("planarconfig") == "contig"
                else image[..., ::2, ::2],
                subfiletype=1,
                **kwargs,
            )
        for _ in range(pages - 1):
            writer.write(image, **kwargs)
    return buf.getvalue()


@st.composite
def tifffile_files(draw: st.DrawFn) -> Case:
    h, w, seed = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(0, 2**32))
    compression = draw(st.sampled_from(TIFF_COMPRESSIONS))
    kwargs: dict[str, Any] = {"compression": compression, "byteorder": draw(st.sampled_from("<>"))}
    if compression == "jpeg":
        dtype, bits = draw(st.sampled_from([("uint8", 8), ("uint16", 12)]))
    elif compression == "webp":
        dtype, bits = "uint8", 8
    else:
        dtype = draw(st.sampled_from(TIFF_DTYPES))
        bits = np.dtype(dtype).itemsize * 8
        if dtype in ("uint8", "uint16", "uint32") and draw(st.booleans()):
            bits = draw(st.integers(1 if dtype == "uint8" else bits // 2 + 1, bits))
    photometric = draw(st.sampled_from(["minisblack", "rgb", "miniswhite", "palette", "cmyk"]))
    planar = draw(st.sampled_from(["contig", "separate"]))
    samples = draw(st.integers(1, 5))
    if photometric == "rgb":
        samples = max(samples, 3)
        if samples == 4:
            alpha = draw(st.sampled_from(["unassalpha", "assocalpha", "unspecified"]))
            kwargs["extrasamples"] = [alpha]
    elif photometric == "cmyk":
        photometric, samples = "separated", max(samples, 4)
    elif photometric in ("palette", "miniswhite"):
        samples = 1
        if photometric == "palette":
            assume(dtype in ("uint8", "uint16"))
            kwargs["colormap"] = pixels(seed + 1, (3, 1 << min(bits, 16)), "uint16")
    if compression == "jpeg":
        if photometric == "minisblack" and planar == "contig":
            assume(samples != 3)  # tifffile writes subsampled YCbCr JPEG tagged as gray: invalid
        if photometric == "rgb" and planar == "contig" and samples == 3:
            kwargs["subsampling"] = draw(st.sampled_from([(1, 1), (2, 1), (2, 2), (4, 1)]))
            if draw(st.booleans()):
                kwargs["compressionargs"] = {"outcolorspace": "rgb"}
    if compression == "webp":
        photometric, planar, samples = "rgb", "contig", draw(st.sampled_from([3, 4]))
    if bits != np.dtype(dtype).itemsize * 8 and dtype != "bool":
        kwargs["bitspersample"] = bits
    volumetric = compression not in ("jpeg", "webp") and draw(st.integers(0, 4)) == 0
    depth = draw(st.integers(2, 3)) if volumetric else 1
    if volumetric:
        kwargs["volumetric"] = True
        kwargs["tile"] = (1, 16, 16)
    elif draw(st.booleans()):
        kwargs["tile"] = draw(st.sampled_from([(16, 16), (32, 16), (16, 48)]))
        if "subsampling" in kwargs:
            kwargs["tile"] = (32, 32)
    else:
        kwargs["rowsperstrip"] = draw(st.integers(1, 48))
    if compression in ("zlib", "lzw", "zstd", "lzma", "deflate") and draw(st.booleans()):
        kwargs["predictor"] = True
    kwargs["bigtiff"] = draw(st.integers(0, 5)) == 0
    if samples == 1:
        shape: tuple[int, ...] = (depth, h, w) if volumetric else (h, w)
    elif planar == "separate":
        shape = (samples, depth, h, w) if volumetric else (samples, h, w)
        kwargs["planarconfig"] = "separate"
    else:
        shape = (depth, h, w, samples) if volumetric else (h, w, samples)
        kwargs["planarconfig"] = "contig"
    pyramid = not volumetric and draw(st.integers(0, 5)) == 0
    pages = draw(st.sampled_from([1] * 8 + [2, 3]))  # several: one image with a page axis
    image = pixels(seed, shape, dtype, None if dtype == "bool" else bits)
    recipe = f"tifffile {shape} {dtype} {photometric} {kwargs} {pyramid=} {pages=}"
    data = encoded(recipe, tiff_write, image, pyramid, pages, photometric=photometric, **kwargs)
    # tifffile decides how an ambiguous shape (a 1 here and there) maps to the image size
    page = tifffile.TiffFile(io.BytesIO(data)).pages.first
    return Case(data, recipe, page.imagelength, page.imagewidth)


PILLOW_TIFF_MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr", "I;16", "I", "F"]


@st.composite
def pillow_tiff_files(draw: st.DrawFn) -> Case:
    h, w, seed = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(0, 2**32))
    mode = draw(st.sampled_from(PILLOW_TIFF_MODES))
    choices = ["raw", "packbits", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate"]
    if mode == "1":
        choices += ["group3", "group4", "tiff_ccitt"]
    if mode in ("L", "RGB", "CMYK", "YCbCr"):
        choices += ["jpeg"]
    compression = draw(st.sampled_from(choices))
    if mode == "1":
        image = Image.fromarray(pixels(seed, (h, w), "bool"))
    elif mode in ("L", "P"):
        image = Image.fromarray(pixels(seed, (h, w), "uint8"), "L").convert(mode)
    elif mode == "I;16":
        image = Image.fromarray(pixels(seed, (h, w), "uint16"))
    elif mode == "I":
        image = Image.fromarray(pixels(seed, (h, w), "int32"))
    elif mode == "F":
        image = Image.fromarray(pixels(seed, (h, w), "float32"))
    else:
        nbands = len(Image.new(mode, (1, 1)).getbands())
        image = Image.fromarray(
            pixels(seed, (h, w, nbands), "uint8"), "RGB" if nbands == 3 else None
        )
        image = image.convert(mode) if image.mode != mode else image
    recipe = f"Pillow tiff {mode} {compression}"
    return Case(encoded(recipe, pil, image, "TIFF", compression=compression), recipe, h, w)


@st.composite
def handmade_tiff_files(draw: st.DrawFn) -> Case:
    """Layouts no encoder at hand writes: packed signed integers, old-style JPEG, YCbCr without
    JPEG, PixarLog."""
    h, w, seed = draw(st.integers(1, 24)), draw(st.integers(1, 24)), draw(st.integers(0, 2**32))
    kind = draw(st.sampled_from(["packed", "ojpeg", "ycbcr", "pixarlog"]))
    order = draw(st.sampled_from("<>"))
    unforeseeable = False
    if kind == "packed":
        fmt = draw(st.sampled_from([1, 2]))
        bits = draw(st.integers(1, 32))
        samples = draw(st.sampled_from([1, 3]))
        planar = draw(st.sampled_from([1, 2]))
        rows = (w * bits * (samples if planar == 1 else 1) + 7) // 8
        size = rows * h * (1 if planar == 1 else samples)
        payload = pixels(seed, (size,), "uint8").tobytes()
        counts = [size] if planar == 1 else [size // samples] * samples
        offsets = [DATA] if planar == 1 else [8 + i * size // samples for i in range(samples)]
        tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [bits] * samples), (259, 3, [1])]
        tags += [(262, 3, [2 if samples == 3 else 1]), (273, 4, offsets), (277, 3, [samples])]
        tags += [(278, 4, [h]), (279, 4, counts), (284, 3, [planar]), (339, 3, [fmt] * samples)]
        recipe = f"handmade packed sampleformat {fmt} {bits}-bit {samples} samples planar {planar}"
    elif kind == "ojpeg":
        gray = draw(st.booleans())
        shape = (h, w) if gray else (h, w, 3)
        stream = imagecodecs.jpeg8_encode(pixels(seed, shape, "uint8"))
        samples = 1 if gray else 3
        tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [8] * samples), (259, 3, [6])]
        tags += [(262, 3, [1 if gray else 6]), (273, 4, [DATA]), (277, 3, [samples])]
        tags += [(278, 4, [h]), (279, 4, [len(stream)]), (513, 4, [DATA])]
        tags += [(514, 4, [len(stream)])]
        payload = bytes(stream)
        recipe = f"handmade old-style JPEG {shape}"
        # the stream's own 2x2 chroma blocks (not a tag) make an image narrower than 2 fail
        unforeseeable = not gray and min(h, w) < 2
    elif kind == "pixarlog":
        dtype, bits, fmt = draw(
            st.sampled_from([("uint8", 8, 1), ("uint16", 16, 1), ("float32", 32, 3)])
        )
        samples = draw(st.sampled_from([1, 3, 4]))
        shape = (h, w) if samples == 1 else (h, w, samples)
        payload = bytes(imagecodecs.pixarlog_encode(pixels(seed, shape, dtype)))
        tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [bits] * samples), (259, 3, [32909])]
        tags += [(262, 3, [1 if samples == 1 else 2]), (273, 4, [DATA]), (277, 3, [samples])]
        tags += [(278, 4, [h]), (279, 4, [len(payload)]), (339, 3, [fmt] * samples)]
        tags += [(338, 3, [2])] if samples == 4 else []
        recipe = f"handmade PixarLog {shape} {dtype}"
    else:
        planar = draw(st.sampled_from([1, 2]))
        blocks = (1, 1)
        if planar == 1:
            blocks = draw(st.sampled_from([(1, 1), (2, 1), (2, 2), (4, 1), (4, 2), (4, 4)]))
        # chunky sub-sampled data units: hs x vs luma samples, then one Cb and one Cr
        units = -(-w // blocks[0]) * -(-h // blocks[1])
        size = units * (blocks[0] * blocks[1] + 2) if planar == 1 else 3 * h * w
        payload = pixels(seed, (size,), "uint8").tobytes()
        offsets = [DATA] if planar == 1 else [8, 8 + h * w, 8 + 2 * h * w]
        counts = [size] if planar == 1 else [h * w] * 3
        tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [8] * 3), (259, 3, [1]), (262, 3, [6])]
        tags += [(273, 4, offsets), (277, 3, [3]), (278, 4, [h]), (279, 4, counts)]
        tags += [(284, 3, [planar]), (530, 3, list(blocks))]
        recipe = f"handmade uncompressed YCbCr planar {planar} sub-sampling {blocks}"
    return Case(tiff_from_tags(tags, payload, order), recipe, h, w, unforeseeable)


tiff_files = st.one_of(tifffile_files(), pillow_tiff_files(), handmade_tiff_files())


# --- WebP, BMP, GIF ------------------------------------------------------------------------


@st.composite
def webp_files(draw: st.DrawFn) -> Case:
    h, w, seed = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(0, 2**32))
    channels = draw(st.sampled_from([3, 4]))
    image = pixels(seed, (h, w, channels), "uint8")
    if channels == 4 and draw(st.booleans()):
        image[..., 3] = 255  # opaque alpha: encoders may drop it
    lossless = draw(st.booleans())
    if draw(st.booleans()):
        recipe = f"imagecodecs webp {image.shape} lossless={lossless}"
        data = encoded(recipe, imagecodecs.webp_encode, image, lossless=lossless)
        return Case(data, recipe, h, w)
    kwargs: dict[str, Any] = {"lossless": lossless, "quality": draw(st.integers(1, 100))}
    kwargs["method"] = draw(st.integers(0, 6))
    kwargs["exact"] = draw(st.booleans())
    if draw(st.booleans()):
        kwargs["exif"] = b"Exif\0\0MM\0*\0\0\0\x08\0\0"
    if draw(st.booleans()):
        kwargs["xmp"] = b"<x:xmpmeta/>"
    if draw(st.booleans()):
        kwargs["icc_profile"] = bytes(draw(st.integers(1, 600)))
    if draw(st.integers(0, 4)) == 0:
        kwargs["save_all"] = True  # an animation container holding one frame
    recipe = f"Pillow webp {image.shape} {kwargs}"
    mode = "RGBA" if channels == 4 else "RGB"
    return Case(encoded(recipe, pil, Image.fromarray(image, mode), "WEBP", **kwargs), recipe, h, w)


@st.composite
def bmp_files(draw: st.DrawFn) -> Case:
    h, w, seed = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(0, 2**32))
    if draw(st.booleans()):
        channels = draw(st.sampled_from([1, 3, 4]))
        shape = (h, w) if channels == 1 else (h, w, channels)
        recipe = f"imagecodecs bmp {shape}"
        return Case(
            encoded(recipe, imagecodecs.bmp_encode, pixels(seed, shape, "uint8")), recipe, h, w
        )
    mode = draw(st.sampled_from(["1", "L", "P", "RGB", "RGBA"]))
    if mode == "1":
        image = Image.fromarray(pixels(seed, (h, w), "bool"))
    elif mode in ("L", "P"):
        image = Image.fromarray(pixels(seed, (h, w), "uint8", draw(st.integers(1, 8))), "L")
        if mode == "P":
            image = image.convert("P")
            if draw(st.booleans()):
                image.putpalette([v for i in range(256) for v in (i, i, i)])
            else:
                image.putpalette(list(pixels(seed + 1, (768,), "uint8")))
    else:
        image = Image.fromarray(pixels(seed, (h, w, len(mode)), "uint8"), mode)
    recipe = f"Pillow bmp {mode}"
    data = encoded(recipe, pil, image, "BMP")
    if draw(st.booleans()):  # top-down rows: a negative height
        data = data[:22] + struct.pack("<i", -h) + data[26:]
        recipe += " top-down"
    return Case(data, recipe, h, w)


@st.composite
def gif_files(draw: st.DrawFn) -> Case:
    h, w, seed = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(0, 2**32))
    colours = draw(st.sampled_from([2, 4, 16, 100, 256]))
    indices = (pixels(seed, (h, w), "uint8").astype(np.int64) % colours).astype(np.uint8)
    if draw(st.booleans()):
        recipe = f"imagecodecs gif {colours} colours"
        data = encoded(recipe, imagecodecs.gif_encode, indices)
    else:
        image = Image.fromarray(indices, "L").convert("P")
        image.putpalette(list(pixels(seed + 1, (3 * colours,), "uint8")))
        kwargs: dict[str, Any] = {"interlace": draw(st.booleans())}
        kwargs["optimize"] = draw(st.booleans())
        if draw(st.booleans()):
            kwargs["transparency"] = 0
        if draw(st.booleans()):
            kwargs["comment"] = b"c" * draw(st.integers(1, 600))
        if draw(st.booleans()):
            kwargs["loop"] = 0
        recipe = f"Pillow gif {colours} colours {kwargs}"
        data = encoded(recipe, pil, image, "GIF", **kwargs)
    if draw(st.integers(0, 3)) == 0:  # a logical screen larger than the one frame
        data = data[:6] + struct.pack("<HH", w + 3, h + 2) + data[10:]
        h, w = h + 2, w + 3
    return Case(data, recipe, h, w)


# --- JPEG 2000, JPEG XL --------------------------------------------------------------------


@st.composite
def jpeg2k_files(draw: st.DrawFn) -> Case:
    h, w, seed = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(0, 2**32))
    channels = draw(st.sampled_from([1, 2, 3, 4]))
    shape = (h, w) if channels == 1 else (h, w, channels)
    if draw(st.booleans()):
        dtype = draw(st.sampled_from(["uint8", "int8", "uint16", "int16"]))
        full = np.dtype(dtype).itemsize * 8
        bits = draw(st.integers(max(1, full - 7), full)) if draw(st.booleans()) else full
        kwargs: dict[str, Any] = {"codecformat": draw(st.sampled_from(["jp2", "j2k"]))}
        kwargs["reversible"] = draw(st.booleans())
        if bits != full:
            kwargs["bitspersample"] = bits
        if draw(st.booleans()):
            kwargs["tile"] = (16, 16)
        recipe = f"imagecodecs jpeg2k {shape} {dtype} {kwargs}"
        image = pixels(seed, shape, dtype, bits)
        return Case(encoded(recipe, imagecodecs.jpeg2k_encode, image, **kwargs), recipe, h, w)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    if channels == 1 and draw(st.booleans()):
        image = Image.fromarray(pixels(seed, (h, w), "uint16"))
    else:
        image = Image.fromarray(pixels(seed, shape, "uint8"), mode)
    kwargs = {"irreversible": draw(st.booleans()), "no_jp2": draw(st.booleans())}
    if draw(st.booleans()):
        kwargs["tile_size"] = (16, 16)
    if draw(st.booleans()):
        kwargs["progression"] = draw(st.sampled_from(["LRCP", "RLCP", "RPCL", "PCRL", "CPRL"]))
    recipe = f"Pillow jpeg2000 {image.mode} {kwargs}"
    return Case(encoded(recipe, pil, image, "JPEG2000", **kwargs), recipe, h, w)


@st.composite
def jpegxl_files(draw: st.DrawFn) -> Case:
    h, w, seed = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(0, 2**32))
    channels = draw(st.sampled_from([1, 2, 3, 4]))
    dtype = draw(st.sampled_from(["uint8", "uint16", "float16", "float32"]))
    shape = (h, w) if channels == 1 else (h, w, channels)
    kwargs: dict[str, Any] = {"effort": draw(st.integers(1, 3))}
    kwargs["usecontainer"] = draw(st.booleans())
    bits = None
    if dtype in ("uint8", "uint16") and draw(st.booleans()):
        low = 1 if dtype == "uint8" else 9
        bits = kwargs["bitspersample"] = draw(st.integers(low, low + 7))
    if draw(st.booleans()):
        kwargs["lossless"] = True
    else:
        kwargs["distance"] = draw(st.sampled_from([0.5, 1.0, 3.0]))
    recipe = f"imagecodecs jpegxl {shape} {dtype} {kwargs}"
    image = pixels(seed, shape, dtype, bits)
    return Case(encoded(recipe, imagecodecs.jpegxl_encode, image, **kwargs), recipe, h, w)


STRATEGIES = {
    "png": png_files(),
    "jpeg": jpeg_files(),
    "tiff": tiff_files,
    "webp": webp_files(),
    "bmp": bmp_files(),
    "gif": gif_files(),
    "jpeg2k": jpeg2k_files(),
    "jpegxl": jpegxl_files(),
}


# --- the comparison ------------------------------------------------------------------------


def check(fmt: str, case: Case) -> None:
    """The probe of ``case.data`` must equal what the store's codec decodes."""
    where = f"{case.recipe} ({len(case.data)} bytes)"
    try:
        info = probe_bytes(case.data, name=f"case.{fmt}")
    except ProbeError as exc:
        refusal: ProbeError | None = exc
        codec, shape, dtype = {"name": f"imagecodecs_{fmt}"}, (1,), "uint8"
    else:
        refusal = None
        codec, shape, dtype = info.codec, info.shape, info.dtype
    raw, served = codec_decode(case.data, codec, shape, dtype)
    if raw is None:  # the decoder fails on this file
        if refusal is None and not (case.unforeseeable or HEADER_CANNOT_TELL.search(str(served))):
            pytest.fail(f"{where}: probe accepted {shape} {dtype}, decoder failed: {served}")
        return
    if refusal is not None:
        if isinstance(refusal, UnsupportedImageError) and (
            DELIBERATE.search(str(refusal)) or DECODER_HIDES_FAILURE.search(str(refusal))
        ):
            return
        pytest.fail(f"{where}: decoder gave {raw.shape} {raw.dtype}, probe refused: {refusal}")
    assert (info.shape, info.dtype) == (raw.shape, raw.dtype.name), where
    assert isinstance(served, np.ndarray), f"{where}: {served}"
    assert served.dtype == raw.dtype, where
    assert served.tobytes() == raw.tobytes(), where  # bit for bit, NaN included
    dims = info.dims
    assert len(dims) == len(info.shape), (where, dims)
    assert dims.count("y") == dims.count("x") == 1, (where, dims)
    assert (info.shape[dims.index("y")], info.shape[dims.index("x")]) == (
        case.height,
        case.width,
    ), (where, dims)


def budget(fmt: str) -> settings:
    return settings(
        max_examples=FUZZ_EXAMPLES or DEFAULT_EXAMPLES[fmt],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


@pytest.mark.parametrize("fmt", list(STRATEGIES))
def test_probe_equals_decoder(fmt: str) -> None:
    if not AVAILABLE[fmt]:
        pytest.skip(f"imagecodecs in this environment has no {fmt} codec")

    @budget(fmt)
    @given(case=STRATEGIES[fmt])
    def run(case: Case) -> None:
        check(fmt, case)

    run()
