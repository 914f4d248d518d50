"""Phenomics layouts end to end: PlantCV presets, derived days, lookups, sidecar tables, configs.

Every layout is pixel-checked through ``imagezarr.open_dataset`` against ``imagecodecs.imread``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr import presets
from imagezarr.errors import LayoutError, PatternMismatchError
from imagezarr.layout import LayoutSpec, LayoutWarning, Lookup, Table
from imagezarr.testing import random_image, write_image

TERMS = "plantbarcode,other,timestamp,camera,frame"
PSII_DIMS = ["plantbarcode", "day", "camera", "frame"]


def make_psii(root: Path, *, plants=3, nights=2, steps=2, frames=3, skip=((1, 1),)) -> dict:
    """PlantCV PSII names; every step of a visit shares the visit's timestamp."""
    truth = {}
    for p in range(plants):
        for n in range(nights):
            if (p, n) in skip:
                continue
            when = datetime(2020, 5, 31, 21, 1, 55) + timedelta(days=n, minutes=7 * p)
            for s in range(steps):
                for f in range(1, frames + 1):
                    name = f"A{p + 1}-doi-{when:%Y%m%dT%H%M%S}-PSII{s}-{f}.png"
                    img = random_image((6, 7), seed=hash((p, n, s, f)) % 2**31)
                    write_image(root / name, img)
                    truth[name] = (f"A{p + 1}", n, f"PSII{s}", str(f), when)
    return truth


def assert_pixels(ds, root: Path, dims=PSII_DIMS) -> int:
    """Every present slot reads exactly the pixels imagecodecs decodes from its file."""
    image = ds.image.values
    present = ds.present.values
    checked = 0
    for idx in zip(*np.nonzero(present), strict=True):
        rel = str(ds.path.values[idx])
        np.testing.assert_array_equal(image[idx], imagecodecs.imread(root / rel))
        checked += 1
    assert checked == int(present.sum()) > 0
    return checked


def psii_spec(**kwargs):
    return presets.plantcv(
        TERMS,
        delimiter="-",
        timestampformat="%Y%m%dT%H%M%S",
        dims=PSII_DIMS,
        derived={"day": "day(timestamp, 20:00)"},
        **kwargs,
    )


def test_plantcv_psii_layout_day_boundary_and_2d_timestamp(tmp_path):
    root = tmp_path / "psii"
    truth = make_psii(root)
    m = imagezarr.scan(root, layout=psii_spec())
    node = m.node()
    assert node.dims == ("plantbarcode", "day", "camera", "frame")
    assert node.shape == (3, 2, 2, 3)
    # each plant is imaged at its own time: timestamp depends on (plant, day) only
    assert node.coords["timestamp"].dims == ("plantbarcode", "day")
    assert node.coords["other"].dims == ()
    # PlantCV's types: frame stays a string, timestamp is a datetime
    assert node.coords["frame"].kind == "str"
    saved = m.save(tmp_path / "psii.imagezarr.json")
    ds = imagezarr.open_dataset(saved)
    # 21:01 on May 31 is after the 20:00 boundary: it belongs to the June 1 run
    assert [str(d)[:10] for d in ds.day.values] == ["2020-06-01", "2020-06-02"]
    assert ds.timestamp.dims == ("plantbarcode", "day")
    assert ds.timestamp.sel(plantbarcode="A3", day="2020-06-01").values == np.datetime64(
        "2020-05-31T21:15:55"
    )
    assert np.isnat(ds.timestamp.sel(plantbarcode="A2", day="2020-06-02").values)
    assert assert_pixels(ds, root) == len(truth) == 30
    layout = json.loads(saved.read_text())["layout"]
    assert layout["preset"]["filename_metadata"] == TERMS.split(",")
    assert layout["preset"]["delimiter"] == "-"
    assert layout["derived"] == {"day": "day(timestamp, 20:00)"}
    assert layout["target"] == "stem"


def test_saved_layout_repeats_the_scan(tmp_path):
    root = tmp_path / "psii"
    make_psii(root)
    saved = imagezarr.scan(root, layout=psii_spec()).save(tmp_path / "a.imagezarr.json")
    again = imagezarr.scan(root, layout=imagezarr.load_manifest(saved).layout)
    assert again.layout == imagezarr.load_manifest(saved).layout
    assert np.array_equal(again.node().file_index, imagezarr.load_manifest(saved).node().file_index)


def test_wrong_number_of_parts_names_the_file_or_is_skipped(tmp_path):
    root = tmp_path / "psii"
    make_psii(root, plants=1, nights=1, steps=1, frames=2, skip=())
    write_image(root / "A1-doi-PSII0-9.png", random_image((6, 7)))
    with pytest.raises(PatternMismatchError) as info:
        imagezarr.scan(root, layout=psii_spec())
    msg = str(info.value)
    assert "'A1-doi-PSII0-9.png'" in msg
    assert "'A1-doi-PSII0-9' has 4 part(s) split on '-' but filename_metadata lists 5 terms" in msg
    assert "--skip-unmatched" in msg
    m = imagezarr.scan(root, layout=psii_spec(on_unmatched="skip"))
    assert m.unmatched == 1
    assert len(m.files) == 2


def test_regex_delimiter_as_in_plantcv_docs(tmp_path):
    # the example of PlantCV's docs/pipeline_parallel.md
    regex = r"(.{3})_(.+)_(\d{4}-\d{2}-\d{2} \d{2}_\d{2}_\d{2})"
    for name in ["rgb_plant-1_2019-01-01 10_00_00.png", "rgb_plant-2_2019-01-01 10_05_00.png"]:
        write_image(tmp_path / "in" / name, random_image((4, 4)))
    spec = presets.plantcv(
        ["imgtype", "plantbarcode", "timestamp"],
        delimiter=regex,
        timestampformat="%Y-%m-%d %H_%M_%S",
    )
    assert spec.search
    m = imagezarr.scan(tmp_path / "in", layout=spec)
    node = m.node()
    assert node.dims == ("imgtype", "plantbarcode")
    assert node.coords["plantbarcode"].values == ("plant-1", "plant-2")
    assert node.coords["timestamp"].values[1] == datetime(2019, 1, 1, 10, 5)
    assert_pixels(imagezarr.open_dataset(m), tmp_path / "in", dims=node.dims)
    with pytest.raises(LayoutError, match=r"has 3 group\(s\) but filename_metadata lists 2 terms"):
        presets.plantcv(["imgtype", "plantbarcode"], delimiter=regex)


def test_day_boundary_default_midnight_and_strftime(tmp_path):
    names = {
        "A1_2020-06-01 19-59.png": ("2020-06-01", "2020-06-01"),
        "A1_2020-06-01 20-00.png": ("2020-06-02", "2020-06-01"),
        "A1_2020-06-02 03-10.png": ("2020-06-02", "2020-06-02"),
    }
    for name in names:
        write_image(tmp_path / "in" / name, random_image((4, 4), seed=len(name)))
    spec = presets.plantcv(
        "plantbarcode,timestamp",
        timestampformat="%Y-%m-%d %H-%M",
        derived={
            "run": "day(timestamp, 20:00)",
            "date": "day(timestamp)",
            "month": "strftime(timestamp, %Y-%m)",
        },
        dims=["plantbarcode", "timestamp"],
    )
    m = imagezarr.scan(tmp_path / "in", layout=spec)
    coords = m.node().coords
    assert [v.date().isoformat() for v in coords["run"].values] == [r for r, _ in names.values()]
    assert [v.date().isoformat() for v in coords["date"].values] == [d for _, d in names.values()]
    assert coords["month"].values == ("2020-06",)
    with pytest.raises(LayoutError, match="day boundary '25:00' is not a time such as 20:00"):
        presets.plantcv("plantbarcode,timestamp", derived={"d": "day(timestamp, 25:00)"})
    with pytest.raises(LayoutError, match=r"cannot read 'week\(timestamp\)'"):
        LayoutSpec(pattern=r"(?P<a>.*)", derived={"w": "week(timestamp)"}).validate()


def plate_of(fields):
    return "left" if int(fields["plantbarcode"][1:]) <= 2 else "right"


def test_callable_derived_field_is_recorded_by_name(tmp_path):
    root = tmp_path / "psii"
    make_psii(root, nights=1, steps=1, frames=1, skip=())
    m = imagezarr.scan(root, layout=psii_spec(), derived={"plate": plate_of})
    assert m.node().coords["plate"].dims == ("plantbarcode",)
    assert m.node().coords["plate"].values == ("left", "left", "right")
    saved = m.save(tmp_path / "p.imagezarr.json")
    doc = json.loads(saved.read_text())
    recorded = doc["layout"]["derived"]["plate"]
    assert recorded.startswith("callable:")
    assert recorded.endswith("test_presets.plate_of")
    layout = imagezarr.load_manifest(saved).layout
    with pytest.raises(LayoutError) as info:
        imagezarr.scan(root, layout=layout)
    fn = recorded.removeprefix("callable:")
    assert str(info.value) == (
        f"derived field 'plate' was computed by the Python callable {fn!r}, "
        "which cannot be saved in JSON: provide it again, e.g. derived={'plate': plate_of}"
    )
    again = imagezarr.scan(root, layout=layout, derived={"plate": plate_of})
    assert again.node().coords["plate"].values == ("left", "left", "right")


def test_lookup_joins_add_coordinates(tmp_path):
    root = tmp_path / "psii"
    make_psii(root)
    frames = tmp_path / "frames.csv"
    frames.write_text("frame,frame_label\n1,Fdark\n2,F0\n3,Fm\n")
    plants = tmp_path / "plants.csv"
    plants.write_text("barcode,genotype,treatment\nA1,Col-0,control\nA2,Col-0,drought\n")
    lookups = [
        Lookup(str(frames), key="frame"),
        Lookup(str(plants), key="plantbarcode", column="barcode", on_missing="warn"),
    ]
    with pytest.warns(LayoutWarning, match=r"1 value\(s\) of 'plantbarcode' are not in lookup"):
        m = imagezarr.scan(root, layout=psii_spec(), lookups=lookups)
    coords = m.node().coords
    assert coords["frame_label"].dims == ("frame",)
    assert coords["frame_label"].values == ("Fdark", "F0", "Fm")
    assert coords["genotype"].dims == ("plantbarcode",)
    assert coords["genotype"].values == ("Col-0", "Col-0", None)
    ds = imagezarr.open_dataset(m.save(tmp_path / "l.imagezarr.json"))
    assert list(ds.frame_label.values) == ["Fdark", "F0", "Fm"]
    assert list(ds.treatment.values) == ["control", "drought", ""]
    assert_pixels(ds.set_xindex("frame_label"), root)
    assert ds.image.set_xindex("frame_label").sel(frame_label="Fm").shape == (3, 2, 2, 6, 7)
    with pytest.raises(LayoutError) as info:
        imagezarr.scan(
            root,
            layout=psii_spec(),
            lookups=[Lookup(str(plants), "plantbarcode", column="barcode")],
        )
    assert "1 value(s) of 'plantbarcode' are not in lookup table" in str(info.value)
    assert "'A3' (12 files)" in str(info.value)
    assert "on_missing='warn'" in str(info.value)


def test_metadata_filters_and_date_range(tmp_path):
    root = tmp_path / "psii"
    make_psii(root)
    spec = psii_spec(metadata_filters={"camera": "PSII1", "frame": [1, 3]})
    m = imagezarr.scan(root, layout=spec)
    assert m.node().shape == (3, 2, 1, 2)
    assert m.unmatched == 30 - 10
    spec = psii_spec(start_date="20200601T000000", end_date="20200601T235959")
    m = imagezarr.scan(root, layout=spec)
    assert m.node().coords["day"].values == (datetime(2020, 6, 2),)


def make_snapshots(root: Path) -> dict[str, np.ndarray]:
    """A LemnaTec-style export: snapshot<id>/<camera label>.png plus SnapshotInfo.csv."""
    rows = ["experiment,id,plant barcode,car tag,timestamp,tiles"]
    truth = {}
    for sid, barcode, when in [
        (11, "Ca01", "2014-10-22 17:49:35.187"),
        (12, "Ca02", "2014-10-23 09:00:00.000"),
    ]:
        tiles = []
        for cam in ["VIS_SV_0_z1_h1_g0_e82", "VIS_SV_90_z1_h1_g0_e82"]:
            img = random_image((5, 6, 3), seed=sid * 7 + len(tiles))
            write_image(root / f"snapshot{sid}" / f"{cam}.png", img)
            truth[f"snapshot{sid}/{cam}.png"] = img
            tiles.append(cam)
        rows.append(f"exp1,{sid},{barcode},{sid + 100},{when},{';'.join(tiles)};")
    (root / "SnapshotInfo.csv").write_text("\n".join(rows) + "\n")
    return truth


def test_sidecar_table_joins_nested_snapshots(tmp_path):
    root = tmp_path / "lemnatec"
    truth = make_snapshots(root)
    table = presets.lemnatec_table(root / "SnapshotInfo.csv")
    spec = presets.plantcv(
        "imgtype,camera,rotation,zoom,lifter,gain,exposure",
        tables=[table],
        types={"timestamp": "%Y-%m-%d %H:%M:%S.%f"},
        dims=["barcode", "rotation"],
    )
    m = imagezarr.scan(root, layout=spec)
    node = m.node()
    assert node.shape == (2, 2)
    assert node.coords["barcode"].values == ("Ca01", "Ca02")
    assert node.coords["timestamp"].dims == ("barcode",)
    assert node.coords["snapshot"].values == ("11", "12")
    ds = imagezarr.open_dataset(m.save(tmp_path / "s.imagezarr.json"))
    assert assert_pixels(ds, root) == len(truth) == 4
    # a file the table does not list, and a row naming a file that is not there
    write_image(root / "snapshot13" / "VIS_SV_0_z1_h1_g0_e82.png", random_image((5, 6, 3)))
    with pytest.raises(PatternMismatchError, match="they are not listed in the table"):
        imagezarr.scan(root, layout=spec)
    with (root / "SnapshotInfo.csv").open("a") as f:
        f.write("exp1,14,Ca04,114,2014-10-24 09:00:00.000,VIS_SV_0_z1_h1_g0_e82\n")
    with pytest.raises(LayoutError, match=r"lists 1 files \(any extension\) that are not among"):
        imagezarr.scan(root, layout=spec, on_unmatched="skip")


def test_real_lemnatec_snapshot_table(plantcv_data, tmp_path):
    """PlantCV's own test export: duplicate rows, empty tiles, rows and folders that differ."""
    root = plantcv_data / "snapshot_imgdir"
    table = presets.lemnatec_table(root / "SnapshotInfo.csv")
    spec = presets.plantcv(
        "imgtype,camera,rotation,zoom,lifter,gain,exposure,id",
        tables=[table],
        types={"timestamp": "%Y-%m-%d %H:%M:%S.%f"},
        dims=["barcode"],
        group_by=["imgtype"],
    )
    with pytest.raises(PatternMismatchError) as info:
        imagezarr.scan(root, layout=spec)
    assert str(info.value).startswith("4 of 6 files match the glob but they are not listed")
    assert "'snapshot57381/NIR_SV_0_z1_h1_g0_e65_117779.jpg'" in str(info.value)
    with pytest.raises(LayoutError, match="that are not among the scanned files") as info:
        imagezarr.scan(root, layout=spec, on_unmatched="skip")
    assert "'snapshot57382/VIS_SV_0_z1_h1_g0_e82_117771'" in str(info.value)
    warn = presets.lemnatec_table(root / "SnapshotInfo.csv", on_missing="warn")
    with pytest.warns(LayoutWarning, match="lists 4 files"):
        m = imagezarr.scan(root, layout=replace(spec, tables=(warn,)), on_unmatched="skip")
    assert m.unmatched == 4
    assert [n.path for n in m.nodes] == ["NIR", "VIS"]
    nir = m.node("NIR")
    assert nir.coords["barcode"].values == ("Ca031AA010564",)
    assert nir.coords["timestamp"].values == (datetime(2014, 10, 22, 17, 49, 35, 187000),)
    assert nir.coords["snapshot"].values == ("57383",)
    saved = m.save(tmp_path / "real.imagezarr.json")
    for group in ("NIR", "VIS"):
        assert_pixels(imagezarr.open_dataset(saved, group=group), root)


def test_plantcv_config_file_reads_filename_layouts(tmp_path):
    root = tmp_path / "psii"
    make_psii(root)
    write_image(root / "notes.jpg", random_image((3, 3)))  # not the configured imgformat
    template = {
        "input_dir": str(root),
        "filename_metadata": TERMS.split(","),
        "delimiter": "-",
        "timestampformat": "%Y%m%dT%H%M%S",
        "imgformat": "png",
        "metadata_filters": {"camera": "PSII0"},
        "start_date": "20200601T000000",
    }
    config = tmp_path / "config.json"
    config.write_text(json.dumps(template))
    top, spec = presets.plantcv_config(config)
    assert top == str(root)
    assert spec.preset["config"] == str(config)
    m = imagezarr.scan(top, layout=spec, derived={"day": "day(timestamp, 20:00)"}, dims=PSII_DIMS)
    assert m.node().shape == (2, 1, 1, 3)  # A2 was not imaged the second night
    assert_pixels(imagezarr.open_dataset(m), root)


def test_real_plantcv_template_and_phenodata(plantcv_data, tmp_path):
    template = json.loads((plantcv_data / "workflowconfig_template.json").read_text())
    # PlantCV's defaults: "_" delimiter, all formats, subfolders included, no filters
    assert template["delimiter"] == "_"
    template.update(
        input_dir=str(plantcv_data / "phenodata_dir"),
        filename_metadata=["imgtype", "camera", "rotation"],
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps(template))
    top, spec = presets.plantcv_config(config)
    assert spec.tables[0].path.endswith("metadata.json")
    assert spec.tables[0].on_unlisted == "skip"
    # every image of this export is a zero-byte file: named, not silently dropped
    with pytest.raises(LayoutError, match="12 not readable images") as info:
        imagezarr.scan(
            top, layout=spec, group_by="imgtype", dims="camera,rotation", on_unreadable="skip"
        )
    assert "'2015-04-07/snapshot808/NIR_SV_0_z2500_h2_g0_e65_4859_0.png'" in str(info.value)


def test_cli_preset_derive_and_lookup(tmp_path):
    from imagezarr.cli import main

    root = tmp_path / "psii"
    make_psii(root)
    frames = tmp_path / "frames.csv"
    frames.write_text("frame,frame_label\n1,Fdark\n2,F0\n3,Fm\n")
    out = tmp_path / "cli.imagezarr.json"
    code = main(
        [
            "scan",
            str(root),
            "-o",
            str(out),
            "-q",
            "--preset",
            "plantcv",
            "--terms",
            TERMS,
            "--delimiter",
            "-",
            "--timestampformat",
            "%Y%m%dT%H%M%S",
            "--derive",
            "day=day(timestamp, 20:00)",
            "--dims",
            ",".join(PSII_DIMS),
            "--lookup",
            f"frame={frames}",
        ]
    )
    assert code == 0
    ds = imagezarr.open_dataset(out)
    assert ds.timestamp.dims == ("plantbarcode", "day")
    assert list(ds.frame_label.values) == ["Fdark", "F0", "Fm"]
    assert_pixels(ds, root)


def test_cli_plantcv_config(tmp_path, capsys):
    from imagezarr.cli import main

    root = tmp_path / "psii"
    make_psii(root)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "input_dir": str(root),
                "filename_metadata": TERMS.split(","),
                "delimiter": "-",
                "timestampformat": "%Y%m%dT%H%M%S",
                "imgformat": "png",
            }
        )
    )
    out = tmp_path / "cfg.imagezarr.json"
    args = ["scan", "--plantcv-config", str(config), "-o", str(out), "-q"]
    assert main(args) == 1
    assert "have more than one file" in capsys.readouterr().err  # two nights, no day dim
    days = ["--derive", "day=day(timestamp, 20:00)", "--dims", ",".join(PSII_DIMS)]
    assert main(args + days) == 0
    ds = imagezarr.open_dataset(out)
    assert ds.timestamp.dims == ("plantbarcode", "day")
    assert_pixels(ds, root)
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"input_dir": str(root), "filename_metadata": ["a", "b"], "delimiter": "-"})
    )
    assert main(["scan", "--plantcv-config", str(bad), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "has 5 part(s) split on '-' but filename_metadata lists 2 terms ['a', 'b']" in err


def test_table_and_lookup_json_round_trip():
    spec = LayoutSpec(
        pattern=r"(?P<a>\w+)\.png",
        tables=(
            Table("t.csv", file="{f}", split={"f": ";"}, on_missing="warn", on_unlisted="skip"),
        ),
        lookups=(Lookup("l.csv", key="a", column="A", columns={"B": "b"}),),
        filters={"a": ("x",)},
        ranges={"a": ("a", None)},
        derived={"d": "strftime(t, %Y)"},
        recursive=False,
    )
    assert LayoutSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    plain = LayoutSpec(pattern=r"(?P<a>\w+)\.png")
    assert set(plain.to_json()) == {"pattern", "glob", "types", "dims", "group_by", "on_unmatched"}


def test_include_all_subdirs_false(tmp_path):
    root = tmp_path / "psii"
    make_psii(root, nights=1, steps=1, frames=1, skip=())
    shutil.copytree(root, root / "sub")
    spec = psii_spec(include_all_subdirs=False)
    m = imagezarr.scan(root, layout=spec)
    assert all("/" not in p for p in m.files.paths)
    assert len(m.files) == 3
