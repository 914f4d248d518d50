"""The README's tutorial, run as written: its scan command and its Python lines."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np

from imagezarr.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def tutorial_scan_command() -> list[str]:
    text = README.read_text()
    block = re.search(r"```console\n(imagezarr scan images/.*?)```", text, re.DOTALL)
    assert block is not None, "the README lost its scan example"
    return shlex.split(block.group(1).replace("\\\n", " "))[1:]


def test_readme_tutorial_runs_as_written(psii, monkeypatch, capsys):
    images, truth = psii
    monkeypatch.chdir(images.parent)
    assert main(tutorial_scan_command()) == 0
    printed = capsys.readouterr().out
    assert "timestamp (night, barcode, param) datetime" in printed
    assert "dims chosen: (night, barcode, param, frame); 288 slot(s), 48 hole(s)" in printed
    code = re.search(r"```python\nimport imagezarr\n(.*?)```", README.read_text(), re.DOTALL)
    assert code is not None
    namespace: dict[str, object] = {}
    exec("import imagezarr\n" + code.group(1), namespace)  # the README's own lines
    means = namespace["means"]
    ds = namespace["ds"]
    assert means.dims == ("barcode", "param")
    one = ds.image.sel(barcode="A10", param="PSII3", frame=2).isel(night=0).values
    path = str(ds.path.sel(barcode="A10", param="PSII3", frame=2).isel(night=0).values)
    np.testing.assert_array_equal(one, truth[path])
