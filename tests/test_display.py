"""Pixels to screen: one rule for the contact sheet, the viewer and napari."""

from __future__ import annotations

import numpy as np
import pytest

from imagezarr import display
from imagezarr.preview._draw import stretch as sheet_stretch
from imagezarr.preview._thumbs import box_reduce
from imagezarr.serve._viewer import shrink, to_uint8


def reference(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Box means in float64, partial edge blocks over the pixels they hold."""
    h, w = pixels.shape[:2]
    out = np.empty((-(-h // factor), -(-w // factor), *pixels.shape[2:]))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = pixels[i * factor : (i + 1) * factor, j * factor : (j + 1) * factor]
            out[i, j] = block.astype(np.float64).mean(axis=(0, 1))
    return out


@pytest.mark.parametrize("factor", [2, 3, 5, 7])
@pytest.mark.parametrize("shape", [(30, 40), (31, 41, 3), (17, 23, 4)])
def test_reduce_is_exact_for_8_bit(shape, factor):
    """Pillow's own 8-bit reduction is off by one for some 3 x 3 sums: not used as is."""
    a = np.random.default_rng(factor).integers(0, 256, shape).astype(np.uint8)
    got = display.reduce(a, factor)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.floor(reference(a, factor) + 0.5).astype(np.uint8))


def test_reduce_of_other_types():
    a = np.random.default_rng(1).integers(0, 65536, (20, 30)).astype(np.uint16)
    np.testing.assert_allclose(display.reduce(a, 3), reference(a, 3), rtol=1e-6)
    assert display.reduce(np.eye(4, dtype=bool), 2).tolist() == [[128, 0], [0, 128]]
    c = np.full((2, 2), 3 + 4j)
    assert display.reduce(c, 2).tolist() == [[5.0]]


def test_plane_puts_channels_last_and_takes_the_first_of_other_axes():
    zyx = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    np.testing.assert_array_equal(display.plane(zyx, "zyx"), zyx[0])
    cyx = np.arange(3 * 2 * 2).reshape(3, 2, 2)
    assert display.plane(cyx, "cyx").shape == (2, 2, 3)
    two = np.zeros((4, 5, 2))
    assert display.plane(two, "yxc").shape == (4, 5)  # 2 samples: not colour
    assert display.plane(np.zeros((4, 5, 4)), "").shape == (4, 5, 4)  # RGBA kept


def test_stretch_rules():
    u8 = np.array([[0, 7]], np.uint8)
    assert display.stretch([u8]) == ([u8], None)  # as stored
    shown, limits = display.stretch([u8], lo=0, hi=14)
    assert shown[0].tolist() == [[0, 128]]
    assert limits == (0, 14)
    assert display.stretch([np.array([True, False])])[0][0].tolist() == [255, 0]
    f = np.array([[np.nan, 1.0, 3.0]])
    shown, limits = display.stretch([f], (0, 100))
    assert shown[0].tolist() == [[0, 0, 255]]
    assert limits == (1.0, 3.0)
    assert display.limits_of([np.array([np.nan])]) == (0.0, 1.0)


def test_the_sheet_and_the_viewer_use_the_display_rule():
    a = np.random.default_rng(3).integers(0, 4096, (33, 47)).astype(np.uint16)
    np.testing.assert_array_equal(box_reduce(a, 3), display.reduce(a, 3))
    np.testing.assert_array_equal(shrink(a, 16), display.reduce(a, display.factor_for(a.shape, 16)))
    small = display.reduce(a, 3)
    viewer, vlimits = to_uint8(small, "uint16")
    sheet, slimits = sheet_stretch([small], display.PERCENTILES)
    np.testing.assert_array_equal(viewer, sheet[0])
    assert vlimits == slimits
