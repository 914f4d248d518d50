"""The Root contract (imagezarr.testing.roots.RootTests) for a folder, S3 and HTTP."""

from __future__ import annotations

import functools
import http.server
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from imagezarr.roots import Root, open_root
from imagezarr.testing import loopback_s3
from imagezarr.testing.roots import RootTests


def _write(folder: Path, files: Mapping[str, bytes]) -> Path:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


class TestLocalRoot(RootTests):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "images"

    def make_root(self, files: Mapping[str, bytes]) -> Root:
        return open_root(_write(self.folder, files))


@pytest.fixture(scope="module")
def s3() -> Iterator:
    pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
    pytest.importorskip("obstore", reason="obstore is the remote extra")
    with loopback_s3() as server:
        yield server


class TestS3Root(RootTests):
    @pytest.fixture(autouse=True)
    def _server(self, s3) -> None:
        self.s3 = s3

    def make_root(self, files: Mapping[str, bytes]) -> Root:
        prefix = f"contract-{uuid.uuid4().hex[:8]}"
        for rel, data in files.items():
            self.s3.client.put_object(Bucket="lab", Key=f"{prefix}/{rel}", Body=data)
        return open_root(f"s3://lab/{prefix}", self.s3.options)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class TestHTTPRoot(RootTests):
    """A plain HTTP server with range requests: no listing, no writing."""

    can_list = False
    can_write = False

    @pytest.fixture(autouse=True)
    def _server(self, tmp_path: Path) -> Iterator[None]:
        ranges = pytest.importorskip("RangeHTTPServer")
        pytest.importorskip("obstore", reason="obstore is the remote extra")
        self.folder = tmp_path / "site"
        handler = type("Handler", (ranges.RangeRequestHandler, _Quiet), {})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(tmp_path))
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/site"
        yield
        server.shutdown()
        server.server_close()
        thread.join()

    def make_root(self, files: Mapping[str, bytes]) -> Root:
        _write(self.folder, files)
        return open_root(self.url, {"client_options": {"allow_http": True}})
