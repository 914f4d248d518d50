"""Serving throughput: decoded chunks to 4 concurrent HTTP clients vs the decode floor.

Run: ``.venv/bin/python benchmarks/serve_bench.py`` (``--images N``, ``--workers W``,
``--rounds R``). Writes PSII-style 480 x 640 PNGs to a temporary folder, then measures, in one
run:

- the *decode floor*: the same files read and decoded by ``imagecodecs.png_decode`` on a pool
  of W threads (what any server must do at least, with no HTTP at all);
- ``imagezarr.serve`` (W decode threads, its own event loop in this process) answering 4
  concurrent keep-alive clients in a separate process, each fetching its share of every chunk
  key, for the decoded codecs (``raw``, ``zstd``, ``gzip``) and ``original`` (file bytes,
  nothing decoded; not comparable to the floor, shown for scale).

Figures are medians of R rounds; each round measures the floor and every server, and the
ratio column is the median of (floor time / server time) within a round. The CPU columns say
where the time went: this process (the server's loop and decode threads, or the floor's
threads) and the client process. The target for ``raw`` is >= 0.8x the floor; on a machine
with few cores the clients compete with the server for them (see docs/serve.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import imagecodecs
from aiohttp import web

import imagezarr
from imagezarr.serve import Server, start
from imagezarr.testing import PSII_SCAN, make_psii_experiment

CLIENTS = 4
CODECS = ("raw", "zstd", "gzip", "original")
FLOOR = "decode floor (imagecodecs, no HTTP)"
BARE = "bare aiohttp + thread pool + png_decode (no imagezarr)"

# One process, CLIENTS threads, one keep-alive connection each, every key fetched once. A
# minimal HTTP/1.1 client (raw socket, recv_into one buffer): on a small machine the clients
# share the cores with the server, so they should cost as little as they can.
CLIENT = r"""
import json, socket, sys, threading, time
from urllib.parse import urlsplit

url, keys, clients = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
parts = urlsplit(url)
received = [0] * clients
errors = []

def get(sock, buf, key):
    sock.sendall(f"GET /{key} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    head, _, body = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    size = next(int(v) for k, _, v in (h.partition(":") for h in lines[1:])
                if k.lower() == "content-length")
    view = memoryview(buf)
    view[: len(body)] = body
    got = len(body)
    while got < size:
        n = sock.recv_into(view[got:size])
        if not n:
            raise ConnectionError("closed")
        got += n
    return status, size

buffers = [bytearray(16 << 20) for _ in range(clients)]  # allocated before the clock starts
socks = [socket.create_connection((parts.hostname, parts.port), timeout=60) for _ in buffers]
for sock, buf in zip(socks, buffers):
    get(sock, buf, keys[0])  # warm up: connected, server pool started

def fetch(i):
    for key in keys[i::clients]:
        status, size = get(socks[i], buffers[i], key)
        if status != 200:
            errors.append(f"{key}: {status}")
        received[i] += size

threads = [threading.Thread(target=fetch, args=(i,)) for i in range(clients)]
cpu, start = time.process_time(), time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": elapsed, "cpu": cpu, "bytes": sum(received), "errors": errors[:5]}))
"""


def bare_app(files: dict[str, Path], workers: int) -> web.Application:
    """The least any aiohttp server can do: decode the file of a key in a pool, send the
    pixels. No freshness check, no validators, no CORS, no ranges: the HTTP floor."""
    pool = ThreadPoolExecutor(max_workers=workers)

    def decode(path: Path) -> memoryview:
        return memoryview(imagecodecs.png_decode(path.read_bytes())).cast("B")

    async def handle(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(pool, decode, files[request.match_info["key"]])
        return web.Response(body=body)

    async def stop(app: web.Application) -> None:
        pool.shutdown(wait=False)

    app = web.Application()
    app.router.add_get("/{key:.*}", handle)
    app.on_cleanup.append(stop)
    return app


class Run(NamedTuple):
    """One measurement: wall seconds, CPU seconds of this process and of the clients, bytes."""

    seconds: float
    cpu: float
    client_cpu: float
    size: int


def decode_floor(paths: list[Path], workers: int) -> Run:
    """``workers`` threads read and decode every file once."""

    def one(path: Path) -> int:
        return imagecodecs.png_decode(path.read_bytes()).nbytes

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, paths[:workers]))  # warm up: threads started, code paths hot
        cpu, start = time.process_time(), time.perf_counter()
        size = sum(pool.map(one, paths))
        return Run(time.perf_counter() - start, time.process_time() - cpu, 0.0, size)


def served(url: str, keys: list[str]) -> Run:
    """CLIENTS concurrent clients (one other process) fetch ``keys`` from ``url``."""
    cpu = time.process_time()  # the server's threads live in this process
    proc = subprocess.run(
        [sys.executable, "-I", "-c", CLIENT, url, json.dumps(keys), str(CLIENTS)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    cpu = time.process_time() - cpu
    result = json.loads(proc.stdout)
    if result["errors"]:
        raise RuntimeError(f"the server answered errors: {result['errors']}")
    return Run(result["seconds"], cpu, result["cpu"], result["bytes"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=192, help="PNG files (480 x 640 uint8)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="threads")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (medians are reported)")
    args = parser.parse_args()
    plants = max(1, args.images // 24)
    runs: dict[str, list[Run]] = {FLOOR: [], BARE: [], **{c: [] for c in CODECS}}
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        make_psii_experiment(
            images, plants=plants, nights=2, steps=4, frames=3, shape=(480, 640), holes=0
        )
        m = imagezarr.scan(images, **PSII_SCAN)
        node = m.node("")
        keys = [
            "image/c/" + "/".join(str(int(i)) for i in idx) + "/0/0"
            for idx in zip(*(node.file_index >= 0).nonzero(), strict=True)
        ]
        paths = [images / p for p in m.files.paths]
        files = {
            k: images / m.files.paths[i]
            for k, i in zip(keys, node.file_index[node.file_index >= 0], strict=True)
        }
        servers = {BARE: Server(bare_app(files, args.workers), "127.0.0.1", 0, 30)}
        servers |= {codec: start(m, codec=codec, workers=args.workers) for codec in CODECS}
        try:
            # rounds interleave the floor and the servers, and ratios pair each server run
            # with the floor of its own round: a busy moment of a shared machine then slows
            # both sides of a ratio instead of favouring one row
            for _ in range(args.rounds):
                runs[FLOOR].append(decode_floor(paths, args.workers))
                for codec, server in servers.items():
                    runs[codec].append(served(server.url, keys))
        finally:
            for server in servers.values():
                server.stop()
        source = int(m.files.sizes.sum())
    n = len(paths)
    print(
        f"{n} PNGs 480x640 uint8 ({source / 2**20:.1f} MiB of files, "
        f"{runs[FLOOR][0].size / 2**20:.1f} MiB decoded); {args.workers} decode threads; "
        f"{os.cpu_count()} cores; {CLIENTS} clients; medians of {args.rounds} rounds\n"
    )
    print(
        "| what | images/s | MiB/s sent | ratio to floor | server CPU ms/image "
        "| client CPU ms/image |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, rows in runs.items():
        seconds = statistics.median(r.seconds for r in rows)
        pairs = zip(runs[FLOOR], rows, strict=True)
        ratio = statistics.median(f.seconds / r.seconds for f, r in pairs)
        cpu = statistics.median(r.cpu for r in rows) / n * 1e3
        client = statistics.median(r.client_cpu for r in rows) / n * 1e3
        size = statistics.median(r.size for r in rows)
        what = label if label in (FLOOR, BARE) else f"imagezarr serve --codec {label}"
        print(
            f"| {what} | {n / seconds:.0f} | {size / seconds / 2**20:.0f} | {ratio:.2f}x "
            f"| {cpu:.2f} | {client:.2f} |"
        )


if __name__ == "__main__":
    main()
