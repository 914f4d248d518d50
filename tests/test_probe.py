"""Tests of the header-only image probes against imagecodecs' own decoders and zarr codecs."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pytest
import zarr
import zarr.registry
from PIL import Image
from zarr.core.buffer import cpu
from zarr.storage import MemoryStore

from imagefiles import AVAILABLE, DATA, codec_decode, pil, tif, tiff_from_tags
from imagezarr.errors import ProbeError, UnsupportedImageError
from imagezarr.probe import (
    EXTENSIONS,
    ImageInfo,
    _tiff,
    detect_format,
    probe,
    probe_bytes,
    probe_file,
)
from imagezarr.probe._common import HEAD_SIZE, MAX_READ

PLANTCV = Path("/work/shared/data/plantcv-testdata")
RNG = np.random.default_rng(42)
GRAY = RNG.integers(0, 256, (37, 53), dtype=np.uint8)
RGB = np.dstack([GRAY, GRAY[::-1], GRAY[:, ::-1]])
RGBA = np.dstack([RGB, GRAY.T[:37, :37].repeat(2, 1)[:, :53]])

# What each zarr codec calls, with the arguments the codec passes by default.
DECODERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "png": imagecodecs.png_decode,
    "jpeg": imagecodecs.jpeg8_decode,
    "tiff": lambda d: imagecodecs.tiff_decode(d, index=None),
    "webp": imagecodecs.webp_decode,
    "bmp": imagecodecs.bmp_decode,
    "gif": lambda d: imagecodecs.gif_decode(d, asrgb=False),
    "jpeg2k": imagecodecs.jpeg2k_decode,
    "jpegxl": imagecodecs.jpegxl_decode,
}


def palette(array: np.ndarray, colours: list[int], **kwargs: Any) -> bytes:
    image = Image.fromarray(array, "L").convert("P")
    image.putpalette(colours)
    return pil(image, "PNG", **kwargs)


def zarr_decode(data: bytes, info: ImageInfo) -> np.ndarray:
    """Serve ``data`` as the single chunk of a zarr array built from ``info``; read it."""
    codec = zarr.registry.get_codec_class(info.codec["name"]).from_dict(info.codec)
    chunks: dict[str, Any] = {}
    array = zarr.create_array(
        MemoryStore(chunks),
        shape=info.shape,
        chunks=info.shape,
        dtype=info.dtype,
        serializer=codec,
        compressors=None,
        fill_value=0,
    )
    chunks["c/" + "/".join("0" * len(info.shape))] = cpu.Buffer.from_bytes(data)
    return array[...]


def gif_on_larger_screen() -> bytes:
    data = bytearray(imagecodecs.gif_encode(GRAY))
    data[6:10] = struct.pack("<HH", 60, 40)  # logical screen larger than the one frame
    return bytes(data)


CHW = np.moveaxis(RGB, -1, 0).copy()


def packed_tiff(bits: int, sampleformat: int, height: int = 37, width: int = 53) -> bytes:
    """An uncompressed 1-sample TIFF of ``bits``-bit integers, packed (tifffile writes none)."""
    size = (width * bits + 7) // 8 * height
    pixels = RNG.integers(0, 256, size, dtype=np.uint8).tobytes()
    tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [bits]), (259, 3, [1])]
    tags += [(262, 3, [1]), (273, 4, [DATA]), (277, 3, [1]), (278, 4, [height])]
    tags += [(279, 4, [size]), (339, 3, [sampleformat])]
    return tiff_from_tags(tags, pixels)


def old_style_jpeg_tiff(image: np.ndarray) -> bytes:
    """An old-style JPEG (Compression 6) TIFF whose strip is one whole JPEG stream."""
    stream = bytes(imagecodecs.jpeg8_encode(image))
    height, width = image.shape[:2]
    samples = 1 if image.ndim == 2 else 3
    tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [8] * samples), (259, 3, [6])]
    tags += [(262, 3, [1 if samples == 1 else 6]), (273, 4, [DATA]), (277, 3, [samples])]
    tags += [(278, 4, [height]), (279, 4, [len(stream)]), (513, 4, [DATA])]
    tags += [(514, 4, [len(stream)])]
    return tiff_from_tags(tags, stream)


def ycbcr_tiff(
    planar: int,
    bits: int = 8,
    height: int = 37,
    width: int = 53,
    subsampling: tuple[int, int] = (1, 1),
) -> bytes:
    """An uncompressed YCbCr TIFF (read by libtiff's RGBA path); the pixel data is sized for
    no sub-sampling, which only matters to files the decoder refuses anyway."""
    plane = height * width * bits // 8
    offsets = [DATA] if planar == 1 else [8, 8 + plane, 8 + 2 * plane]
    counts = [3 * plane] if planar == 1 else [plane] * 3
    tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [bits] * 3), (259, 3, [1])]
    tags += [(262, 3, [6]), (273, 4, offsets), (277, 3, [3]), (278, 4, [height])]
    tags += [(279, 4, counts), (284, 3, [planar]), (530, 3, list(subsampling))]
    return tiff_from_tags(tags, RNG.integers(0, 256, 3 * plane, dtype=np.uint8).tobytes())


def pixarlog_tiff(image: np.ndarray) -> bytes:
    """A PixarLog (Compression 32909) TIFF of float32 RGB."""
    strip = bytes(imagecodecs.pixarlog_encode(image))
    height, width, samples = image.shape
    tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [32] * samples)]
    tags += [(259, 3, [32909]), (262, 3, [2]), (273, 4, [DATA]), (277, 3, [samples])]
    tags += [(278, 4, [height]), (279, 4, [len(strip)]), (339, 3, [3] * samples)]
    return tiff_from_tags(tags, strip)


PALETTE = [v for i in range(256) for v in ((i * 7) % 256, (i * 13) % 256, i)]
KINDS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "png-gray8": ("png", lambda: imagecodecs.png_encode(GRAY)),
    "png-gray16": ("png", lambda: imagecodecs.png_encode(GRAY.astype(np.uint16) * 257)),
    "png-gray-alpha": ("png", lambda: pil(Image.fromarray(np.dstack([GRAY] * 2), "LA"), "PNG")),
    "png-rgb8": ("png", lambda: imagecodecs.png_encode(RGB)),
    "png-rgba8": ("png", lambda: imagecodecs.png_encode(RGBA)),
    "png-rgb16": ("png", lambda: imagecodecs.png_encode(RGB.astype(np.uint16) * 200)),
    "png-rgba16": ("png", lambda: imagecodecs.png_encode(RGBA.astype(np.uint16) * 3)),
    "png-1bit": ("png", lambda: pil(Image.fromarray(GRAY > 128), "PNG")),
    "png-2bit": ("png", lambda: pil(Image.fromarray(GRAY % 4, "L"), "PNG", bits=2)),
    "png-4bit": ("png", lambda: pil(Image.fromarray(GRAY % 16, "L"), "PNG", bits=4)),
    "png-palette2": ("png", lambda: palette(GRAY % 4, PALETTE[:12], bits=2)),
    "png-palette4": ("png", lambda: palette(GRAY % 16, PALETTE[:48], bits=4)),
    "png-palette8": ("png", lambda: palette(GRAY, PALETTE)),
    "png-palette8-trns": ("png", lambda: palette(GRAY, PALETTE, transparency=0)),
    "png-gray-trns": ("png", lambda: pil(Image.fromarray(GRAY), "PNG", transparency=5)),
    "png-rgb-trns": ("png", lambda: pil(Image.fromarray(RGB), "PNG", transparency=(1, 2, 3))),
    "jpeg-gray": ("jpeg", lambda: imagecodecs.jpeg8_encode(GRAY)),
    "jpeg-rgb": ("jpeg", lambda: imagecodecs.jpeg8_encode(RGB)),
    "jpeg-progressive": ("jpeg", lambda: pil(Image.fromarray(RGB), "JPEG", progressive=True)),
    "jpeg-cmyk": ("jpeg", lambda: pil(Image.fromarray(RGBA, "CMYK"), "JPEG")),
    "jpeg-12bit": (
        "jpeg",
        lambda: imagecodecs.jpeg8_encode(RGB.astype(np.uint16) * 16, bitspersample=12),
    ),
    "jpeg-lossless16": (
        "jpeg",
        lambda: imagecodecs.jpeg8_encode(GRAY.astype(np.uint16) * 250, lossless=True),
    ),
    "tiff-gray8": ("tiff", lambda: tif(GRAY)),
    "tiff-uint16-zlib": ("tiff", lambda: tif(GRAY.astype(np.uint16), compression="zlib")),
    "tiff-float32": ("tiff", lambda: tif(GRAY.astype(np.float32))),
    "tiff-int16": ("tiff", lambda: tif(GRAY.astype(np.int16) - 128)),
    "tiff-bool": ("tiff", lambda: tif(GRAY > 128)),
    "tiff-4bit": ("tiff", lambda: tif(GRAY % 16, bitspersample=4)),
    "tiff-12bit": ("tiff", lambda: tif(GRAY.astype(np.uint16) * 16, bitspersample=12)),
    "tiff-rgb-contig": ("tiff", lambda: tif(RGB, photometric="rgb")),
    "tiff-rgb-separate": (
        "tiff",
        lambda: tif(np.moveaxis(RGB, -1, 0).copy(), photometric="rgb", planarconfig="separate"),
    ),
    "tiff-rgba-tiled": (
        "tiff",
        lambda: tif(RGBA, photometric="rgb", tile=(16, 16), extrasamples=["unassalpha"]),
    ),
    "tiff-bigendian": ("tiff", lambda: tif(GRAY.astype(np.uint16), byteorder=">")),
    "tiff-bigtiff": ("tiff", lambda: tif(RGB.astype(np.float32), photometric="rgb", bigtiff=True)),
    "tiff-jpeg": ("tiff", lambda: tif(RGB, photometric="rgb", compression="jpeg")),
    "tiff-cmyk": ("tiff", lambda: tif(RGBA, photometric="separated")),
    "tiff-palette": (
        "tiff",
        lambda: tif(GRAY, photometric="palette", colormap=np.tile(np.arange(256) * 257, (3, 1))),
    ),
    # JPEG decodes like any compression since imagecodecs 2026.8.16: planar stays planar
    "tiff-jpeg-planar": (
        "tiff",
        lambda: tif(CHW, photometric="rgb", planarconfig="separate", compression="jpeg"),
    ),
    "tiff-jpeg-12bit": (
        "tiff",
        lambda: tif(GRAY.astype(np.uint16) * 16, compression="jpeg", bitspersample=12),
    ),
    "tiff-jpeg-12bit-planar": (
        "tiff",
        lambda: tif(
            CHW.astype(np.uint16) * 16,
            photometric="rgb",
            planarconfig="separate",
            compression="jpeg",
            bitspersample=12,
        ),
    ),
    "tiff-jpeg-rgb-colorspace": (
        "tiff",
        lambda: tif(
            RGB, photometric="rgb", compression="jpeg", compressionargs={"outcolorspace": "rgb"}
        ),
    ),
    "tiff-jpeg-cmyk": ("tiff", lambda: tif(RGBA, photometric="separated", compression="jpeg")),
    "tiff-jpeg-2-samples": (
        "tiff",
        lambda: tif(
            RGB[..., :2], photometric="minisblack", planarconfig="contig", compression="jpeg"
        ),
    ),
    "tiff-lerc": ("tiff", lambda: tif(GRAY.astype(np.float32), compression="lerc")),
    "tiff-int12": ("tiff", lambda: packed_tiff(12, sampleformat=2)),
    "tiff-int1": ("tiff", lambda: packed_tiff(1, sampleformat=2)),
    "tiff-ojpeg": ("tiff", lambda: old_style_jpeg_tiff(RGB)),
    "tiff-ojpeg-gray": ("tiff", lambda: old_style_jpeg_tiff(GRAY)),
    "tiff-ycbcr-uncompressed": ("tiff", lambda: ycbcr_tiff(planar=2)),
    "tiff-pixarlog": ("tiff", lambda: pixarlog_tiff(RGB.astype(np.float32))),
    "tiff-volume-planar": (
        "tiff",
        lambda: tif(
            np.stack([CHW, CHW[:, ::-1]], axis=1),
            photometric="rgb",
            planarconfig="separate",
            volumetric=True,
            tile=(1, 16, 16),
        ),
    ),
    "webp-lossy": ("webp", lambda: pil(Image.fromarray(RGB), "WEBP", quality=80)),
    "webp-lossy-alpha": ("webp", lambda: pil(Image.fromarray(RGBA), "WEBP", quality=80)),
    "webp-lossless": ("webp", lambda: imagecodecs.webp_encode(RGB, lossless=True)),
    "webp-lossless-alpha": ("webp", lambda: imagecodecs.webp_encode(RGBA, lossless=True)),
    "webp-extended-exif": (
        "webp",
        lambda: pil(Image.fromarray(RGB), "WEBP", exif=b"Exif\0\0MM\0*\0\0\0\x08\0\0"),
    ),
    "bmp-gray8": ("bmp", lambda: imagecodecs.bmp_encode(GRAY)),
    "bmp-rgb24": ("bmp", lambda: imagecodecs.bmp_encode(RGB)),
    "bmp-palette8": ("bmp", lambda: pil(Image.fromarray(RGB).convert("P"), "BMP")),
    "bmp-1bit": ("bmp", lambda: pil(Image.fromarray(GRAY > 128), "BMP")),
    "bmp-bgrx32": ("bmp", lambda: pil(Image.fromarray(RGBA), "BMP")),
    "gif-gray": ("gif", lambda: imagecodecs.gif_encode(GRAY)),
    "gif-palette": ("gif", lambda: pil(Image.fromarray(RGB).convert("P"), "GIF")),
    "gif-larger-screen": ("gif", gif_on_larger_screen),
    "jp2-gray8": ("jpeg2k", lambda: imagecodecs.jpeg2k_encode(GRAY, codecformat="jp2")),
    "jp2-rgb8": ("jpeg2k", lambda: imagecodecs.jpeg2k_encode(RGB, codecformat="jp2")),
    "jp2-rgba8": ("jpeg2k", lambda: imagecodecs.jpeg2k_encode(RGBA, codecformat="jp2")),
    "jp2-int16": (
        "jpeg2k",
        lambda: imagecodecs.jpeg2k_encode(GRAY.astype(np.int16) - 128, codecformat="jp2"),
    ),
    "j2k-uint16": (
        "jpeg2k",
        lambda: imagecodecs.jpeg2k_encode(GRAY.astype(np.uint16) * 200, codecformat="j2k"),
    ),
    "j2k-12bit-rgb": (
        "jpeg2k",
        lambda: imagecodecs.jpeg2k_encode(
            RGB.astype(np.uint16) * 16, codecformat="j2k", bitspersample=12
        ),
    ),
    "jxl-gray8": ("jpegxl", lambda: imagecodecs.jpegxl_encode(GRAY)),
    "jxl-gray-alpha": ("jpegxl", lambda: imagecodecs.jpegxl_encode(np.dstack([GRAY] * 2))),
    "jxl-rgb8": ("jpegxl", lambda: imagecodecs.jpegxl_encode(RGB)),
    "jxl-rgba8-container": (
        "jpegxl",
        lambda: imagecodecs.jpegxl_encode(RGBA, usecontainer=True),
    ),
    "jxl-gray16": ("jpegxl", lambda: imagecodecs.jpegxl_encode(GRAY.astype(np.uint16) * 250)),
    "jxl-float32": ("jpegxl", lambda: imagecodecs.jpegxl_encode(RGB.astype(np.float32) / 255)),
    "jxl-float16": ("jpegxl", lambda: imagecodecs.jpegxl_encode(RGB.astype(np.float16) / 255)),
    "jxl-large": ("jpegxl", lambda: imagecodecs.jpegxl_encode(np.zeros((1000, 1333), np.uint8))),
}


def need(fmt: str) -> None:
    if not AVAILABLE[fmt]:
        pytest.skip(f"imagecodecs in this environment has no {fmt} codec")


@pytest.mark.parametrize("kind", list(KINDS))
def test_probe_matches_decoder_and_zarr_codec(kind: str, tmp_path: Path) -> None:
    fmt, make = KINDS[kind]
    need(fmt)
    path = tmp_path / f"{kind}.img"
    path.write_bytes(data := make())
    info = probe_file(path)
    expected = DECODERS[fmt](data)
    assert info.format == fmt
    assert (info.shape, info.dtype) == (expected.shape, expected.dtype.name)
    served = zarr_decode(data, info)
    assert served.shape == info.shape
    assert served.dtype == expected.dtype
    np.testing.assert_array_equal(served, expected)


def test_extensions_and_detection() -> None:
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"} <= EXTENSIONS
    assert {".jp2", ".j2k", ".jxl"} <= EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in EXTENSIONS)
    for kind, (fmt, make) in KINDS.items():
        if AVAILABLE[fmt]:
            assert detect_format(make()[:64]) == fmt, kind
    assert detect_format(b"") is None
    assert detect_format(b"hello world") is None


def counting(data: bytes) -> tuple[Callable[[int, int], bytes], list[int]]:
    sizes: list[int] = []

    def read(offset: int, length: int) -> bytes:
        sizes.append(length)
        return data[offset : offset + length]

    return read, sizes


def test_jpeg_big_app_segments_are_skipped() -> None:
    base = imagecodecs.jpeg8_encode(RGB)
    app = b"".join(b"\xff\xe1" + struct.pack(">H", 51202) + bytes(51200) for _ in range(4))
    data = base[:2] + app + base[2:]
    assert len(app) > 200 * 1024
    read, sizes = counting(data)
    info = probe(read, size=len(data), name="big-exif.jpg")
    assert info.shape == imagecodecs.jpeg8_decode(data).shape == (37, 53, 3)
    assert sum(sizes) < 80 * 1024 < len(data)


def tiff_ifd_at_end(height: int, width: int) -> bytes:
    """A little-endian 8-bit TIFF whose only IFD follows the pixel data."""
    pixels = (np.arange(height * width) % 251).astype(np.uint8).tobytes()
    ifd_offset = 8 + len(pixels)
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1)]
    tags += [(273, 4, 8), (277, 3, 1), (278, 4, height), (279, 4, len(pixels))]
    ifd = struct.pack("<H", len(tags))
    ifd += b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in tags)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + pixels + ifd + bytes(4)


def test_tiff_first_ifd_at_end_of_large_file() -> None:
    data = tiff_ifd_at_end(1024, 1500)
    read, sizes = counting(data)
    info = probe(read, size=len(data), name="ifd-at-end.tif")
    assert info.shape == imagecodecs.tiff_decode(data).shape == (1024, 1500)
    assert sum(sizes) < 100 * 1024 < len(data)
    np.testing.assert_array_equal(zarr_decode(data, info), imagecodecs.tiff_decode(data))


def test_multipage_tiff_is_one_image_with_a_page_axis(tmp_path: Path) -> None:
    path = tmp_path / "stack.tif"
    path.write_bytes(tif(np.stack([GRAY] * 3), photometric="minisblack"))
    info = probe_file(path)
    assert (info.shape, info.dims) == ((3, 37, 53), ("p", "y", "x"))
    assert imagecodecs.tiff_decode(path.read_bytes(), index=None).shape == info.shape


def test_multipage_tiff_whose_pages_differ_is_refused_naming_the_page(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as w:
        w.write(GRAY)
        w.write(GRAY)
        w.write(GRAY[:10])
    with pytest.raises(
        UnsupportedImageError,
        match=r"mixed\.tif: TIFF pages differ: page 3 is 10 x 53 uint8, page 1 37 x 53 uint8",
    ):
        probe_file(path)


def test_planar_jpeg_tiff_is_served_channels_first() -> None:
    """Regression: the probe said (h, w, c) and the decoder gave (c, h, w): scrambled pixels."""
    data = tif(CHW, photometric="rgb", planarconfig="separate", compression="jpeg")
    info = probe_bytes(data, name="planar.tif")
    assert (info.shape, info.dtype, info.dims) == ((3, 37, 53), "uint8", ("c", "y", "x"))
    raw, served = codec_decode(data, info.codec, info.shape, info.dtype)
    assert raw is not None
    assert raw.shape == info.shape
    np.testing.assert_array_equal(served, raw)
    # lossy, but each plane is still its own channel, not a slice across channels
    assert np.abs(served.astype(int) - CHW).mean() < 8


@pytest.mark.parametrize("planar", [False, True])
def test_12bit_jpeg_tiff_is_uint16(planar: bool) -> None:
    """Regression: the probe said uint8 for 12-bit JPEG, so the store kept the low byte."""
    # smooth, so that lossy chroma sub-sampling keeps every pixel close
    y, x = np.mgrid[:37, :53]
    image = np.dstack([y * 100, x * 70, (y + x) * 40]).astype(np.uint16)
    image = np.moveaxis(image, -1, 0).copy() if planar else image
    layout = {"planarconfig": "separate" if planar else "contig"}
    data = tif(image, photometric="rgb", compression="jpeg", bitspersample=12, **layout)
    info = probe_bytes(data, name="twelve.tif")
    assert (info.shape, info.dtype) == (image.shape, "uint16")
    raw, served = codec_decode(data, info.codec, info.shape, info.dtype)
    assert raw is not None
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(served, raw)
    assert served.max() > 255  # the high bits survive
    assert np.abs(served.astype(int) - image).mean() < 16


def test_jpeg_tiff_is_refused_by_imagecodecs_before_2026_8_16(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # those versions decode TIFF JPEG through libtiff's RGBA interface, planar files chunky
    monkeypatch.setattr(_tiff, "_JPEG_NATIVE", False)
    with pytest.raises(UnsupportedImageError, match=r"old\.tif: .*imagecodecs 2026\.8\.16"):
        probe_bytes(tif(RGB, photometric="rgb", compression="jpeg"), name="old.tif")
    assert probe_bytes(tif(RGB, photometric="rgb", compression="zlib")).shape == (37, 53, 3)


def plain_tags(width: int, height: int, bits: int, size: int) -> list[tuple[int, int, list[int]]]:
    return [
        (256, 4, [width]),
        (257, 4, [height]),
        (258, 3, [bits]),
        (259, 3, [1]),
        (262, 3, [1]),
        (273, 4, [DATA]),
        (277, 3, [1]),
        (278, 4, [height]),
        (279, 4, [size]),
    ]


@pytest.mark.parametrize(
    ("duplicate", "expected"),
    [
        ((256, 4, [8]), ((10, 16), "uint8")),  # a second ImageWidth
        ((258, 3, [16]), ((10, 16), "uint8")),  # a second BitsPerSample
        ((339, 3, [2]), ((10, 16), "uint8")),  # SampleFormat given twice, uint first
    ],
)
def test_duplicated_tiff_tags_keep_the_first_value(
    duplicate: tuple[int, int, list[int]], expected: tuple[tuple[int, ...], str]
) -> None:
    """Regression: the probe kept the last value of a repeated tag, libtiff keeps the first."""
    tags = [*plain_tags(16, 10, 8, 160), (339, 3, [1])]
    at = next(i for i, (tag, _, _) in enumerate(tags) if tag == duplicate[0])
    data = tiff_from_tags([*tags[: at + 1], duplicate, *tags[at + 1 :]], bytes(range(160)))
    info = probe_bytes(data, name="dup.tif")
    assert (info.shape, info.dtype) == expected
    raw, served = codec_decode(data, info.codec, info.shape, info.dtype)
    assert raw is not None
    assert (raw.shape, raw.dtype.name) == expected
    np.testing.assert_array_equal(served, raw)


def test_packed_signed_tiff_rounds_up_like_the_decoder() -> None:
    """Regression: signed 1..31-bit samples decode to int8/16/32; the probe refused them."""
    for bits, dtype in ((1, "int8"), (7, "int8"), (12, "int16"), (24, "int32")):
        data = packed_tiff(bits, sampleformat=2)
        info = probe_bytes(data)
        assert (info.shape, info.dtype) == ((37, 53), dtype), bits
        assert imagecodecs.tiff_decode(data).dtype == np.dtype(dtype)


UNDECODABLE_TIFFS: dict[str, tuple[Callable[[], bytes], str]] = {
    # the decoder fails on each of these; the probe used to accept them
    "uint40": (lambda: packed_tiff(40, sampleformat=1), r"TIFF sample format 1 with 40 bits"),
    "cmyk16": (
        lambda: tif(RGBA.astype(np.uint16), photometric="separated"),
        r"CMYK TIFF with 16-bit samples",
    ),
    "cmyk-planar-5": (
        lambda: tif(
            np.concatenate([np.moveaxis(RGBA, -1, 0), CHW[:1]]),
            photometric="separated",
            planarconfig="separate",
        ),
        r"CMYK TIFF with 5 samples per pixel, planar configuration 2",
    ),
    "ycbcr16": (lambda: ycbcr_tiff(planar=1, bits=16), r"YCbCr TIFF with 16-bit samples"),
    "ycbcr-1-row": (
        lambda: ycbcr_tiff(planar=1, height=1, subsampling=(2, 2)),
        r"YCbCr TIFF of 53x1 pixels, smaller than its 2x2 chroma sub-sampling block",
    ),
    "jpeg-10bit": (
        lambda: tif(GRAY.astype(np.uint16), compression="jpeg", bitspersample=10),
        r"JPEG-compressed TIFF with 10-bit samples",
    ),
}


@pytest.mark.parametrize("kind", list(UNDECODABLE_TIFFS))
def test_tiffs_the_decoder_cannot_read_are_refused(kind: str) -> None:
    make, message = UNDECODABLE_TIFFS[kind]
    data = make()
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever libtiff or imagecodecs raise
        imagecodecs.tiff_decode(data, index=None)
    with pytest.raises(UnsupportedImageError, match=rf"bad\.tif: {message}"):
        probe_bytes(data, name="bad.tif")


def test_cmyk_volume_is_refused_not_cut_to_its_first_slice() -> None:
    data = tif(np.stack([RGBA, RGBA[::-1]]), photometric="separated", volumetric=True)
    # libtiff's RGBA reader returns one slice and drops the rest without a word
    assert imagecodecs.tiff_decode(data, index=None).shape == (37, 53, 3)
    with pytest.raises(UnsupportedImageError, match=r"v\.tif: CMYK TIFF with image depth 2"):
        probe_bytes(data, name="v.tif")


def test_planar_volume_axes() -> None:
    _, make = KINDS["tiff-volume-planar"]
    info = probe_bytes(make())
    assert (info.shape, info.dims) == ((3, 2, 37, 53), ("c", "z", "y", "x"))


def big_noise_gif(side: int) -> bytes:
    """A single-frame GIF of random pixels: LZW cannot shrink it, so it is big."""
    pixels = np.random.default_rng(7).integers(0, 256, (side, side), dtype=np.uint8)
    return pil(Image.fromarray(pixels, "L"), "GIF")


def test_single_frame_gif_larger_than_the_read_limit() -> None:
    """Regression: a valid GIF bigger than MAX_READ was called corrupt."""
    data = big_noise_gif(3700)
    assert len(data) > MAX_READ
    read, sizes = counting(data)
    info = probe(read, size=len(data), name="big.gif")
    assert (info.shape, info.dtype) == ((3700, 3700), "uint8")
    assert sum(sizes) <= len(data) + HEAD_SIZE  # the walk re-reads part of the first read
    assert len(sizes) < 40  # windows grow: few requests on an object store
    raw, served = codec_decode(data, info.codec, info.shape, info.dtype)
    assert raw is not None
    assert raw.shape == info.shape
    np.testing.assert_array_equal(served, raw)


def test_gif_image_data_beyond_what_its_frame_can_hold_is_corrupt() -> None:
    """The read limit grows only by what a frame of its size needs: a 1x1 frame cannot have
    megabytes of LZW data, so endless sub-blocks stay bounded."""
    head = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + bytes(6)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02"
    blocks = (b"\xff" + bytes(255)) * (MAX_READ // 256 + 1024)
    data = head + frame + blocks + b"\x00\x3b"
    read, sizes = counting(data)
    with pytest.raises(ProbeError, match=r"endless\.gif: header walk needs more than"):
        probe(read, size=len(data), name="endless.gif")
    assert sum(sizes) < MAX_READ + 64 * 1024


def test_animated_gif_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.fromarray(RGB), Image.fromarray(RGB[::-1])]
    path.write_bytes(pil(frames[0], "GIF", save_all=True, append_images=frames[1:]))
    assert imagecodecs.gif_decode(path.read_bytes(), asrgb=False).shape == (2, 37, 53)
    with pytest.raises(UnsupportedImageError, match=r"anim\.gif: animated GIF"):
        probe_file(path)


def test_animated_webp_and_jpegxl_are_unsupported() -> None:
    need("webp")
    need("jpegxl")
    frames = [Image.fromarray(RGB), Image.fromarray(RGB[::-1])]
    webp = pil(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    with pytest.raises(UnsupportedImageError, match=r"a\.webp: animated WebP"):
        probe_bytes(webp, name="a.webp")
    jxl = imagecodecs.jpegxl_encode(np.stack([RGB, RGB[::-1]]))
    assert imagecodecs.jpegxl_decode(jxl).shape == (2, 37, 53, 3)
    with pytest.raises(UnsupportedImageError, match=r"a\.jxl: animated JPEG XL"):
        probe_bytes(jxl, name="a.jxl")


BAD: dict[str, tuple[bytes, str]] = {
    "zero.png": (b"", "empty file"),
    "text.png": (b"# This is not an image\n", "not a recognised image"),
    "three.jpeg": (b"123", "not a recognised image"),
    "short-sig.png": (b"\x89PNG\r\n\x1a\n\x00\x00", "truncated"),
    "bad-ihdr.png": (b"\x89PNG\r\n\x1a\n" + bytes(4) + b"IDAT" + bytes(30), "not IHDR"),
    "only-soi.jpg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "truncated"),
    "scan-first.jpg": (b"\xff\xd8\xff\xda\x00\x02", "before any SOF"),
    "empty-ifd.tif": (b"II*\x00\x08\x00\x00\x00", "truncated"),
    "bad-offset.tif": (b"II*\x00\x02\x00\x00\x00" + bytes(8), "first IFD offset"),
    "riff.webp": (b"RIFF\x00\x00\x00\x00WEBPJUNK" + bytes(10), "not VP8"),
    "gif-no-image.gif": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "no image"),
    "cut.jp2": (b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00", "truncated"),
}


@pytest.mark.parametrize("filename", list(BAD))
def test_bad_files_raise_probe_error_naming_the_file(filename: str, tmp_path: Path) -> None:
    data, what = BAD[filename]
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(ProbeError, match=rf"{filename}.*{what}") as exc_info:
        probe_file(path)
    assert exc_info.value.path == str(path)
    assert not isinstance(exc_info.value, UnsupportedImageError)


@pytest.mark.parametrize("kind", ["png-rgb8", "jpeg-rgb", "tiff-gray8", "webp-lossless"])
def test_truncated_headers_raise_probe_error(kind: str) -> None:
    fmt, make = KINDS[kind]
    data = make()
    with pytest.raises(ProbeError, match=r"cut\.img: "):
        probe_bytes(data[:14], name="cut.img")
    assert probe_bytes(data).format == fmt


def test_absurd_dimensions_raise_probe_error() -> None:
    data = bytearray(imagecodecs.png_encode(GRAY))
    data[16:24] = struct.pack(">II", 2**24, 3)
    with pytest.raises(ProbeError, match=r"huge\.png: absurd image size 16777216x3"):
        probe_bytes(bytes(data), name="huge.png")
    data[16:24] = struct.pack(">II", 2**20, 2**20)
    with pytest.raises(ProbeError, match=r"absurd image size"):
        probe_bytes(bytes(data), name="huge.png")
    jpeg = bytearray(imagecodecs.jpeg8_encode(GRAY))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 37, 0)
    with pytest.raises(ProbeError, match=r"zero\.jpg: corrupt header: image size 0x37"):
        probe_bytes(bytes(jpeg), name="zero.jpg")

    tiff = bytearray(
        tiff_ifd_at_end(4, 5).replace(
            struct.pack("<HHII", 256, 4, 1, 5), struct.pack("<HHII", 256, 4, 1, 2**30)
        )
    )
    with pytest.raises(ProbeError, match=r"wide\.tif: absurd image size 1073741824x4"):
        probe_bytes(bytes(tiff), name="wide.tif")


def test_ifd_entry_count_is_bounded() -> None:
    data = b"II*\x00\x08\x00\x00\x00" + struct.pack("<H", 60000) + bytes(64)
    with pytest.raises(ProbeError, match=r"x\.tif: corrupt TIFF: IFD at offset 8 has 60000"):
        probe_bytes(data, name="x.tif")


def test_missing_file_raises_probe_error(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match=r"nope\.png: cannot read file"):
        probe_file(tmp_path / "nope.png")


KNOWN_BAD_SIZES = (0, 3, 82)  # zero-byte .png, 3-byte .jpeg, text .png


@pytest.mark.skipif(not PLANTCV.is_dir(), reason=f"{PLANTCV} (PlantCV test data) is absent")
def test_plantcv_testdata() -> None:
    files = sorted(p for p in PLANTCV.rglob("*") if p.suffix.lower() in EXTENSIONS)
    assert files
    probed = 0
    for path in files:
        if path.stat().st_size in KNOWN_BAD_SIZES:
            with pytest.raises(ProbeError, match=str(path).replace("(", r"\(")):
                probe_file(path)
            continue
        info = probe_file(path)
        expected = imagecodecs.imread(path)
        assert (info.shape, info.dtype) == (expected.shape, expected.dtype.name), path
        probed += 1
    assert probed >= 10
