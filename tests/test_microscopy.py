"""Microscopy names: t, c, z as fields, and the standard 5-D sequence as OME-Zarr 0.5."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import imagezarr
from imagezarr.cli import main
from imagezarr.errors import ExportError
from imagezarr.testing import random_image, write_image

PATTERN = r"img_t(?P<t>\d+)_c(?P<c>\d+)_z(?P<z>\d+)\.tif"
TYPES = {"t": "int", "c": "int", "z": "int"}


@pytest.fixture
def sequence(tmp_path):
    """2 time points x 3 channels x 4 planes of 16-bit 12x16 TIFFs."""
    images = tmp_path / "seq"
    truth = {}
    for t in range(2):
        for c in range(3):
            for z in range(4):
                pixels = random_image((12, 16), "uint16", seed=100 * t + 10 * c + z)
                name = f"img_t{t:03d}_c{c}_z{z:02d}.tif"
                write_image(images / name, pixels)
                truth[(t, c, z)] = pixels
    return images, truth


def test_t_c_z_are_fields_and_dims(sequence):
    images, truth = sequence
    m = imagezarr.scan(images, pattern=PATTERN, types=TYPES)  # used to be "reserved"
    node = m.node("")
    assert node.dims == ("t", "c", "z")
    assert node.image_dims == ("t", "c", "z", "y", "x")
    ds = imagezarr.open_dataset(m)
    assert ds.image.dims == ("t", "c", "z", "y", "x")
    np.testing.assert_array_equal(ds.image.sel(t=1, c=2, z=3).values, truth[(1, 2, 3)])


def test_rgb_images_rename_their_own_channel_axis(tmp_path):
    images = tmp_path / "rgb"
    for c in range(2):
        write_image(images / f"img_t000_c{c}_z00.png", random_image((6, 8, 3), seed=c))
    m = imagezarr.scan(images, pattern=PATTERN.replace("tif", "png"), types=TYPES)
    assert m.node("").image_dims == ("c", "y", "x", "channel")
    ds = imagezarr.open_dataset(m)
    assert ds.image.sel(c=1).shape == (6, 8, 3)


def test_five_d_sequence_exports_as_valid_ome_zarr(sequence, tmp_path):
    from ome_zarr_models.v05 import Image

    images, truth = sequence
    m = imagezarr.scan(images, pattern=PATTERN, types=TYPES)
    out = imagezarr.export.export(m, "zarr", tmp_path / "seq.ome.zarr", ome=True)
    group = zarr.open_group(out, mode="r")
    image = Image.from_zarr(group)  # validates against the OME-Zarr 0.5 models
    axes = image.attributes.ome.multiscales[0].axes
    assert [(a.name, a.type) for a in axes] == [
        ("t", "time"),
        ("c", "channel"),
        ("z", "space"),
        ("y", "space"),
        ("x", "space"),
    ]
    labels = [ch["label"] for ch in group.attrs["ome"]["omero"]["channels"]]
    assert labels == ["0", "1", "2"]
    np.testing.assert_array_equal(group["image"][1, 2, 3], truth[(1, 2, 3)])


def test_axis_types_can_be_given_for_other_names(tmp_path):
    from ome_zarr_models.v05 import Image

    images = tmp_path / "wl"
    for w in (405, 488):
        for k in range(2):
            write_image(images / f"wl{w}_plane{k}.tif", random_image((8, 8), "uint16", seed=w + k))
    m = imagezarr.scan(images, pattern=r"wl(?P<wl>\d+)_plane(?P<plane>\d+)\.tif")
    out = tmp_path / "wl.zarr"
    assert (
        main(
            [
                "export",
                "-q",
                "-f",
                "zarr",
                "--ome",
                "--ome-axis",
                "wl=channel",
                "-o",
                str(out),
                *_saved(m, tmp_path),
            ]
        )
        == 0
    )
    image = Image.from_zarr(zarr.open_group(out, mode="r"))
    assert [a.type for a in image.attributes.ome.multiscales[0].axes] == [
        "channel",
        "space",
        "space",
        "space",
    ]


def _saved(m: imagezarr.Manifest, tmp_path) -> list[str]:
    return [str(m.save(tmp_path / "m.imagezarr.json"))]


def test_layouts_ome_cannot_express_are_refused_clearly(sequence):
    images, _ = sequence
    m = imagezarr.scan(images, pattern=PATTERN, types=TYPES, dims=("t", "c", "z"))
    with pytest.raises(ExportError, match="axis_types: unknown dims"):
        imagezarr.hierarchy.ome_attributes(m.node(""), {"q": "time"})
