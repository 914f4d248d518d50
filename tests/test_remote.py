"""Remote roots against real servers on loopback: an S3 server (moto) and an HTTP server with
range requests, both started here and seeded with generated images."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr.errors import ChunkReadError, DiscoveryError, SourceChangedError
from imagezarr.testing import (
    PSII_DIMS,
    PSII_PATTERN,
    PSII_TYPES,
    cluster_image_sum,
    loopback_s3,
    make_psii_experiment,
)

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
boto3 = pytest.importorskip("boto3")
RangeHTTPServer = pytest.importorskip("RangeHTTPServer")

PSII = {"pattern": PSII_PATTERN, "types": PSII_TYPES, "dims": PSII_DIMS}


@pytest.fixture(scope="module")
def s3() -> Iterator[dict]:
    """A moto S3 server on 127.0.0.1 with a bucket ``lab``; yields client + storage options."""
    with loopback_s3() as server:
        yield {"client": server.client, "options": server.options, "endpoint": server.endpoint}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    images = tmp_path_factory.mktemp("remote") / "images"
    truth = make_psii_experiment(
        images, plants=4, nights=2, steps=2, frames=2, shape=(10, 12), holes=1, seed=5
    )
    return images, truth


@pytest.fixture
def bucket(s3, experiment, request) -> str:
    """Upload the experiment under a fresh prefix; return its URL."""
    images, truth = experiment
    prefix = f"exp-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    for rel in truth:
        s3["client"].put_object(
            Bucket="lab", Key=f"{prefix}/{rel}", Body=(images / rel).read_bytes()
        )
    return f"s3://lab/{prefix}"


def test_scan_s3_and_read_pixel_exact(s3, bucket, experiment, tmp_path):
    _images, truth = experiment
    m = imagezarr.scan(bucket, storage_options=s3["options"], **PSII)
    assert m.root == bucket
    assert len(m.files) == len(truth)
    assert all(t for t in m.files.etags)  # S3 gives etags; they are checked on read
    out = m.save(tmp_path / "s3.imagezarr.json")
    assert '"root":"s3://lab/' in out.read_text()
    assert "secret" not in out.read_text()
    ds = imagezarr.open_dataset(out, storage_options=s3["options"])
    node = m.node("")
    data = ds.image.values
    for idx in np.argwhere(node.file_index >= 0):
        rel = m.files.paths[node.file_index[tuple(idx)]]
        np.testing.assert_array_equal(data[tuple(idx)], truth[rel])


def test_manifest_living_in_the_bucket(s3, bucket, experiment):
    _, truth = experiment
    m = imagezarr.scan(bucket, storage_options=s3["options"], **PSII)
    url = f"{bucket}.imagezarr.json"
    m.save(url, storage_options=s3["options"])
    ds = imagezarr.open_dataset(url, storage_options=s3["options"])
    rel = sorted(truth)[0]
    hit = np.argwhere(ds.path.values == rel)[0]
    np.testing.assert_array_equal(ds.image.values[tuple(hit)], truth[rel])


def test_rewritten_and_deleted_objects_fail_naming_the_key(s3, bucket, experiment):
    _, truth = experiment
    m = imagezarr.scan(bucket, storage_options=s3["options"], **PSII)
    arr = imagezarr.open_group(m, storage_options=s3["options"])["image"]
    names = sorted(truth)
    key = bucket.removeprefix("s3://lab/")
    body = imagecodecs.png_encode(np.full((10, 12), 7, np.uint8))
    s3["client"].put_object(Bucket="lab", Key=f"{key}/{names[0]}", Body=body)
    s3["client"].delete_object(Bucket="lab", Key=f"{key}/{names[1]}")
    node = m.node("")
    where = {
        m.files.paths[i]: tuple(np.argwhere(node.file_index == i)[0]) for i in range(len(m.files))
    }
    with pytest.raises(SourceChangedError, match=rf"{names[0]}: file changed since the scan"):
        arr[where[names[0]]]
    with pytest.raises(ChunkReadError, match=rf"{names[1]}: file is missing \(it was scanned\)"):
        arr[where[names[1]]]


def test_missing_bucket_is_one_clear_line(s3, tmp_path, capsys):
    with pytest.raises(DiscoveryError, match=r"cannot list s3://no-such-bucket/x: "):
        imagezarr.scan("s3://no-such-bucket/x", storage_options=s3["options"])
    from imagezarr.cli import main

    code = main(["scan", "s3://no-such-bucket/x", "-o", str(tmp_path / "x.imagezarr.json")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("imagezarr: error: ")
    assert err.count("\n") == 1


# -- HTTP ---------------------------------------------------------------------------------


class _Flaky(RangeHTTPServer.RangeRequestHandler):
    """Answers the first GET of every path with 503, as an overloaded server does."""

    failed: set[str]

    def do_GET(self) -> None:
        if self.path not in self.failed:
            self.failed.add(self.path)
            self.send_error(503, "try again")
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_root(experiment) -> Iterator[str]:
    images, _ = experiment
    handler = type("Handler", (_Flaky,), {"failed": set()})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(images.parent))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/images"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


HTTP_OPTIONS = {"client_options": {"allow_http": True}}


def test_http_root_with_a_file_list_and_transient_errors(http_root, experiment, tmp_path):
    _, truth = experiment
    index = tmp_path / "files.txt"
    index.write_text("\n".join(sorted(truth)) + "\n")
    m = imagezarr.scan(http_root, files=index, storage_options=HTTP_OPTIONS, **PSII)
    assert len(m.files) == len(truth)
    # every first GET fails with 503 and is retried
    ds = imagezarr.open_dataset(m, storage_options=HTTP_OPTIONS)
    rel = sorted(truth)[-1]
    hit = np.argwhere(ds.path.values == rel)[0]
    np.testing.assert_array_equal(ds.image.values[tuple(hit)], truth[rel])


def test_reroot_s3_manifest_onto_an_http_mirror(s3, bucket, http_root, experiment, tmp_path):
    _, truth = experiment
    out = imagezarr.scan(bucket, storage_options=s3["options"], **PSII).save(tmp_path / "m.json")
    # a mirror keeps sizes but not etags or times: compare sizes only
    ds = imagezarr.open_dataset(out, root=http_root, check="size", storage_options=HTTP_OPTIONS)
    rel = sorted(truth)[2]
    hit = np.argwhere(ds.path.values == rel)[0]
    np.testing.assert_array_equal(ds.image.values[tuple(hit)], truth[rel])


def test_http_without_a_file_list_says_what_to_do(http_root):
    with pytest.raises(DiscoveryError, match=r"cannot list .*pass files="):
        imagezarr.scan(http_root, storage_options=HTTP_OPTIONS)


# a loaded machine lets distributed leave a socket to the garbage collector at teardown
@pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_distributed_workers_read_from_s3(s3, bucket, experiment):
    pytest.importorskip("distributed")
    m = imagezarr.scan(bucket, storage_options=s3["options"], **PSII)
    ds = imagezarr.open_dataset(m, storage_options=s3["options"])
    expected = float(ds.image.values.astype("float64").sum())
    assert cluster_image_sum(m, storage_options=s3["options"]) == expected


def test_cli_scan_and_verify_a_bucket(s3, bucket, experiment, tmp_path, capsys, monkeypatch):
    from imagezarr.cli import main

    _, truth = experiment
    cfg = s3["options"]["config"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", cfg["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", cfg["secret_access_key"])
    opts = ["-O", f"endpoint={cfg['endpoint']}", "-O", "region=us-east-1", "-O", "allow_http=true"]
    out = tmp_path / "cli.imagezarr.json"
    assert (
        main(
            [
                "scan",
                bucket,
                "--pattern",
                PSII_PATTERN,
                "--type",
                "frame=int",
                *opts,
                "-o",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert f"{len(truth)} files" in text
    assert cfg["secret_access_key"] not in out.read_text()
    assert main(["verify", str(out), "--decode", *opts]) == 0
    assert f"ok: {len(truth)} files checked, {len(truth)} decoded" in capsys.readouterr().out
    key = bucket.removeprefix("s3://lab/") + "/" + sorted(truth)[0]
    s3["client"].put_object(Bucket="lab", Key=key, Body=b"replaced")
    assert main(["verify", str(out), *opts]) == 1
    assert f"changed      {sorted(truth)[0]}: size" in capsys.readouterr().out


def test_exports_of_a_remote_manifest(s3, bucket, tmp_path):
    from imagezarr.errors import ExportError
    from imagezarr.export import export

    m = imagezarr.scan(bucket, storage_options=s3["options"], **PSII)
    out = export(m, "kerchunk", tmp_path / "refs.json", storage_options=s3["options"])
    refs = json.loads(Path(out).read_text())["refs"]
    urls = [v[0] for v in refs.values() if isinstance(v, list)]
    assert urls
    assert all(u.startswith(f"{bucket}/") for u in urls), urls[:2]
    with pytest.raises(ExportError, match="needs local files"):
        export(m, "links", tmp_path / "links.zarr", storage_options=s3["options"])


# a loaded machine lets distributed leave a socket to the garbage collector at teardown
@pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_probes_spread_over_a_dask_cluster(s3, bucket, experiment):
    distributed = pytest.importorskip("distributed")
    _, truth = experiment
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        m = imagezarr.scan(bucket, storage_options=s3["options"], client=client, **PSII)
        seen = client.run(lambda: True)  # both worker processes were there to take batches
    assert len(seen) == 2
    local = imagezarr.scan(bucket, storage_options=s3["options"], **PSII)
    assert m.to_json()["groups"] == local.to_json()["groups"]
    assert len(m.files) == len(truth)


class _Forbidden(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_error(403, "Forbidden")

    do_GET = do_HEAD

    def log_message(self, *args: object) -> None:
        pass


def test_refused_credentials_are_one_clear_line(tmp_path, capsys):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/images"
        with pytest.raises(DiscoveryError, match=r"a\.png: listed in files= but cannot be reach"):
            imagezarr.scan(url, files=["a.png"], storage_options=HTTP_OPTIONS)
        from imagezarr.cli import main

        index = tmp_path / "files.txt"
        index.write_text("a.png\n")
        code = main(
            [
                "scan",
                url,
                "--files",
                str(index),
                "-O",
                "allow_http=true",
                "-o",
                str(tmp_path / "x.imagezarr.json"),
            ]
        )
        assert code == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "403" in err or "Forbidden" in err or "denied" in err.lower()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
