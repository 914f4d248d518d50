"""Large manifests: the packed path column stays packed, and the ``path`` coordinate is chunked.

Ten million entries are measured in ``benchmarks/run.py --manifest-plants 10000``; here the
same code paths run on small data by lowering the packing and chunking thresholds.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import xarray as xr
import zarr

import imagezarr
import imagezarr.hierarchy as hierarchy
import imagezarr.hierarchy._metadata as hierarchy_metadata
import imagezarr.manifest._model as model
from imagezarr.errors import UnsafePathError
from imagezarr.export import export
from imagezarr.paths import PathColumn, check_all_relative
from imagezarr.testing import PSII_SCAN, make_psii_experiment

NAMES = ["a.png", "nacht 2/Übersicht ä.png", "z/ß/日本.tif", "b.png"]


def test_path_column_behaves_as_a_list_of_paths():
    c = PathColumn.from_paths(NAMES)
    assert len(c) == 4
    assert list(c) == NAMES
    assert c == NAMES
    assert NAMES == c  # noqa: SIM300 (list.__eq__ defers to the column)
    assert [c[i] for i in range(-4, 4)] == NAMES + NAMES
    assert c[1:3] == NAMES[1:3]
    assert c[::-1] == NAMES[::-1]
    assert c.take(np.array([3, 0])) == ["b.png", "a.png"]
    assert c.pick(np.array([2, 2])) == [NAMES[2]] * 2
    assert c.strings(1, 3) == NAMES[1:3]
    assert c.strings(2, 2) == []
    assert "b.png" in c
    assert "c.png" not in c
    assert c.index("b.png") == 3
    assert pickle.loads(pickle.dumps(c)) == c
    assert c != NAMES[:3]
    assert c != [*NAMES[:3], "c.png"]
    with pytest.raises(IndexError, match="path index 4 out of range for 4 paths"):
        c[4]
    with pytest.raises(IndexError):
        c[-5]
    empty = PathColumn.from_paths([])
    assert len(empty) == 0
    assert list(empty) == []
    assert empty == []
    assert PathColumn.from_paths([""]) == [""]  # one empty path is not no path


def test_path_column_iterates_across_blocks_and_builds_offsets_in_blocks(monkeypatch):
    names = [f"night {i // 7}/A{i}-ü.png" for i in range(100)]
    data = "\0".join(names).encode()
    for block in (1, 5, 64, len(data), 10 * len(data)):
        c = PathColumn.from_joined(data, block=block)
        assert c.offsets.tolist() == PathColumn.from_joined(data).offsets.tolist()
    monkeypatch.setattr(PathColumn, "_BLOCK", 3)
    assert list(PathColumn.from_joined(data)) == names


def test_the_bulk_check_reads_a_column_in_place():
    check_all_relative(PathColumn.from_paths(NAMES))
    for bad in ("../x.png", "a/NUL.png", "c:x.png", "a./b.png", "/abs.png", "a\\b.png"):
        with pytest.raises(UnsafePathError, match="leaves the dataset root"):
            check_all_relative(PathColumn.from_paths([*NAMES, bad]))


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    """A packed manifest (every column packed) of a PSII experiment with holes."""
    monkeypatch.setattr(model, "PACK_ABOVE", 10)
    images = tmp_path / "images"
    make_psii_experiment(
        images, plants=5, nights=2, steps=2, frames=3, shape=(6, 8), holes=3, seed=4
    )
    scanned = imagezarr.scan(images, **PSII_SCAN)
    out = scanned.save(tmp_path / "exp.imagezarr.json")
    return scanned, out


def _expected_paths(scanned: imagezarr.Manifest) -> np.ndarray:
    table = np.array([*scanned.files.paths, ""], dtype=object)
    return table[scanned.nodes[0].file_index]


def test_a_packed_manifest_loads_paths_packed_and_saves_them_back_unchanged(experiment, tmp_path):
    scanned, out = experiment
    assert isinstance(json.loads(out.read_text())["files"]["path"], str)
    loaded = imagezarr.load_manifest(out)
    assert isinstance(loaded.files.paths, PathColumn)
    assert loaded.files.paths == list(scanned.files.paths)
    assert loaded.files == scanned.files
    again = loaded.save(tmp_path / "again.imagezarr.json")
    a, b = json.loads(out.read_text()), json.loads(again.read_text())
    assert a["files"] == b["files"]
    assert a["groups"] == b["groups"]
    # the manifest's methods take the column as they took a list
    assert imagezarr.open_manifest(loaded).location(0).endswith(scanned.files.paths[0])
    less = loaded.without([scanned.files.paths[1]])
    assert len(less.files) == len(scanned.files) - 1
    assert scanned.files.paths[1] not in less.files.paths


@pytest.mark.parametrize("chunk", [1, 5, 7, 10**6])
def test_the_path_coordinate_is_chunked_and_reads_the_same(experiment, monkeypatch, chunk):
    scanned, out = experiment
    monkeypatch.setattr(hierarchy_metadata, "PATH_CHUNK", chunk)
    expected = _expected_paths(scanned)
    assert ((expected == "") == (scanned.nodes[0].file_index < 0)).all()
    assert (expected == "").any()
    ds = imagezarr.open_dataset(out)
    assert ds.path.values.astype(object).tolist() == expected.tolist()
    group = imagezarr.open_group(out)
    shape = group["path"].shape
    assert group["path"].chunks == hierarchy.path_chunk_shape(shape, chunk)
    assert group["path"][1, 0, 1, 2] == expected[1, 0, 1, 2]
    # one element read alone comes from its own chunk
    sel = ds.path.isel(barcode=-1, night=-1, param=-1, frame=-1).values
    assert str(sel) == expected[-1, -1, -1, -1]


@pytest.mark.parametrize(
    ("fmt", "name", "version"),
    [("zarr", "copy.zarr", 3), ("kerchunk", "refs.json", 3), ("kerchunk", "refs.json", 2)],
)
def test_exports_carry_a_chunked_path_coordinate(
    experiment, monkeypatch, tmp_path, fmt, name, version
):
    scanned, out = experiment
    monkeypatch.setattr(hierarchy_metadata, "PATH_CHUNK", 7)
    options = {"zarr_format": version} if fmt == "kerchunk" else {}
    target = export(out, fmt, tmp_path / "out" / name, **options)
    if fmt == "zarr":
        got = xr.open_zarr(target, consolidated=False, decode_times=False)
    else:
        import imagecodecs.numcodecs

        imagecodecs.numcodecs.register_codecs(verbose=False)
        store = zarr.storage.FsspecStore.from_url(
            "reference://", storage_options={"fo": str(target)}, read_only=True
        )
        got = xr.open_zarr(store, consolidated=False, zarr_format=version, decode_times=False)
    assert got.path.values.astype(object).tolist() == _expected_paths(scanned).tolist()


def test_path_chunk_shape_keeps_whole_trailing_dims():
    assert hierarchy.path_chunk_shape((10, 50, 4, 5), 1000) == (1, 50, 4, 5)
    assert hierarchy.path_chunk_shape((10, 50, 4, 5), 999) == (1, 49, 4, 5)
    assert hierarchy.path_chunk_shape((10, 50, 4, 5), 10) == (1, 1, 2, 5)
    assert hierarchy.path_chunk_shape((10_000_000,), 2**20) == (2**20,)
    assert hierarchy.path_chunk_shape((3,), 1) == (1,)
    for shape in [(7, 3), (2, 9, 4), (1,)]:
        for target in (1, 2, 5, 100):
            chunks = hierarchy.path_chunk_shape(shape, target)
            assert all(1 <= c <= s for c, s in zip(chunks, shape, strict=True))
            assert int(np.prod(chunks)) <= max(target, 1) or chunks.count(1) >= len(shape) - 1


@pytest.mark.parametrize(
    ("joined", "error"),
    [
        (b"a.png\x00\xff.png", "files.path is not UTF-8"),
        (b"a.png\x00\xed\xa0\x80.png", "files.path is not UTF-8"),  # a lone surrogate
        (b"a.png\x00b.png\x00c.png", "files columns differ in length"),
        (b"a.png\x00../b.png", "leaves the dataset root"),
        (b"a.png\x00c:b.png", "leaves the dataset root"),
    ],
)
def test_a_hostile_packed_path_column_is_refused(experiment, tmp_path, joined, error):
    _, out = experiment
    doc = json.loads(out.read_text())
    files = doc["files"]
    files.update(count=2, path=model._pack(joined))
    for key in ("size", "mtime_ns"):
        files[key] = model._ints_json(np.arange(2, dtype=np.int64))
    files.pop("checksum", None)
    doc["groups"][0]["chunks"] = [0, 1] + [-1] * (np.prod(doc["groups"][0]["shape"]) - 2)
    bad = tmp_path / "bad.imagezarr.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(imagezarr.errors.ManifestError, match=error):
        imagezarr.load_manifest(bad)


def test_a_packed_column_with_non_ascii_paths_round_trips(tmp_path, monkeypatch):
    monkeypatch.setattr(model, "PACK_ABOVE", 2)
    from imagezarr.testing import psii_image, write_image

    images = tmp_path / "Versuch Größe"
    names = [f"Tag {d}/Pflanze-ä{p}.png" for d in (1, 2) for p in (1, 2, 3)]
    for k, name in enumerate(names):
        write_image(images / name, psii_image((4, 6), plant=k, step=0, frame=1, seed=k))
    m = imagezarr.scan(images, pattern=r"Tag (?P<day>\d)/Pflanze-ä(?P<plant>\d)\.png")
    out = m.save(tmp_path / "m.imagezarr.json")
    loaded = imagezarr.load_manifest(out)
    assert isinstance(loaded.files.paths, PathColumn)
    assert list(loaded.files.paths) == sorted(names)
    ds = imagezarr.open_dataset(out)
    assert set(ds.path.values.ravel().tolist()) == set(names)
