"""The README's tutorial, run as written: its scan command and its Python lines."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np

from imagezarr.cli import main
from imagezarr.cli._demo import demo
from imagezarr.testing import make_psii_experiment

README = Path(__file__).resolve().parents[1] / "README.md"


def tutorial_scan_command() -> list[str]:
    text = README.read_text()
    block = re.search(r"```console\n(imagezarr scan images/.*?)```", text, re.DOTALL)
    assert block is not None, "the README lost its scan example"
    return shlex.split(block.group(1).replace("\\\n", " "))[1:]


def demo_images(folder: Path) -> dict[str, np.ndarray]:
    """The data `imagezarr demo` makes, with its own defaults (so the README is run against
    exactly what a newcomer has after `make demo`)."""
    defaults = {p.name: p.default for p in demo.params if p.name in ("plants", "nights")}
    return make_psii_experiment(folder, **defaults)


def test_readme_tutorial_runs_as_written_on_the_demo_data(tmp_path, monkeypatch, capsys):
    images = tmp_path / "images"
    truth = demo_images(images)
    monkeypatch.chdir(tmp_path)
    assert main(tutorial_scan_command()) == 0
    printed = capsys.readouterr().out
    assert "timestamp (night, barcode, param) datetime" in printed
    shown = re.search(r"^dims chosen: .*$", README.read_text(), re.MULTILINE)
    assert shown is not None
    assert shown.group(0) in printed  # the line the README prints, as printed
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert blocks[0].startswith("import imagezarr\n")
    namespace: dict[str, object] = {}
    exec(blocks[0], namespace)  # the README's own lines, its selection of A10 included
    exec(blocks[1], namespace)  # scan to save, in Python
    assert namespace["m"].node().dims == ("night", "barcode", "param", "frame")
    means = namespace["means"]
    ds = namespace["ds"]
    assert means.dims == ("barcode", "param")
    one = ds.image.sel(barcode="A10", param="PSII3", frame=2).isel(night=0).values
    path = str(ds.path.sel(barcode="A10", param="PSII3", frame=2).isel(night=0).values)
    np.testing.assert_array_equal(one, truth[path])


def test_readme_scan_without_pattern_gives_the_tutorial_dims(tmp_path, capsys):
    demo_images(tmp_path / "images")
    assert main(["scan", str(tmp_path / "images"), "-o", str(tmp_path / "m.imagezarr.json")]) == 0
    printed = capsys.readouterr().out
    assert "fields inferred from the names: --pattern" in printed
    assert "dims (night, barcode, param, frame, y, x)" in printed


def test_readme_points_only_to_files_a_user_has():
    text = README.read_text()
    assert "../shared" not in text  # the development workspace: a user does not have it
    for path in set(re.findall(r"`((?:docs|benchmarks|scripts)/[\w./-]+)`", text)):
        assert (README.parent / path).exists(), path
