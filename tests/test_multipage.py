"""Files that hold many images: a multi-page TIFF is one image with a ``page`` axis inside the
dims its name gives, read pixel-exact against tifffile through every client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

import imagezarr
from imagezarr.preview import contact_sheet
from imagezarr.serve import start

tifffile = pytest.importorskip("tifffile")

PATTERN = r"stack_(?P<well>[A-H]\d\d)_t(?P<t>\d+)\.tif"


def write_stacks(folder: Path, pages: int = 12, **options) -> dict[str, np.ndarray]:
    """Z-stacks as microscopes write them: one file per well and time point."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    truth = {}
    for well in ("A01", "A02", "B01"):
        for t in (1, 2):
            stack = rng.integers(0, 4000, (pages, 24, 32), dtype=np.uint16)
            name = f"stack_{well}_t{t}.tif"
            tifffile.imwrite(folder / name, stack, photometric="minisblack", **options)
            truth[name] = stack
    return truth


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"compression": "zlib", "predictor": True},
        {"compression": "zlib", "tile": (16, 16)},
        {"imagej": True},
        {"ome": True},
        {"bigtiff": True, "compression": "lzw"},
    ],
    ids=["plain", "deflate-predictor", "tiled", "imagej", "ome", "bigtiff-lzw"],
)
def test_a_folder_of_z_stacks_is_one_labeled_array(tmp_path, options):
    truth = write_stacks(tmp_path / "img", **options)
    m = imagezarr.scan(tmp_path / "img", pattern=PATTERN, types={"t": "int"})
    (node,) = m.nodes
    assert node.image_dims == ("well", "t", "page", "y", "x")
    ds = imagezarr.open_dataset(m)
    image = ds.image
    assert image.dims == ("well", "t", "page", "y", "x")
    assert image.shape == (3, 2, 12, 24, 32)
    assert list(ds.well.values) == ["A01", "A02", "B01"]
    for name, stack in truth.items():
        well, t = name[6:9], int(name[11])
        np.testing.assert_array_equal(image.sel(well=well, t=t).values, stack)
    # dask: whole files per task, the pages inside them
    lazy = imagezarr.open_dataset(m, chunks={}).image
    assert lazy.data.chunksize[2:] == (12, 24, 32)
    np.testing.assert_array_equal(
        lazy.sel(well="B01", t=2, page=5).values, truth["stack_B01_t2.tif"][5]
    )


def test_stacks_of_different_depths_follow_the_mismatch_rules(tmp_path):
    write_stacks(tmp_path / "img", pages=12)
    tifffile.imwrite(tmp_path / "img" / "stack_C01_t1.tif", np.zeros((5, 24, 32), np.uint16))
    with pytest.raises(imagezarr.InconsistentImagesError, match=r"stack_C01_t1\.tif"):
        imagezarr.scan(tmp_path / "img", pattern=PATTERN, types={"t": "int"})
    m = imagezarr.scan(tmp_path / "img", pattern=PATTERN, types={"t": "int"}, on_mismatch="skip")
    assert "stack_C01_t1.tif" not in list(m.files.paths)


def test_a_file_whose_pages_differ_is_named(tmp_path):
    write_stacks(tmp_path / "img", pages=3)
    with tifffile.TiffWriter(tmp_path / "img" / "stack_C01_t1.tif") as w:
        w.write(np.zeros((24, 32), np.uint16))
        w.write(np.zeros((24, 32), np.uint8))
    with pytest.raises(imagezarr.ProbeError, match=r"stack_C01_t1.tif: TIFF pages differ: page 2"):
        imagezarr.scan(tmp_path / "img", pattern=PATTERN, types={"t": "int"})


def test_z_stacks_verify_serve_and_preview(tmp_path):
    truth = write_stacks(tmp_path / "img", pages=4, compression="zlib")
    m = imagezarr.scan(tmp_path / "img", pattern=PATTERN, types={"t": "int"})
    saved = m.save(tmp_path / "stacks.imagezarr.json")
    assert imagezarr.load_manifest(saved).nodes[0].image.axes == "pyx"
    assert imagezarr.verify(saved, decode=True).ok
    with start(m, codec="raw") as server:  # decoded on the server, read by plain zarr
        served = zarr.open_group(server.url, mode="r")["image"]
        assert served.shape == (3, 2, 4, 24, 32)
        np.testing.assert_array_equal(served[0, 1], truth["stack_A01_t2.tif"])
    sheet = contact_sheet(m, size=16)
    kinds = np.asarray(sheet.kinds).ravel().tolist()
    assert kinds.count("image") == 6
    assert np.asarray(sheet.image).std() > 0  # the cells show pixels (each file's first page)


def test_the_info_command_shows_the_page_dim(tmp_path):
    write_stacks(tmp_path / "img", pages=3)
    saved = imagezarr.scan(tmp_path / "img", pattern=PATTERN, types={"t": "int"}).save(
        tmp_path / "s.imagezarr.json"
    )
    done = subprocess.run(
        [sys.executable, "-m", "imagezarr", "info", str(saved)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "page" in done.stdout
