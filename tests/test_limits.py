"""Limits against hostile files and clients: the decompression-bomb guard (an image declaring
more pixels than the budget is refused from its header, at scan, at manifest load and before
any read decodes it: store, server), reduced decoding for thumbnails, and the server's
bounds on slow, idle and too many connections."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr import codecs, limits
from imagezarr.errors import ChunkDecodeError, FilledChunkWarning, ManifestError

from .test_serve import request, server  # noqa: F401 - the fixture

SIDE = 16000  # 256,000,000 pixels: over the default budget of 178,956,970
PAT = r"a_(?P<n>\d+)\.png"


def bomb_png(side: int = SIDE) -> bytes:
    """A real, decodable grey PNG of side x side zeros in a few hundred KB, made row by row
    so that the test never holds its pixels."""
    z = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return bomb_png()


def folder(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    return tmp_path / "img"


def small(seed: int) -> bytes:
    return imagecodecs.png_encode(np.full((20, 30), seed, np.uint8))


def test_the_bomb_is_small_and_real(bomb):
    assert len(bomb) < 400_000
    info = imagezarr.probe.probe_bytes(bomb, budget=False)
    assert info.shape == (SIDE, SIDE)


def test_scan_refuses_a_bomb_naming_it_and_the_fix(tmp_path, bomb):
    img = folder(tmp_path)
    (img / "a_1.png").write_bytes(small(1))
    (img / "a_2.png").write_bytes(bomb)
    with pytest.raises(imagezarr.ProbeError) as e:
        imagezarr.scan(img, pattern=PAT)
    text = str(e.value)
    assert "a_2.png: declares 16000 x 16000 = 256,000,000 pixels" in text
    assert "over the budget of 178,956,970 pixels per image" in text
    assert "imagezarr --max-pixels 256000000" in text
    assert "IMAGEZARR_MAX_PIXELS=256000000" in text
    m = imagezarr.scan(img, pattern=PAT, on_unreadable="skip")
    assert list(m.files.paths) == ["a_1.png"]


def test_cli_flag_and_environment_set_the_budget(tmp_path):
    img = folder(tmp_path)
    (img / "a_1.png").write_bytes(small(1))
    out = tmp_path / "m.imagezarr.json"
    cmd = [sys.executable, "-m", "imagezarr", "--max-pixels", "100", "scan", str(img)]
    done = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "a_1.png: declares 20 x 30 = 600 pixels, over the budget of 100" in done.stderr
    env = {"IMAGEZARR_MAX_PIXELS": "600", "PATH": ""}
    ok = subprocess.run(
        [sys.executable, "-m", "imagezarr", "scan", str(img), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "imagezarr", "info", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env={"IMAGEZARR_MAX_PIXELS": "many", "PATH": ""},
    )
    assert bad.returncode == 1
    assert "IMAGEZARR_MAX_PIXELS='many': give a whole number of pixels" in bad.stderr


def test_a_manifest_declaring_a_bomb_is_refused_at_load(tmp_path, bomb):
    img = folder(tmp_path)
    (img / "a_1.png").write_bytes(bomb)
    with limits.using_max_pixels(None):
        m = imagezarr.scan(img, pattern=PAT)
        path = m.save(tmp_path / "m.imagezarr.json")
        assert imagezarr.load_manifest(path).nodes[0].image.shape == (SIDE, SIDE)
    with pytest.raises(ManifestError, match=r"its image declares 16000 x 16000 = 256,000,000"):
        imagezarr.load_manifest(path)
    with limits.using_max_pixels(300_000_000):
        assert imagezarr.load_manifest(path).nodes[0].image.shape == (SIDE, SIDE)
    # a hand-edited manifest is held to the same budget
    (img / "a_1.png").write_bytes(small(1))
    edited = imagezarr.scan(img, pattern=PAT).save(tmp_path / "e.imagezarr.json")
    doc = json.loads(edited.read_text())
    node = doc["nodes"][0] if "nodes" in doc else doc["groups"][0]
    assert node["image"]["shape"] == [20, 30]
    node["image"]["shape"] = [20000, 30000]
    edited.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=r"its image declares 20000 x 30000 = 600,000,000"):
        imagezarr.load_manifest(edited)


def test_a_file_swapped_for_a_bomb_is_refused_before_decoding(tmp_path, bomb):
    img = folder(tmp_path)
    (img / "a_1.png").write_bytes(small(1))
    (img / "a_2.png").write_bytes(small(2))
    m = imagezarr.scan(img, pattern=PAT)
    (img / "a_2.png").write_bytes(bomb)  # after the scan; the check is off below
    tracemalloc.start()
    try:
        with pytest.raises(ChunkDecodeError, match=r"a_2.png: declares 16000 x 16000 .*refusing"):
            imagezarr.open_dataset(m, check="none").image.load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20  # decoding it would allocate 256 MB
    with pytest.warns(FilledChunkWarning, match="a_2.png: read as fill value"):
        image = imagezarr.open_dataset(m, check="none", on_error="fill").image.values
    assert (image[0] == 1).all()
    assert (image[1] == 0).all()


def test_the_server_refuses_a_bomb_thumbnail_quickly_and_without_its_memory(
    tmp_path,
    bomb,
    server,  # noqa: F811 - the fixture
):
    img = folder(tmp_path)
    (img / "a_1.png").write_bytes(small(1))
    (img / "a_2.png").write_bytes(small(2))
    m = imagezarr.scan(img, pattern=PAT)
    s = server(m, check="none")
    assert request(s.url, "/_view/thumb/1?size=16")[0] == 200
    (img / "a_2.png").write_bytes(bomb)
    tracemalloc.start()
    try:
        thumb = request(s.url, "/_view/thumb/1?size=16")
        chunk = request(s.url, "/image/c/1/0/0")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for status, _, body in (thumb, chunk):
        assert status == 500
        text = body.decode()
        assert text.startswith("a_2.png: declares 16000 x 16000")
        assert str(tmp_path) not in text
    assert peak < 64 * 2**20


def test_thumbnails_of_jpegs_decode_reduced(tmp_path, server, monkeypatch):  # noqa: F811 - the fixture
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:1600, 0:2000]
    photo = ((np.sin(y / 90) + np.cos(x / 70)) * 60 + 128 + rng.normal(0, 3, y.shape)).clip(0, 255)
    img = folder(tmp_path)
    for n in (1, 2):
        (img / f"p_{n}.jpg").write_bytes(imagecodecs.jpeg8_encode(photo.astype(np.uint8), level=92))
    m = imagezarr.scan(img, pattern=r"p_(?P<n>\d+)\.jpg")
    s = server(m)

    def thumb(index: int) -> tuple[bytes, int]:
        tracemalloc.start()
        try:
            status, _, body = request(s.url, f"/_view/thumb/{index}?size=200")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert status == 200, body
        return body, peak

    body, reduced_peak = thumb(0)
    with monkeypatch.context() as patch:
        patch.setattr(codecs.Jpeg, "reduced", lambda self, data, factor: None)
        whole_body, whole_peak = thumb(1)
    shown, whole = imagecodecs.png_decode(body), imagecodecs.png_decode(whole_body)
    assert shown.shape == whole.shape == (160, 200)  # factor 10: decoded at 1/2, then by 5
    # the full decode box-averaged by 10, by another path, against both thumbnails
    full = imagecodecs.jpeg8_decode((img / "p_1.jpg").read_bytes()).astype(float)
    boxed = full.reshape(160, 10, 200, 10).mean(axis=(1, 3))
    assert np.abs(whole.astype(float) - boxed).max() <= 1.0
    assert np.abs(shown.astype(float) - boxed).mean() < 1.0
    assert reduced_peak < whole_peak / 2, (reduced_peak, whole_peak)


def test_the_budget_counts_pixels_not_channels():
    assert limits.pixels_of((100, 200, 3), ("y", "x", "c")) == 20_000
    assert limits.pixels_of((5, 100, 200), ("z", "y", "x")) == 100_000
    with limits.using_max_pixels(20_000):
        assert limits.over_budget((100, 200, 4), ("y", "x", "c")) is None
        assert "100 x 201" in (limits.over_budget((100, 201), ("y", "x")) or "")
    with pytest.raises(ValueError, match="whole number"):
        limits.set_max_pixels(-1)


def test_budget_errors_name_the_file_in_the_cli(tmp_path: Path, bomb):
    img = folder(tmp_path)
    (img / "ä b_1.png").write_bytes(bomb)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "imagezarr",
            "inspect",
            str(tmp_path),
            "--pattern",
            r"ä b_(?P<n>\d+)\.png",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "ä b_1.png: declares 16000 x 16000" in done.stdout + done.stderr


# -- slow and idle clients ------------------------------------------------------------------


def _held(url: str, how_many: int, head: bytes = b"GET /zarr.json HTTP/1.1\r\nHost: x\r\n"):
    parts = urlsplit(url)
    held = []
    for _ in range(how_many):
        s = socket.create_connection((parts.hostname, parts.port), timeout=10)
        s.sendall(head)  # headers never finished
        held.append(s)
    return held


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slow_and_idle_clients_are_dropped_and_bounded(tmp_path, server):  # noqa: F811
    img = folder(tmp_path)
    (img / "a_1.png").write_bytes(small(1))
    (img / "a_2.png").write_bytes(small(2))
    s = server(imagezarr.scan(img, pattern=PAT), idle_timeout=0.5, max_connections=20)
    held = _held(s.url, 20)
    try:
        # over the cap: closed at once, while the 20 are still inside their timeout
        extra = _held(s.url, 5)
        held += extra
        assert all(_closed_within(x, 0.3) for x in extra)
        started = time.monotonic()
        assert all(_closed_within(h, 3.0) for h in held[:20])
        assert time.monotonic() - started < 2.5
        # a client dribbling a byte every 0.1 s is not kept alive by its bytes
        (dribbler,) = _held(s.url, 1, b"G")
        held.append(dribbler)
        started = time.monotonic()
        for byte in b"ET /zarr.json HTTP/1.1\r\nHost: x\r\n":
            try:
                dribbler.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
        assert _closed_within(dribbler, 3.0)
        assert time.monotonic() - started < 3.0
        # and the server still answers whole requests, one after another on one connection
        for _ in range(3):
            assert request(s.url, "/zarr.json")[0] == 200
    finally:
        for h in held:
            h.close()


def test_connection_limits_must_be_positive(tmp_path):
    from imagezarr.serve import make_app

    img = folder(tmp_path)
    (img / "a_1.png").write_bytes(small(1))
    with pytest.raises(ValueError, match="idle_timeout and max_connections must be positive"):
        make_app(imagezarr.scan(img, pattern=PAT), idle_timeout=0)


def test_an_image_of_many_planes_may_hold_sixteen_budgets():
    with limits.using_max_pixels(1000):
        assert limits.over_budget((16, 25, 40), ("p", "y", "x")) is None  # 16 x 1000
        why = limits.over_budget((17, 25, 40), ("p", "y", "x")) or ""
        assert "17 x 25 x 40 = 17,000 pixels" in why
        assert "16,000 pixels per image of many planes" in why
        assert "--max-pixels 1063" in why  # what makes 16 budgets hold it
        assert "per image (a" in (limits.over_budget((2, 25, 41), ("p", "y", "x")) or "")
