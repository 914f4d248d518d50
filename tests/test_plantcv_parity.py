"""PlantCV parity: ``--plantcv-config`` selects the very files PlantCV's ``metadata_parser`` does.

The configurations (``tests/data/plantcv_parity_configs.json``) rebuild the ones of PlantCV's
own parser tests on PlantCV's test data, plus one case per option. PlantCV's selections
(``tests/data/plantcv_parity_expected.json``) were written by running PlantCV itself:
``benchmarks/plantcv_parity.py`` in a separate environment with plantcv installed. The live
test runs that script again when ``/tmp/pcv`` has plantcv.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

import imagezarr
from imagezarr import presets, probe
from imagezarr.discover import discover
from imagezarr.errors import LayoutError, PatternMismatchError
from imagezarr.layout import (
    FILTERED,
    NO_FILE,
    NOT_LISTED,
    NOT_MATCHED,
    Exclusion,
    LayoutWarning,
    exclusion_counts,
    match_fields,
    table_paths,
)
from imagezarr.testing import random_image, write_image

DATA = Path(__file__).parent / "data"
_CONFIGS = json.loads((DATA / "plantcv_parity_configs.json").read_text())
CASES = {c["name"]: c for c in _CONFIGS["cases"]}
EXPECTED = json.loads((DATA / "plantcv_parity_expected.json").read_text())
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "plantcv_parity.py"
PCV_PYTHON = Path("/tmp/pcv/bin/python")
# PlantCV's status for a file it removed, and imagezarr's reason for the same file
STATUS = {
    "Incorrect metadata length": NOT_MATCHED,
    "Removed by config.metadata_filters": FILTERED,
    "Removed by config.start_date and config.end_date": FILTERED,
}


def write_config(tmp_path: Path, config: dict, data: Path, name: str = "config") -> Path:
    doc = {**config, "input_dir": str(data / config["input_dir"])}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def selection(config_path: Path) -> dict:
    """What imagezarr selects for a PlantCV configuration (before reading any header)."""
    try:
        top, spec = presets.plantcv_config(config_path)
        entries = discover(top, extensions=spec.extensions or probe.EXTENSIONS)
        rows = {t: presets.read_table(t) for t in table_paths(spec)}
        report: list[Exclusion] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LayoutWarning)  # rows without file: in the report
            kept, _, _ = match_fields([e.path for e in entries], spec, tables=rows, report=report)
    except LayoutError as e:
        return {"refused": str(e)}
    return {
        "selected": sorted(entries[i].path for i in kept),
        "selected_absent": sorted(e.path for e in report if e.reason == NO_FILE and e.selected),
        "report": report,
    }


def disagreement(expected: dict, got: dict) -> str:
    """Empty when imagezarr agrees with PlantCV, else what differs."""
    if "error" in expected:  # PlantCV raised: imagezarr refuses too
        return "" if "refused" in got else f"PlantCV raised {expected['error']}, imagezarr did not"
    if "refused" in got:
        # a configuration PlantCV selects nothing with may be refused, saying so
        nothing = not expected["selected"] and not expected["selected_absent"]
        return "" if nothing and "selects no file" in got["refused"] else got["refused"]
    for key in ("selected", "selected_absent"):
        if got[key] != expected[key]:
            return f"{key}: PlantCV {expected[key]}, imagezarr {got[key]}"
    # every file (or table row) PlantCV removed is reported, for the same reason
    reasons = {e.path: e.reason for e in got["report"]}
    for path, status in expected.get("removed", {}).items():
        if reasons.get(path) not in (STATUS.get(status), NO_FILE):
            return f"{path}: PlantCV says {status!r}, imagezarr {reasons.get(path)!r}"
    return ""


@pytest.mark.parametrize("name", list(CASES))
def test_selection_matches_plantcv(name, plantcv_data, tmp_path):
    config = write_config(tmp_path, CASES[name]["config"], plantcv_data)
    problem = disagreement(EXPECTED["cases"][name], selection(config))
    assert not problem, f"{name} ({CASES[name]['plantcv_test']}): {problem}"


def test_every_case_has_plantcv_output():
    assert set(EXPECTED["cases"]) == set(CASES)
    reconstructed = [c for c in CASES.values() if c["plantcv_test"] != "extra"]
    assert len(reconstructed) >= 10


def test_live_plantcv_agrees(plantcv_data, tmp_path):
    """PlantCV itself, in its own environment (it pins an older numpy): a subprocess."""
    if not PCV_PYTHON.exists():
        pytest.skip(f"no PlantCV environment at {PCV_PYTHON} (python3.12 -m venv /tmp/pcv && ...)")
    found = subprocess.run(
        [str(PCV_PYTHON), "-c", "import plantcv.parallel"], capture_output=True, check=False
    )
    if found.returncode != 0:
        pytest.skip(f"plantcv is not importable by {PCV_PYTHON}")
    run = subprocess.run(
        [str(PCV_PYTHON), str(SCRIPT), "--data", str(plantcv_data)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    live = json.loads(run.stdout)
    problems = {}
    for name, case in CASES.items():
        config = write_config(tmp_path, case["config"], plantcv_data, name)
        problem = disagreement(live["cases"][name], selection(config))
        if problem:
            problems[name] = problem
    assert not problems, f"PlantCV {live['plantcv']}: {problems}"
    if live["plantcv"] == EXPECTED["plantcv"]:  # the saved outputs are PlantCV's own
        assert live["cases"] == EXPECTED["cases"]


# -- the rules, one at a time ---------------------------------------------------------------

TERMS = ["imgtype", "camera", "rotation", "zoom", "lifter", "gain", "exposure", "id"]


def test_unparsable_names_are_left_out_only_when_plantcv_would(plantcv_data, tmp_path):
    regex = CASES["images_regex_delimiter"]["config"]
    # a filter needs imgtype, which NIR's name (not matching the regex) cannot give
    got = selection(write_config(tmp_path, regex, plantcv_data))
    (nir,) = [e for e in got["report"] if e.reason == NOT_MATCHED]
    assert nir.path == "NIR_SV_0_z1_h1_g0_e65_117779.jpg"
    assert "does not match the delimiter regex" in nir.detail
    assert "no 'imgtype' for the filter on it" in nir.detail
    # without the filter PlantCV keeps the name it cannot parse: imagezarr cannot place it
    plain = {k: v for k, v in regex.items() if k != "metadata_filters"}
    top, spec = presets.plantcv_config(write_config(tmp_path, plain, plantcv_data))
    with pytest.raises(PatternMismatchError, match="1 of 2 files") as info:
        imagezarr.scan(top, layout=spec)
    assert info.value.paths == ["NIR_SV_0_z1_h1_g0_e65_117779.jpg"]
    report: list[Exclusion] = []
    m = imagezarr.scan(top, layout=spec, on_unmatched="skip", report=report)
    assert list(m.files.paths) == ["VIS_SV_0_z1_h1_g0_e82_117770.jpg"]
    assert [(e.path, e.reason) for e in report] == [(nir.path, NOT_MATCHED)]


def test_snapshot_table_rows_without_file_are_reported(plantcv_data, tmp_path):
    config = write_config(tmp_path, CASES["snapshots_nir_dates"]["config"], plantcv_data)
    top, spec = presets.plantcv_config(config)
    report: list[Exclusion] = []
    with pytest.warns(LayoutWarning, match="lists 4 files that are not among the scanned"):
        m = imagezarr.scan(top, layout=spec, dims="barcode", report=report)
    assert list(m.files.paths) == ["snapshot57383/NIR_SV_0_z1_h1_g0_e65_117779.jpg"]
    assert exclusion_counts(report) == {NOT_LISTED: 4, NO_FILE: 4, FILTERED: 1}
    assert m.unmatched == 5  # not in the table, filtered out
    rows = {e.path: e for e in report if e.reason == NO_FILE}
    assert rows["snapshot57383/NIR_SV_0_z1_h1_g0_e82_117770.jpg"].selected
    assert "passes the filters" in rows["snapshot57383/NIR_SV_0_z1_h1_g0_e82_117770.jpg"].detail
    assert "'tiles' entry is empty" in rows["snapshot57382/.jpg"].detail
    vis = rows["snapshot57382/VIS_SV_0_z1_h1_g0_e82_117771.jpg"]
    assert vis.detail == "listed in SnapshotInfo.csv; imgtype='VIS' is not one of ['NIR']"
    # every exclusion travels as JSON (for the manifest and `imagezarr inspect`)
    doc = json.loads(json.dumps([e.to_json() for e in report]))
    assert [Exclusion.from_json(d) for d in doc] == report
    with pytest.raises(LayoutError, match="reason among"):
        Exclusion.from_json({"path": "a", "reason": "gone"})


def test_snapshot_tiles_are_png_unless_imgformat_names_another(plantcv_data, tmp_path):
    config = write_config(tmp_path, CASES["snapshots_imgformat_all"]["config"], plantcv_data)
    got = selection(config)
    assert got["selected"] == []
    hint = {e.path: e.detail for e in got["report"] if e.reason == NO_FILE}
    assert (
        "'snapshot57383/VIS_SV_0_z1_h1_g0_e82_117770.jpg' is there: another extension"
        in (hint["snapshot57383/VIS_SV_0_z1_h1_g0_e82_117770.png"])
    )


def test_configurations_plantcv_selects_nothing_with_are_refused(plantcv_data, tmp_path):
    quirk = write_config(tmp_path, CASES["snapshots_no_default_dates"]["config"], plantcv_data)
    with pytest.raises(LayoutError, match=r"leaves the last filename_metadata term 'id' empty"):
        presets.plantcv_config(quirk)
    assert presets.blank_term(TERMS) == "id"
    assert presets.blank_term([*TERMS, "timestamp"]) is None
    # in a phenodata export the terms come from metadata.json, which has no "id"
    pheno = {"input_dir": "phenodata_dir", "filename_metadata": TERMS}
    pheno["metadata_filters"] = {"id": 1}
    with pytest.raises(LayoutError, match="have no 'id'"):
        presets.plantcv_config(write_config(tmp_path, pheno, plantcv_data))
    # nothing left after the filters: the scan says what was left out
    flat = {"input_dir": "flat_imgdir", "filename_metadata": TERMS}
    none = write_config(tmp_path, {**flat, "metadata_filters": {"imgtype": "UV"}}, plantcv_data)
    top, spec = presets.plantcv_config(none)
    with pytest.raises(LayoutError, match="no file is left to scan: 3 left out by the layout"):
        imagezarr.scan(top, layout=spec)


def test_files_that_are_not_images_are_still_named(plantcv_data, tmp_path):
    config = write_config(tmp_path, CASES["images_imgformat_all"]["config"], plantcv_data)
    top, spec = presets.plantcv_config(config)
    with pytest.raises(imagezarr.errors.ProbeError, match=r"VIS_SV_0_z1_h1_g0_e82_999999\.jpeg"):
        imagezarr.scan(top, layout=spec)
    m = imagezarr.scan(top, layout=spec, on_unreadable="skip", dims="id")
    assert m.unreadable == ("VIS_SV_0_z1_h1_g0_e82_999999.jpeg",)
    # PlantCV's snapshot_dir: both top views it selects are text files named .png
    top_view = write_config(tmp_path, CASES["snapshot_dir_top_view"]["config"], plantcv_data)
    top, spec = presets.plantcv_config(top_view)
    with pytest.raises(LayoutError, match="2 not readable images") as info:
        imagezarr.scan(top, layout=spec, on_unreadable="skip")
    assert "'VIS_TV_0_z300_h1_g0_e85_v500_93054.png'" in str(info.value)


def test_phenodata_images_that_are_there(plantcv_data, tmp_path):
    """metadata.json lists every image: those written as real PNGs scan, the others are named."""
    root = tmp_path / "phenodata_dir"
    shutil.copytree(plantcv_data / "phenodata_dir", root)
    vis = sorted(root.glob("*/*/VIS_SV_*.png"))
    for k, path in enumerate(vis):
        write_image(path, random_image((4, 5, 3), seed=k))
    config = {"input_dir": str(root), "filename_metadata": ["imgtype", "camera", "rotation"]}
    path = tmp_path / "pheno.json"
    path.write_text(json.dumps({**config, "include_all_subdirs": False}))
    top, spec = presets.plantcv_config(path)
    report: list[Exclusion] = []
    m = imagezarr.scan(
        top,
        layout=spec,
        group_by="imgtype",
        dims="camera,rotation,timestamp",
        on_unreadable="skip",
        report=report,
    )
    assert report == []  # nothing left out: the listing ignores include_all_subdirs
    assert len(m.unreadable) == 8  # the zero-byte NIR and top-view files, by name
    (node,) = m.nodes
    assert node.path == "VIS"
    assert node.shape == (1, 2, 2)
    assert sorted(m.files.paths) == sorted(str(p.relative_to(root)) for p in vis)


def test_cli_summary_lists_what_plantcv_leaves_out(plantcv_data, tmp_path, capsys):
    from imagezarr.cli import main

    config = write_config(tmp_path, CASES["snapshots_nir_dates"]["config"], plantcv_data)
    out = tmp_path / "nir.imagezarr.json"
    assert main(["scan", "--plantcv-config", str(config), "-o", str(out), "--dims", "barcode"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "PlantCV selection: left out 4 not in table, 1 filtered out;" in text
    assert "4 table row(s) without file (1 passing the filters)" in text
    assert "not in table: snapshot57381/NIR_SV_0_z1_h1_g0_e65_117779.jpg" in text
    # nothing left: the reasons go to stderr before the error
    none = {**CASES["images_vis"]["config"], "metadata_filters": {"imgtype": "UV"}}
    args = ["scan", "--plantcv-config", str(write_config(tmp_path, none, plantcv_data))]
    assert main([*args, "-o", str(out)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "PlantCV selection: left out 2 filtered out" in err
    assert "imgtype='VIS' is not one of ['UV']" in err
    assert "no file is left to scan" in err
