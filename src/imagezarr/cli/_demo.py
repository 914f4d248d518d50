"""``imagezarr demo``: generate a PSII-style experiment and run the main job on it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click

from .. import api
from ..testing import PSII_PATTERN, PSII_TYPES, make_psii_experiment
from ..verify import verify
from ._common import console, echo_tree, heading, lazy_progress, summary_tree


@click.command()
@click.argument("directory", default="imagezarr-demo", type=click.Path(file_okay=False))
# the README tutorial's experiment: its printed lines and selections (A10) are of these data
@click.option("--plants", default=12, show_default=True)
@click.option("--nights", default=3, show_default=True)
def demo(directory: str, plants: int, nights: int) -> None:
    """Generate a small PSII experiment in DIRECTORY, scan it, open it, compute on it."""
    top = Path(directory)
    images = top / "images"
    if not images.exists():
        truth = make_psii_experiment(images, plants=plants, nights=nights)
        console.print(f"generated {len(truth)} PNG images in {images}/ (one folder per night)")
    heading("1. scan: file names -> labeled dims (no pixels read)")
    console.print(f"pattern: {PSII_PATTERN}", soft_wrap=True)
    t0 = time.perf_counter()
    with lazy_progress("probing headers") as progress:
        m = api.scan(images, pattern=PSII_PATTERN, types=PSII_TYPES, progress=progress)  # type: ignore[arg-type]
    out = m.save(top / "psii.imagezarr.json")
    dt = time.perf_counter() - t0
    echo_tree(summary_tree(m, title=str(out)))
    console.print(f"scanned {len(m.files)} files in {dt:.2f} s ({len(m.files) / dt:,.0f} files/s)")
    heading("2. open: the manifest as an xarray Dataset (lazy)")
    ds = api.open_dataset(out, chunks={})
    console.print(ds)
    heading("3. compute: mean leaf intensity per plant and protocol step (dask)")
    pixels = ds.image.where(ds.present)
    # a tiny experiment may have one plant or one step: those are then not dims at all
    over = [d for d in pixels.dims if d not in ("barcode", "param")]
    table = pixels.mean(over, dtype="float64").compute()
    console.print(table.to_pandas().round(2).to_string() if table.ndim else f"{float(table):.2f}")
    heading("4. verify: every file still there and unchanged")
    report = verify(m)
    console.print(f"{report.checked} files checked: " + ("ok" if report.ok else "PROBLEMS"))
    console.print("\nnext steps (paste them as they are):", soft_wrap=True)
    for line in next_steps(out):
        console.print(f"  {line}", soft_wrap=True, markup=False)


def next_steps(manifest: Path) -> list[str]:
    """Commands that work when pasted: this Python and this imagezarr, quoted for the shell."""
    python = sys.executable
    script = Path(python).with_name("imagezarr.exe" if os.name == "nt" else "imagezarr")
    cli = [str(script)] if script.exists() else [python, "-m", "imagezarr"]
    # a double-quoted literal: shell quoting of the whole -c argument stays simple
    literal = json.dumps(str(manifest), ensure_ascii=False)
    code = f"import imagezarr; print(imagezarr.open_dataset({literal}))"
    quote = subprocess.list2cmdline if os.name == "nt" else shlex.join
    return [
        quote([python, "-c", code]),
        quote([*cli, "info", str(manifest)]),
        quote([*cli, "verify", str(manifest)]),
    ]
