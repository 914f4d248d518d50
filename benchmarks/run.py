"""Read benchmarks: imagezarr against the decode floor, measured in the same run.

Run with ``make bench`` (or ``python benchmarks/run.py --help``). Generates its own data in a
temporary folder, runs every contender in interleaved rounds, prints medians and the ratio of
each to its named baseline.

Baselines:
- ``floor``: every file read and decoded by imagecodecs in a thread pool, one thread per core.
- ``imread``: one ``imagecodecs.imread`` of one file (for the one-chunk latency).
- ``scandir+64B``: a bare ``os.scandir`` walk reading the first 64 bytes of each file (scan).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imagecodecs
import numpy as np
import zarr

import imagezarr
from imagezarr.testing import psii_image

FUSED = "zarr.core.codec_pipeline.FusedCodecPipeline"
BATCHED = "zarr.core.codec_pipeline.BatchedCodecPipeline"


def make_pngs(folder: Path, n: int, shape: tuple[int, int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"img{i:05d}.png"
        if not p.exists():
            img = psii_image(shape, plant=i % 7, step=i % 4, frame=i % 5 + 1, seed=i)
            p.write_bytes(imagecodecs.png_encode(img))
        paths.append(p)
    return paths


def make_small(folder: Path, n: int) -> None:
    """n tiny PNGs in 100 subfolders (scan workload)."""
    data = imagecodecs.png_encode(np.zeros((8, 8), np.uint8))
    for i in range(n):
        sub = folder / f"d{i % 100:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:06d}.png").write_bytes(data)


def floor(paths: list[Path]) -> Callable[[], object]:
    def run() -> object:
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            return list(pool.map(lambda p: imagecodecs.png_decode(p.read_bytes()), paths))

    return run


def zarr_read(
    manifest: imagezarr.Manifest, pipeline: str, **config: object
) -> Callable[[], object]:
    def run() -> object:
        with zarr.config.set({"codec_pipeline.path": pipeline, **config}):
            store = imagezarr.open_store(manifest, pipeline=None)
            arr = zarr.open_group(store, mode="r")["image"]
            return arr[:]

    return run


def xarray_read(manifest: imagezarr.Manifest, *, dask: bool) -> Callable[[], object]:
    def run() -> object:
        ds = imagezarr.open_dataset(manifest, chunks={} if dask else None)
        return ds.image.compute().values if dask else ds.image.values

    return run


def bare_scan(root: Path) -> Callable[[], object]:
    def run() -> object:
        n = 0
        stack = [str(root)]
        while stack:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    if e.is_dir():
                        stack.append(e.path)
                    else:
                        with open(e.path, "rb") as f:
                            f.read(64)
                        e.stat()
                        n += 1
        return n

    return run


def measure(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():  # warm-up: page cache, imports, codec registry
        fn()
    for _ in range(rounds):
        for name, fn in cases.items():  # interleaved, so drift hits every contender alike
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def table(
    title: str,
    times: dict[str, list[float]],
    baseline: str,
    unit: str = "ms",
    items: int | None = None,
) -> None:
    base = statistics.median(times[baseline])
    print(f"\n## {title}  (baseline: {baseline}; median of {len(times[baseline])} rounds)\n")
    extra = " | items/s" if items else ""
    print(f"| contender | median {unit} | ratio to {baseline}{extra} |")
    print("|---|---:|---:|" + ("---:|" if items else ""))
    scale = 1e3 if unit == "ms" else 1e6
    for name, ts in times.items():
        med = statistics.median(ts)
        rate = f" | {items / med:,.0f}" if items else ""
        print(f"| {name} | {med * scale:,.2f} | {med / base:.2f}{rate} |")


def bench_read(work: Path, n: int, rounds: int) -> None:
    paths = make_pngs(work / "png", n, (480, 640))
    m = imagezarr.scan(work / "png")
    cases = {
        "floor": floor(paths),
        "zarr (default pipeline)": zarr_read(m, BATCHED),
        "zarr (batched, concurrency 64)": zarr_read(m, BATCHED, **{"async.concurrency": 64}),
        "zarr (fused pipeline)": zarr_read(m, FUSED),
        "zarr.open_group(open_store(m)) [auto]": lambda: zarr.open_group(
            imagezarr.open_store(m), mode="r"
        )["image"][:],
        "xarray .values": xarray_read(m, dask=False),
        "xarray + dask": xarray_read(m, dask=True),
    }
    table(f"Full read, {n} gray PNGs 480x640", measure(cases, rounds), "floor")
    arr = imagezarr.open_group(m)["image"]
    one = {
        "imread": lambda: imagecodecs.imread(paths[7]),
        "imagezarr chunk": lambda: arr[7],
    }
    table("One chunk", measure(one, rounds * 20), "imread", unit="us")


def bench_scan(work: Path, n: int, rounds: int) -> None:
    folder = work / f"small{n}"
    if not folder.exists():
        make_small(folder, n)
    cases = {
        "scandir+64B": bare_scan(folder),
        "imagezarr.scan": lambda: imagezarr.scan(folder),
    }
    table(f"Scan of {n:,} small PNGs", measure(cases, rounds), "scandir+64B", items=n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=400, help="camera-size PNGs to read")
    ap.add_argument("--scan", type=int, nargs="*", default=[10_000], help="scan sizes")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workdir", help="keep generated data here (default: a temp folder)")
    args = ap.parse_args(argv)
    print(
        f"imagezarr {imagezarr.__version__}, zarr {zarr.__version__}, imagecodecs "
        f"{imagecodecs.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        bench_read(work, args.files, args.rounds)
        for n in args.scan:
            bench_scan(work, n, max(1, args.rounds // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
