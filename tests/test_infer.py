"""Layouts that choose themselves: dims inferred when none are given."""

from __future__ import annotations

import warnings
from datetime import datetime

import numpy as np
import pytest

import imagezarr
from imagezarr.errors import DuplicateIndexError
from imagezarr.layout import LayoutWarning
from imagezarr.layout.infer import choose_dims
from imagezarr.testing import PSII_PATTERN, PSII_TYPES, make_psii_experiment


@pytest.fixture
def psii_nights(tmp_path):
    """12 plants x 3 nights x 4 steps x 3 frames, a folder per night, 3 visits missing."""
    images = tmp_path / "img"
    make_psii_experiment(images, plants=12, nights=3, steps=4, frames=3, shape=(8, 8), holes=3)
    return images


def test_psii_without_dims_gets_plants_nights_steps_frames(psii_nights):
    m = imagezarr.scan(psii_nights, pattern=PSII_PATTERN, types=PSII_TYPES)
    node = m.node("")
    assert set(node.dims) == {"barcode", "night", "param", "frame"}
    assert dict(zip(node.dims, node.shape, strict=True)) == {
        "night": 3,
        "barcode": 12,
        "param": 4,
        "frame": 3,
    }
    # each protocol step of a visit has its own time in this experiment
    assert set(node.coords["timestamp"].dims) == {"barcode", "night", "param"}
    assert int((node.file_index < 0).sum()) == 3 * 4 * 3  # the 3 missing visits
    assert m.notes[0].startswith("dims chosen: (night, barcode, param, frame); 432 slot(s), 36")
    assert any(n.startswith("timestamp: not a dim (a time;") for n in m.notes)
    # the old default made every field a dim: (3, 12, 36, 4, 3) with 15,120 holes


def test_group_by_without_dims_infers_inside_each_group(psii_nights):
    m = imagezarr.scan(psii_nights, pattern=PSII_PATTERN, types=PSII_TYPES, group_by="barcode")
    assert len(m.nodes) == 12
    assert all(n.dims == ("night", "param", "frame") for n in m.nodes)
    assert m.node("A1").coords["timestamp"].dims == ("night", "param")


def test_a_time_is_a_dim_when_nothing_else_tells_files_apart(tmp_path):
    images = tmp_path / "img"
    images.mkdir()
    png = imagezarr.testing.write_image
    for k in range(4):
        png(images / f"cam-2020010{k + 1}T120000.png", np.full((4, 4), k, np.uint8))
    m = imagezarr.scan(
        images,
        pattern=r"(?P<cam>\w+)-(?P<t>\d{8}T\d{6})\.png",
        types={"t": "%Y%m%dT%H%M%S"},
    )
    assert m.node("").dims == ("t",)


def test_the_most_factorized_dense_grid_wins():
    # a 'well' field that alone identifies the files, and row x col that also do: 8 + 12 < 96
    files = [{"well": f"{r}{c}", "row": r, "col": c} for r in "ABCDEFGH" for c in range(1, 13)]
    choice = choose_dims(files, ["well", "row", "col"])
    assert choice.dims == ("row", "col")
    assert choice.holes == 0
    assert choice.demoted == {"well": "follows from the dims"}


def test_a_denser_grid_beats_a_more_factorized_sparse_one():
    # (a, b) identifies but leaves half the grid empty; (c) is dense
    files = [{"a": i, "b": (i * 7) % 20, "c": i} for i in range(20)]
    choice = choose_dims(files, ["a", "b", "c"])
    assert choice.holes == 0
    assert len(choice.dims) == 1


def test_constant_fields_are_never_dims():
    files = [{"exp": "x", "f": k, "t": datetime(2020, 1, 1, 0, k)} for k in range(5)]
    choice = choose_dims(files, ["exp", "f", "t"])
    assert choice.dims == ("f",)
    assert choice.demoted["exp"] == "the same for every file"


def test_one_file_needs_no_dims(tmp_path):
    images = tmp_path / "img"
    imagezarr.testing.write_image(images / "A1-3.png", np.zeros((4, 4), np.uint8))
    m = imagezarr.scan(images, pattern=r"(?P<plant>\w+)-(?P<frame>\d+)\.png")
    assert m.node("").dims == ()
    assert imagezarr.open_dataset(m).image.shape == (4, 4)


def test_explicit_sparse_dims_warn_with_the_inferred_layout(psii_nights):
    with pytest.warns(LayoutWarning, match=r"leave \d+ of \d+ slots empty; .* would choose"):
        imagezarr.scan(
            psii_nights,
            pattern=PSII_PATTERN,
            types=PSII_TYPES,
            dims=("barcode", "timestamp", "param", "frame"),
        )


def test_explicit_dense_dims_do_not_warn(psii_nights):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imagezarr.scan(
            psii_nights,
            pattern=PSII_PATTERN,
            types=PSII_TYPES,
            dims=("barcode", "night", "param", "frame"),
        )


def test_duplicate_error_names_the_field_that_tells_files_apart(psii_nights):
    fix = (
        r"They differ in 'night', 'timestamp': add one of them to dims "
        r"\(dims=\('barcode', 'param', 'frame', 'night'\), CLI --dims barcode,param,frame,night\)"
    )
    with pytest.raises(DuplicateIndexError, match=fix):
        imagezarr.scan(
            psii_nights, pattern=PSII_PATTERN, types=PSII_TYPES, dims=("barcode", "param", "frame")
        )


def test_groups_come_in_natural_order_everywhere(tmp_path):
    images = tmp_path / "img"
    make_psii_experiment(images, plants=12, nights=1, steps=1, frames=1, shape=(4, 4), holes=0)
    m = imagezarr.scan(images, pattern=PSII_PATTERN, types=PSII_TYPES, group_by="barcode")
    natural = [f"A{k}" for k in range(1, 13)]
    assert [n.path for n in m.nodes] == natural
    assert list(imagezarr.open_datatree(m).children) == natural
    assert list(imagezarr.open_group(m).group_keys()) == natural
