"""Stage 10, serve: the hierarchy over HTTP, read by clients that have no imagezarr.

Servers run in-process (a background thread) on 127.0.0.1 with a free port; zarr-python and
xarray read them in a subprocess where ``import imagezarr`` fails (and, for decoded codecs,
``import imagecodecs`` too), and the pixels are compared with imagecodecs.imread of the files.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr.serve import CODECS, make_app, start
from imagezarr.testing import (
    PSII_SCAN,
    loopback_s3,
    make_psii_experiment,
    random_image,
    write_image,
)

pytest.importorskip("fsspec")  # zarr-python reads http:// through fsspec (and aiohttp)

SRC = Path(imagezarr.__file__).resolve().parents[1]
TIMEOUT = 120  # seconds for a client subprocess

# The client: no imagezarr (and, when asked, no imagecodecs) can be imported; it reads every
# image array with zarr-python and every dataset's coordinates with xarray, over HTTP only.
CLIENT = r"""
import importlib.abc, json, sys

blocked = set(sys.argv[1].split(",")) - {""}

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is blocked in this client")

sys.meta_path.insert(0, Blocker())
for name in blocked:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} is importable: the client would not prove anything")

import warnings
warnings.simplefilter("ignore")  # xarray warns that imagezarr's backend entry point is gone
import numpy as np
import xarray as xr
import zarr

out, jobs = sys.argv[2], json.loads(sys.argv[3])
arrays, coords = {}, {}
for label, url, groups, headers in jobs:
    options = {"headers": headers} if headers else None
    root = zarr.open_group(url, mode="r", storage_options=options)
    for group in groups:
        arrays[f"{label}:{group}"] = (root[group] if group else root)["image"][...]
        ds = xr.open_zarr(url, group=group or None, storage_options=options)
        coords[f"{label}:{group}"] = {
            name: [ds[name].dims, [str(v) for v in ds[name].values.ravel()]] for name in ds.coords
        }
np.savez(out, **{k.replace("/", "|"): v for k, v in arrays.items()})
print(json.dumps(coords))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in blocked)))
"""


def run_client(tmp: Path, jobs: list, block: str) -> tuple[dict[str, np.ndarray], dict]:
    out = tmp / "client.npz"
    # -I: no PYTHONPATH and no user site; the blocker keeps the venv's imagezarr out
    proc = subprocess.run(
        [sys.executable, "-I", "-c", CLIENT, block, str(out), json.dumps(jobs)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=tmp,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == [], f"blocked modules were imported: {lines[-1]}"
    with np.load(out) as data:
        arrays = {k.replace("|", "/"): data[k] for k in data.files}
    return arrays, json.loads(lines[-2])


# -- datasets ----------------------------------------------------------------------------------


def psii(tmp: Path, **scan) -> imagezarr.Manifest:
    """PNG uint8, one array (barcode, night, param, frame, y, x) with holes."""
    images = tmp / "psii"
    make_psii_experiment(images, plants=4, nights=2, steps=2, frames=2, shape=(12, 16), holes=2)
    return imagezarr.scan(images, **{**PSII_SCAN, **scan})


def grouped(tmp: Path) -> imagezarr.Manifest:
    """One group per plant, dims (frame, y, x): a layout OME-Zarr 0.5 can express."""
    images = tmp / "grouped"
    make_psii_experiment(images, plants=2, nights=1, steps=1, frames=3, shape=(10, 14), holes=0)
    return imagezarr.scan(images, **{**PSII_SCAN, "group_by": "barcode", "dims": ("frame",)})


def u16(tmp: Path) -> imagezarr.Manifest:
    """16-bit PNGs: the served bytes must be little-endian whatever the file says."""
    images = tmp / "u16"
    for s in range(3):
        write_image(images / f"s{s}.png", random_image((9, 11), "uint16", seed=s))
    return imagezarr.scan(images, pattern=r"(?P<sample>s\d+)\.png")


def rgb(tmp: Path) -> imagezarr.Manifest:
    """Channels-last RGB TIFFs with a hole."""
    images = tmp / "rgb"
    for s in range(2):
        for f in range(2):
            if (s, f) != (1, 0):
                write_image(images / f"s{s}-{f}.tif", random_image((5, 7, 3), seed=10 * s + f))
    return imagezarr.scan(
        images, pattern=r"(?P<sample>s\d+)-(?P<frame>\d+)\.tif", types={"frame": "int"}
    )


def names(tmp: Path) -> imagezarr.Manifest:
    """Groups whose names need percent-encoding in a URL: space, umlaut, '+' and '%'."""
    images = tmp / "names"
    for group in ("Pflanze Ä", "B+2%"):
        for f in range(2):
            write_image(images / group / f"{f}.png", random_image((4, 5), seed=f))
    pattern = r"(?P<plant>[^/]+)/(?P<frame>\d+)\.png"
    return imagezarr.scan(images, pattern=pattern, types={"frame": "int"}, group_by="plant")


def expected(m: imagezarr.Manifest, group: str) -> np.ndarray:
    """The image array decoded independently, file by file, with imagecodecs.imread."""
    node = m.node(group)
    out = np.zeros(node.shape + tuple(node.image.shape), dtype=node.image.dtype)
    for idx in np.argwhere(node.file_index >= 0):
        out[tuple(idx)] = imagecodecs.imread(
            imagezarr.open_manifest(m).location(int(node.file_index[tuple(idx)]))
        )
    return out


def labels(m: imagezarr.Manifest, group: str) -> dict:
    ds = imagezarr.open_dataset(m, group=group or None)
    return {
        name: [list(ds[name].dims), [str(v) for v in ds[name].values.ravel()]] for name in ds.coords
    }


# -- HTTP helpers -------------------------------------------------------------------------------


def request(url: str, path: str, method: str = "GET", headers: dict | None = None):
    """One raw request (the path is sent exactly as given); returns (status, headers, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp, resp.read()
    finally:
        conn.close()


@pytest.fixture
def server(tmp_path):
    """start(...) on 127.0.0.1 with a free port, stopped at the end of the test."""
    running = []

    def run(manifest, **options):
        s = start(manifest, port=0, timeout=30, **options)
        running.append(s)
        assert s.url.startswith("http://127.0.0.1:")
        return s

    yield run
    for s in running:
        s.stop(timeout=10)


# -- reading with generic clients ---------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_clients_without_imagezarr_read_pixel_exact(tmp_path, server, codec):
    manifests = {"psii": psii(tmp_path), "grouped": grouped(tmp_path)}
    manifests |= {"u16": u16(tmp_path), "rgb": rgb(tmp_path), "names": names(tmp_path)}
    jobs = []
    for label, m in manifests.items():
        s = server(m, codec=codec)
        jobs.append([label, s.url, [n.path for n in m.nodes], None])
    # decoded codecs must not need imagecodecs at all; "original" needs imagecodecs-zarr
    block = "imagezarr" if codec == "original" else "imagezarr,imagecodecs"
    arrays, coords = run_client(tmp_path, jobs, block)
    for label, m in manifests.items():
        for node in m.nodes:
            got = arrays[f"{label}:{node.path}"]
            want = expected(m, node.path)
            assert got.dtype == want.dtype, (label, node.path)
            np.testing.assert_array_equal(got, want, err_msg=f"{label}:{node.path} ({codec})")
            assert coords[f"{label}:{node.path}"] == labels(m, node.path), (label, node.path)
    assert (expected(manifests["psii"], "") == 0).all(axis=(-1, -2)).any()  # holes were read


def test_served_image_metadata_per_codec(tmp_path, server):
    m = u16(tmp_path)
    docs = {}
    for codec in CODECS:
        status, _, body = request(server(m, codec=codec).url, "/image/zarr.json")
        assert status == 200
        docs[codec] = json.loads(body)
    assert docs["original"]["codecs"] == [{"name": "imagecodecs_png"}]
    assert docs["raw"]["codecs"] == [{"name": "bytes", "configuration": {"endian": "little"}}]
    assert [c["name"] for c in docs["zstd"]["codecs"]] == ["bytes", "zstd"]
    assert [c["name"] for c in docs["gzip"]["codecs"]] == ["bytes", "gzip"]
    for doc in docs.values():  # everything but the codecs is the hierarchy's own document
        same = {k: v for k, v in doc.items() if k != "codecs"}
        assert same == {k: v for k, v in docs["original"].items() if k != "codecs"}
    # coordinate arrays are served byte for byte as build_metadata writes them
    from imagezarr.hierarchy import build_metadata

    meta = build_metadata(m)
    for key in ("sample/zarr.json", "sample/c/0", "present/c/0", "path/c/0"):
        assert request(server(m, codec="zstd").url, f"/{key}")[2] == meta[key]


def test_ome_metadata_where_the_layout_fits(tmp_path, server):
    m = grouped(tmp_path)
    url = server(m, codec="raw").url
    doc = json.loads(request(url, "/A1/zarr.json")[2])
    ome = doc["attributes"]["ome"]
    assert ome["version"] == "0.5"
    axes = ome["multiscales"][0]["axes"]
    assert [a["name"] for a in axes] == ["frame", "y", "x"]
    assert doc["attributes"]["barcode"] == "A1"  # the group's own attributes stay
    # consolidated metadata (decoded codecs) carries the same group attributes
    root = json.loads(request(url, "/zarr.json")[2])
    assert root["consolidated_metadata"]["metadata"]["A1"]["attributes"]["ome"] == ome
    # a layout OME-Zarr cannot express is served without it
    flat = psii(tmp_path)
    doc = json.loads(request(server(flat).url, "/zarr.json")[2])
    assert "ome" not in doc["attributes"]
    assert "consolidated_metadata" not in doc  # original: zarr would refuse unknown codecs
    assert server(flat, ome=False).app is not None


# -- HTTP semantics -----------------------------------------------------------------------------


def test_cors_preflight_and_headers(tmp_path, server):
    url = server(grouped(tmp_path), codec="raw", token="s3cret").url
    preflight = {
        "Origin": "https://viewer.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range, authorization",
        "Access-Control-Request-Private-Network": "true",
    }
    status, resp, _ = request(url, "/A1/image/c/0/0/0", "OPTIONS", preflight)
    assert status == 204  # no token needed: browsers send none with a preflight
    assert resp.getheader("Access-Control-Allow-Origin") == "*"
    assert "GET" in resp.getheader("Access-Control-Allow-Methods")
    allowed = resp.getheader("Access-Control-Allow-Headers").lower()
    assert "range" in allowed
    assert "authorization" in allowed
    assert resp.getheader("Access-Control-Allow-Private-Network") == "true"
    auth = {"Authorization": "Bearer s3cret", "Origin": "https://viewer.example"}
    status, resp, _ = request(url, "/A1/image/c/0/0/0", headers=auth)
    assert status == 200
    assert resp.getheader("Access-Control-Allow-Origin") == "*"
    exposed = resp.getheader("Access-Control-Expose-Headers").lower().replace(" ", "").split(",")
    assert {"content-range", "etag", "last-modified", "content-length"} <= set(exposed)
    # errors carry CORS headers too, so a web viewer can read the reason
    status, resp, _ = request(url, "/A1/image/c/0/0/0")
    assert status == 401
    assert resp.getheader("Access-Control-Allow-Origin") == "*"


@pytest.mark.parametrize("codec", ["original", "raw"])
def test_range_head_etag(tmp_path, server, codec):
    m = grouped(tmp_path)
    url = server(m, codec=codec).url
    key = "/A1/image/c/1/0/0"
    status, resp, full = request(url, key)
    assert status == 200
    size = len(full)
    if codec == "original":
        assert (
            full
            == Path(
                imagezarr.open_manifest(m).location(int(m.node("A1").file_index[1]))
            ).read_bytes()
        )
    else:
        assert size == 10 * 14
    assert resp.getheader("Accept-Ranges") == "bytes"
    etag, modified = resp.getheader("ETag"), resp.getheader("Last-Modified")
    assert etag.startswith('"')
    assert modified.endswith("GMT")
    cases = {
        "bytes=0-9": (0, 10),
        "bytes=5-": (5, size),
        "bytes=-7": (size - 7, size),
        f"bytes=3-{size + 100}": (3, size),
    }
    for spec, (a, b) in cases.items():
        status, resp, part = request(url, key, headers={"Range": spec})
        assert status == 206, spec
        assert part == full[a:b], spec
        assert resp.getheader("Content-Range") == f"bytes {a}-{b - 1}/{size}", spec
    for spec in (f"bytes={size}-", "bytes=-0"):
        status, resp, _ = request(url, key, headers={"Range": spec})
        assert status == 416, spec
        assert resp.getheader("Content-Range") == f"bytes */{size}"
    # several ranges, or an If-Range naming another version: the whole chunk
    assert request(url, key, headers={"Range": "bytes=0-1,4-5"})[2] == full
    assert request(url, key, headers={"Range": "bytes=0-1", "If-Range": '"old"'})[0] == 200
    assert request(url, key, headers={"Range": "bytes=0-1", "If-Range": etag})[0] == 206
    # HEAD: the headers of GET, no body
    status, resp, body = request(url, key, "HEAD")
    assert (status, body) == (200, b"")
    assert int(resp.getheader("Content-Length")) == size
    assert resp.getheader("ETag") == etag
    # revalidation
    status, resp, body = request(url, key, headers={"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert request(url, key, headers={"If-None-Match": '"other"'})[0] == 200
    # metadata: validators from a hash of the document
    status, resp, doc = request(url, "/A1/zarr.json")
    assert resp.getheader("Content-Type").startswith("application/json")
    tag = resp.getheader("ETag")
    assert request(url, "/A1/zarr.json", headers={"If-None-Match": tag})[0] == 304
    assert request(url, "/A1/zarr.json", headers={"Range": "bytes=-4"})[2] == doc[-4:]


def test_missing_keys_holes_listings_and_methods(tmp_path, server):
    m = psii(tmp_path)
    url = server(m, codec="zstd").url
    node = m.node("")
    hole = tuple(int(i) for i in np.argwhere(node.file_index < 0)[0])
    status, _, body = request(url, "/image/c/" + "/".join(map(str, hole)) + "/0/0")
    assert status == 404  # zarr reads it as the fill value
    assert b"hole" in body
    for path in ("/nothing/zarr.json", "/image/c/99/0/0/0/0/0", "/image/c/0/0/0/0/1/0"):
        assert request(url, path)[0] == 404, path
    for method in ("PUT", "POST", "DELETE", "PATCH"):
        status, resp, _ = request(url, "/zarr.json", method)
        assert status == 405, method
        assert "GET" in resp.getheader("Allow")
    status, resp, body = request(url, "/")
    assert status == 200
    assert resp.getheader("Content-Type").startswith("text/html")
    assert b'href="/zarr.json"' in body
    assert b'href="/image"' in body
    assert b'href="/image/c/0"' in request(url, "/image/c")[2]


def test_nothing_outside_the_hierarchy(tmp_path, server):
    m = psii(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    url = server(m).url
    first = m.files.paths[0]
    attempts = [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/image/../../secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/image%2Fzarr.json",
        "//etc/passwd",
        "/" + str(secret),
        "/" + first,  # a source file by its own path is not a key either
        "/" + str(Path(m.root) / first),
        "/./zarr.json",
        "/image/c/0/0/0/0/0/0/..",
        "/%00",
        "/..%5c..%5csecret.txt",
        "/%ff",
    ]
    for path in attempts:
        status, _, body = request(url, path)
        assert status in (400, 404), path
        assert b"root:x" not in body, path
        assert b"\x89PNG" not in body, path
    status, _, body = request(url, "/zarr.json")
    assert status == 200
    # the root document says how many files, not where they are on the server
    assert json.loads(body)["attributes"]["imagezarr"] == {"files": len(m.files)}
    assert str(tmp_path).encode() not in body


def test_token(tmp_path, server):
    url = server(grouped(tmp_path), token="s3cret").url
    status, resp, _ = request(url, "/zarr.json")
    assert status == 401
    assert "Bearer" in resp.getheader("WWW-Authenticate")
    assert request(url, "/zarr.json", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert request(url, "/zarr.json?token=wrong")[0] == 401
    assert request(url, "/zarr.json", headers={"Authorization": "Bearer s3cret"})[0] == 200
    assert request(url, "/zarr.json?token=s3cret")[0] == 200
    # links in a browser listing keep the token given in the query
    assert b"?token=s3cret" in request(url, "/A1?token=s3cret")[2]
    with pytest.raises(ValueError, match="empty"):
        make_app(grouped(tmp_path / "x"), token="")


def test_token_with_zarr_and_xarray_clients(tmp_path, server):
    m = grouped(tmp_path)
    url = server(m, codec="gzip", token="s3cret").url
    jobs = [["grouped", url, ["A2"], {"Authorization": "Bearer s3cret"}]]
    arrays, coords = run_client(tmp_path, jobs, "imagezarr,imagecodecs")
    np.testing.assert_array_equal(arrays["grouped:A2"], expected(m, "A2"))
    assert coords["grouped:A2"] == labels(m, "A2")


def test_changed_or_missing_source_is_an_error_naming_the_file(tmp_path, server):
    m = grouped(tmp_path)
    changed, gone = m.files.paths[0], m.files.paths[1]
    for codec in ("original", "raw"):
        url = server(m, codec=codec).url
        assert request(url, "/A1/image/c/0/0/0")[0] == 200
    path = Path(imagezarr.open_manifest(m).location(0))
    path.write_bytes(path.read_bytes() + b"\x00")  # appended byte: size and time differ
    Path(imagezarr.open_manifest(m).location(1)).unlink()
    for codec in ("original", "raw"):
        url = server(m, codec=codec).url
        for key, name in (("/A1/image/c/0/0/0", changed), ("/A1/image/c/1/0/0", gone)):
            for headers in ({}, {"If-None-Match": "*"}, {"Range": "bytes=0-3"}):
                status, resp, body = request(url, key, headers=headers)
                assert status == 409, (codec, key, headers)
                assert name in body.decode(), body
                assert name in resp.reason  # what fsspec, hence zarr, shows
    # and zarr-python in a client process fails with the file's name, not with zeros
    url = server(m, codec="raw").url
    jobs = json.dumps([["grouped", url, ["A1"], None]])
    proc = subprocess.run(
        [sys.executable, "-I", "-c", CLIENT, "imagezarr", str(tmp_path / "x.npz"), jobs],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode != 0
    assert changed in proc.stderr or gone in proc.stderr, proc.stderr[-2000:]


def test_undecodable_file_is_a_server_error(tmp_path, server):
    m = u16(tmp_path)
    path = Path(imagezarr.open_manifest(m).location(0))
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-20:] = b"\x00" * 20  # same size and time, broken content
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    status, _, body = request(server(m, codec="raw").url, "/image/c/0/0/0")
    assert status == 500
    assert m.files.paths[0] in body.decode()


def test_cli_serve_prints_url_and_stops_on_ctrl_c(tmp_path):
    m = grouped(tmp_path)
    manifest = m.save(tmp_path / "grouped.imagezarr.json")
    env = {**os.environ, "PYTHONPATH": str(SRC), "IMAGEZARR_TOKEN": "s3cret", "COLUMNS": "200"}
    command = ["serve", str(manifest), "--port", "0", "--codec", "zstd", "--check", "size"]
    lines: queue.Queue[str | None] = queue.Queue()
    with (tmp_path / "stderr.txt").open("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "imagezarr", *command],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
        # a reader thread, so that every wait below is bounded in time
        reader = threading.Thread(target=lambda: [*map(lines.put, proc.stdout), lines.put(None)])
        reader.start()
        try:
            seen: list[str] = []
            while not seen or seen[-1] not in ("Ctrl-C stops.", None):
                line = lines.get(timeout=60)
                seen.append(line.strip() if line is not None else None)
            assert seen[-1] is not None, err.seek(0) or err.read()
            url = next(x for x in seen if x.startswith("http://127.0.0.1:"))
            assert request(url, "/zarr.json")[0] == 401  # the token came from the environment
            status, _, body = request(url, "/A1/image/zarr.json?token=s3cret")
            assert status == 200
            assert [c["name"] for c in json.loads(body)["codecs"]] == ["bytes", "zstd"]
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0, err.seek(0) or err.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            reader.join(timeout=30)
            proc.stdout.close()
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert "stopped\n" in rest
    assert any("OME-Zarr 0.5 metadata on 2 group(s)" in x for x in seen)
    assert any("Bearer" in x for x in seen)


def test_remote_root_reads_on_the_loop_and_decodes_in_the_pool(tmp_path, server):
    """An S3 root (moto on loopback) has no cheap sync reads: the async path serves it."""
    pytest.importorskip("moto.server")
    pytest.importorskip("obstore")
    local = grouped(tmp_path)
    with loopback_s3() as s3:
        client, options = s3.client, s3.options
        s3.upload(local.root, local.files.paths, "serve-exp")
        layout = {**PSII_SCAN, "group_by": "barcode", "dims": ("frame",)}
        m = imagezarr.scan("s3://lab/serve-exp", **layout, storage_options=options)
        assert not imagezarr.open_manifest(m, storage_options=options).source.sync_reads
        url = server(m, codec="raw", storage_options=options).url
        want = expected(local, "A2")
        for i in range(want.shape[0]):
            status, _, body = request(url, f"/A2/image/c/{i}/0/0")
            assert status == 200
            got = np.frombuffer(body, "uint8").reshape(want.shape[1:])
            np.testing.assert_array_equal(got, want[i])
        client.put_object(Bucket="lab", Key=f"serve-exp/{m.files.paths[0]}", Body=b"not a png")
        status, _, body = request(url, "/A1/image/c/0/0/0")
        assert status == 409
        assert m.files.paths[0] in body.decode()


def test_port_in_use_is_one_clear_line(tmp_path, capsys):
    from imagezarr.cli import main

    manifest = grouped(tmp_path).save(tmp_path / "grouped.imagezarr.json")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(manifest), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1 port {port}" in err
    assert "--port 0" in err


def test_start_message_warns_on_the_network_without_token(tmp_path):
    from imagezarr.serve._run import describe

    m = grouped(tmp_path)
    open_app, closed_app = make_app(m), make_app(m, token="s3cret", codec="raw")
    lines = "\n".join(describe(open_app, "http://192.0.2.1:8000/", "0.0.0.0"))
    assert "without --token anyone" in lines
    assert "imagecodecs-zarr" in lines  # original: says what readers need
    lines = "\n".join(describe(closed_app, "http://127.0.0.1:8000/", "127.0.0.1"))
    assert "Bearer" in lines
    assert "anyone" not in lines
    assert 'xarray.open_zarr("http://127.0.0.1:8000/", group="A1")' in lines


def test_access_log_has_no_query_string(tmp_path, server, caplog):
    url = server(grouped(tmp_path), token="s3cret").url
    with caplog.at_level("INFO", logger="imagezarr.serve"):
        assert request(url, "/A1/zarr.json?token=s3cret")[0] == 200
        deadline = time.monotonic() + 10
        while "/A1/zarr.json" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)  # the line is written by the server's thread
    assert "GET /A1/zarr.json 200" in caplog.text
    assert "s3cret" not in caplog.text


def raw(url: str, head: bytes) -> bytes:
    """Send ``head`` as it is (bytes http.client would refuse); the status line back."""
    import socket

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n" not in data:
            got = sock.recv(4096)
            if not got:
                break
            data += got
    return data.split(b"\r\n", 1)[0]


def test_hostile_headers_get_4xx_or_the_whole_body_never_500(tmp_path, server):
    m = psii(tmp_path)
    url = server(m, codec="raw").url
    whole = request(url, "/zarr.json")[2]
    # a Range with thousands of digits, or with non-ASCII digits: malformed, the whole body
    for value in ("bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000):
        status, _, body = request(url, "/zarr.json", headers={"Range": value})
        assert status == 200, value
        assert body == whole
    arabic = "bytes=٠-٩".encode()  # Arabic-Indic digits, sent as UTF-8 bytes
    head = b"GET /zarr.json HTTP/1.1\r\nHost: x\r\nRange: " + arabic + b"\r\n"
    assert raw(url, head + b"Connection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert request(url, "/zarr.json", headers={"Range": "bytes=99999999-"})[0] == 416
    # a token byte that is no UTF-8: refused as any wrong token is
    secret = server(m, codec="raw", token="s3cret").url
    line = raw(
        secret,
        b"GET /zarr.json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert line.startswith(b"HTTP/1.1 401"), line
    # a method the server does not know: 405, as for PUT
    line = raw(url, b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert line.startswith(b"HTTP/1.1 405"), line


def test_error_bodies_name_files_relative_to_the_root_only(tmp_path, server, caplog):
    m = psii(tmp_path)
    url = server(m, codec="raw").url
    node = m.node("")
    idx = tuple(int(i) for i in np.argwhere(node.file_index >= 0)[0])
    rel = m.files.paths[node.file_index[idx]]
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(b"not yours")
    victim = Path(m.root) / rel
    victim.unlink()
    victim.symlink_to(secret)  # swapped for a link out of the root
    with caplog.at_level("WARNING", logger="imagezarr.serve"):
        status, resp, body = request(url, "/image/c/" + "/".join(map(str, idx)) + "/0/0")
    assert status in (409, 500)
    text = body.decode() + resp.reason
    assert rel in text  # which file: relative to the root
    for hidden in (str(tmp_path), str(secret), m.root):
        assert hidden not in text, hidden
    assert str(secret) in caplog.text  # the whole story is in the server's log
