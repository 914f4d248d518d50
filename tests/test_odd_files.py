"""One odd file must not stop a scan: --on-mismatch, recorded exclusions, and inspect."""

from __future__ import annotations

import json

import numpy as np
import pytest

import imagezarr
from imagezarr.cli import main
from imagezarr.errors import InconsistentImagesError
from imagezarr.testing import PSII_PATTERN, PSII_TYPES, make_psii_experiment, write_image

SCAN = {"pattern": PSII_PATTERN, "types": PSII_TYPES}


@pytest.fixture
def odd(tmp_path):
    """A PSII folder with one 24x32 image among 12x16 ones, a text file and a stray name."""
    images = tmp_path / "img"
    truth = make_psii_experiment(
        images, plants=4, nights=2, steps=2, frames=2, shape=(12, 16), holes=0
    )
    odd_name = "2020-05-31/A9-doi-20200531T230000-PSII0-1.png"
    write_image(images / odd_name, np.zeros((24, 32), np.uint8))
    (images / "2020-05-31" / "A9-doi-20200531T230000-PSII0-2.png").write_text("not a png")
    (images / "2020-05-31" / "Thumbs copy.png").write_bytes(b"")
    return images, truth, odd_name


def test_one_odd_image_stops_the_scan_by_default_with_the_way_out(odd):
    images, _, _ = odd
    with pytest.raises(InconsistentImagesError, match=r"on_mismatch='skip' \(--on-mismatch skip"):
        imagezarr.scan(images, **SCAN, on_unmatched="skip", on_unreadable="skip")


def test_skip_leaves_out_the_minority_and_records_why(odd, tmp_path):
    images, truth, odd_name = odd
    m = imagezarr.scan(
        images, **SCAN, on_unmatched="skip", on_unreadable="skip", on_mismatch="skip"
    )
    assert len(m.files) == len(truth)
    reasons = {e.path: e.reason for e in m.excluded}
    assert reasons == {
        odd_name: "other signature",
        "2020-05-31/A9-doi-20200531T230000-PSII0-2.png": "unreadable header",
        "2020-05-31/Thumbs copy.png": "name does not match",
    }
    detail = next(e.detail for e in m.excluded if e.path == odd_name)
    assert detail == "png-24x32-uint8, while most files are png-12x16-uint8"
    saved = m.save(tmp_path / "m.imagezarr.json")
    again = imagezarr.load_manifest(saved)
    assert again.excluded == m.excluded
    assert again.layout.on_mismatch == "skip"  # update keeps doing it
    ds = imagezarr.open_dataset(saved)
    assert ds.image.shape[-2:] == (12, 16)


def test_split_gives_each_kind_of_image_its_own_readable_group(odd):
    images, _, _ = odd
    m = imagezarr.scan(
        images, **SCAN, on_unmatched="skip", on_unreadable="skip", on_mismatch="split"
    )
    assert [n.path for n in m.nodes] == ["png-12x16-uint8", "png-24x32-uint8"]
    tree = imagezarr.open_datatree(m)
    assert tree["png-24x32-uint8"].image.shape[-2:] == (24, 32)
    assert tree["png-12x16-uint8"].image.shape[-2:] == (12, 16)
    odd_pixels = tree["png-24x32-uint8"].image.values.reshape(24, 32)
    np.testing.assert_array_equal(odd_pixels, np.zeros((24, 32), np.uint8))


def test_cli_scan_skip_then_info_lists_the_left_out_files(odd, tmp_path, capsys):
    images, _, odd_name = odd
    out = tmp_path / "m.imagezarr.json"
    args = ["--pattern", PSII_PATTERN, "--type", "timestamp=%Y%m%dT%H%M%S", "--type", "frame=int"]
    code = main(
        [
            "scan",
            str(images),
            *args,
            "--skip-unmatched",
            "--skip-unreadable",
            "--on-mismatch",
            "skip",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "left out: 1 name does not match, 1 unreadable header, 1 other signature" in printed
    assert main(["info", str(out)]) == 0
    listed = capsys.readouterr().out
    assert f"{odd_name}: png-24x32-uint8, while most files are png-12x16-uint8" in listed
    assert "Thumbs copy.png" in listed


def test_inspect_lists_fields_layouts_and_every_excluded_file(odd, capsys):
    images, truth, odd_name = odd
    report = imagezarr.inspect(images, **SCAN)
    assert report.listed == len(truth) + 3
    assert report.readable == len(truth) + 1
    assert {f.name: f.values for f in report.fields}["barcode"] == 5
    best = report.candidates[0]
    assert best.chosen
    assert set(best.dims) == {"night", "barcode", "param", "frame"}
    assert {e.reason for e in report.excluded} == {
        "name does not match",
        "unreadable header",
        "other signature",
    }
    assert "differ" in report.problem  # what a plain scan would say
    args = ["--pattern", PSII_PATTERN, "--type", "timestamp=%Y%m%dT%H%M%S", "--type", "frame=int"]
    assert main(["inspect", str(images), *args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["listed"] == len(truth) + 3
    assert {e["path"] for e in doc["excluded"]} >= {odd_name, "2020-05-31/Thumbs copy.png"}
    assert main(["inspect", str(images), *args]) == 0
    text = capsys.readouterr().out
    assert "1 other signature" in text
    assert "a scan with these options would fail" in text


def test_inspect_on_plantcv_data_lists_excluded_files(plantcv_data, tmp_path, capsys):
    from test_plantcv_parity import CASES, write_config

    config = write_config(tmp_path, CASES["snapshots_nir_dates"]["config"], plantcv_data)
    assert main(["inspect", "--plantcv-config", str(config), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    reasons = {e["reason"] for e in doc["excluded"]}
    assert {"not in table", "filtered out", "table row without file"} <= reasons
    assert all(e["detail"] for e in doc["excluded"])
    assert "snapshot57381/NIR_SV_0_z1_h1_g0_e65_117779.jpg" in {
        e["path"].split("/", 1)[-1] for e in doc["excluded"]
    } | {e["path"] for e in doc["excluded"]}
    assert main(["inspect", "--plantcv-config", str(config)]) == 0
    text = capsys.readouterr().out
    assert "not in table" in text
