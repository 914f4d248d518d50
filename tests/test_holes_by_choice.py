"""Holes by choice at read time: on_error="fill", and an advice loop that ends."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import imagezarr
from imagezarr.cli import main
from imagezarr.errors import ChunkDecodeError, FilledChunkWarning
from imagezarr.testing import PSII_SCAN, make_psii_experiment


@pytest.fixture
def broken(tmp_path):
    """Six images; one truncated (header intact), one deleted, one rewritten."""
    images = tmp_path / "img"
    truth = make_psii_experiment(
        images, plants=3, nights=1, steps=1, frames=2, shape=(12, 16), holes=0
    )
    m = imagezarr.scan(images, **PSII_SCAN)
    saved = m.save(tmp_path / "m.imagezarr.json")
    paths = sorted(truth)
    truncated, deleted, rewritten = paths[0], paths[2], paths[4]
    data = (images / truncated).read_bytes()
    (images / truncated).write_bytes(data[:60])  # same header, no pixels
    m = imagezarr.scan(images, **PSII_SCAN)  # the truncated file passes the header probe
    saved = m.save(saved)
    (images / deleted).unlink()
    (images / rewritten).write_bytes((images / rewritten).read_bytes() + b"\0")
    return saved, truth, {"truncated": truncated, "deleted": deleted, "rewritten": rewritten}


def test_default_raises_naming_the_file(broken):
    saved, _, bad = broken
    ds = imagezarr.open_dataset(saved)
    with pytest.raises(ChunkDecodeError, match=rf"{bad['truncated']}: cannot decode as PNG"):
        ds.image.values  # noqa: B018


def test_fill_reads_zeros_and_warns_once_per_file(broken):
    saved, truth, bad = broken
    ds = imagezarr.open_dataset(saved, on_error="fill")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", FilledChunkWarning)
        values = ds.image.values
    named = sorted({str(w.message).split(":", 1)[0] for w in seen})
    assert named == sorted(bad.values())
    texts = " ".join(str(w.message) for w in seen)
    assert "cannot decode as PNG" in texts
    assert "file is missing" in texts
    assert "size: manifest" in texts
    for path, pixels in truth.items():
        sel = np.argwhere(ds.path.values == path)[0]
        want = 0 if path in bad.values() else pixels
        np.testing.assert_array_equal(values[tuple(sel)], np.broadcast_to(want, pixels.shape))


def test_fill_travels_with_dask(broken):
    saved, truth, bad = broken
    ds = imagezarr.open_dataset(saved, on_error="fill", chunks={})
    with pytest.warns(FilledChunkWarning):
        total = int(ds.image.sum(dtype="int64").compute())
    assert total == sum(int(v.sum()) for p, v in truth.items() if p not in bad.values())


def test_verify_and_update_agree_on_undecodable_files(broken, capsys):
    saved, _, bad = broken
    assert main(["verify", str(saved), "--decode", "-q"]) == 1
    advice = capsys.readouterr().out
    assert "undecodable" in advice
    assert main(["update", str(saved), "--drop-undecodable", "-q"]) == 0
    printed = capsys.readouterr().out
    assert f"dropped  {bad['truncated']}" in printed
    again = imagezarr.load_manifest(saved)
    assert bad["truncated"] in again.unreadable
    assert bad["truncated"] not in again.files.paths
    assert main(["verify", str(saved), "--decode", "-q"]) == 0  # the loop ends here
    ds = imagezarr.open_dataset(saved)
    assert int((~ds.present).sum()) == 2  # the truncated and the deleted file are holes now


def test_zarr_copy_can_fill(broken, tmp_path):
    saved, _, bad = broken
    out = tmp_path / "c.zarr"
    with pytest.warns(FilledChunkWarning) as seen:
        assert main(["export", str(saved), "-f", "zarr", "-o", str(out), "--on-error", "fill"]) == 0
    assert {str(w.message).split(":", 1)[0] for w in seen} == set(bad.values())


def test_on_error_is_checked():
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'fill'"):
        imagezarr.open_store(imagezarr.testing.small_manifest(), on_error="ignore")


def test_a_store_handed_to_xarray_takes_the_options_given_there(broken):
    import xarray as xr

    from imagezarr.xarray_backend import ImageZarrBackendEntrypoint

    saved, _, _ = broken
    store = imagezarr.open_store(saved)  # on_error="raise"
    ds = xr.open_dataset(store, engine=ImageZarrBackendEntrypoint, on_error="fill")
    with pytest.warns(FilledChunkWarning):
        ds.image.values  # noqa: B018
