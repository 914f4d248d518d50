"""map_groups against the same per-group computation written by hand, measured in one run.

Run with ``python benchmarks/map_bench.py`` (``make bench`` runs it too). Generates a PSII-like
experiment: ``--groups`` plants, each with 10 images (5 protocol steps x 2 frames), and
computes one mean per plant. Baseline ``dask graph``: ``open_dataset(chunks={})`` and one
``mean`` over the non-plant dims, computed as one dask graph (what a user writes who knows
dask). Contenders: ``map_groups`` inline and over threads (one call per group, the table
built), and the plain Python loop a newcomer writes (``sel`` per plant, ``.values.mean()``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

import imagezarr
from imagezarr.testing import write_image

sys.path.insert(0, str(Path(__file__).parent))
from run import measure, table  # the shared timing and table helpers


def make(folder: Path, groups: int, shape: tuple[int, int]) -> imagezarr.Manifest:
    rng = np.random.default_rng(0)
    for g in range(groups):
        for step in range(5):
            for frame in (1, 2):
                pixels = rng.integers(0, 255, shape, dtype=np.uint8)
                write_image(folder / f"P{g:04d}-doi-PSII{step}-{frame}.png", pixels)
    pattern = r"(?P<barcode>P\d+)-doi-(?P<param>PSII\d)-(?P<frame>\d)\.png"
    return imagezarr.scan(folder, pattern=pattern, types={"frame": "int"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"imagezarr {imagezarr.__version__}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        m = make(Path(tmp) / "img", args.groups, (120, 160))

        def graph() -> object:
            ds = imagezarr.open_dataset(m, chunks={})
            return ds.image.mean(dim=("param", "frame", "y", "x")).values

        def mapped(workers: int | None) -> object:
            def run() -> object:
                return imagezarr.map_groups(
                    m, lambda g: float(g.image.values.mean()), by="barcode", workers=workers
                )

            return run

        def loop() -> object:
            ds = imagezarr.open_dataset(m)
            return [float(ds.image.sel(barcode=b).values.mean()) for b in ds.barcode.values]

        cases = {
            "dask graph": graph,
            "map_groups (inline)": mapped(None),
            f"map_groups ({os.cpu_count()} threads)": mapped(os.cpu_count()),
            "plain loop": loop,
        }
        expected = graph()
        got = mapped(None)()
        assert np.allclose(got["result"].to_numpy(), expected), "contenders disagree"
        table(
            f"One mean per group, {args.groups} groups of 10 PNGs 120x160",
            measure(cases, args.rounds),
            "dask graph",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
