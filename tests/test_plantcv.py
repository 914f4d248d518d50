"""The PSII adapter: a scanned PSII experiment in the layout PlantCV's photosynthesis takes."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr import presets
from imagezarr.errors import LayoutError
from imagezarr.layout import Lookup
from imagezarr.plantcv import psii_dataarray
from test_presets import PSII_DIMS, TERMS, make_psii


@pytest.fixture
def psii_ds(tmp_path):
    root = tmp_path / "psii"
    truth = make_psii(root)
    frames = tmp_path / "frames.csv"
    frames.write_text("frame,frame_label\n1,Fdark\n2,F0\n3,Fm\n")
    spec = presets.plantcv(
        TERMS,
        delimiter="-",
        timestampformat="%Y%m%dT%H%M%S",
        dims=PSII_DIMS,
        derived={"day": "day(timestamp, 20:00)"},
        lookups=[Lookup(str(frames), key="frame")],
    )
    m = imagezarr.scan(root, layout=spec)
    return imagezarr.open_dataset(m.save(tmp_path / "p.imagezarr.json")), root, truth


def test_psii_dataarray_matches_plantcv_layout(psii_ds):
    ds, root, _ = psii_ds
    sel = ds.image.sel(plantbarcode="A1", day="2020-06-01", camera="PSII0")
    ps = psii_dataarray(sel, frame_labels="frame_label")
    assert ps.name == "ojip_dark"
    assert ps.dims == ("x", "y", "frame_label", "measurement")
    assert ps.attrs["long_name"] == "OJIP dark-adapted measurements"
    assert list(ps.frame_label.values) == ["Fdark", "F0", "Fm"]
    assert list(ps.frame_num.values) == [0, 1, 2]
    assert list(ps.measurement.values) == ["t0"]
    assert ps.shape == (6, 7, 3, 1)  # PlantCV's "x" holds image rows
    for k, f in enumerate(["1", "2", "3"]):
        path = root / str(
            ds.path.sel(plantbarcode="A1", day="2020-06-01", camera="PSII0", frame=f).values
        )
        np.testing.assert_array_equal(ps.values[:, :, k, 0], imagecodecs.imread(path))
    light = psii_dataarray(
        ds.image.sel(plantbarcode="A1", day="2020-06-01"),
        frame_labels={"1": "Flight", "2": "Fp", "3": "Fmp"},
        measurement="camera",
        name="ojip_light",
    )
    assert list(light.measurement.values) == ["PSII0", "PSII1"]
    assert light.shape == (6, 7, 3, 2)
    with pytest.raises(LayoutError, match=r"select one value of \['plantbarcode'\] first"):
        psii_dataarray(ds.image.sel(day="2020-06-01", camera="PSII0"))
    with pytest.raises(LayoutError, match="must be 3 distinct, non-empty names"):
        psii_dataarray(sel, frame_labels=["F0", "F0", "Fm"])


def test_plantcv_analyze_yii_accepts_the_adapter_output(psii_ds):
    pcv = pytest.importorskip(
        "plantcv.plantcv",
        reason="plantcv is not installed (pip install imagezarr[plantcv]); it pins numpy < 2.5",
    )
    ds, _, _ = psii_ds
    sel = ds.image.sel(plantbarcode="A2", day="2020-06-01", camera="PSII1")
    ps = psii_dataarray(sel.astype("float64"), frame_labels="frame_label")
    mask = np.zeros(ps.shape[:2], dtype=np.uint8)
    mask[1:5, 2:6] = 1
    yii, _ = pcv.analyze.yii(ps_da=ps, labeled_mask=mask, n_labels=1)
    f0 = ps.sel(frame_label="F0").squeeze().values
    fm = ps.sel(frame_label="Fm").squeeze().values
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = (fm - f0) / fm
    inside = mask > 0
    np.testing.assert_allclose(yii.values[inside], expected[inside])
    assert np.isnan(yii.values[~inside]).all()
    # pcv.photosynthesis.reassign_frame_labels (and analyze.yii(auto_fm=True)) write into
    # ps_da.frame_label.values, which xarray >= 2025 makes read-only for an index: that fails
    # on PlantCV's own read_cropreporter output too, so it is not exercised here.
