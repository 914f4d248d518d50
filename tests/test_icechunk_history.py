"""Icechunk history: exporting onto an existing repository commits only what changed.

A living experiment over three days: day 1 scanned and exported; day 2 adds a night folder
and rewrites one day-1 image; day 3 removes an image and adds a night with a new plant whose
label sorts between two others (so every later image moves to another grid position). Each
snapshot must read, pixel for pixel, the images of its own day.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import xarray as xr
import zarr

import imagezarr
from imagezarr.cli import main
from imagezarr.errors import ExportError
from imagezarr.export import export
from imagezarr.export.icechunk import (
    branch_tip,
    container_prefix,
    history,
    open_snapshot,
)
from imagezarr.hierarchy import build_metadata, chunk_refs
from imagezarr.testing import PSII_BY_PLANT, PSII_SCAN, psii_image, write_image

ic = pytest.importorskip("icechunk")

CHANGED = "2020-06-01/A1-doi-20200601T210001-PSII0-1.png"  # rewritten on day 2
REMOVED = "2020-06-02/A3-doi-20200602T210003-PSII0-2.png"  # deleted on day 3


def _night(images: Path, day: int, plants: list[int], *, seed: int = 0) -> None:
    for p in plants:
        for f in (1, 2):
            name = f"A{p}-doi-2020060{day}T2100{p:02d}-PSII0-{f}.png"
            img = psii_image((6, 8), plant=p, step=day, frame=f, seed=seed)
            write_image(images / f"2020-06-0{day}" / name, img)


def _later(path: Path, seconds: int = 10) -> None:
    """Move a file's mtime on, past the second Icechunk recorded for it."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 10**9))


class Experiment:
    """The image folder, its manifest, the repository, and a copy of every day's images."""

    def __init__(self, tmp: Path, scan: dict) -> None:
        self.tmp, self.images = tmp, tmp / "images"
        self.manifest_path, self.repo = tmp / "exp.imagezarr.json", tmp / "exp.icechunk"
        self.scan = scan
        self.manifests: list[imagezarr.Manifest] = []
        self.snapshots: list[str] = []

    def day1(self) -> None:
        _night(self.images, 1, [1, 3])
        m = imagezarr.scan(self.images, **self.scan)
        m.save(self.manifest_path)
        self._export(m)

    def day2(self) -> None:
        _night(self.images, 2, [1, 3])
        write_image(self.images / CHANGED, psii_image((6, 8), plant=9, step=9, frame=9, seed=9))
        _later(self.images / CHANGED)
        self._update()

    def day3(self, **options) -> None:
        (self.images / REMOVED).unlink()
        _night(self.images, 3, [1, 2, 3])
        self._update(**options)

    def _update(self, **options) -> None:
        new, _ = imagezarr.update(self.manifest_path)
        new.save(self.manifest_path, force=True)
        self._export(new, **options)

    def _export(self, m: imagezarr.Manifest, **options) -> None:
        assert export(m, "icechunk", self.repo, **options) == self.repo
        self.manifests.append(m)
        self.snapshots.append(branch_tip(self.repo))
        shutil.copytree(self.images, self.tmp / f"day{len(self.manifests)}")  # kept aside

    def aside(self, day: int, rel: str) -> np.ndarray:
        return imagecodecs.imread(self.tmp / f"day{day}" / rel)


@pytest.fixture
def experiment(tmp_path):
    e = Experiment(tmp_path, PSII_SCAN)
    e.day1()
    e.day2()
    e.day3(tag="day3")
    return e


def _refs(m: imagezarr.Manifest) -> dict[str, tuple]:
    return {
        key: (m.files.paths[i], int(m.files.sizes[i]), int(m.files.mtimes[i]))
        for key, i in chunk_refs(m)
    }


def _chunks(keys) -> dict[str, list[list[int]]]:
    """Chunk keys by array, as Icechunk's diff lists them."""
    out: dict[str, list[list[int]]] = {}
    for key in keys:
        array, _, index = key.partition("/c/")
        out.setdefault("/" + array, []).append([int(i) for i in index.split("/")])
    return {k: sorted(v) for k, v in out.items()}


def _expected_chunks(old: imagezarr.Manifest, new: imagezarr.Manifest) -> dict:
    """Every chunk key whose content differs between two manifests' hierarchies."""
    a, b = _refs(old), _refs(new)
    image = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    ma, mb = build_metadata(old), build_metadata(new)
    coords = {
        k for k in ma.keys() | mb.keys() if not k.endswith("zarr.json") and (ma.get(k) != mb.get(k))
    }
    return _chunks(image | coords)


def _assert_reads_day(e: Experiment, day: int) -> None:
    """Snapshot ``day`` reads exactly that day's images; a later-changed file fails."""
    m = e.manifests[day - 1]
    store = open_snapshot(e.repo, snapshot=e.snapshots[day - 1])
    assert store.session.snapshot_id == e.snapshots[day - 1]
    group = zarr.open_group(store, mode="r")
    for node in m.nodes:
        g = group[node.path] if node.path else group
        image = g["image"]
        assert image.shape == node.shape + tuple(node.image.shape)
        np.testing.assert_array_equal(
            g["path"][...], np.array([*m.files.paths, ""])[node.file_index]
        )
        for idx in np.ndindex(*node.shape):
            i = int(node.file_index[idx])
            if i < 0:
                assert not image[idx].any()  # a hole reads the fill value
                continue
            rel = m.files.paths[i]
            if day == 1 and rel == CHANGED:
                # the file changed after snapshot 1: Icechunk refuses it, never new bytes
                with pytest.raises(Exception, match="checksum"):
                    image[idx]
                continue
            if not (e.images / rel).exists():  # references, not copies: a deleted file is gone
                with pytest.raises(Exception, match="not found"):
                    image[idx]
                continue
            np.testing.assert_array_equal(image[idx], e.aside(day, rel), err_msg=rel)


def test_three_days_three_snapshots(experiment):
    e = experiment
    repo = ic.Repository.open(ic.local_filesystem_storage(str(e.repo)))
    snaps = list(repo.ancestry(branch="main"))
    assert [s.id for s in snaps[:3]] == e.snapshots[::-1]
    assert len(snaps) == 4
    assert snaps[3].message == "Repository initialized"
    messages = [s.message for s in snaps[:3]][::-1]
    assert messages == [
        "imagezarr export: 4 files",
        "imagezarr update: 4 added, 0 removed, 1 changed",
        "imagezarr update: 6 added, 1 removed, 0 changed",
    ]
    for s, m in zip(snaps[:3][::-1], e.manifests, strict=True):
        props = s.metadata["imagezarr"]
        assert props["created"] == m.created
        assert props["files"] == len(m.files)
        assert props["root"] == m.root
    assert snaps[0].metadata["imagezarr"]["references"] == 9  # 6 new + 3 moved by A2
    assert snaps[0].metadata["imagezarr"]["deleted"] == 4  # A3's old positions, now holes
    for day in (1, 2, 3):
        _assert_reads_day(e, day)


def test_only_changed_keys_are_committed(experiment):
    e = experiment
    repo = ic.Repository.open(ic.local_filesystem_storage(str(e.repo)))
    for day in (2, 3):
        diff = repo.diff(from_snapshot_id=e.snapshots[day - 2], to_snapshot_id=e.snapshots[day - 1])
        got = {k: sorted(v) for k, v in diff.updated_chunks.items()}
        assert got == _expected_chunks(e.manifests[day - 2], e.manifests[day - 1])
        assert not diff.new_arrays
        assert not diff.deleted_arrays
    # day 2: the rewritten day-1 image is re-referenced, its unchanged neighbours are not
    first = repo.diff(from_snapshot_id=e.snapshots[0], to_snapshot_id=e.snapshots[1])
    assert [0, 0, 0, 0, 0, 0] in first.updated_chunks["/image"]
    assert [0, 0, 0, 1, 0, 0] not in first.updated_chunks["/image"]
    assert "/present" in first.updated_arrays  # shapes grew with the new night


def test_nothing_changed_commits_nothing_and_tags_work(experiment):
    e = experiment
    before = branch_tip(e.repo)
    export(e.manifests[-1], "icechunk", e.repo, tag="again")
    assert branch_tip(e.repo) == before  # no empty snapshot
    repo = ic.Repository.open(ic.local_filesystem_storage(str(e.repo)))
    assert repo.lookup_tag("day3") == e.snapshots[2] == repo.lookup_tag("again")
    assert open_snapshot(e.repo, tag="day3").session.snapshot_id == e.snapshots[2]
    with pytest.raises(ExportError, match="already has a tag 'day3'"):
        export(e.manifests[-1], "icechunk", e.repo, tag="day3")
    with pytest.raises(ValueError, match="not both"):
        open_snapshot(e.repo, snapshot=e.snapshots[0], tag="day3")


def test_open_snapshot_with_xarray(experiment):
    e = experiment
    store = open_snapshot(e.repo, snapshot=e.snapshots[1], root=e.manifests[1].root)
    ds = xr.open_zarr(store, zarr_format=3, consolidated=False, mask_and_scale=False)
    assert ds.sizes["night"] == 2
    assert ds.sizes["barcode"] == 2
    kept = REMOVED.replace("-2.png", "-1.png")
    hit = tuple(int(i) for i in np.argwhere(ds.path.values == kept)[0])
    np.testing.assert_array_equal(ds.image[hit].values, e.aside(2, kept))
    latest = xr.open_zarr(open_snapshot(e.repo), zarr_format=3, consolidated=False)
    assert list(latest.barcode.values) == ["A1", "A2", "A3"]
    assert REMOVED not in latest.path.values


def test_groups_added_and_removed(tmp_path):
    """With one group per plant, a new plant is a new group and a gone one is deleted."""
    e = Experiment(tmp_path, PSII_BY_PLANT)
    e.day1()
    e.day2()
    for f in (e.images).rglob("A3-*.png"):
        f.unlink()  # plant A3 leaves the experiment
    _night(e.images, 3, [1, 2])
    e._update()
    repo = ic.Repository.open(ic.local_filesystem_storage(str(e.repo)))
    diff = repo.diff(from_snapshot_id=e.snapshots[1], to_snapshot_id=e.snapshots[2])
    assert "/A2" in diff.new_groups
    assert "/A3" in diff.deleted_groups
    assert "/A2/image" in diff.new_arrays
    assert "/A3/image" in diff.deleted_arrays
    assert history(e.repo)[0].message == "imagezarr update: 4 added, 4 removed, 0 changed"
    assert sorted(zarr.open_group(open_snapshot(e.repo), mode="r").group_keys()) == ["A1", "A2"]
    old = zarr.open_group(open_snapshot(e.repo, snapshot=e.snapshots[1]), mode="r")
    assert sorted(old.group_keys()) == ["A1", "A3"]
    rel = "2020-06-02/A3-doi-20200602T210003-PSII0-1.png"
    assert old["A3/path"][1, 0, 0] == rel
    with pytest.raises(Exception, match="not found"):  # A3's files are deleted from disk
        old["A3/image"][1, 0, 0]
    a1 = "2020-06-02/A1-doi-20200602T210001-PSII0-1.png"
    np.testing.assert_array_equal(old["A1/image"][1, 0, 0], e.aside(2, a1))


def test_refuses_a_repository_of_another_root(tmp_path):
    e = Experiment(tmp_path, PSII_SCAN)
    e.day1()
    other = tmp_path / "other"
    _night(other, 1, [5])
    m = imagezarr.scan(other, **PSII_SCAN)
    with pytest.raises(ExportError, match="exported for other images") as err:
        export(m, "icechunk", e.repo)
    assert container_prefix(e.manifests[0].root) in str(err.value)
    assert branch_tip(e.repo) == e.snapshots[0]
    assert export(m, "icechunk", e.repo, overwrite=True) == e.repo  # --overwrite replaces
    assert [s.message for s in history(e.repo)] == [
        "imagezarr export: 2 files",
        "Repository initialized",
    ]


def test_refuses_an_icechunk_repository_imagezarr_did_not_write(tmp_path):
    _night(tmp_path / "images", 1, [1])
    m = imagezarr.scan(tmp_path / "images", **PSII_SCAN)
    config = ic.RepositoryConfig.default()
    prefix = container_prefix(m.root)
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(m.root))
    )
    repo = ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "r")), config=config)
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="w", zarr_format=3).attrs["mine"] = 1
    session.commit("someone else's")
    with pytest.raises(ExportError, match="imagezarr did not write"):
        export(m, "icechunk", tmp_path / "r")


def test_without_a_record_every_reference_is_rewritten(tmp_path):
    """A repository from an older imagezarr (or an interrupted export) has no record."""
    e = Experiment(tmp_path, PSII_SCAN)
    e.day1()
    shutil.rmtree(e.repo / "imagezarr")
    e.day2()
    assert history(e.repo)[0].message == (
        "imagezarr update: 8 references rewritten (no record of the previous references)"
    )
    props = history(e.repo)[0].metadata["imagezarr"]
    assert "added" not in props
    assert props["references"] == 8
    assert [p.name for p in (e.repo / "imagezarr").iterdir()] == [f"{e.snapshots[1]}.json.gz"]
    _assert_reads_day(e, 2)
    e.day3()  # and the record is back: only the differences again
    assert history(e.repo)[0].message == "imagezarr update: 6 added, 1 removed, 0 changed"
    _assert_reads_day(e, 3)


def test_cli_tag_and_summary(tmp_path, capsys):
    e = Experiment(tmp_path, PSII_SCAN)
    _night(e.images, 1, [1, 3])
    imagezarr.scan(e.images, **PSII_SCAN).save(e.manifest_path)
    args = ["export", str(e.manifest_path), "-f", "icechunk", "-o", str(e.repo)]
    assert main([*args, "--tag", "day1"]) == 0
    assert "wrote icechunk export of 4 files" in capsys.readouterr().out
    _night(e.images, 2, [1])
    assert main(["update", str(e.manifest_path), "-q"]) == 0
    assert main([*args, "--tag", "day2"]) == 0
    out = capsys.readouterr().out
    tip = branch_tip(e.repo)
    assert f"committed snapshot {tip}" in out
    assert "imagezarr update: 2 added, 0 removed, 0 changed" in out
    assert main(args) == 0
    assert "is up to date" in capsys.readouterr().out
    repo = ic.Repository.open(ic.local_filesystem_storage(str(e.repo)))
    assert repo.lookup_tag("day2") == tip != repo.lookup_tag("day1")
    assert main(["export", str(e.manifest_path), "-f", "zarr", "-o", "x", "--tag", "t"]) != 0
