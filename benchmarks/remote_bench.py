"""Remote benchmarks: imagezarr against an S3 server on loopback, with baselines from the same run.

Run: ``python benchmarks/remote_bench.py [--objects 200] [--scan-objects 2000] [--rounds 5]``.
Needs the ``remote``, ``kerchunk`` and ``test`` extras plus ``s3fs`` (for the kerchunk route) and
``psutil``. Generates its own PNGs, starts a moto S3 server in a child process bound to
127.0.0.1 (a child, so the server's Python does not share this process's GIL with the client
being measured), seeds it with boto3, runs every contender in interleaved rounds, prints
medians and ratios against the named baseline, and stops the server. No other address is used.

With ``--s3rver PATH`` (or ``s3rver`` on PATH: ``npm install s3rver``), the same workloads also
run against s3rver, a Node.js S3 server, to see how much of each number is moto's own cost.

Workloads and baselines:
1. Scan of ``--scan-objects`` tiny PNGs: ``imagezarr.scan(url)``. Baseline ``list+64B``: obstore
   list, then one 64-byte range GET per object in a thread pool of 32.
2. Full read of ``--objects`` camera-size (480x640 gray) PNGs. Baseline ``floor``: every object
   fetched with obstore in a thread pool of 32 and decoded by imagecodecs. Contenders:
   ``imagezarr.open_group(m)["image"][:]`` at zarr's default and other ``async.concurrency``,
   and the kerchunk export of the same manifest read through fsspec's reference file system
   (remote protocol ``s3`` via s3fs) and zarr.
3. With ``--update-objects N`` (e.g. 20000): N tiny PNGs in 100 folders, then 1% more in a
   new folder. ``imagezarr.update`` against a full scan (target: at most 0.2x its time); then
   scans on a 2-worker dask LocalCluster (worker processes) next to ``list+64B``: the
   listing partitioned by prefix (each task lists one folder and probes what it found) and
   the path before it (the client lists, tasks probe batches of 256).

Every round opens fresh (new manifest store, new obstore client), as a user's call would;
fsspec caches its file system instances, so the kerchunk route keeps its s3fs connections.
The server's CPU use (psutil, median over rounds, % of one core) is printed beside each time:
near 100% for a single-threaded server means the server, not the client, sets the pace. So
is this process's CPU per object (all threads, obstore's Rust ones included): its inverse is
roughly the rate a client core could sustain against an infinitely fast server.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import imagecodecs
import numpy as np
import zarr

import imagezarr
from imagezarr.export import export
from imagezarr.testing import psii_image

BUCKET = "bench"
POOL = 32  # threads of the bare baselines
START_TIMEOUT = 60.0  # seconds to wait for a server to listen

_MOTO_CHILD = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the parent closes our stdin
server.stop()
"""


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    endpoint: str
    key: str
    secret: str

    @property
    def obstore_options(self) -> dict[str, Any]:
        return {
            "config": {
                "endpoint": self.endpoint,
                "region": "us-east-1",
                "access_key_id": self.key,
                "secret_access_key": self.secret,
            },
            "client_options": {"allow_http": True},
        }

    @property
    def s3fs_options(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "secret": self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }

    def cpu_seconds(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
        )


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line of ``proc`` that has a digit, within ``timeout`` seconds."""
    import selectors

    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                break
            line = proc.stdout.readline()
            if not line:
                break  # the child exited
            if any(c.isdigit() for c in line):
                return line.strip()
    raise RuntimeError(f"server did not report its port within {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


@contextmanager
def moto_server(log: Path) -> Iterator[Server]:
    """moto's threaded werkzeug server in a child process on 127.0.0.1, an ephemeral port."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _MOTO_CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        port = int(_read_line(proc, START_TIMEOUT))
        yield Server("moto", proc, f"http://127.0.0.1:{port}", "testing", "testing")
    finally:
        _stop(proc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(proc: subprocess.Popen, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def _node_options() -> str:
    return f"{os.environ.get('NODE_OPTIONS', '')} --openssl-legacy-provider".strip()


@contextmanager
def s3rver_server(binary: str, data: Path, log: Path) -> Iterator[Server]:
    """s3rver (Node.js) on 127.0.0.1, silent (no per-request log); its credentials are S3RVER."""
    data.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    with log.open("w") as err:
        proc = subprocess.Popen(
            [binary, "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "--silent"],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            # s3rver 3.7 makes list continuation tokens with a cipher OpenSSL 3 keeps in its
            # legacy provider: without it, a listing of more than 1,000 keys is a 500 error
            env={**os.environ, "NODE_OPTIONS": _node_options()},
        )
    try:
        _wait_listening(proc, port, START_TIMEOUT)
        yield Server("s3rver", proc, f"http://127.0.0.1:{port}", "S3RVER", "S3RVER")
    finally:
        _stop(proc)  # stdin is DEVNULL, so this terminates it


# -- data ---------------------------------------------------------------------------------


def camera_pngs(n: int) -> dict[str, bytes]:
    return {
        f"img{i:05d}.png": imagecodecs.png_encode(
            psii_image((480, 640), plant=i % 7, step=i % 4, frame=i % 5 + 1, seed=i)
        )
        for i in range(n)
    }


def tiny_pngs(n: int) -> dict[str, bytes]:
    """n tiny PNGs in 100 'folders' (the scan workload)."""
    data = imagecodecs.png_encode(np.zeros((8, 8), np.uint8))
    return {f"d{i % 100:03d}/f{i:06d}.png": data for i in range(n)}


def seed(server: Server, prefix: str, objects: dict[str, bytes]) -> str:
    client = server.client()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda kv: client.put_object(Bucket=BUCKET, Key=f"{prefix}/{kv[0]}", Body=kv[1]),
                objects.items(),
            )
        )
    return f"s3://{BUCKET}/{prefix}"


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Timing:
    wall: list[float]
    server_cpu: list[float]  # seconds of server CPU per round
    client_cpu: list[float]  # seconds of this process's CPU (all threads) per round


def measure(
    server: Server, cases: dict[str, Callable[[], object]], rounds: int
) -> dict[str, Timing]:
    out = {k: Timing([], [], []) for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():  # interleaved, so drift hits every contender alike
            c0, p0 = server.cpu_seconds(), time.process_time()
            t0 = time.perf_counter()
            fn()
            out[name].wall.append(time.perf_counter() - t0)
            out[name].client_cpu.append(time.process_time() - p0)
            out[name].server_cpu.append(server.cpu_seconds() - c0)
    return out


def table(title: str, times: dict[str, Timing], baseline: str, items: int) -> dict[str, float]:
    """Print a markdown table; return the median seconds of each contender."""
    med = {k: statistics.median(t.wall) for k, t in times.items()}
    SPREAD.update({k: (max(t.wall) - min(t.wall)) / med[k] for k, t in times.items()})
    base = med[baseline]
    print(f"\n## {title}  (baseline: {baseline}; median of {len(times[baseline].wall)} rounds)\n")
    print(
        f"| contender | median ms | ratio to {baseline} | objects/s | server CPU % "
        "| client CPU us/object |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, t in times.items():
        cpu = statistics.median(c / w for c, w in zip(t.server_cpu, t.wall, strict=True))
        client = statistics.median(t.client_cpu) / items
        print(
            f"| {name} | {med[name] * 1e3:,.1f} | {med[name] / base:.2f} | "
            f"{items / med[name]:,.0f} | {cpu * 100:.0f} | {client * 1e6:,.0f} |"
        )
    return med


# -- workloads ----------------------------------------------------------------------------


def _store(url: str, options: dict[str, Any]) -> Any:
    from obstore.store import from_url

    return from_url(url, **options)


def bare_scan(url: str, options: dict[str, Any]) -> Callable[[], int]:
    import obstore

    def run() -> int:
        store = _store(url, options)
        paths = [m["path"] for batch in obstore.list(store, chunk_size=1000) for m in batch]
        with ThreadPoolExecutor(POOL) as pool:
            heads = list(
                pool.map(lambda p: bytes(obstore.get_range(store, p, start=0, length=64)), paths)
            )
        return len(heads)

    return run


def bench_scan(server: Server, n: int, rounds: int) -> dict[str, float]:
    url = seed(server, "scan", tiny_pngs(n))
    opts = server.obstore_options
    cases: dict[str, Callable[[], object]] = {
        "list+64B": bare_scan(url, opts),
        "imagezarr.scan": lambda: imagezarr.scan(url, storage_options=opts),
    }
    assert cases["list+64B"]() == n  # warm-up and check
    assert len(imagezarr.scan(url, storage_options=opts).files) == n
    med = table(
        f"{server.name}: scan of {n:,} tiny PNGs", measure(server, cases, rounds), "list+64B", n
    )
    return {k: n / v for k, v in med.items()}


def bench_update(server: Server, n: int, rounds: int, work: Path) -> None:
    """Incremental update with 1% new objects vs a full scan; then scans spread over a 2-worker
    dask cluster next to the bare list + GET loop: the listing partitioned by prefix (one
    task lists and probes each of the 100 folders) and, for comparison, the path before it
    (the client lists everything, tasks probe batches of 256)."""
    opts = server.obstore_options
    url = seed(server, "grow", tiny_pngs(n))
    saved = imagezarr.scan(url, storage_options=opts).save(work / f"{server.name}.json")
    more = {f"new/{k}": v for k, v in tiny_pngs(n // 100).items()}
    seed(server, "grow", more)
    total = n + len(more)
    cases: dict[str, Callable[[], object]] = {
        "full scan": lambda: imagezarr.scan(url, storage_options=opts),
        "imagezarr.update (1% new)": lambda: imagezarr.update(saved, storage_options=opts),
    }
    new, diff = imagezarr.update(saved, storage_options=opts)  # warm-up and check
    assert len(diff.added) == len(more)
    assert len(new.files) == total
    med = table(
        f"{server.name}: update of {n:,} objects, 1% new",
        measure(server, cases, rounds),
        "full scan",
        total,
    )
    ratio = med["imagezarr.update (1% new)"] / med["full scan"]
    met = "met" if ratio <= 0.2 else "NOT met"
    print(f"\nupdate / full scan: {ratio:.2f}x (target <= 0.2x: {met})")
    bench_cluster(server, url, saved, new, rounds)


def bench_cluster(
    server: Server, url: str, saved: Path, truth: imagezarr.Manifest, rounds: int
) -> None:
    """Scans on the cluster (the plain scan's time is the update table's "full scan")."""
    import distributed

    from imagezarr import scanning

    opts = server.obstore_options

    def before(client: Any) -> imagezarr.Manifest:
        # the scan as it was: one listing in the client, batches of 256 probes per task
        with mock.patch.object(scanning, "_PARTITION", False):
            return imagezarr.scan(url, storage_options=opts, client=client)

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        spread: dict[str, Callable[[], object]] = {
            "list+64B": bare_scan(url, opts),
            "imagezarr.scan, 2-worker cluster, listing by prefix": lambda: imagezarr.scan(
                url, storage_options=opts, client=client
            ),
            "imagezarr.scan, 2-worker cluster, client lists (before)": lambda: before(client),
            "imagezarr.update (1% new), 2-worker cluster": lambda: imagezarr.update(
                saved, storage_options=opts, client=client
            ),
        }
        total = len(truth.files)
        assert spread["list+64B"]() == total  # warm-up and check: the same manifest each way
        for name in list(spread)[1:3]:
            got = spread[name]()
            assert isinstance(got, imagezarr.Manifest)
            assert got.files == truth.files
            assert got.to_json()["groups"] == truth.to_json()["groups"]
        spread["imagezarr.update (1% new), 2-worker cluster"]()
        table(
            f"{server.name}: scan of {total:,} objects in {_prefixes(truth)} prefixes on a cluster",
            measure(server, spread, rounds),
            "list+64B",
            total,
        )


def _prefixes(m: imagezarr.Manifest) -> int:
    return len({p.split("/", 1)[0] for p in m.files.paths if "/" in p})


SPREAD: dict[str, float] = {}  # contender -> (max - min) / median of its rounds, last table


def floor(url: str, options: dict[str, Any], names: list[str]) -> Callable[[], object]:
    import obstore

    def run() -> object:
        store = _store(url, options)

        def one(name: str) -> np.ndarray:
            return imagecodecs.png_decode(obstore.get(store, name).bytes())

        with ThreadPoolExecutor(POOL) as pool:
            return np.stack(list(pool.map(one, names)))

    return run


def imagezarr_read(
    m: imagezarr.Manifest, options: dict[str, Any], concurrency: int | None
) -> Callable[[], np.ndarray]:
    def run() -> np.ndarray:
        conf = {} if concurrency is None else {"async.concurrency": concurrency}
        with zarr.config.set(conf):
            return imagezarr.open_group(m, storage_options=options)["image"][:]

    return run


def kerchunk_read(
    refs: Path, options: dict[str, Any], concurrency: int | None
) -> Callable[[], np.ndarray]:
    import fsspec

    def run() -> np.ndarray:
        conf = {} if concurrency is None else {"async.concurrency": concurrency}
        with zarr.config.set(conf):
            fs = fsspec.filesystem(
                "reference",
                fo=str(refs),
                remote_protocol="s3",
                remote_options={**options, "asynchronous": True},
                asynchronous=True,
            )
            store = zarr.storage.FsspecStore(fs, read_only=True, path="")
            return zarr.open_group(store, mode="r", zarr_format=3)["image"][:]

    return run


def bench_read(
    server: Server, n: int, rounds: int, concurrency: list[int], work: Path
) -> dict[str, float]:
    objects = camera_pngs(n)
    url = seed(server, "camera", objects)
    opts = server.obstore_options
    m = imagezarr.scan(url, storage_options=opts)
    names = list(m.files.paths)
    assert len(names) == n
    # The kerchunk export of a remote manifest writes file:// urls (see the report), so the
    # urls are written as templates with the bucket url as root.
    refs = export(m, "kerchunk", work / f"{server.name}.refs.json", templates=True, root_url=url)
    default = zarr.config.get("async.concurrency")
    cases: dict[str, Callable[[], object]] = {"floor": floor(url, opts, names)}
    cases[f"imagezarr (concurrency {default}, default)"] = imagezarr_read(m, opts, None)
    for c in concurrency:
        cases[f"imagezarr (concurrency {c})"] = imagezarr_read(m, opts, c)
    cases[f"kerchunk refs + s3fs (concurrency {default}, default)"] = kerchunk_read(
        refs, server.s3fs_options, None
    )
    for c in concurrency:
        cases[f"kerchunk refs + s3fs (concurrency {c})"] = kerchunk_read(
            refs, server.s3fs_options, c
        )
    truth = cases["floor"]()
    for name, fn in cases.items():  # warm-up and check: every contender returns the same pixels
        got = fn()
        if not np.array_equal(np.asarray(got), truth):
            raise AssertionError(f"{name} read different pixels than the floor")
    mib = sum(len(b) for b in objects.values()) / 2**20
    return table(
        f"{server.name}: full read of {n} gray PNGs 480x640 ({mib:,.1f} MiB encoded)",
        measure(server, cases, rounds),
        "floor",
        n,
    )


def verdict(scan: dict[str, float], read: dict[str, float], server: str) -> None:
    izr = {k: v for k, v in read.items() if k.startswith("imagezarr")}
    ker = {k: v for k, v in read.items() if k.startswith("kerchunk")}
    best_iz = min(izr, key=izr.__getitem__)
    best_ker = min(ker, key=ker.__getitem__)
    iz_default = next(k for k in izr if "default" in k)
    ker_default = next(k for k in ker if "default" in k)
    rate = scan["imagezarr.scan"]

    def ok(cond: bool) -> str:
        return "met" if cond else "NOT met"

    print(f"\n### {server}: targets\n")
    print("| target | measured | |\n|---|---:|---|")
    print(f"| scan >= 2,000 objects/s | {rate:,.0f} objects/s | {ok(rate >= 2000)} |")
    print(
        f"| baseline list+64B (what the server allows) | {scan['list+64B']:,.0f} objects/s | "
        f"imagezarr at {rate / scan['list+64B']:.0%} of it |"
    )
    r = read[ker_default] / read[iz_default]
    print(f"| read >= 1.5x kerchunk route, defaults | {r:.2f}x | {ok(r >= 1.5)} |")
    r = read[best_ker] / read[best_iz]
    print(
        f"| read >= 1.5x kerchunk route, best of each | {r:.2f}x ({best_iz} vs {best_ker}) | "
        f"{ok(r >= 1.5)} |"
    )
    print(f"| imagezarr / floor | {read[best_iz] / read['floor']:.2f}x the floor's time | |")
    gain = read[iz_default] / read[best_iz] - 1
    print(
        f"\nBest imagezarr concurrency: {best_iz}, {gain:.0%} faster than the default "
        f"(round-to-round spread of the default: {SPREAD[iz_default]:.0%}; a gain below the "
        "spread is noise)."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=200, help="camera-size PNGs to read")
    ap.add_argument("--scan-objects", type=int, default=2000, help="tiny PNGs to scan")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--concurrency",
        type=int,
        nargs="*",
        default=[64],
        help="zarr async.concurrency values to try besides the default",
    )
    ap.add_argument(
        "--s3rver",
        default=shutil.which("s3rver"),
        help="path of an s3rver executable: also run against it (default: s3rver on PATH)",
    )
    ap.add_argument("--no-moto", action="store_true", help="skip the moto server")
    ap.add_argument(
        "--update-objects",
        type=int,
        default=0,
        help="objects (in 100 folders) for the update and cluster tables, e.g. 20000",
    )
    args = ap.parse_args(argv)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    import fsspec
    import obstore

    versions = {
        "imagezarr": imagezarr.__version__,
        "zarr": zarr.__version__,
        "obstore": obstore.__version__,
        "fsspec": fsspec.__version__,
    }
    try:
        import s3fs

        versions["s3fs"] = s3fs.__version__
    except ImportError:
        sys.exit("the kerchunk route needs s3fs: pip install s3fs")
    print(
        ", ".join(f"{k} {v}" for k, v in versions.items())
        + f", python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        starters: list[Callable[[], Any]] = []
        if not args.no_moto:
            starters.append(lambda: moto_server(work / "moto.log"))
        if args.s3rver:
            starters.append(lambda: s3rver_server(args.s3rver, work / "s3rver", work / "s3.log"))
        summary = {}
        for start in starters:
            with start() as server:
                print(f"\n# {server.name} at {server.endpoint} (pid {server.proc.pid})")
                server.client().create_bucket(Bucket=BUCKET)
                if args.update_objects:
                    bench_update(server, args.update_objects, args.rounds, work)
                scan = bench_scan(server, args.scan_objects, args.rounds)
                read = bench_read(server, args.objects, args.rounds, args.concurrency, work)
                verdict(scan, read, server.name)
                summary[server.name] = {"scan_objects_per_s": scan, "read_seconds": read}
        if os.environ.get("REMOTE_BENCH_JSON"):
            Path(os.environ["REMOTE_BENCH_JSON"]).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
