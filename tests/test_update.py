"""Re-scanning with a manifest's recorded layout, from Python and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import imagezarr
from imagezarr.cli import main
from imagezarr.testing import PSII_SCAN as PSII
from imagezarr.testing import psii_image, write_image


def test_update_reports_and_applies_changes(psii, tmp_path):
    images, truth = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    names = sorted(truth)
    (images / names[0]).unlink()
    replaced = psii_image((12, 16), plant=9, step=9, frame=9, seed=9)
    write_image(images / names[1], replaced)
    new_name = names[0].replace("-1.png", "-7.png")
    write_image(images / new_name, psii_image((12, 16), plant=1, step=0, frame=7, seed=3))
    new, diff = imagezarr.update(out)
    assert diff.removed == (names[0],)
    assert diff.changed == (names[1],)
    assert diff.added == (new_name,)
    assert diff.unchanged == len(truth) - 2
    assert new.layout.to_json() == imagezarr.load_manifest(out).layout.to_json()
    ds = imagezarr.open_dataset(new)
    assert 7 in ds.frame.values  # the new frame became a label
    hit = np.argwhere(ds.path.values == names[1])[0]
    np.testing.assert_array_equal(ds.image.values[tuple(hit)], replaced)


def test_update_cli_dry_run_then_write(psii, tmp_path, capsys):
    images, truth = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    before = out.read_text()
    (images / sorted(truth)[0]).unlink()
    assert main(["update", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert f"removed  {sorted(truth)[0]}" in text
    assert "0 added, 1 removed, 0 changed" in text
    assert out.read_text() == before
    assert main(["update", str(out), "-q"]) == 0
    assert len(json.loads(out.read_text())["files"]["path"]) == len(truth) - 1
    assert main(["verify", str(out)]) == 0  # the updated manifest matches the folder again


def test_update_needs_callables_again(tmp_path):
    write_image(tmp_path / "img" / "p1_1.png", psii_image((4, 4), plant=1, step=0, frame=1, seed=0))
    m = imagezarr.scan(
        tmp_path / "img",
        pattern=r"p(?P<p>\d)_(?P<f>\d)\.png",
        derived={"plate": lambda f: f"plate{f['p']}"},
    )
    out = m.save(tmp_path / "m.imagezarr.json")
    with pytest.raises(imagezarr.LayoutError, match="provide it again"):
        imagezarr.update(out)
    new, diff = imagezarr.update(out, derived={"plate": lambda f: f"plate{f['p']}"})
    assert not diff.any
    assert new.node("").coords["plate"].values == ("plate1",)
