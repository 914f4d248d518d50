"""Image-set factories for tests, benchmarks and the demo, shipped for users' own tests too.

>>> import tempfile
>>> truth = make_psii_experiment(tempfile.mkdtemp(), plants=2, nights=1, steps=1, frames=2,
...                              shape=(8, 8), holes=0)
>>> sorted(truth)[0]
'2020-05-31/A1-doi-20200531T210000-PSII0-1.png'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import imagecodecs
import numpy as np

if TYPE_CHECKING:
    from ..manifest import Manifest

__all__ = [
    "FORMAT_SUFFIXES",
    "PSII_BY_PLANT",
    "PSII_DIMS",
    "PSII_PATTERN",
    "PSII_SCAN",
    "PSII_TYPES",
    "LoopbackS3",
    "cluster_image_sum",
    "loopback_s3",
    "make_psii_experiment",
    "psii_image",
    "random_image",
    "small_manifest",
    "synthetic_manifest",
    "write_image",
]

# folder = night, file = plant barcode, timestamp, protocol step, frame (PlantCV PSII naming)
PSII_PATTERN = (
    r"(?P<night>\d{4}-\d{2}-\d{2})/(?P<barcode>[A-Z]\d+)-doi-(?P<timestamp>\d{8}T\d{6})"
    r"-(?P<param>PSII\d+)-(?P<frame>\d+)\.png"
)
PSII_TYPES = {"timestamp": "%Y%m%dT%H%M%S", "frame": "int"}
PSII_DIMS = ("barcode", "night", "param", "frame")
# scan keywords for a make_psii_experiment folder: one array, or one group per plant
PSII_SCAN = {"pattern": PSII_PATTERN, "types": PSII_TYPES, "dims": PSII_DIMS}
PSII_BY_PLANT = {
    "pattern": PSII_PATTERN,
    "types": PSII_TYPES,
    "group_by": "barcode",
    "dims": ("night", "param", "frame"),
}


def small_manifest(directory: str | os.PathLike[str] | None = None, **scan: Any) -> Manifest:
    """Write a tiny PSII experiment (2 plants, 1 night, 1 step, 2 frames of 8 x 8 pixels) and
    scan it; ``scan`` keywords override :data:`PSII_SCAN`. For examples and quick tests.

    >>> m = small_manifest(group_by="barcode", dims=("frame",))
    >>> [n.path for n in m.nodes], m.node("A1").shape
    (['A1', 'A2'], (2,))
    """
    import tempfile

    from ..api import scan as run_scan

    folder = directory if directory is not None else tempfile.mkdtemp(prefix="imagezarr-")
    make_psii_experiment(folder, plants=2, nights=1, steps=1, frames=2, shape=(8, 8), holes=0)
    return run_scan(folder, **{**PSII_SCAN, **scan})


@dataclass
class LoopbackS3:
    """A moto S3 server on 127.0.0.1 (see :func:`loopback_s3`): a boto3 ``client``, the
    ``storage_options`` that reach it, and its ``endpoint``."""

    client: Any
    options: dict[str, Any]
    endpoint: str

    def upload(self, folder: str | os.PathLike[str], paths: Iterable[str], prefix: str) -> str:
        """Put ``folder/path`` for every path under ``s3://lab/<prefix>/``; return that URL.

        moto keeps one backend per process, shared by every server: give each test its own
        prefix."""
        for rel in paths:
            body = Path(folder, rel).read_bytes()
            self.client.put_object(Bucket="lab", Key=f"{prefix}/{rel}", Body=body)
        return f"s3://lab/{prefix}"


@contextmanager
def loopback_s3() -> Iterator[LoopbackS3]:
    """A moto S3 server on 127.0.0.1 with a bucket ``lab``, stopped on exit (test extra)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)
        client.create_bucket(Bucket="lab")
        config = {"endpoint": endpoint, "region": "us-east-1", "access_key_id": "testing"}
        options = {
            "config": {**config, "secret_access_key": "testing"},
            "client_options": {"allow_http": True},
        }
        yield LoopbackS3(client, options, endpoint)
    finally:
        server.stop()


def cluster_image_sum(manifest: Manifest | str | os.PathLike[str], **access: Any) -> float:
    """Sum of every pixel, computed by a 2-process dask LocalCluster from the pickled store:
    proof that a store travels to worker processes and reads there. ``access``: the access
    keywords of :func:`imagezarr.open_dataset` (``storage_options`` for a bucket)."""
    import distributed

    from ..api import open_dataset

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ds = open_dataset(manifest, chunks={}, **access)
        return float(client.compute(ds.image.sum(dtype="float64")).result())


def psii_image(
    shape: tuple[int, int], *, plant: int, step: int, frame: int, seed: int
) -> np.ndarray:
    """A gray uint8 image of a leaf-like blob whose brightness follows a fluorescence curve."""
    rng = np.random.default_rng([seed, plant, step, frame])
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h / 2 + rng.normal(0, h / 20), w / 2 + rng.normal(0, w / 20)
    leaf = ((yy - cy) / (0.35 * h)) ** 2 + ((xx - cx) / (0.3 * w)) ** 2 < 1
    level = 40 + 150 * (1 - np.exp(-frame / 3)) * (0.6 + 0.1 * (plant % 4)) * (1 - 0.08 * step)
    img = rng.normal(8, 3, shape) + leaf * rng.normal(level, 6, shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_psii_experiment(
    directory: str | os.PathLike[str],
    *,
    plants: int = 6,
    nights: int = 3,
    steps: int = 4,
    frames: int = 3,
    shape: tuple[int, int] = (120, 160),
    holes: int = 3,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write a PSII-style experiment of PNGs below ``directory``; return ``{relpath: pixels}``.

    One folder per night; each plant imaged at its own time; ``holes`` (plant, night) visits
    are left out, as when a plant was not imaged that night.
    """
    root = Path(directory)
    rng = np.random.default_rng(seed)
    visits = [(p, n) for p in range(plants) for n in range(nights)]
    holes = min(holes, len(visits) - 1)  # a tiny experiment keeps at least one visit
    missing = {visits[int(k)] for k in rng.choice(len(visits), size=holes, replace=False)}
    start = datetime(2020, 5, 31, 21, 0, 0)
    truth: dict[str, np.ndarray] = {}
    for p, n in visits:
        if (p, n) in missing:
            continue
        night = start + timedelta(days=n)
        folder = root / night.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        for s in range(steps):
            when = night + timedelta(minutes=7 * p, seconds=20 * s)
            for f in range(1, frames + 1):
                name = f"A{p + 1}-doi-{when:%Y%m%dT%H%M%S}-PSII{s}-{f}.png"
                img = psii_image(shape, plant=p, step=s, frame=f, seed=seed)
                (folder / name).write_bytes(imagecodecs.png_encode(img))
                truth[f"{folder.name}/{name}"] = img
    return truth


_ENCODERS = {
    ".png": lambda a: imagecodecs.png_encode(a),
    ".jpg": lambda a: imagecodecs.jpeg_encode(a, level=95),
    ".tif": lambda a: imagecodecs.tiff_encode(a),
    ".webp": lambda a: imagecodecs.webp_encode(a, lossless=True),
    ".bmp": lambda a: imagecodecs.bmp_encode(a),
    ".gif": lambda a: imagecodecs.gif_encode(a),
    ".jp2": lambda a: imagecodecs.jpeg2k_encode(a, level=0),
    ".jxl": lambda a: imagecodecs.jpegxl_encode(a, lossless=True),
}
FORMAT_SUFFIXES = tuple(_ENCODERS)


def write_image(path: str | os.PathLike[str], pixels: np.ndarray) -> bytes:
    """Encode ``pixels`` in the format named by the file suffix, write it, return the bytes."""
    p = Path(path)
    data = bytes(_ENCODERS[p.suffix.lower()](pixels))
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return data


def random_image(shape: tuple[int, ...], dtype: str = "uint8", *, seed: int = 0) -> np.ndarray:
    """Smooth-ish random pixels (compressible, so lossy codecs stay close)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def synthetic_manifest(
    plants: int = 1000,
    days: int = 50,
    steps: int = 4,
    frames: int = 5,
    *,
    root: str = "/nonexistent",
) -> Manifest:
    """A manifest of ``plants * days * steps * frames`` PSII-style entries whose files need not
    exist: for measuring manifest size, load and open times at scale."""
    from ..discover import FileTable
    from ..layout import Coord, LayoutSpec, Node
    from ..manifest import Manifest
    from ..probe import ImageInfo

    paths = [
        f"day{d:03d}/A{b + 1}-doi-202005{d % 28 + 1:02d}T2100{d % 60:02d}-PSII{s}-{f + 1}.png"
        for b in range(plants)
        for d in range(days)
        for s in range(steps)
        for f in range(frames)
    ]
    n = len(paths)
    files = FileTable(paths, 20_000 + np.arange(n) % 977, 1_764_000_000 * 10**9 + np.arange(n))
    coords = {
        "barcode": Coord(("barcode",), "str", tuple(f"A{b + 1}" for b in range(plants))),
        "day": Coord(("day",), "int", tuple(range(days))),
        "param": Coord(("param",), "str", tuple(f"PSII{s}" for s in range(steps))),
        "frame": Coord(("frame",), "int", tuple(range(1, frames + 1))),
    }
    image = ImageInfo("png", (480, 640), "uint8", {"name": "imagecodecs_png"})
    chunks = np.arange(n, dtype=np.int64).reshape(plants, days, steps, frames)
    node = Node("", {}, ("barcode", "day", "param", "frame"), image, coords, chunks)
    return Manifest(root=root, files=files, layout=LayoutSpec(), nodes=(node,))
