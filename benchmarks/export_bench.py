"""Export size and time: 400 real PNGs (every format) and 100,000 synthetic entries (references).

Run: ``.venv/bin/python benchmarks/export_bench.py``. Prints one table; each time is the median
of 3 runs in this process. The 100,000-entry manifest is built in memory and its files do not
exist, so only the formats that need no file access run at that size (kerchunk JSON and
Parquet); Icechunk and links stat every file, the zarr copy decodes every image.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import imagezarr
from imagezarr.discover import FileEntry
from imagezarr.export import export
from imagezarr.layout import LayoutSpec, Node
from imagezarr.manifest import Manifest
from imagezarr.probe import ImageInfo
from imagezarr.testing import PSII_DIMS, PSII_PATTERN, PSII_TYPES, make_psii_experiment


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def timed(m, fmt, out: Path, **options) -> tuple[float, int]:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        export(m, fmt, out, overwrite=True, **options)
        times.append(time.perf_counter() - start)
    return statistics.median(times), size_of(out)


def synthetic(n: int, root: str) -> Manifest:
    files = tuple(FileEntry(f"plate{i // 1000:03d}/well{i:06d}.png", 300_000, 0) for i in range(n))
    info = ImageInfo("png", (480, 640), "uint8", {"name": "imagecodecs_png"}, "")
    node = Node("", {}, ("file",), info, {}, np.arange(n, dtype=np.int64))
    return Manifest(root=root, files=files, layout=LayoutSpec(), nodes=(node,))


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        make_psii_experiment(top / "images", plants=20, nights=5, steps=4, frames=1, holes=0)
        m = imagezarr.scan(top / "images", pattern=PSII_PATTERN, types=PSII_TYPES, dims=PSII_DIMS)
        n = len(m.files)
        for label, fmt, name, opts in [
            ("kerchunk JSON", "kerchunk", "r.json", {}),
            ("kerchunk Parquet", "kerchunk", "r.parq", {}),
            ("icechunk", "icechunk", "repo", {}),
            ("links", "links", "links.zarr", {}),
            ("zarr copy (zstd 3)", "zarr", "copy.zarr", {}),
            ("zarr copy, shards=64", "zarr", "copy64.zarr", {"shards": 64}),
        ]:
            dt, size = timed(m, fmt, top / "out" / name, **opts)
            rows.append((n, label, dt, size))
        source = sum(f.size for f in m.files)
        big = synthetic(100_000, str(top / "missing"))
        for label, name in [("kerchunk JSON", "big.json"), ("kerchunk Parquet", "big.parq")]:
            dt, size = timed(big, "kerchunk", top / "out" / name)
            rows.append((100_000, label, dt, size))
    print(f"source: {n} PNGs 480x640, {source / 2**20:.1f} MiB\n")
    print("| files | export | time (s) | size | per file |")
    print("|---:|---|---:|---:|---:|")
    for count, label, dt, size in rows:
        print(
            f"| {count:,} | {label} | {dt:.3f} | {size / 2**20:.2f} MiB | "
            f"{dt / count * 1e6:.0f} µs, {size / count:.0f} B |"
        )


if __name__ == "__main__":
    main()
