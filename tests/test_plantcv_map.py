"""The worked PlantCV example (docs/examples/fvfm.py): Fv/Fm per plant and night with
PlantCV's own `analyze.yii`, run per group by map_groups, checked against numpy.

Runs where PlantCV is installed (`make test-plantcv` builds such an environment); skipped
elsewhere, as PlantCV is not one of the test dependencies.
"""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import numpy as np
import pandas as pd
import pytest

import imagezarr
from imagezarr.testing import PSII_SCAN, make_psii_experiment

pytest.importorskip("plantcv", reason="PlantCV is not installed (make test-plantcv)")

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "fvfm.py"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PlantCV's own imports
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_fvfm_per_plant_and_night_matches_numpy(tmp_path):
    make_psii_experiment(
        tmp_path / "img", plants=3, nights=2, steps=2, frames=3, shape=(120, 160), holes=1
    )
    m = imagezarr.scan(tmp_path / "img", **PSII_SCAN)
    out = tmp_path / "out" / "fvfm.csv"
    table = imagezarr.map_groups(m, f"{EXAMPLE}:fvfm", by=("barcode", "night"), out=out)
    assert (table.error == "").all(), table.error.tolist()
    assert len(table) == 5
    ds = imagezarr.open_dataset(m)
    masks = imagezarr.open_dataset(tmp_path / "out" / "fvfm_images" / "mask.imagezarr.json")
    for row in table.itertuples():
        dark = ds.image.sel(barcode=row.barcode, night=row.night, param="PSII0").values
        f0, fm = dark[1].astype(float), dark[2].astype(float)  # frames 2 and 3: F0, Fm
        mask = masks.image.sel(barcode=row.barcode, night=row.night).values > 0
        assert mask.sum() == row.area
        with np.errstate(divide="ignore", invalid="ignore"):
            yii = ((fm - f0) / fm)[mask]
        yii = yii[np.isfinite(yii) & (yii > 0)]  # PlantCV keeps positive yields only
        assert row.fvfm == pytest.approx(np.median(yii), abs=1e-12)
        assert row.fvfm_mean == pytest.approx(yii.mean(), abs=1e-12)
        assert 0 < row.fvfm < 1
    again = pd.read_csv(out, keep_default_na=False)
    assert again.barcode.tolist() == table.barcode.tolist()
    # the mask files open in any image viewer: 8-bit PNGs of 0 and 255
    first = tmp_path / "out" / "fvfm_images" / table["mask"].iloc[0]
    assert set(np.unique(imagecodecs.png_decode(first.read_bytes()))) <= {0, 255}
