"""Contact sheet time against plain decoding: 400 camera-size (480 x 640) images.

Run: ``.venv/bin/python benchmarks/preview_bench.py [--workers N]``. For each set (gray PNG
as the demo writes them, RGB JPEG as cameras write them) it times, in this process and on the
same number of threads:

- ``decode``: ``imagecodecs.imread`` of every file (read + full decode), nothing else;
- ``sheet``: :func:`imagezarr.preview.contact_sheet` of all 400 (20 x 20 cells of 120 x 160):
  freshness check, reduced-resolution decode where the format has one, thumbnails, labels;
- ``save``: writing that sheet as PNG (reported apart: it depends on the sheet, not the files).

Each time is the median (and the minimum) of 7 alternating runs; the target is
``sheet / decode <= 1.3`` on the medians. On a busy machine the minimums are the steadier
estimate of what each costs, so both ratios are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imagecodecs

import imagezarr
from imagezarr.preview import contact_sheet
from imagezarr.testing import make_psii_experiment, psii_image, write_image

TARGET = 1.3
ROUNDS = 7
PLANTS, FRAMES, SHAPE = 20, 20, (480, 640)


def make_png(top: Path) -> imagezarr.Manifest:
    images = top / "png"
    make_psii_experiment(
        images, plants=PLANTS, nights=1, steps=1, frames=FRAMES, shape=SHAPE, holes=0
    )
    pattern = r"(?P<night>[\d-]+)/(?P<plant>A\d+)-doi-\w+-PSII0-(?P<frame>\d+)\.png"
    return imagezarr.scan(images, pattern=pattern, types={"frame": "int"}, dims="plant,frame")


def make_jpeg(top: Path) -> imagezarr.Manifest:
    images = top / "jpeg"
    for p in range(PLANTS):
        for f in range(FRAMES):
            gray = psii_image(SHAPE, plant=p, step=0, frame=f + 1, seed=0)
            rgb = gray[..., None] * [0.5, 1.0, 0.3]  # a green leaf
            write_image(images / f"A{p + 1}-{f + 1}.jpg", rgb.clip(0, 255).astype("uint8"))
    return imagezarr.scan(
        images, pattern=r"(?P<plant>A\d+)-(?P<frame>\d+)\.jpg", types={"frame": "int"}
    )


def decode_all(paths: list[str], workers: int) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(imagecodecs.imread, paths))


def measure(m: imagezarr.Manifest, workers: int, out: Path) -> dict[str, list[float]]:
    paths = [m.file_path(i) for i in range(len(m.files))]
    times: dict[str, list[float]] = {"decode": [], "sheet": [], "save": []}
    decode_all(paths, workers)  # warm the page cache and the thread pool code paths
    sheet = contact_sheet(m, rows="plant", cols="frame", workers=workers)
    for _ in range(ROUNDS):
        start = time.perf_counter()
        decode_all(paths, workers)
        times["decode"].append(time.perf_counter() - start)
        start = time.perf_counter()
        sheet = contact_sheet(m, rows="plant", cols="frame", workers=workers)
        times["sheet"].append(time.perf_counter() - start)
        start = time.perf_counter()
        sheet.save(out)
        times["save"].append(time.perf_counter() - start)
    assert sheet.kinds.shape == (PLANTS, FRAMES)
    assert (sheet.kinds == "image").all()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(f"{PLANTS * FRAMES} images of {SHAPE[0]} x {SHAPE[1]}, {args.workers} threads")
    print(
        f"{'set':10} {'decode s':>9} {'sheet s':>8} {'ratio':>6} {'min ratio':>9} {'save s':>7}"
        "  target (median ratio)"
    )
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        for name, make in (("gray PNG", make_png), ("RGB JPEG", make_jpeg)):
            t = measure(make(top), args.workers, top / f"{name[-3:].lower()}-sheet.png")
            med = {k: statistics.median(v) for k, v in t.items()}
            ratio = med["sheet"] / med["decode"]
            low = min(t["sheet"]) / min(t["decode"])
            worst = max(worst, ratio)
            ok = "ok" if ratio <= TARGET else "MISSED"
            print(
                f"{name:10} {med['decode']:9.3f} {med['sheet']:8.3f} {ratio:6.2f} {low:9.2f}"
                f" {med['save']:7.3f}  <= {TARGET} {ok}"
            )
    print(f"worst median ratio {worst:.2f}")


if __name__ == "__main__":
    main()
