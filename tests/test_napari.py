"""The napari reader plugin, tested without napari: LayerData tuples and the npe2 manifest."""

from __future__ import annotations

import importlib
import importlib.resources
import tomllib
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

import imagezarr
from imagezarr.napari import get_reader, layers, read
from imagezarr.testing import PSII_BY_PLANT, PSII_SCAN, make_psii_experiment, write_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def grouped(tmp_path):
    truth = make_psii_experiment(
        tmp_path / "img", plants=3, nights=2, steps=2, frames=2, shape=(12, 16), holes=1
    )
    saved = imagezarr.scan(tmp_path / "img", **PSII_BY_PLANT).save(tmp_path / "exp.imagezarr.json")
    return saved, truth


def test_reader_claims_manifests_only(grouped, tmp_path):
    saved, _ = grouped
    assert get_reader(str(saved)) is read
    assert get_reader(saved) is read
    assert get_reader([str(saved), str(saved)]) is read
    assert get_reader(str(tmp_path / "image.png")) is None
    assert get_reader([str(saved), str(tmp_path / "a.json")]) is None
    assert get_reader([]) is None


def test_one_lazy_layer_per_group_matching_the_pixels(grouped):
    saved, truth = grouped
    m = imagezarr.load_manifest(saved)
    out = read(str(saved))
    assert [kwargs["name"] for _, kwargs, _ in out] == [n.path for n in m.nodes]
    for (data, kwargs, kind), node in zip(out, m.nodes, strict=True):
        assert kind == "image"
        assert isinstance(data, da.Array)
        assert data.shape == (*node.shape, 12, 16)
        assert data.dtype == np.uint8
        assert data.chunksize == (1,) * len(node.shape) + (12, 16)  # one file per chunk
        assert kwargs["axis_labels"] == ("night", "param", "frame", "y", "x")
        assert kwargs["rgb"] is False
        lo, hi = kwargs["contrast_limits"]
        assert 0 <= lo < hi <= 255
        meta = kwargs["metadata"]["imagezarr"]
        assert meta["manifest"] == str(saved)
        assert meta["group"] == node.path
        assert meta["labels"]["night"] == list(node.coords["night"].values)  # str labels
        assert set(meta["labels"]["night"]) <= {"2020-05-31", "2020-06-01"}
        assert meta["labels"]["param"] == ["PSII0", "PSII1"]
        for idx in np.argwhere(node.file_index >= 0):
            path = m.files.paths[int(node.file_index[tuple(idx)])]
            np.testing.assert_array_equal(data[tuple(idx)].compute(), truth[path])


def test_contrast_limits_are_percentiles_of_sample_images(tmp_path):
    for k in range(3):
        pixels = (np.arange(40 * 50).reshape(40, 50) * (k + 1)).astype(np.uint16)
        write_image(tmp_path / f"A1-{k + 1}.png", pixels)
    m = imagezarr.scan(tmp_path, pattern=r"A1-(?P<frame>\d)\.png", types={"frame": "int"})
    ((data, kwargs, _),) = layers(m)
    sample = np.concatenate([data[i].compute().ravel() for i in range(3)])
    assert kwargs["contrast_limits"] == pytest.approx(tuple(np.percentile(sample, (0.5, 99.5))))
    assert kwargs["name"] == tmp_path.name  # a manifest object: named after its root


def test_rgb_is_channels_last_and_not_an_axis(tmp_path):
    rng = np.random.default_rng(0)
    images = {
        f"A1-{k + 1}.png": rng.integers(0, 255, (10, 14, 3), dtype=np.uint8) for k in range(2)
    }
    for name, pixels in images.items():
        write_image(tmp_path / "img" / name, pixels)
    m = imagezarr.scan(tmp_path / "img", pattern=r"A1-(?P<frame>\d)\.png", types={"frame": "int"})
    saved = m.save(tmp_path / "rgb.imagezarr.json")
    ((data, kwargs, _),) = read([saved])
    assert kwargs["rgb"] is True
    assert kwargs["axis_labels"] == ("frame", "y", "x")
    assert "contrast_limits" not in kwargs  # napari's 0-255 fits 8-bit RGB
    assert kwargs["name"] == "rgb"
    assert data.shape == (2, 10, 14, 3)
    np.testing.assert_array_equal(data[1].compute(), images["A1-2.png"])


def test_planar_rgb_tiff_is_moved_to_channels_last(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(1)
    planes = rng.integers(0, 255, (3, 10, 12), dtype=np.uint8)
    for k in range(2):
        tifffile.imwrite(
            tmp_path / f"A1-{k + 1}.tif", planes, planarconfig="separate", photometric="rgb"
        )
    m = imagezarr.scan(tmp_path, pattern=r"A1-(?P<frame>\d)\.tif", types={"frame": "int"})
    assert m.nodes[0].image.axes == "cyx"
    ((data, kwargs, _),) = layers(m)
    assert kwargs["rgb"] is True
    assert kwargs["axis_labels"] == ("frame", "y", "x")
    np.testing.assert_array_equal(data[0].compute(), np.moveaxis(planes, 0, -1))


def test_one_array_manifest_is_one_layer(tmp_path):
    make_psii_experiment(
        tmp_path / "img", plants=2, nights=1, steps=1, frames=2, shape=(8, 8), holes=0
    )
    saved = imagezarr.scan(tmp_path / "img", **PSII_SCAN).save(tmp_path / "psii.imagezarr.json")
    ((data, kwargs, _),) = read(saved)
    assert kwargs["name"] == "psii"
    assert kwargs["axis_labels"] == ("barcode", "night", "param", "frame", "y", "x")
    assert data.ndim == 6


def npe2_manifest() -> dict:
    import yaml  # dask, a core dependency, requires PyYAML

    text = importlib.resources.files("imagezarr.napari").joinpath("napari.yaml").read_text()
    return yaml.safe_load(text)


def test_npe2_manifest_points_at_the_reader():
    doc = npe2_manifest()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert doc["name"] == project["name"]  # npe2 requires the distribution name
    entry = project["entry-points"]["napari.manifest"]
    assert entry == {"imagezarr": "imagezarr.napari:napari.yaml"}
    package, _, resource = entry["imagezarr"].partition(":")
    assert importlib.resources.files(package).joinpath(resource).is_file()
    commands = {c["id"]: c for c in doc["contributions"]["commands"]}
    (reader,) = doc["contributions"]["readers"]
    assert reader["filename_patterns"] == ["*.imagezarr.json"]
    assert reader["accepts_directories"] is False
    command = commands[reader["command"]]
    assert command["id"].startswith(f"{doc['name']}.")  # npe2: ids start with the plugin name
    module, _, attribute = command["python_name"].partition(":")
    assert getattr(importlib.import_module(module), attribute) is get_reader
    assert "napari>=0.5" in project["optional-dependencies"]["napari"]
