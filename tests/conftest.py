"""Shared fixtures: every image a test needs is generated here or in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagezarr.testing import make_psii_experiment

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "plantcv-testdata"


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
