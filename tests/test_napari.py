"""The napari reader plugin: LayerData tuples, the npe2 manifest and what the viewer shows
(labels, holes, grid), against a stand-in for napari's viewer and, where it installs, napari."""

from __future__ import annotations

import importlib
import importlib.resources
import os
import sys
import tomllib
import types
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

import imagezarr
from imagezarr.napari import attach, get_reader, layers, read
from imagezarr.napari._viewer import _grid, _text_overlay
from imagezarr.preview import format_label
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


# -- what the viewer shows: labels of the slice, holes, a grid for groups ---------------------


class _Event:
    def __init__(self) -> None:
        self.callbacks: list = []

    def connect(self, callback) -> None:
        self.callbacks.append(callback)

    def __call__(self, value=None) -> None:
        for callback in self.callbacks:
            callback(types.SimpleNamespace(value=value))


class _Layer:
    """What attach reads of a napari layer: ndim, metadata, visible and its visible event."""

    def __init__(self, data, kwargs) -> None:
        self.data, self.kwargs = data, kwargs
        self.metadata = kwargs.get("metadata", {})
        self.ndim = data.ndim - (1 if kwargs.get("rgb") else 0)
        self.events = types.SimpleNamespace(visible=_Event())
        self._visible = True

    @property
    def visible(self) -> bool:
        return self._visible

    @visible.setter
    def visible(self, value: bool) -> None:
        self._visible = value
        self.events.visible()


class _Viewer:
    """The parts of napari's Viewer that attach uses, with napari's alignment of dims: the
    viewer has as many dims as its largest layer, and sliders start at 0."""

    def __init__(self) -> None:
        self.layers: list[_Layer] = []
        self.dims = types.SimpleNamespace(current_step=(), events=types.SimpleNamespace())
        self.dims.events.current_step = _Event()
        self.layers_events = types.SimpleNamespace(inserted=_Event(), removed=_Event())
        self.text_overlay = types.SimpleNamespace(text="", visible=False)
        self.grid = types.SimpleNamespace(enabled=False)

    def add(self, layer_data) -> None:
        for data, kwargs, _ in layer_data:
            layer = _Layer(data, kwargs)
            self.layers.append(layer)
            ndim = max(x.ndim for x in self.layers)
            self.dims.current_step = (0,) * (ndim - len(self.dims.current_step)) + tuple(
                self.dims.current_step
            )
            self.layers_events.inserted(layer)

    def move(self, **where: int) -> None:
        """Set sliders by the first layer's dim names."""
        first = self.layers[0]
        dims = first.metadata["imagezarr"]["dims"]
        step = list(self.dims.current_step)
        offset = len(step) - first.ndim
        for name, i in where.items():
            step[offset + dims.index(name)] = i
        self.dims.current_step = tuple(step)
        self.dims.events.current_step()


class _Layers(list):
    pass


@pytest.fixture
def viewer():
    v = _Viewer()
    layers_list = _Layers()
    layers_list.events = v.layers_events
    v.layers = layers_list
    return v


def test_the_overlay_shows_the_labels_of_the_slice_and_follows_the_sliders(tmp_path, viewer):
    make_psii_experiment(
        tmp_path / "img", plants=2, nights=2, steps=2, frames=2, shape=(8, 8), holes=0
    )
    saved = imagezarr.scan(tmp_path / "img", **PSII_SCAN).save(tmp_path / "psii.imagezarr.json")
    m = imagezarr.load_manifest(saved)
    node = m.nodes[0]
    attach(viewer)
    viewer.add(read(saved))
    assert viewer.text_overlay.visible
    first = "  ".join(f"{d}={format_label(node.coords[d].values[0])}" for d in node.dims)
    assert viewer.text_overlay.text == first
    assert "night=2020-05-31" in first  # a label, not slider index 0
    viewer.move(barcode=1, night=1, frame=1)
    text = viewer.text_overlay.text
    assert f"barcode={node.coords['barcode'].values[1]}" in text
    assert "night=2020-06-01" in text
    assert "frame=2" in text
    assert not viewer.grid.enabled  # one array: one layer, no grid


def test_holes_are_a_layer_and_named_in_the_overlay(tmp_path, viewer):
    for plant, frames in (("A1", (1, 2)), ("A2", (1,))):  # A2 frame 2 is a hole
        for frame in frames:
            write_image(tmp_path / "img" / f"{plant}-{frame}.png", np.full((6, 10), 50, np.uint8))
    m = imagezarr.scan(
        tmp_path / "img", pattern=r"(?P<plant>A\d)-(?P<frame>\d)\.png", types={"frame": "int"}
    )
    out = layers(m)
    assert [kind for _, _, kind in out] == ["image", "image"]
    (data, kwargs, _), (holes, hkw, _) = out
    assert hkw["name"] == f"{kwargs['name']} holes"
    assert holes.shape == (2, 2, 1, 1)
    assert holes[:, :, 0, 0].tolist() == [[0, 0], [0, 1]]
    assert hkw["scale"] == (1, 1, 6, 10)
    assert hkw["translate"] == (0, 0, 2.5, 4.5)  # the tile covers pixels 0..5 x 0..9
    assert hkw["metadata"]["imagezarr"]["holes"] is True
    assert data[1, 1].compute().max() == 0  # the hole reads as the fill value...
    attach(viewer)
    viewer.add(out)
    viewer.move(plant=1, frame=1)
    assert viewer.text_overlay.text == "plant=A2  frame=2  (hole: no file)"  # ...and says so
    viewer.move(plant=1, frame=0)
    assert viewer.text_overlay.text == "plant=A2  frame=1"


def test_a_grouped_manifest_opens_in_grid_mode_with_a_line_per_visible_group(grouped, viewer):
    saved, _ = grouped
    attach(viewer)
    attach(viewer)  # connecting twice does not double the handlers
    assert len(viewer.dims.events.current_step.callbacks) == 1
    viewer.add(read(saved))
    assert viewer.grid.enabled
    lines = viewer.text_overlay.text.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["A1", "A2", "A3"]
    viewer.layers[1].visible = False
    assert [line.split("  ")[0] for line in viewer.text_overlay.text.splitlines()] == ["A1", "A3"]


def test_the_reader_attaches_to_napari_s_current_viewer(grouped, viewer, monkeypatch):
    saved, _ = grouped
    fake = types.ModuleType("napari")
    fake.current_viewer = lambda: viewer
    monkeypatch.setitem(sys.modules, "napari", fake)
    viewer.add(read(saved))
    assert viewer.grid.enabled
    assert viewer.text_overlay.text.startswith("A1  night=")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # napari's own, pydantic's
@pytest.mark.filterwarnings("ignore::UserWarning")  # Qt theme detection under Xvfb
def test_with_napari_itself(grouped):
    """Real napari (run where it installs: under Xvfb, e.g. ``xvfb-run -a pytest ...``)."""
    import warnings

    with warnings.catch_warnings():  # napari's own deprecation warnings at import
        warnings.simplefilter("ignore")
        napari = pytest.importorskip("napari", reason="napari is not installed (imagezarr[napari])")
    if not os.environ.get("DISPLAY"):
        pytest.skip("napari needs a display (run under xvfb-run)")
    saved, _ = grouped
    v = napari.Viewer(show=False)
    try:
        added = v.open(str(saved), plugin="imagezarr")
        names = [layer.name for layer in added]
        assert names[:1] == ["A1"]
        assert {"A1", "A2", "A3"} <= set(names)
        overlay = _text_overlay(v)
        assert _grid(v).enabled
        assert overlay.visible
        assert overlay.text.splitlines()[0].startswith("A1  night=2020-05-31")
        step = list(v.dims.current_step)
        step[-5] = 1  # night
        v.dims.current_step = tuple(step)
        assert "night=2020-06-01" in overlay.text.splitlines()[0]
    finally:
        v.close()
