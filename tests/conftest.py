"""Shared fixtures: every image a test needs is generated here or in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagezarr.testing import PSII_DIMS, PSII_PATTERN, PSII_TYPES, make_psii_experiment

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "plantcv-testdata"
PSII = {"pattern": PSII_PATTERN, "types": PSII_TYPES, "dims": PSII_DIMS}
# the same experiment with one group per plant
PSII_BY_PLANT = {
    "pattern": PSII_PATTERN,
    "types": PSII_TYPES,
    "group_by": "barcode",
    "dims": ("night", "param", "frame"),
}


def cluster_image_sum(manifest: object) -> float:
    """Sum of every pixel, computed by a 2-process dask LocalCluster from the pickled store."""
    import distributed

    import imagezarr

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ds = imagezarr.open_dataset(manifest, chunks={})
        return float(client.compute(ds.image.sum(dtype="float64")).result())


@pytest.fixture
def psii(tmp_path: Path) -> tuple[Path, dict]:
    """A small PSII experiment: 12 plants (A1..A12), 2 nights, 4 steps, 3 frames, 4 holes."""
    images = tmp_path / "images"
    truth = make_psii_experiment(
        images, plants=12, nights=2, steps=4, frames=3, shape=(12, 16), holes=4, seed=1
    )
    return images, truth


@pytest.fixture
def plantcv_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"PlantCV test data not found at {SHARED_DATA} (CI has it beside the repo)")
    return SHARED_DATA
