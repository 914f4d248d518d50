"""Names that parse themselves: a pattern proposed from the file names when none is given."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import imagezarr
from imagezarr.cli import cli as main
from imagezarr.layout.names import propose
from imagezarr.testing import make_psii_experiment, write_image

PLANTCV = Path(__file__).parents[1] / ".." / "shared" / "data" / "plantcv-testdata"
needs_plantcv = pytest.mark.skipif(
    not PLANTCV.is_dir(), reason="PlantCV's test data (../shared/data) is not on this machine"
)


def fields(paths: list[str]) -> list[tuple[str, str]]:
    return [(f.name, f.type) for f in propose(paths).fields]


def check_matches(paths: list[str]) -> dict[str, list[str]]:
    """Every path matches the proposed pattern; the captured values per field."""
    p = propose(paths)
    assert p.pattern is not None, p.why
    rx = re.compile(p.pattern)
    out: dict[str, list[str]] = {}
    for path in paths:
        m = rx.fullmatch(path)
        assert m, (path, p.pattern)
        for k, v in m.groupdict().items():
            out.setdefault(k, []).append(v)
    return out


def test_the_demo_names_give_night_barcode_param_frame_and_a_timestamp(tmp_path):
    make_psii_experiment(tmp_path)
    paths = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert fields(paths) == [
        ("night", "%Y-%m-%d"),
        ("barcode", "str"),
        ("timestamp", "%Y%m%dT%H%M%S"),
        ("param", "str"),
        ("frame", "int"),
    ]
    got = check_matches(paths)
    assert sorted(set(got["barcode"])) == ["A1", "A2", "A3", "A4", "A5", "A6"]


def test_scan_of_the_demo_without_pattern_on_the_command_line(tmp_path):
    make_psii_experiment(tmp_path / "images")
    out = tmp_path / "m.imagezarr.json"
    r = CliRunner().invoke(main, ["scan", str(tmp_path / "images"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "fields inferred from the names: --pattern '(?P<night>" in r.output
    m = imagezarr.load_manifest(out)
    assert m.node().dims == ("night", "barcode", "param", "frame")
    ds = imagezarr.open_dataset(out)
    assert ds["timestamp"].dims == ("night", "barcode", "param")
    # the pattern printed is one to paste: the same layout from it
    options = r.output.split("fields inferred from the names: ")[1].splitlines()[0]
    again = tmp_path / "again.imagezarr.json"
    import shlex

    r2 = CliRunner().invoke(
        main, ["scan", str(tmp_path / "images"), *shlex.split(options), "-o", str(again)]
    )
    assert r2.exit_code == 0, r2.output
    assert imagezarr.load_manifest(again).node().dims == m.node().dims
    # pixels are those of the file each slot names
    a1 = ds.image.sel(barcode="A2", param="PSII1", frame=2).isel(night=0)
    path = str(ds.path.sel(barcode="A2", param="PSII1", frame=2).isel(night=0).values)
    from imagecodecs import png_decode

    assert np.array_equal(a1.values, png_decode((tmp_path / "images" / path).read_bytes()))


def test_a_flat_folder_gets_its_nights_from_the_runs_in_the_timestamps(tmp_path):
    make_psii_experiment(tmp_path / "nested", plants=5, nights=3, steps=4, frames=2)
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in (tmp_path / "nested").rglob("*.png"):
        os.replace(p, flat / p.name)
    m = imagezarr.scan(flat, infer=True)
    assert m.layout.derived == {"night": "day(timestamp)"}
    assert sorted(m.node().dims) == ["barcode", "frame", "night", "param"]
    assert m.node().shape[m.node().dims.index("night")] == 3
    assert any("night is derived from the runs" in n for n in m.notes)
    assert any("without --derive" in n for n in m.notes)  # how to turn it off


def test_runs_are_only_derived_when_times_leave_a_quiet_period():
    # a camera every 20 minutes, day and night: no runs, the timestamp tells files apart
    paths = [f"cam-{h:02d}{m:02d}00.png" for h in range(24) for m in (0, 20, 40)]
    paths = [f"2020060{d}T{p[4:]}" for d in (1, 2) for p in paths]
    p = propose(paths)
    assert p.derived == {}
    # a daytime run each day: a day field, the boundary at midnight
    day_runs = [f"plate_20200{m}01T10{k:02d}00.png" for m in (5, 6, 7) for k in range(30)]
    p = propose(day_runs)
    assert p.derived == {"day": "day(timestamp)"}
    # runs crossing midnight: the boundary lies in the quiet hours
    late = [f"x_2020-06-0{d}T23{k:02d}00.png" for d in (1, 2) for k in range(0, 60, 10)]
    late += [f"x_2020-06-0{d + 1}T00{k:02d}00.png" for d in (1, 2) for k in range(0, 60, 10)]
    p = propose(sorted(late))
    assert p.derived["night"].startswith("day(timestamp, ")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        # cameras
        ([f"IMG_{i:04d}.JPG" for i in range(1, 30)], [("number", "int")]),
        (
            [f"2023-05-01 12_30_{s:02d}.jpg" for s in range(10)],
            [("timestamp", "%Y-%m-%d %H_%M_%S")],
        ),
        # microscopy: an ImageXpress plate, a mosaic, z-stacks
        (
            [
                f"PL1_{r}{c:02d}_s{s}_w{w}.tif"
                for r in "BC"
                for c in (3, 4)
                for s in (1, 2)
                for w in (1, 2)
            ],
            [("well", "str"), ("site", "str"), ("wavelength", "str")],
        ),
        (
            [f"tile_r{r}_c{c}.png" for r in range(4) for c in range(5)],
            [("row", "str"), ("column", "str")],
        ),
        (
            [
                f"pos{p}/img_t{t:03d}_z{z:02d}_c{c}.tif"
                for p in (1, 2)
                for t in range(3)
                for z in range(4)
                for c in range(2)
            ],
            [("position", "str"), ("t", "str"), ("z", "str"), ("channel", "str")],
        ),
        # names with spaces and umlauts
        (
            [f"Pflanze Ä{i}_Tag {t}.png" for i in range(3) for t in range(2)],
            [("f1", "str"), ("tag", "int")],
        ),
    ],
)
def test_names_by_what_they_look_like(names, expected):
    assert fields(names) == expected
    check_matches(names)


def test_zero_padded_counters_that_would_collide_stay_text():
    assert fields(["a_1.png", "a_01.png", "a_2.png"]) == [("f1", "str")]


def test_a_date_repeated_in_the_folder_and_the_name_is_one_field():
    paths = [f"{d}/{d}_{k}.png" for d in ("2020-01-01", "2020-01-02") for k in "ab"]
    p = propose(paths)
    assert [f.name for f in p.fields] == ["date", "f1"]
    assert "(?P=date)" in (p.pattern or "")
    check_matches(paths)


def test_no_pattern_fits_and_it_says_why(tmp_path):
    p = propose(["a.png", "notes/b c.png", "x-1-2.png"])
    assert p.pattern is None
    assert "3 different shapes" in p.why
    assert propose(["only.png"]).why == "one file: nothing varies"
    assert "nothing varies" in propose(["a.png", "a.PNG"]).why
    for name in ("a.png", "notes/b c.png", "x-1-2.png"):
        write_image(tmp_path / name, np.zeros((4, 4), np.uint8))
    m = imagezarr.scan(tmp_path, infer=True)
    assert m.node().dims == ("file",)
    assert any("no pattern inferred from the names (the names have 3" in n for n in m.notes)


def test_a_stray_file_is_left_out_and_named(tmp_path):
    paths = [f"A{i}_{f}.png" for i in range(1, 6) for f in range(1, 5)] + ["notes.png"]
    p = propose(paths)
    assert p.left_out == 1
    assert p.examples_left_out == ("notes.png",)
    assert "--on-unmatched skip" in p.options()
    for name in paths:
        write_image(tmp_path / name, np.zeros((4, 4), np.uint8))
    m = imagezarr.scan(tmp_path, infer=True)
    assert m.node().dims == ("well", "f1")
    assert m.unmatched == 1
    assert any("1 file(s) named otherwise are left out, e.g. 'notes.png'" in n for n in m.notes)


def test_a_token_constant_in_the_sample_but_not_everywhere_is_widened():
    paths = [f"run1_A{i}.png" for i in range(100)] + ["run2_A1.png", "run2_A2.png"]
    p = propose(paths, sample=20)
    assert p.left_out == 0
    assert {f.name for f in p.fields} == {"run", "f1"} or {f.name for f in p.fields} >= {"run"}
    check_matches(paths)


def test_inspect_prints_a_pasteable_pattern(tmp_path):
    make_psii_experiment(tmp_path, plants=2, nights=2, steps=2, frames=2, holes=0)
    r = CliRunner().invoke(main, ["inspect", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "fields inferred from the names: --pattern" in r.output
    assert "--type frame=int" in r.output
    assert "night, barcode, param, frame" in r.output  # the layout it would give, chosen
    plain = CliRunner().invoke(main, ["inspect", str(tmp_path), "--no-infer", "--json"])
    assert '"inferred": ""' in plain.output


def test_python_scan_keeps_one_dim_over_files_unless_asked(tmp_path):
    make_psii_experiment(tmp_path, plants=2, nights=1, steps=1, frames=2, holes=0)
    assert imagezarr.scan(tmp_path).node().dims == ("file",)
    assert imagezarr.scan(tmp_path, infer=True).node().dims == ("barcode", "frame")


def test_an_inferred_manifest_updates_with_its_recorded_pattern(tmp_path):
    make_psii_experiment(tmp_path / "images", plants=2, nights=2, steps=1, frames=2, holes=0)
    m = imagezarr.scan(tmp_path / "images", infer=True)
    saved = m.save(tmp_path / "m.imagezarr.json")
    new, diff = imagezarr.update(saved)
    assert new.layout.pattern == m.layout.pattern
    assert new.node().dims == m.node().dims
    assert not diff.added


@needs_plantcv
@pytest.mark.parametrize(
    ("folder", "names"),
    [
        ("snapshot_dir", ["camera", "view", "exposure", "f1"]),
        ("snapshot_imgdir", ["snapshot", "camera", "exposure", "f1"]),
    ],
)
def test_plantcv_test_data_names(folder, names):
    root = PLANTCV / folder
    paths = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".png", ".jpg")
    )
    assert [f.name for f in propose(paths).fields] == names
    check_matches(paths)


@needs_plantcv
def test_plantcv_folder_of_two_shapes_falls_back_and_says_why():
    root = PLANTCV / "images_w_date"
    paths = sorted(p.name for p in root.iterdir() if p.suffix == ".jpg")
    p = propose(paths)
    assert p.pattern is None
    assert "2 different shapes" in p.why


def test_label_coordinates_are_numpy_so_groupby_works_with_dask(tmp_path):
    make_psii_experiment(tmp_path / "images", plants=3, nights=2, steps=1, frames=1, holes=0)
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in (tmp_path / "images").rglob("*.png"):
        os.replace(p, flat / p.name)
    m = imagezarr.scan(flat, infer=True, dims=("timestamp",))
    ds = imagezarr.open_dataset(m.save(tmp_path / "m.imagezarr.json"), chunks={})
    assert isinstance(ds["barcode"].data, np.ndarray)  # a label: NumPy, not dask
    assert not isinstance(ds["path"].data, np.ndarray)  # one per slot: lazy as the pixels
    means = ds.image.groupby("barcode").mean(...)
    assert sorted(means["barcode"].values.tolist()) == ["A1", "A2", "A3"]
    tree = imagezarr.open_datatree(tmp_path / "m.imagezarr.json", chunks={})
    assert isinstance(tree.dataset["barcode"].data, np.ndarray)
    # with the engine by name, xarray chunks every coordinate; .compute() them, or use the above
    raw = xr.open_dataset(tmp_path / "m.imagezarr.json", engine="imagezarr", chunks={})
    assert not isinstance(raw["barcode"].data, np.ndarray)


@pytest.mark.parametrize(
    ("glob", "kept"),
    [
        ("*.png", ["a.png", "old/b.png", "old/x/c.png"]),  # a bare name: any depth, as before
        ("./*.png", ["a.png"]),  # this folder only
        ("old/*.png", ["old/b.png"]),
        ("**/*.png", ["a.png", "old/b.png", "old/x/c.png"]),
        ("old/**/*.png", ["old/b.png", "old/x/c.png"]),
        ("./[!o]*.png", ["a.png"]),
        ("./[a-c]*.png", ["a.png"]),  # a range, not the three characters a, - and c
        ("[b-d]*/*.png", []),  # a folder b..d: none ("old" starts with o)
        ("[n-p]*/*.png", ["old/b.png"]),
    ],
)
def test_glob_with_folders_stays_in_them(tmp_path, glob, kept):
    from imagezarr.discover import discover

    for name in ("a.png", "old/b.png", "old/x/c.png"):
        write_image(tmp_path / name, np.zeros((4, 4), np.uint8))
    assert [e.path for e in discover(tmp_path, glob=glob)] == kept
