"""Stage 3: names -> typed fields -> grids. Pure: no files involved."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from imagezarr.errors import (
    DuplicateIndexError,
    InconsistentImagesError,
    LayoutError,
    PatternMismatchError,
)
from imagezarr.layout import LayoutSpec, arrange, match_fields, natural_key, parse_type
from imagezarr.probe import ImageInfo

GRAY = ImageInfo("png", (4, 5), "uint8", {"name": "imagecodecs_png"})
RGB = ImageInfo("png", (4, 5, 3), "uint8", {"name": "imagecodecs_png"})
PAT = r"(?P<plant>[A-Z]\d+)-(?P<t>\d{8}T\d{6})-(?P<step>PSII\d)-(?P<frame>\d+)\.png"
TYPES = {"t": "%Y%m%dT%H%M%S", "frame": "int"}


def layout(paths, spec, infos=None):
    kept, fields, _ = match_fields(paths, spec)
    kept_paths = [paths[i] for i in kept]
    return arrange(kept_paths, fields, infos or [GRAY] * len(kept), spec)


def test_natural_sort_orders_digit_runs_by_value():
    names = ["A10", "A2", "a1", "B1", "A1b", "A1"]
    assert sorted(names, key=natural_key) == ["A1", "a1", "A1b", "A2", "A10", "B1"]


@pytest.mark.parametrize(
    ("spec", "kind", "fmt"),
    [
        ("int", "int", None),
        ("float", "float", None),
        ("str", "str", None),
        ("%Y-%m-%d", "datetime", "%Y-%m-%d"),
    ],
)
def test_parse_type(spec, kind, fmt):
    t = parse_type(spec)
    assert (t.kind, t.fmt) == (kind, fmt)


def test_unknown_type_is_a_clear_error():
    with pytest.raises(LayoutError, match="unknown field type 'integer'"):
        parse_type("integer")


def test_typed_fields_from_file_name_and_folders():
    spec = LayoutSpec(
        pattern=r"(?P<day>\d+)/(?P<plant>\w+)_(?P<exp>[\d.]+)\.png",
        types={"day": "int", "exp": "float"},
    )
    kept, fields, unmatched = match_fields(["3/A2_0.5.png", "10/A1_2.png"], spec)
    assert kept == [0, 1]
    assert unmatched == []
    assert fields == [{"day": 3, "plant": "A2", "exp": 0.5}, {"day": 10, "plant": "A1", "exp": 2.0}]


def test_pattern_without_slash_matches_the_file_name_only():
    spec = LayoutSpec(pattern=r"(?P<plant>\w+)\.png")
    _, fields, _ = match_fields(["deep/folder/A1.png"], spec)
    assert fields == [{"plant": "A1"}]


def test_bad_value_names_file_field_and_type():
    spec = LayoutSpec(pattern=PAT, types=TYPES)
    with pytest.raises(LayoutError, match=r"'A1-20201399T000000-PSII0-1.png': field 't'"):
        match_fields(["A1-20201399T000000-PSII0-1.png"], spec)


def test_pattern_mismatch_lists_five_examples_and_count():
    paths = [f"junk{i}.png" for i in range(7)] + ["A1-20200101T000000-PSII0-1.png"]
    spec = LayoutSpec(pattern=PAT, types=TYPES)
    with pytest.raises(PatternMismatchError) as info:
        match_fields(paths, spec)
    msg = str(info.value)
    assert msg.startswith("7 of 8 files")
    assert "'junk0.png', 'junk1.png', 'junk2.png', 'junk3.png', 'junk4.png'" in msg
    assert "junk5" not in msg
    assert "--skip-unmatched" in msg
    assert len(info.value.paths) == 7


def test_skip_unmatched_reports_them():
    spec = LayoutSpec(pattern=PAT, types=TYPES, on_unmatched="skip")
    kept, _, unmatched = match_fields(["x.png", "A1-20200101T000000-PSII0-1.png"], spec)
    assert kept == [1]
    assert unmatched == ["x.png"]


def psii_paths(plants=("A1", "A2", "A10"), steps=2, frames=2, skip=()):
    out = []
    for p_i, p in enumerate(plants):
        for s in range(steps):
            for f in range(1, frames + 1):
                if (p, s, f) in skip:
                    continue
                out.append(f"{p}-2020052{p_i}T21{s}000-PSII{s}-{f}.png")
    return out


def test_grid_dims_labels_and_holes():
    spec = LayoutSpec(pattern=PAT, types=TYPES, dims=("plant", "step", "frame"))
    paths = psii_paths(skip={("A2", 1, 2)})
    [node] = layout(paths, spec)
    assert node.path == ""
    assert node.dims == ("plant", "step", "frame")
    assert node.image_dims == ("plant", "step", "frame", "y", "x")
    assert node.shape == (3, 2, 2)
    assert node.coords["plant"].values == ("A1", "A2", "A10")  # natural order
    assert node.coords["frame"].values == (1, 2)
    assert node.coords["frame"].kind == "int"
    assert node.file_index[1, 1, 1] == -1
    assert int((node.file_index >= 0).sum()) == len(paths)
    # every present slot points at the file with those labels
    for idx in zip(*(node.file_index >= 0).nonzero(), strict=True):
        name = paths[node.file_index[idx]]
        plant, step, frame = (node.coords[d].values[i] for d, i in zip(node.dims, idx, strict=True))
        assert name.startswith(f"{plant}-")
        assert f"-{step}-{frame}.png" in name


def test_non_dim_field_gets_smallest_determining_dims():
    # timestamp depends on plant and step, not on frame
    spec = LayoutSpec(pattern=PAT, types=TYPES, dims=("plant", "step", "frame"))
    [node] = layout(psii_paths(), spec)
    t = node.coords["t"]
    assert t.dims == ("plant", "step")
    assert t.kind == "datetime"
    assert t.values[0] == datetime(2020, 5, 20, 21, 0, 0)
    assert len(t.values) == 6


def test_constant_field_is_a_scalar_coordinate():
    spec = LayoutSpec(pattern=r"(?P<cam>\w+)_(?P<frame>\d+)\.png", dims=("frame",))
    [node] = layout(["vis_1.png", "vis_2.png"], spec)
    assert node.coords["cam"].dims == ()
    assert node.coords["cam"].values == ("vis",)


def test_group_by_gives_one_group_per_value_in_natural_order():
    spec = LayoutSpec(pattern=PAT, types=TYPES, group_by=("plant",), dims=("step", "frame"))
    nodes = layout(psii_paths(skip={("A10", 1, 1)}), spec)
    assert [n.path for n in nodes] == ["A1", "A2", "A10"]
    assert nodes[2].attrs == {"plant": "A10"}
    assert nodes[2].file_index[1, 0] == -1
    assert "plant" not in nodes[0].coords


def test_default_dims_are_pattern_fields_minus_group_by():
    spec = LayoutSpec(pattern=PAT, types=TYPES, group_by=("plant",))
    assert spec.outer_dims() == ("t", "step", "frame")


def test_without_pattern_one_file_dim_in_natural_order():
    spec = LayoutSpec()
    [node] = layout(["b/x10.png", "b/x2.png", "a.png"], spec)
    assert node.dims == ("file",)
    assert node.coords["file"].values == ("a.png", "b/x2.png", "b/x10.png")


def test_duplicate_slot_names_both_files_and_the_fix():
    spec = LayoutSpec(pattern=PAT, types=TYPES, dims=("plant", "step"))
    with pytest.raises(DuplicateIndexError) as info:
        layout(psii_paths(plants=("A1",), steps=1), spec)
    msg = str(info.value)
    assert "(plant=A1, step=PSII0): 'A1-20200520T210000-PSII0-1.png', " in msg
    assert "'A1-20200520T210000-PSII0-2.png'" in msg
    assert "They differ in 'frame': add one of them to dims" in msg
    assert "CLI --dims plant,step,frame" in msg


def test_inconsistent_images_list_each_signature_with_example():
    spec = LayoutSpec(pattern=PAT, types=TYPES, dims=("plant", "step", "frame"))
    paths = psii_paths()
    infos = [GRAY] * (len(paths) - 1) + [RGB]
    with pytest.raises(InconsistentImagesError) as info:
        layout(paths, spec, infos)
    msg = str(info.value)
    assert f"{len(paths) - 1} x png (4, 5) uint8 (e.g. {paths[0]!r})" in msg
    assert f"1 x png (4, 5, 3) uint8 (e.g. {paths[-1]!r})" in msg


def test_channels_add_a_c_dim():
    spec = LayoutSpec(pattern=r"(?P<i>\d+)\.png", types={"i": "int"})
    [node] = layout(["1.png", "2.png"], spec, [RGB, RGB])
    assert node.image_dims == ("i", "y", "x", "c")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": r"\w+\.png"}, "has no named groups"),
        ({"pattern": PAT, "dims": ("plant", "nope")}, "dims names ['nope']"),
        ({"pattern": PAT, "group_by": ("nope",)}, "group_by names ['nope']"),
        ({"pattern": PAT, "dims": ("plant",), "group_by": ("plant",)}, "both a dim and a group_by"),
        ({"pattern": r"(?P<x>\d+)\.png"}, "reserved"),
        ({"pattern": r"(?P<a\d+"}, "invalid pattern"),
        ({"dims": ("a",)}, "need a pattern"),
    ],
)
def test_invalid_specs(kwargs, message):
    with pytest.raises(LayoutError, match=re.escape(message)):
        LayoutSpec(**kwargs).validate()
