"""Scale-out scans: with a dask client, tasks list the source by prefix and probe what they
find. Whatever the split, the manifest is the one a scan without a client makes."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr.roots import LocalRoot, ObjectRoot
from imagezarr.testing import loopback_s3

distributed = pytest.importorskip("distributed")
pytest.importorskip("moto.server", reason="moto[server] is in the test extra")

# a loaded machine lets distributed leave a socket to the garbage collector at teardown
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

SCAN: dict[str, Any] = {
    "pattern": r"(?P<plant>A\d+)-(?P<frame>\d+)\.png",
    "types": {"frame": "int"},
    "dims": ("plant", "frame"),
    "on_unmatched": "skip",
    "on_unreadable": "skip",
}


def png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return bytes(imagecodecs.png_encode(rng.integers(0, 255, (8, 10), dtype=np.uint8)))


def nested() -> dict[str, bytes]:
    """Two top-level folders with subfolders (so the client lists a second level), files at
    the top, a name the pattern leaves out, a broken image, a stray non-image, hidden names."""
    files = {
        "A1-1.png": png(1),
        "A1-2.png": png(2),
        "notes.txt": b"not an image",
        ".hidden-1.png": png(3),
        ".snapshots/A90-1.png": png(4),
        "night1/A2-1.png": png(5),
        "night1/thumb.png": png(6),
        "night2/A3-1.png": b"\x89PNG\r\n\x1a\n broken",
        "night2/.A91-1.png": png(7),
    }
    for n, night in enumerate(("night1", "night2")):
        for c, camera in enumerate(("cam0", "cam1", "cam2")):
            for f in (1, 2):
                plant = 10 + 3 * n + c
                files[f"{night}/{camera}/A{plant}-{f}.png"] = png(100 * plant + f)
    files["night1/cam1/deep/A30-1.png"] = png(30)
    return files


def wide(folders: int = 6) -> dict[str, bytes]:
    """More top-level folders than the cluster has threads: one task per folder."""
    files = {f"A{k}-1.png": png(k) for k in (3, 4)}
    for d in range(folders):
        files.update({f"day{d}/A{40 + d}-{f}.png": png(40 * d + f) for f in (1, 2, 3)})
    return files


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with loopback_s3() as server:
        yield server


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two worker processes: every task and its arguments travel pickled."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def put(s3: Any, prefix: str, files: dict[str, bytes]) -> str:
    """Upload ``files`` under a prefix of this test's own (moto's backend is shared)."""
    for rel, body in files.items():
        s3.client.put_object(Bucket="lab", Key=f"{prefix}/{rel}", Body=body)
    return f"s3://lab/{prefix}"


def write(folder: Path, files: dict[str, bytes]) -> str:
    for rel, body in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(body)
    return str(folder)


def assert_same(a: imagezarr.Manifest, b: imagezarr.Manifest) -> None:
    assert a.files == b.files
    assert [n.path for n in a.nodes] == [n.path for n in b.nodes]
    for x, y in zip(a.nodes, b.nodes, strict=True):
        np.testing.assert_array_equal(x.file_index, y.file_index)
        assert x.image == y.image
    assert a.unreadable == b.unreadable
    assert a.excluded == b.excluded
    assert a.unmatched == b.unmatched
    assert {**a.to_json(), "created": None} == {**b.to_json(), "created": None}


def listing_tasks(stream: Any) -> int:
    return sum(1 for t in stream.data if distributed.utils.key_split(t["key"]) == "imagezarr-list")


def test_nested_bucket_scans_alike_with_a_client(s3, client, monkeypatch):
    files = nested()
    url = put(s3, "nested", files)
    plain = imagezarr.scan(url, storage_options=s3.options, **SCAN)
    # the client process may list one level at a time only: every full listing is a task's
    monkeypatch.setattr(ObjectRoot, "list", _refused)
    with distributed.get_task_stream(client) as stream:
        spread = imagezarr.scan(url, storage_options=s3.options, client=client, **SCAN)
    assert_same(spread, plain)
    # two top-level folders are fewer than twice the threads: their six subfolders are the tasks
    assert listing_tasks(stream) == 6
    assert "night1/cam1/deep/A30-1.png" in spread.files.paths
    assert "A1-1.png" in spread.files.paths  # listed by the client at the top
    assert not any("/." in p or p.startswith(".") for p in spread.files.paths)
    assert spread.unreadable == ("night2/A3-1.png",)
    assert {e.path for e in spread.excluded} >= {"night1/thumb.png", "night2/A3-1.png"}
    ds = imagezarr.open_dataset(spread, storage_options=s3.options)
    for rel, plant, frame in [
        ("A1-2.png", "A1", 2),
        ("night1/A2-1.png", "A2", 1),
        ("night2/cam2/A15-2.png", "A15", 2),
        ("night1/cam1/deep/A30-1.png", "A30", 1),
    ]:
        got = ds.image.sel(plant=plant, frame=frame).values
        np.testing.assert_array_equal(got, imagecodecs.png_decode(files[rel]))


def _refused(self: Any, keep: Any, prefix: str = "") -> Any:
    raise AssertionError(f"the client listed {prefix or 'the root'} in full")


@pytest.mark.parametrize("glob", [None, "night1/*", "*/cam0/*"])
def test_glob_filters_alike_with_a_client(s3, client, glob, request):
    url = put(s3, f"glob-{request.node.callspec.id}", nested())
    plain = imagezarr.scan(url, storage_options=s3.options, glob=glob, **SCAN)
    spread = imagezarr.scan(url, storage_options=s3.options, glob=glob, client=client, **SCAN)
    assert_same(spread, plain)


def test_one_task_per_top_level_folder(s3, client):
    url = put(s3, "wide", wide(6))
    plain = imagezarr.scan(url, storage_options=s3.options, **SCAN)
    with distributed.get_task_stream(client) as stream:
        spread = imagezarr.scan(url, storage_options=s3.options, client=client, **SCAN)
    assert_same(spread, plain)
    assert listing_tasks(stream) == 6
    assert len(spread.files) == 2 + 6 * 3


def test_flat_bucket_probes_in_batches(s3, client):
    files = {f"A{k}-{f}.png": png(10 * k + f) for k in range(1, 4) for f in (1, 2)}
    url = put(s3, "flat", files)
    plain = imagezarr.scan(url, storage_options=s3.options, **SCAN)
    with distributed.get_task_stream(client) as stream:
        spread = imagezarr.scan(url, storage_options=s3.options, client=client, **SCAN)
    assert_same(spread, plain)
    assert listing_tasks(stream) == 0


def test_local_folder_scans_alike_with_a_client(tmp_path, client):
    folder = write(tmp_path / "images", {**nested(), **wide(3)})
    plain = imagezarr.scan(folder, **SCAN)
    with distributed.get_task_stream(client) as stream:
        spread = imagezarr.scan(folder, client=client, **SCAN)
    assert_same(spread, plain)
    assert listing_tasks(stream) == 5  # night1, night2, day0..day2: no second level


def test_listing_errors_in_a_task_name_the_source(tmp_path, client):
    folder = tmp_path / "images"
    write(folder, wide(3))
    (folder / "day1" / "CON.png").write_bytes(png(0))  # a name Windows cannot hold
    with pytest.raises(imagezarr.errors.DiscoveryError, match=r"CON\.png"):
        imagezarr.scan(folder, client=client, **SCAN)


def test_incremental_scan_with_a_client_probes_only_new_files(s3, monkeypatch):
    """In-process workers, so the count of header reads sees every task's."""
    url = put(s3, "grow", wide(4))
    old = imagezarr.scan(url, storage_options=s3.options, **SCAN)
    more = {"day1/A50-1.png": png(50), "day9/A51-1.png": png(51), "A52-1.png": png(52)}
    put(s3, "grow", {**more, "day2/A42-1.png": png(999)})  # one rewritten as well
    heads: Counter[str] = Counter()
    lock = threading.Lock()
    real = ObjectRoot.head

    def counted(self: ObjectRoot, rel: str, length: int) -> bytes:
        with lock:
            heads[rel] += 1
        return real(self, rel, length)

    monkeypatch.setattr(ObjectRoot, "head", counted)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        new, diff = imagezarr.update(old, client=c, storage_options=s3.options)
    assert set(heads) == {*more, "day2/A42-1.png"}
    assert max(heads.values()) == 1
    assert sorted(diff.added) == sorted(more)
    heads.clear()
    assert_same(new, imagezarr.scan(url, storage_options=s3.options, reuse=old, **SCAN))
    assert_same(new, imagezarr.scan(url, storage_options=s3.options, **SCAN))


def test_roots_list_one_level_and_one_prefix(tmp_path):
    folder = write(tmp_path / "images", nested())
    root = LocalRoot(folder)

    def keep(rel: str) -> bool:
        return rel.endswith(".png")

    folders, files = root.list_level(keep)
    assert sorted(folders) == ["night1", "night2"]
    assert sorted(e.path for e in files) == ["A1-1.png", "A1-2.png"]
    folders, files = root.list_level(keep, "night1")
    assert sorted(folders) == ["night1/cam0", "night1/cam1", "night1/cam2"]
    assert sorted(e.path for e in files) == ["night1/A2-1.png", "night1/thumb.png"]
    below = sorted(e.path for e in root.list(keep, "night1/cam1"))
    assert below == ["night1/cam1/A11-1.png", "night1/cam1/A11-2.png", "night1/cam1/deep/A30-1.png"]


def test_cli_update_with_a_scheduler(tmp_path, client, capsys):
    from imagezarr.cli import main

    folder = write(tmp_path / "images", nested())
    out = str(tmp_path / "exp.imagezarr.json")
    imagezarr.scan(folder, **SCAN).save(out)
    write(Path(folder), {"night2/cam1/A77-3.png": png(70)})
    address = client.scheduler.address
    with distributed.get_task_stream(client) as stream:
        assert main(["update", out, "--scheduler", address, "-q"]) == 0
    assert "1 added, 0 removed, 0 changed" in capsys.readouterr().out
    assert listing_tasks(stream) > 0  # the listing ran on the workers
    assert_same(imagezarr.load_manifest(out), imagezarr.scan(folder, **SCAN))
    assert main(["update", out, "--watch", "--scheduler", address]) == 2
    assert "--scheduler is for a single update" in capsys.readouterr().err


def test_checksums_are_read_on_the_workers(s3, client):
    url = put(s3, "checksums", nested())
    plain = imagezarr.scan(url, storage_options=s3.options, checksum=True, **SCAN)
    with distributed.get_task_stream(client) as stream:
        spread = imagezarr.scan(
            url, storage_options=s3.options, client=client, checksum=True, **SCAN
        )
    assert_same(spread, plain)
    assert all(c and c.startswith("xxh3:") for c in spread.files.checksums)
    keys = [distributed.utils.key_split(t["key"]) for t in stream.data]
    assert "imagezarr-checksums" in keys, sorted(set(keys))
