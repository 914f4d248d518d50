"""Contact sheets: cells against thumbnails computed here from the decoded files.

Every expected thumbnail is made in this file, independently of imagezarr: the file decoded
with ``imagecodecs.imread``, a box average in numpy (partial edge blocks averaged over the
pixels they hold), the contrast stretch written out, and compared with the cell cropped from
the sheet at the geometry the sheet reports. Tolerances: 1 grey level where the sheet decodes
the file in full (rounding); scaled JPEG / JPEG 2000 decodes are compared exactly with the
codec's own scaled output, and loosely (stated per test) with the full-resolution truth.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr.cli import main
from imagezarr.codecs import Jpeg, Jpeg2k, Png
from imagezarr.errors import (
    ChunkDecodeError,
    ChunkReadError,
    FilledChunkWarning,
    ManifestError,
    SourceChangedError,
)
from imagezarr.preview import contact_sheet
from imagezarr.preview._draw import FAILED, FAILED_MARK, HOLE, HOLE_MARK
from imagezarr.testing import PSII_SCAN, make_psii_experiment, write_image

PATTERN = {"pattern": r"(?P<plant>A\d+)-(?P<frame>\d+)\.\w+", "types": {"frame": "int"}}


def reference(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Box average of factor x factor blocks; partial edge blocks over the pixels they hold."""
    h, w = pixels.shape[:2]
    rows, cols = -(-h // factor), -(-w // factor)
    total = np.zeros((rows * factor, cols * factor, *pixels.shape[2:]))
    count = np.zeros((rows * factor, cols * factor) + (1,) * (pixels.ndim - 2))
    total[:h, :w], count[:h, :w] = pixels, 1
    blocks = (rows, factor, cols, factor)
    return total.reshape(*blocks, *pixels.shape[2:]).sum((1, 3)) / count.reshape(
        *blocks, *count.shape[2:]
    ).sum((1, 3))


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.floor(values + 0.5).clip(0, 255)


def cell_pixels(sheet, r: int, c: int, rgb: bool = False) -> np.ndarray:
    cell = np.asarray(sheet.cell(r, c)).astype(float)
    if not rgb:  # a gray cell is drawn with r = g = b
        assert (cell[..., 0] == cell[..., 1]).all()
        assert (cell[..., 1] == cell[..., 2]).all()
        return cell[..., 0]
    return cell


def asymmetric(shape: tuple[int, int], k: int, dtype: str = "uint8") -> np.ndarray:
    """Dark with a bright block in the top-left corner, a ramp to the right, and ``k`` as
    brightness: upside down, mirrored or transposed it looks different."""
    h, w = shape
    img = np.zeros(shape)
    img += np.linspace(10, 60, w)[None, :]
    img[: h // 3, : w // 4] = 220
    img += 5 * k
    if dtype == "uint16":
        return (img * 50 + 1000).astype(np.uint16)
    if dtype == "float32":
        return (img / 100 - 0.3).astype(np.float32)
    return img.clip(0, 255).astype(np.uint8)


def experiment(folder: Path, suffix: str, make, plants: int = 3, frames: int = 4):
    for p in range(plants):
        for f in range(frames):
            write_image(folder / f"A{p + 1}-{f + 1}{suffix}", make(p * frames + f))
    return imagezarr.scan(folder, **PATTERN)


def expected_cells(m, sheet, stretch: tuple[float, float] | None = None):
    """Thumbnails of every cell, made here; stretched as the sheet says when ``stretch``."""
    node = m.nodes[0]
    thumbs = {}
    for r in range(node.shape[0]):
        for c in range(node.shape[1]):
            full = imagecodecs.imread(
                imagezarr.open_manifest(m).location(int(node.file_index[r, c]))
            )
            thumbs[r, c] = reference(full.astype(float), sheet.factor)
    if stretch is not None:
        values = np.concatenate([t.ravel() for t in thumbs.values()])
        lo, hi = np.percentile(values, stretch)
        assert sheet.limits == pytest.approx((lo, hi), rel=1e-5)
        thumbs = {k: (t - lo) * 255 / (hi - lo) for k, t in thumbs.items()}
    return {k: to_uint8(t) for k, t in thumbs.items()}


def test_gray_cells_match_thumbnails_made_from_the_files(tmp_path):
    m = experiment(tmp_path / "png", ".png", lambda k: asymmetric((50, 70), k))
    sheet = contact_sheet(m, rows="plant", cols="frame", size=20)
    assert (sheet.factor, sheet.zoom, sheet.limits) == (4, 1, None)
    assert sheet.kinds.shape == (3, 4)
    assert (sheet.kinds == "image").all()
    for (r, c), want in expected_cells(m, sheet).items():
        got = cell_pixels(sheet, r, c)
        assert got.shape == (13, 18)  # ceil(50 / 4), ceil(70 / 4)
        assert np.abs(got - want).max() <= 1, (r, c)
    assert "uint8 as stored (no contrast stretch)" in sheet.caption


def test_orientation_row_zero_on_top_image_y_down(tmp_path):
    m = experiment(tmp_path / "png", ".png", lambda k: asymmetric((60, 80), k))
    sheet = contact_sheet(m, rows="plant", cols="frame", size=40)
    cell = cell_pixels(sheet, 0, 0)
    h, w = cell.shape
    assert cell[: h // 4, : w // 8].mean() > 200  # the bright block is top left
    assert cell[-h // 4 :, -w // 8 :].mean() < 120
    assert cell[-1, -1] > cell[-1, 0]  # the ramp rises to the right
    tops = [box[1] for box in sheet.geometry.row_labels]
    assert tops == sorted(tops)
    assert sheet.row_labels == ("A1", "A2", "A3")
    lefts = [box[0] for box in sheet.geometry.col_labels]
    assert lefts == sorted(lefts)
    assert sheet.col_labels == ("1", "2", "3", "4")
    assert sheet.cells[0, 0, 1] < sheet.cells[1, 0, 1]
    assert sheet.cells[0, 0, 0] < sheet.cells[0, 1, 0]
    # and the brightness order of the files is the order of the cells
    means = [cell_pixels(sheet, r, c).mean() for r in range(3) for c in range(4)]
    assert means == sorted(means)


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_16_bit_and_float_are_stretched_between_stated_percentiles(tmp_path, dtype):
    suffix = ".png" if dtype == "uint16" else ".tif"
    m = experiment(tmp_path / dtype, suffix, lambda k: asymmetric((40, 56), k, dtype))
    sheet = contact_sheet(m, rows="plant", cols="frame", size=14)
    assert sheet.percentiles == (0.5, 99.5)
    for (r, c), want in expected_cells(m, sheet, stretch=(0.5, 99.5)).items():
        assert np.abs(cell_pixels(sheet, r, c) - want).max() <= 1, (r, c)
    lo, hi = sheet.limits
    assert f"{dtype} stretched: 0.5-99.5 percentile of the pixels shown" in sheet.caption
    assert f"{lo:.4g} to {hi:.4g}" in sheet.caption
    other = contact_sheet(m, rows="plant", cols="frame", size=14, percentiles=(0, 100))
    assert other.limits[0] < lo
    assert other.limits[1] > hi


def test_rgb_stays_rgb(tmp_path):
    def make(k):
        g = asymmetric((36, 48), k)
        return np.stack([g, 255 - g, np.full_like(g, 40 + k)], axis=-1)

    m = experiment(tmp_path / "rgb", ".png", make)
    sheet = contact_sheet(m, rows="plant", cols="frame", size=12)
    for (r, c), want in expected_cells(m, sheet).items():
        assert np.abs(cell_pixels(sheet, r, c, rgb=True) - want).max() <= 1
    assert "RGB, uint8" in sheet.caption


def test_rgba_shows_rgb_and_says_so(tmp_path):
    def make(k):
        g = asymmetric((20, 20), k)
        return np.stack([g, g // 2, 255 - g, np.full_like(g, 128)], axis=-1)

    m = experiment(tmp_path / "rgba", ".png", make, plants=1, frames=2)
    sheet = contact_sheet(m, cols="frame", size=10)
    full = imagecodecs.imread(imagezarr.open_manifest(m).location(0))
    want = to_uint8(reference(full[..., :3].astype(float), 2))
    assert np.abs(cell_pixels(sheet, 0, 0, rgb=True) - want).max() <= 1
    assert "alpha not shown" in sheet.caption


def test_jpeg_thumbnails_decode_scaled_in_the_dct(tmp_path, monkeypatch):
    def make(k):
        g = asymmetric((96, 128), k)
        return np.stack([g, g // 2, 255 - g], axis=-1)

    m = experiment(tmp_path / "jpg", ".jpg", make, plants=2, frames=2)
    full_sheet = contact_sheet(m, rows="plant", cols="frame", size=128)  # factor 1: full decode

    def refuse(self, data):
        raise AssertionError("a full decode where the DCT could scale")

    monkeypatch.setattr(Jpeg, "_decode_raw", refuse)
    sheet = contact_sheet(m, rows="plant", cols="frame", size=32)
    assert sheet.factor == 4
    from PIL import Image

    for r in range(2):
        for c in range(2):
            path = imagezarr.open_manifest(m).location(int(m.nodes[0].file_index[r, c]))
            with Image.open(path) as im:
                im.draft("RGB", (32, 24))
                assert im.size == (32, 24)
                scaled = np.asarray(im)
            np.testing.assert_array_equal(cell_pixels(sheet, r, c, rgb=True), scaled)
            # against the full-resolution decode, box averaged: close (JPEG's own 1/4 scale
            # upsamples chroma differently at sharp colour edges)
            truth = reference(np.asarray(full_sheet.cell(r, c)).astype(float), 4)
            diff = np.abs(cell_pixels(sheet, r, c, rgb=True) - truth)
            assert diff.mean() < 3


def test_jpeg2k_thumbnails_skip_resolution_levels(tmp_path, monkeypatch):
    m = experiment(tmp_path / "j2k", ".jp2", lambda k: asymmetric((64, 96), k), 2, 2)

    def refuse(self, data):
        raise AssertionError("a full decode where JPEG 2000 could skip levels")

    monkeypatch.setattr(Jpeg2k, "_decode_raw", refuse)
    sheet = contact_sheet(m, rows="plant", cols="frame", size=12)
    assert sheet.factor == 8
    for r in range(2):
        for c in range(2):
            data = Path(
                imagezarr.open_manifest(m).location(int(m.nodes[0].file_index[r, c]))
            ).read_bytes()
            small = imagecodecs.jpeg2k_decode(data, skipres=3).astype(float)
            np.testing.assert_array_equal(cell_pixels(sheet, r, c), small)
            full = imagecodecs.jpeg2k_decode(data).astype(float)
            # the wavelet's low band is not a box average: close on average, not per pixel
            assert np.abs(small - reference(full, 8)).mean() < 12


def test_jpeg2k_with_few_levels_skips_what_it_has(tmp_path, monkeypatch):
    for k in range(2):
        pixels = asymmetric((64, 96), k)
        (tmp_path / f"A1-{k + 1}.jp2").write_bytes(
            imagecodecs.jpeg2k_encode(pixels, level=0, resolutions=2)  # one level to skip
        )
    m = imagezarr.scan(tmp_path, **PATTERN)
    monkeypatch.setattr(Jpeg2k, "_decode_raw", lambda self, data: 1 / 0)
    sheet = contact_sheet(m, cols="frame", size=12)
    assert sheet.factor == 8
    data = (tmp_path / "A1-1.jp2").read_bytes()
    small = imagecodecs.jpeg2k_decode(data, skipres=1).astype(float)  # half size, then 4 x 4
    assert np.abs(cell_pixels(sheet, 0, 0) - to_uint8(reference(small, 4))).max() <= 1


def test_holes_are_grey_crossed_cells(tmp_path):
    make_psii_experiment(tmp_path, plants=5, nights=3, steps=2, frames=2, shape=(16, 20), holes=3)
    m = imagezarr.scan(tmp_path, **PSII_SCAN)
    sheet = contact_sheet(m, rows="barcode", cols="night", size=20)
    node = m.nodes[0]
    assert node.dims == ("barcode", "night", "param", "frame")
    holes = node.file_index[:, :, 0, 0] < 0
    assert holes.sum() == 3
    np.testing.assert_array_equal(sheet.kinds == "hole", holes)
    for r, c in zip(*np.nonzero(holes), strict=True):
        cell = np.asarray(sheet.cell(r, c))
        h = cell.shape[0]
        assert tuple(cell[h // 2, 2]) == HOLE  # off the cross
        assert tuple(cell[0, 0]) == HOLE_MARK
        assert tuple(cell[h - 1, 0]) == HOLE_MARK
    assert "grey cross: no file" in sheet.caption
    assert "frame = 1 (first of 2" in sheet.caption


def test_labels_come_from_the_coordinates_and_are_drawn_by_their_rows(tmp_path):
    make_psii_experiment(tmp_path, plants=3, nights=2, steps=2, frames=2, shape=(16, 20), holes=0)
    m = imagezarr.scan(tmp_path, **PSII_SCAN)
    sheet = contact_sheet(m, rows="param", cols="night", sel={"barcode": "A2", "frame": 2}, size=20)
    assert sheet.row_labels == ("PSII0", "PSII1")
    assert sheet.col_labels == ("2020-05-31", "2020-06-01")
    assert sheet.fixed == {"barcode": "A2", "frame": "2"}
    img = np.asarray(sheet.image)
    for r, (x0, y0, x1, y1) in enumerate(sheet.geometry.row_labels):
        _, cy0, cx0, cy1 = sheet.cells[r, 0][[0, 1, 0, 3]]
        assert x1 <= cx0
        assert cy0 <= (y0 + y1) / 2 <= cy1
        assert img[y0:y1, x0:x1].min() < 100  # ink
    for c, (x0, y0, x1, y1) in enumerate(sheet.geometry.col_labels):
        cx0, cy0, cx1, _ = sheet.cells[0, c]
        assert y1 <= cy0
        assert cx0 <= (x0 + x1) / 2 <= cx1
        assert img[y0:y1, x0:x1].min() < 100
    x0, y0, x1, y1 = sheet.geometry.caption
    assert y0 >= sheet.cells[..., 3].max()
    assert img[y0:y1, x0:x1].min() < 100
    # the cells show the images chosen by label: barcode A2, frame 2
    node = m.nodes[0]
    b, f = node.coords["barcode"].values.index("A2"), node.coords["frame"].values.index(2)
    for r in range(2):
        for c in range(2):
            full = imagecodecs.imread(
                imagezarr.open_manifest(m).location(int(node.file_index[b, c, r, f]))
            )
            assert np.abs(cell_pixels(sheet, r, c) - to_uint8(reference(full, 1))).max() <= 1


def test_datetime_labels_and_long_labels_rotate(tmp_path):
    make_psii_experiment(tmp_path, plants=2, nights=1, steps=1, frames=2, shape=(8, 8), holes=0)
    m = imagezarr.scan(tmp_path, **{**PSII_SCAN, "dims": ("barcode", "timestamp", "frame")})
    sheet = contact_sheet(m, rows="frame", cols="timestamp", size=8)
    assert sheet.col_labels[0] == "2020-05-31 21:00:00"
    assert sheet.geometry.col_labels_rotated  # wider than an 8 px cell: written upwards
    x0, y0, x1, y1 = sheet.geometry.col_labels[0]
    assert y1 - y0 > x1 - x0
    again = contact_sheet(
        m, rows="frame", cols="timestamp", sel={"timestamp": "2020-05-31T21:00:00"}, size=8
    )
    assert again.col_labels == ("2020-05-31 21:00:00",)


def test_sel_lists_choose_and_order_rows(tmp_path):
    make_psii_experiment(tmp_path, plants=12, nights=1, steps=1, frames=2, shape=(8, 8), holes=0)
    m = imagezarr.scan(tmp_path, **PSII_SCAN)
    sheet = contact_sheet(m, rows="barcode", cols="frame", sel={"barcode": ["A10", "A2"]})
    assert sheet.row_labels == ("A10", "A2")
    want = imagecodecs.imread(tmp_path / "2020-05-31" / "A10-doi-20200531T220300-PSII0-1.png")
    got = cell_pixels(sheet, 0, 0)[:: sheet.zoom, :: sheet.zoom]
    np.testing.assert_array_equal(got, want)


def test_selection_errors_name_dims_and_labels(tmp_path):
    make_psii_experiment(tmp_path, plants=3, nights=2, steps=1, frames=2, shape=(8, 8), holes=0)
    m = imagezarr.scan(tmp_path, **PSII_SCAN)
    with pytest.raises(
        KeyError,
        match="night=2021-01-01 is not a label of 'night'; its labels: 2020-05-31, 2020-06-01",
    ):
        contact_sheet(m, rows="barcode", cols="frame", sel={"night": "2021-01-01"})
    with pytest.raises(
        KeyError, match="'plant' is not a dim of group '/'; its dims: barcode, night, param, frame"
    ):
        contact_sheet(m, rows="plant", cols="frame")
    with pytest.raises(ValueError, match="night is not a row or column dim"):
        contact_sheet(m, rows="barcode", cols="frame", sel={"night": ["2020-05-31", "2020-06-01"]})
    with pytest.raises(ValueError, match="different dims"):
        contact_sheet(m, rows="frame", cols="frame")
    with pytest.raises(ValueError, match="max_cells=4"):
        contact_sheet(m, rows="barcode", cols="frame", max_cells=4)


def test_groups_must_be_chosen(tmp_path):
    make_psii_experiment(tmp_path, plants=2, nights=1, steps=1, frames=2, shape=(8, 8), holes=0)
    m = imagezarr.scan(tmp_path, **{**PSII_SCAN, "group_by": "barcode", "dims": ("frame",)})
    with pytest.raises(
        KeyError, match=re.escape("2 groups; choose one with group= (--group): A1, A2")
    ):
        contact_sheet(m)
    sheet = contact_sheet(m, group="A2")
    assert sheet.group == "A2"
    assert sheet.cols == "frame"
    assert sheet.kinds.shape == (1, 2)


def test_missing_changed_and_corrupt_files_raise_naming_them(tmp_path):
    m = experiment(tmp_path / "png", ".png", lambda k: asymmetric((10, 12), k))
    node = m.nodes[0]
    missing = m.files.paths[int(node.file_index[0, 1])]
    (tmp_path / "png" / missing).unlink()
    with pytest.raises(ChunkReadError, match=f"{missing}: file is missing"):
        contact_sheet(m, rows="plant", cols="frame")
    m = experiment(tmp_path / "b", ".png", lambda k: asymmetric((10, 12), k))
    changed = tmp_path / "b" / m.files.paths[int(m.nodes[0].file_index[1, 2])]
    changed.write_bytes(changed.read_bytes() + b"\0")
    with pytest.raises(SourceChangedError, match=f"{changed.name}: file changed since the scan"):
        contact_sheet(m, rows="plant", cols="frame")
    m = experiment(tmp_path / "c", ".png", lambda k: asymmetric((10, 12), k))
    corrupt = tmp_path / "c" / m.files.paths[int(m.nodes[0].file_index[2, 3])]
    st = corrupt.stat()
    corrupt.write_bytes(corrupt.read_bytes()[:40].ljust(st.st_size, b"\0"))
    os.utime(corrupt, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and time: undetected
    with pytest.raises(ChunkDecodeError, match=f"{corrupt.name}: cannot decode as PNG"):
        contact_sheet(m, rows="plant", cols="frame")


def test_fill_marks_the_cell_and_warns_naming_the_file(tmp_path):
    m = experiment(tmp_path / "png", ".png", lambda k: asymmetric((20, 24), k))
    node = m.nodes[0]
    gone = m.files.paths[int(node.file_index[1, 1])]
    (tmp_path / "png" / gone).unlink()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", FilledChunkWarning)
        sheet = contact_sheet(m, rows="plant", cols="frame", on_error="fill")
    assert [str(w.message) for w in seen] == [
        f"{gone}: shown as an empty cell crossed in red (file is missing (it was scanned))"
    ]
    assert sheet.kinds[1, 1] == "failed"
    assert (sheet.kinds == "image").sum() == 11
    assert sheet.failed == (gone,)
    cell = np.asarray(sheet.cell(1, 1))
    assert tuple(cell[cell.shape[0] // 2, 1]) == FAILED
    assert tuple(cell[0, 0]) == FAILED_MARK
    assert "red cross: file could not be read" in sheet.caption


def test_small_images_are_enlarged_by_pixel_copies(tmp_path):
    m = experiment(tmp_path / "png", ".png", lambda k: asymmetric((6, 9), k), 1, 2)
    sheet = contact_sheet(m, cols="frame", size=40)
    assert (sheet.factor, sheet.zoom) == (1, 4)
    want = np.repeat(
        np.repeat(imagecodecs.imread(imagezarr.open_manifest(m).location(0)), 4, 0), 4, 1
    )
    np.testing.assert_array_equal(cell_pixels(sheet, 0, 0), want)


def test_one_dim_wraps_over_rows_with_a_label_per_cell(tmp_path):
    for k in range(20):
        write_image(tmp_path / f"img{k:02d}.png", asymmetric((8, 8), k))
    m = imagezarr.scan(tmp_path)
    sheet = contact_sheet(m, size=16)
    assert sheet.rows is None
    assert sheet.kinds.shape == (3, 8)
    assert (sheet.kinds == "image").sum() == 20
    assert (sheet.kinds == "").sum() == 4
    assert len(sheet.geometry.cell_labels) == 20
    assert (sheet.cells[2, 4:] == -1).all()
    x0, y0, _, _ = sheet.geometry.cell_labels[9]  # the 10th file: row 1, column 1
    assert y0 >= sheet.cells[1, 1, 3]
    assert sheet.cells[1, 1, 0] <= x0


def test_preview_returns_the_image_and_saves_atomically_outside_the_source(tmp_path):
    m = experiment(tmp_path / "png", ".png", lambda k: asymmetric((10, 12), k))
    out = tmp_path / "sheet.png"
    image = imagezarr.preview(m, rows="plant", cols="frame", out=out)
    assert image.mode == "RGB"
    np.testing.assert_array_equal(imagecodecs.imread(out), np.asarray(image))
    with pytest.raises(ManifestError, match="never writes into the source"):
        imagezarr.preview(m, rows="plant", cols="frame", out=tmp_path / "png" / "sheet.png")
    assert not (tmp_path / "png" / "sheet.png").exists()
    with pytest.raises(ValueError, match="image format"):
        imagezarr.preview(m, out=tmp_path / "sheet.xyz")


def test_cli_preview(tmp_path, capsys):
    make_psii_experiment(
        tmp_path / "img", plants=3, nights=2, steps=2, frames=2, shape=(8, 8), holes=0
    )
    saved = imagezarr.scan(tmp_path / "img", **PSII_SCAN).save(tmp_path / "m.imagezarr.json")
    out = tmp_path / "sheet.png"
    args = ["preview", str(saved), "-o", str(out), "--rows", "barcode", "--cols", "frame"]
    assert main([*args, "--sel", "night=2020-06-01", "--sel", "barcode=A3"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}: 1 x 2 cells" in text
    assert "night = 2020-06-01" in text
    assert "param = PSII0 (first of 2" in text
    assert imagecodecs.imread(out).ndim == 3
    assert main([*args, "--sel", "night=1999-01-01"]) == 1
    assert "night=1999-01-01 is not a label of 'night'" in capsys.readouterr().err
    assert main([*args, "--sel", "night"]) != 0


def test_cli_fill_names_the_file(tmp_path, capsys):
    make_psii_experiment(
        tmp_path / "img", plants=2, nights=1, steps=1, frames=2, shape=(8, 8), holes=0
    )
    saved = imagezarr.scan(tmp_path / "img", **PSII_SCAN).save(tmp_path / "m.imagezarr.json")
    victim = sorted((tmp_path / "img").rglob("*.png"))[0]
    victim.unlink()
    out = tmp_path / "sheet.png"
    args = ["preview", str(saved), "-o", str(out)]
    assert main(args) == 1
    assert f"{victim.name}: file is missing" in capsys.readouterr().err
    assert main([*args, "--on-error", "fill"]) == 0
    captured = capsys.readouterr()
    assert f"{victim.name}: shown as an empty cell crossed in red" in captured.err
    assert "1 failed" in captured.out


@pytest.fixture
def notebook():
    """A real IPython shell; ``show(obj)`` is the HTML a notebook would render for ``obj``."""
    interactive = pytest.importorskip("IPython.core.interactiveshell")
    shell = interactive.InteractiveShell.instance()
    imagezarr._notebook_view()  # as `import imagezarr` does inside a running kernel

    def show(obj):
        return shell.display_formatter.format(obj)[0].get("text/html")

    yield show
    interactive.InteractiveShell.clear_instance()


def test_a_kernel_that_imports_imagezarr_shows_manifests_as_html(tmp_path):
    """The order of a real notebook: the kernel runs, then the user imports imagezarr."""
    pytest.importorskip("IPython")
    make_psii_experiment(tmp_path, plants=2, nights=1, steps=1, frames=1, shape=(4, 4), holes=0)
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "import imagezarr\n"
        f"m = imagezarr.scan({str(tmp_path)!r}, **{PSII_SCAN!r})\n"
        "print(shell.display_formatter.format(m)[0]['text/html'])\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.startswith(
        "<div class='imagezarr-manifest'><div><b>imagezarr manifest</b>: 2 files"
    )
    assert "data:image/png;base64," in run.stdout


def test_manifest_html_has_the_summary_and_a_sheet(tmp_path, notebook):
    make_psii_experiment(tmp_path, plants=10, nights=2, steps=1, frames=12, shape=(8, 8), holes=1)
    m = imagezarr.scan(tmp_path, **PSII_SCAN)
    page = notebook(m)
    assert f"{len(m.files)} files" in page
    assert "(10, 2, 1, 12, 8, 8) uint8 png" in page
    assert "<b>barcode</b> [10]: A1, A2, A3, A4, ..." in page
    assert "more groups" not in page
    assert "<b>night</b> [2]: 2020-05-31, 2020-06-01" in page
    assert "12 of 240" in page  # holes: one plant missing one night
    found = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert found
    import base64

    sheet = imagecodecs.png_decode(base64.b64decode(found.group(1)))
    assert sheet.ndim == 3
    assert sheet.shape[0] > 50
    assert "the first 6 of 10 barcode and the first 8 of 12 frame" in page


def test_manifest_html_never_raises(tmp_path, monkeypatch, notebook):
    m = experiment(tmp_path / "png", ".png", lambda k: asymmetric((10, 12), k))
    (tmp_path / "png" / m.files.paths[0]).unlink()
    page = notebook(m)
    assert "12 files" in page
    assert "<img" not in page
    assert f"No contact sheet: ChunkReadError: {m.files.paths[0]}: file is missing" in page
    from imagezarr.preview import _html as html_module

    def broken(m):
        raise RuntimeError("boom")

    monkeypatch.setattr(html_module, "_table", broken)
    monkeypatch.setattr(html_module, "_sheet", broken)
    assert "no table: RuntimeError: boom" in notebook(m)
    import importlib

    monkeypatch.setattr(importlib.import_module("imagezarr.preview"), "summary_html", broken)
    assert notebook(m) == f"<pre>imagezarr manifest: 12 files; root {m.root}\n(boom)</pre>"


def test_png_decode_path_is_the_stores_codec(tmp_path, monkeypatch):
    """Formats without a reduced decode go through the array's own codec (same checks)."""
    m = experiment(tmp_path / "png", ".png", lambda k: asymmetric((10, 12), k), 1, 2)
    calls = []
    original = Png._decode_raw

    def counted(self, data):
        calls.append(len(data))
        return original(self, data)

    monkeypatch.setattr(Png, "_decode_raw", counted)
    contact_sheet(m, cols="frame")
    assert len(calls) == 2


def test_readme_preview_command_runs_as_written(tmp_path, monkeypatch, capsys):
    """The README's preview line, on the data of its tutorial (its picture is made so too)."""
    from test_readme import tutorial_scan_command

    make_psii_experiment(tmp_path / "images", plants=12, nights=3, steps=4, frames=3)
    monkeypatch.chdir(tmp_path)
    assert main(tutorial_scan_command()) == 0
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    found = re.search(r"```console\n(imagezarr preview .*?)```", text, re.DOTALL)
    assert found is not None, "the README lost its preview example"
    capsys.readouterr()
    assert main(shlex.split(found.group(1))[1:]) == 0
    assert (
        "3 x 12 cells, 33 images, 3 holes; rows night, columns barcode" in capsys.readouterr().out
    )
    assert (tmp_path / "sheet.png").is_file()
    assert (Path(__file__).resolve().parents[1] / "docs/images/psii-contact-sheet.png").is_file()


def test_manifest_html_lists_at_most_20_groups(tmp_path, notebook):
    make_psii_experiment(tmp_path, plants=23, nights=1, steps=1, frames=1, shape=(4, 4), holes=0)
    m = imagezarr.scan(tmp_path, **{**PSII_SCAN, "group_by": "barcode", "dims": ("frame",)})
    page = notebook(m)
    assert "<td style='text-align:left'>A20</td>" in page
    assert "<td style='text-align:left'>A21</td>" not in page
    assert "... and 3 more groups" in page
    assert "Group A1;" in page  # the sheet shows the first group


def test_labels_with_accents_are_drawn_with_a_font_that_has_them(monkeypatch):
    """Pillow's bundled font draws a box for every letter outside ASCII ("Versuch Größe"):
    a system font with those glyphs is preferred, the bundled one is the last resort."""
    from PIL import ImageFont

    from imagezarr.preview import _draw

    def mask(f, text):
        return np.asarray(f.getmask(text)).tobytes()

    _draw.font.cache_clear()
    chosen = _draw.font()
    bundled = ImageFont.load_default(size=_draw.FONT_SIZE)
    assert mask(bundled, "ö") == mask(bundled, "\uffff")  # why a system font is looked for
    if chosen.getname() == bundled.getname():
        pytest.skip(f"none of {_draw.WIDE_FONTS} is installed here")
    for letter in "öäüßé":
        assert mask(chosen, letter) != mask(chosen, "\uffff"), letter

    monkeypatch.setattr(_draw, "WIDE_FONTS", ("no-such-font.ttf",))  # a bare machine
    _draw.font.cache_clear()
    try:
        assert _draw.font().getname() == bundled.getname()
    finally:
        _draw.font.cache_clear()
