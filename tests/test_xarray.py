"""Stage 6: xarray Dataset / DataTree over the store, labels, dask and dask.distributed."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest
import xarray as xr

import imagezarr
from imagezarr.testing import PSII_BY_PLANT, cluster_image_sum
from imagezarr.testing import PSII_SCAN as PSII
from imagezarr.xarray_backend import ImageZarrBackendEntrypoint


@pytest.fixture
def saved(psii, tmp_path):
    images, truth = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "psii.imagezarr.json")
    return out, images, truth


def test_labels_and_selection_answer_the_seed_question(saved):
    out, images, truth = saved
    ds = imagezarr.open_dataset(out)
    assert ds.image.dims == ("barcode", "night", "param", "frame", "y", "x")
    assert ds.image.dtype == np.uint8
    assert list(ds.barcode.values[:3]) == ["A1", "A2", "A3"]
    assert ds.barcode.values[-1] == "A12"  # natural order: A2 before A10
    assert list(ds.frame.values) == [1, 2, 3]
    assert ds.timestamp.dtype.kind == "M"
    assert ds.timestamp.dims == ("barcode", "night", "param")
    assert ds.present.dtype == bool
    sel = ds.sel(barcode="A10", param="PSII3", frame=2).isel(night=0)
    path = str(sel.path.values)
    assert path.startswith("2020-05-31/A10-doi-")
    assert path.endswith("-PSII3-2.png")
    np.testing.assert_array_equal(sel.image.values, imagecodecs.imread(images / path))
    np.testing.assert_array_equal(sel.image.values, truth[path])
    stamp = path.split("-doi-")[1][:15]
    assert str(sel.timestamp.values)[:19] == (
        f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"
    )


def test_holes_are_marked_not_masked(saved):
    out, _, _ = saved
    ds = imagezarr.open_dataset(out)
    missing = ~ds.present.values
    assert missing.sum() == 4 * 4 * 3
    assert (ds.path.values[missing] == "").all()
    assert ds.image.values[missing].max() == 0
    assert ds.image.dtype == np.uint8  # no NaN masking


def test_engine_entry_point_and_narrow_guess(saved):
    out, _, _ = saved
    ds = xr.open_dataset(out, engine="imagezarr")
    assert ds.image.shape[:4] == (12, 2, 4, 3)
    entry = ImageZarrBackendEntrypoint()
    assert entry.guess_can_open(str(out))
    assert not entry.guess_can_open("data.zarr")
    assert not entry.guess_can_open("other.json")
    assert not entry.guess_can_open(b"bytes")


def test_dask_threads_compute_matches_numpy(saved):
    out, _, _ = saved
    lazy = imagezarr.open_dataset(out, chunks={})
    # several images per dask task (one task per image costs a zarr call each)
    assert lazy.image.data.npartitions < lazy.present.size
    assert max(lazy.image.chunks[3]) == 3  # whole frame axis, then more along param, ...
    eager = imagezarr.open_dataset(out)
    expected = eager.image.values.astype(float).mean(axis=(1, 3, 4, 5))
    got = lazy.image.mean(("night", "frame", "y", "x"), dtype="float64").compute()
    np.testing.assert_allclose(got.values, expected)


def test_groupby_per_plant_and_step_ignores_holes(saved):
    out, images, _ = saved
    ds = imagezarr.open_dataset(out, chunks={})
    means = ds.image.where(ds.present).mean(("night", "frame", "y", "x")).compute()
    m = imagezarr.load_manifest(out)
    node = m.node("")
    b, p = 9, 3  # A10, PSII3
    files = [m.files[i].path for i in node.file_index[b, :, p, :].ravel() if i >= 0]
    expected = np.mean([imagecodecs.imread(images / f).astype(float).mean() for f in files])
    np.testing.assert_allclose(means.sel(barcode="A10", param="PSII3").values, expected, rtol=1e-6)


def test_datatree_has_one_node_per_group(psii, tmp_path):
    images, truth = psii
    m = imagezarr.scan(images, **PSII_BY_PLANT)
    out = m.save(tmp_path / "g.imagezarr.json")
    tree = imagezarr.open_datatree(out)
    assert sorted(tree.children, key=lambda k: int(k[1:])) == [f"A{i}" for i in range(1, 13)]
    node = tree["A7"].to_dataset()
    assert node.image.dims == ("night", "param", "frame", "y", "x")
    path = str(node.path.values[0, 0, 0]) or str(node.path.values[1, 0, 0])
    assert path
    where = np.argwhere(node.path.values == path)[0]
    np.testing.assert_array_equal(node.image.values[tuple(where)], truth[path])
    with pytest.raises(ValueError, match="this manifest has 12 groups"):
        imagezarr.open_dataset(out)
    assert imagezarr.open_dataset(out, group="A7").image.shape == node.image.shape
    # a group that is not there is named with the ones that are, by every opener
    for opener in (imagezarr.open_dataset, imagezarr.open_datatree):
        with pytest.raises(KeyError, match=r"no group 'A99' in this manifest; its groups: 'A1'"):
            opener(out, group="A99")
    with pytest.raises(KeyError, match=r"no group 'A99' in this manifest; its groups: 'A1'"):
        imagezarr.open_group(out, path="A99")
    assert imagezarr.open_group(out, path="A7")["image"].shape == node.image.shape


# a loaded machine lets distributed leave a socket to the garbage collector at teardown
@pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_dask_distributed_local_cluster(saved):
    pytest.importorskip("distributed")
    out, _, _ = saved
    eager = imagezarr.open_dataset(out).image.values.astype("float64").sum()
    assert cluster_image_sum(out) == eager
