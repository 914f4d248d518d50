"""Start-up and incremental update, as commands a person types.

Run with ``make bench`` (or ``python benchmarks/startup_bench.py --files 30000``). Every row
is a fresh process, run in interleaved rounds; the table gives the median wall time, the
time over the baseline ``python -c pass`` (start-up rows) and the ratio of ``update`` to a
full ``scan`` of the same folder (the update row).

Targets (issue "one way to open, one way to run"): ``--version`` and ``--help`` within
+0.2 s of ``python -c pass``, ``info`` within +0.45 s, ``update`` of N files with 1% new at
most 0.5x ``scan`` of the same folder.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imagecodecs
import numpy as np

PATTERN = r"d(?P<dir>\d+)/img(?P<n>\d+)\.png"


def imagezarr_command() -> list[str]:
    found = shutil.which("imagezarr", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "imagezarr"]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def make_folder(folder: Path, n: int) -> None:
    data = imagecodecs.png_encode(np.zeros((8, 8), np.uint8))
    for i in range(n):
        p = folder / f"d{i % 100:03d}" / f"img{i:06d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=30_000, help="files in the update folder")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the start-up rows")
    parser.add_argument("--update-rounds", type=int, default=3)
    args = parser.parse_args()
    iz = imagezarr_command()
    with tempfile.TemporaryDirectory(prefix="iz-startup-") as tmp:
        work = Path(tmp)
        small = work / "small"
        make_folder(small, 20)
        manifest = work / "small.imagezarr.json"
        subprocess.run(
            [*iz, "scan", str(small), "--pattern", PATTERN, "-o", str(manifest)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        rows = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "imagezarr --version": [*iz, "--version"],
            "imagezarr --help": [*iz, "--help"],
            "imagezarr info small.imagezarr.json": [*iz, "info", str(manifest)],
        }
        times: dict[str, list[float]] = {k: [] for k in rows}
        for _ in range(args.rounds):
            for name, argv in rows.items():
                times[name].append(timed(argv))
        base = statistics.median(times["python -c pass (baseline)"])
        print(f"start-up ({args.rounds} rounds, medians)")
        print(f"{'command':44} {'time':>9} {'over baseline':>14}")
        for name, ts in times.items():
            t = statistics.median(ts)
            print(f"{name:44} {t:8.3f}s {t - base:+13.3f}s")

        folder = work / "big"
        make_folder(folder, args.files)
        out = work / "big.imagezarr.json"
        scan = [*iz, "scan", str(folder), "--pattern", PATTERN, "-o", str(out), "--force"]
        scans, updates = [], []
        new = max(1, args.files // 100)
        data = imagecodecs.png_encode(np.ones((8, 8), np.uint8))
        for r in range(args.update_rounds):
            scans.append(timed(scan))
            for i in range(new):  # 1% new files since the manifest was written
                p = folder / f"d{i % 100:03d}" / f"img{args.files + r * new + i:06d}.png"
                p.write_bytes(data)
            updates.append(timed([*iz, "update", str(out), "-q"]))
        s, u = statistics.median(scans), statistics.median(updates)
        print(f"\nupdate, {args.files:,} files, 1% new ({args.update_rounds} rounds, medians)")
        print(f"{'command':44} {'time':>9} {'x scan':>8}")
        print(f"{'imagezarr scan (baseline)':44} {s:8.3f}s {1:8.2f}")
        print(f"{'imagezarr update (1% new)':44} {u:8.3f}s {u / s:8.2f}")


if __name__ == "__main__":
    main()
