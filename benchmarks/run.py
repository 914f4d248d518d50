"""Read benchmarks: imagezarr against the decode floor, measured in the same run.

Run with ``make bench`` (or ``python benchmarks/run.py --help``). Generates its own data in a
temporary folder, runs every contender in interleaved rounds, prints medians and the ratio of
each to its named baseline.

Workloads and baselines:
1. Full read of camera-size PNGs. Baseline ``floor``: every file read and decoded by
   imagecodecs in a thread pool, one thread per core. Peers: tifffile ``FileSequence.aszarr()``
   through zarr, ``dask.array.image.imread``.
2. One chunk. Baseline ``imread``: one ``imagecodecs.imread`` of the same file.
3. Scan. Baseline ``scandir+64B``: a bare ``os.scandir`` walk reading the first 64 bytes of
   each file. Peer: tifffile ``FileSequence`` with a pattern (names only, no header read).
4. Manifest of a million synthetic entries: bytes on disk, save, load, ``open_dataset``, peak
   memory (each in a fresh subprocess, so peak RSS is the step's own).
5. Peak memory while reading a dataset slice by slice, for two dataset sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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


def peers(folder: Path, paths: list[Path]) -> dict[str, Callable[[], object]]:
    """The tools a user would otherwise reach for, where installed."""
    out: dict[str, Callable[[], object]] = {}
    try:
        import tifffile

        def tiff_seq() -> object:
            seq = tifffile.FileSequence(
                imagecodecs.imread, [str(p) for p in paths], pattern=r"img(\d+)"
            )
            return zarr.open_array(seq.aszarr(), mode="r")[:]

        out["peer: tifffile FileSequence.aszarr"] = tiff_seq
    except ImportError:
        pass
    try:
        import dask.array.image

        def dask_imread() -> object:
            return dask.array.image.imread(
                str(folder / "*.png"), imread=imagecodecs.imread
            ).compute()

        out["peer: dask.array.image.imread"] = dask_imread
    except ImportError:
        pass
    return out


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


def measure(
    cases: dict[str, Callable[[], object]],
    rounds: int,
    setup: Callable[[], object] | None = None,
) -> dict[str, list[float]]:
    """Median-ready timings; ``setup`` runs untimed before every timed call."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():  # warm-up: page cache, imports, codec registry
        fn()
    for _ in range(rounds):
        for name, fn in cases.items():  # interleaved, so drift hits every contender alike
            if setup is not None:
                setup()
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
    m = imagezarr.scan(work / "png", checksum=True)
    cases = {
        "floor": floor(paths),
        "zarr (default pipeline)": zarr_read(m, BATCHED),
        "zarr (batched, concurrency 64)": zarr_read(m, BATCHED, **{"async.concurrency": 64}),
        "zarr (fused pipeline)": zarr_read(m, FUSED),
        "zarr.open_group(open_store(m)) [auto]": lambda: zarr.open_group(
            imagezarr.open_store(m), mode="r"
        )["image"][:],
        "same, check='checksum' (hash every image)": lambda: zarr.open_group(
            imagezarr.open_store(m, check="checksum"), mode="r"
        )["image"][:],
        "xarray .values": xarray_read(m, dask=False),
        "xarray + dask": xarray_read(m, dask=True),
        **peers(work / "png", paths),
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
    # six fields per name (folder + five digits), as a real naming scheme has
    pattern = r"d(?P<g>\d+)/f(?P<a>\d)(?P<b>\d)(?P<h>\d)(?P<d>\d)(?P<e>\d)(?P<f>\d)\.png"
    types = dict.fromkeys("abdefgh", "int")
    cases: dict[str, Callable[[], object]] = {
        "scandir+64B": bare_scan(folder),
        "imagezarr.scan": lambda: imagezarr.scan(folder),
        "scan + 7-field pattern, dims given": lambda: imagezarr.scan(
            folder, pattern=pattern, types=types, dims=("b", "h", "d", "e", "f")
        ),
        "scan + 7-field pattern, dims inferred": lambda: imagezarr.scan(
            folder, pattern=pattern, types=types
        ),
    }
    try:
        import tifffile

        cases["peer: tifffile FileSequence (names only)"] = lambda: (
            tifffile.FileSequence(
                imagecodecs.imread, str(folder / "*" / "*.png"), pattern=r"d(\d+).f(\d+)"
            ).shape
        )
    except ImportError:
        pass
    table(f"Scan of {n:,} small PNGs", measure(cases, rounds), "scandir+64B", items=n)


def evict_contents(folder: Path) -> None:
    """Drop the cached contents of every file below ``folder`` (Linux: posix_fadvise)."""
    for path in folder.rglob("*.png"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def bench_update(work: Path, n: int, rounds: int) -> None:
    """Incremental update with 1% new files vs a full scan of the same folder."""
    folder = work / f"small{n}"
    if not folder.exists():
        make_small(folder, n)
    for old in folder.glob("d*/new*.png"):
        old.unlink()
    saved = imagezarr.scan(folder).save(work / f"update{n}.imagezarr.json")
    data = imagecodecs.png_encode(np.zeros((8, 8), np.uint8))
    for i in range(n // 100):
        (folder / f"d{i % 100:03d}" / f"new{i:06d}.png").write_bytes(data)
    cases: dict[str, Callable[[], object]] = {
        "full scan": lambda: imagezarr.scan(folder),
        "imagezarr.update (1% new)": lambda: imagezarr.update(saved),
    }
    table(f"Update of {n:,} small PNGs, 1% new", measure(cases, rounds), "full scan", items=n)
    if hasattr(os, "posix_fadvise"):
        # file contents out of the page cache, metadata still cached: what a large experiment
        # looks like (30 GB of images do not stay cached), without needing root to drop caches
        times = measure(cases, rounds, setup=lambda: evict_contents(folder))
        title = f"Update of {n:,} small PNGs, 1% new, file contents not in the page cache"
        table(title, times, "full scan", items=n)
    else:
        print("\n(no posix_fadvise here: the update with file contents out of cache is skipped)")
    for new in folder.glob("d*/new*.png"):
        new.unlink()


def bench_scan_camera(work: Path, n: int, rounds: int) -> None:
    folder = work / f"camera{n}"
    make_pngs(folder, n, (480, 640))
    cases = {"scandir+64B": bare_scan(folder), "imagezarr.scan": lambda: imagezarr.scan(folder)}
    table(f"Scan of {n} camera-size PNGs", measure(cases, rounds), "scandir+64B", items=n)


_STEP = """
import json, os, resource, sys, time
import imagezarr
from imagezarr.testing import synthetic_manifest
step, path, plants = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
if step == "save":  # the save alone: building the synthetic manifest is not timed
    m = synthetic_manifest(plants=plants)
    t0 = time.perf_counter()
    m.save(path, absolute_root=True)
elif step == "load":
    imagezarr.load_manifest(path)
elif step == "open_dataset":
    imagezarr.open_dataset(path)
else:  # the first read of the path coordinate, after opening (not timed)
    ds = imagezarr.open_dataset(path)
    t0 = time.perf_counter()
    ds.path.values
dt = time.perf_counter() - t0
# VmHWM belongs to this process image; ru_maxrss would carry the parent's peak over the fork
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak = (int(hwm[0].split()[1]) if hwm else rss) / 1024
print(json.dumps({"seconds": dt, "peak_mib": peak}))
"""


def bench_manifest(work: Path, sizes: list[int]) -> None:
    """Save, load, open and first ``path`` read of synthetic manifests, each step in a fresh
    process; plants of 1000 entries (1M entries = 1000 plants x 50 days x 4 steps x 5 frames).
    The per-entry cost should stay flat from the smallest size to the largest."""
    steps = ("save", "load", "open_dataset", "first path read")
    rows = []
    for plants in sizes:
        path = work / f"synthetic-{plants}.imagezarr.json"
        for step in steps:
            run = subprocess.run(
                [sys.executable, "-c", _STEP, step, str(path), str(plants)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append((plants * 1000, step, json.loads(run.stdout.strip().splitlines()[-1])))
        size = path.stat().st_size
        rows.append((plants * 1000, "size", {"seconds": size / 1e6, "peak_mib": 0.0}))
    print("\n## Manifests of synthetic entries (each step in a fresh process)\n")
    print("| entries | step | seconds | µs per entry | peak RSS MiB (whole process) |")
    print("|---:|---|---:|---:|---:|")
    for n, step, r in rows:
        if step == "size":
            mb = r["seconds"]
            print(f"| {n:,} | size on disk | {mb:.1f} MB | {mb * 1e6 / n:.1f} B | |")
            continue
        per = r["seconds"] * 1e6 / n
        print(f"| {n:,} | {step} | {r['seconds']:.2f} | {per:.2f} | {r['peak_mib']:.0f} |")


def bench_memory(work: Path, sizes: tuple[int, ...]) -> None:
    """Peak traced memory while reading slice by slice must not grow with the dataset."""
    import tracemalloc

    print("\n## Peak memory reading one 480x640 image at a time\n")
    print("| files | dataset MiB decoded | peak traced MiB |\n|---:|---:|---:|")
    for n in sizes:
        make_pngs(work / "png", n, (480, 640))
        m = imagezarr.scan(work / "png", glob=None)
        files = [i for i, f in enumerate(m.files.paths) if int(f[3:8]) < n]
        ds = imagezarr.open_dataset(m)
        tracemalloc.start()
        total = 0.0
        for i in files:
            total += float(ds.image[i].values.mean())
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"| {n} | {n * 480 * 640 / 2**20:,.0f} | {peak / 2**20:.1f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=400, help="camera-size PNGs to read (0 to skip)")
    ap.add_argument("--scan", type=int, nargs="*", default=[10_000], help="scan sizes")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--manifest-plants",
        type=int,
        nargs="*",
        default=[1000],
        help="synthetic manifest sizes in plants of 1,000 entries (none to skip); "
        "100 1000 10000 = 100k, 1M, 10M entries",
    )
    ap.add_argument(
        "--memory",
        type=int,
        nargs="*",
        default=[200, 800],
        help="dataset sizes for the slice-by-slice memory check",
    )
    ap.add_argument("--workdir", help="keep generated data here (default: a temp folder)")
    args = ap.parse_args(argv)
    print(
        f"imagezarr {imagezarr.__version__}, zarr {zarr.__version__}, imagecodecs "
        f"{imagecodecs.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        if args.files:
            bench_read(work, args.files, args.rounds)
            bench_scan_camera(work, args.files, args.rounds)
        for n in args.scan:
            bench_scan(work, n, max(1, args.rounds // 2))
            bench_update(work, n, max(1, args.rounds // 2))
        if args.manifest_plants:
            bench_manifest(work, args.manifest_plants)
        if args.memory:
            bench_memory(work / "mem", tuple(args.memory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
