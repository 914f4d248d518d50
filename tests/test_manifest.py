"""Stage 4: the manifest document, its round trip, relocation and refusal of hostile input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr.errors import ManifestError, ManifestVersionError, UnsafePathError
from imagezarr.testing import PSII_SCAN as PSII


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def test_round_trip_preserves_everything(psii, tmp_path):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    out = m.save(tmp_path / "exp.imagezarr.json")
    back = imagezarr.load_manifest(out)
    assert back.to_json() == m.to_json()
    assert back.root == str(images)


def test_root_is_recorded_relative_to_the_manifest(psii, tmp_path):
    images, _ = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "sub" / "exp.imagezarr.json")
    doc = json.loads(out.read_text())
    assert doc["root"] == "../images"
    assert doc["format"] == "imagezarr-manifest"
    assert doc["version"] == 1
    assert doc["layout"]["pattern"] == PSII["pattern"]
    absolute = imagezarr.scan(images, **PSII).save(
        tmp_path / "abs.imagezarr.json", absolute_root=True
    )
    assert json.loads(absolute.read_text())["root"] == str(images)


def test_moving_manifest_with_images_keeps_it_working(psii, tmp_path):
    images, truth = psii
    imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    shutil.move(tmp_path, moved)  # mv keeps mtimes, as a real relocation does
    try:
        ds = imagezarr.open_dataset(moved / "exp.imagezarr.json")
        name = sorted(truth)[0]
        first = ds.image.where(ds.path == name, drop=True).squeeze().values
        np.testing.assert_array_equal(first, imagecodecs.imread(moved / "images" / name))
    finally:
        shutil.move(moved, tmp_path)


def test_re_rooting_onto_a_mirror(psii, tmp_path):
    images, _ = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    mirror = tmp_path / "mirror"
    shutil.copytree(images, mirror)  # copy2 keeps mtimes
    m = imagezarr.load_manifest(out, root=mirror)
    assert m.root == str(mirror)
    assert imagezarr.open_group(m)["image"][0, 0, 0, 0].shape == (12, 16)


def test_scan_and_save_never_write_into_the_source(psii, tmp_path):
    images, _ = psii
    before = snapshot(images)
    m = imagezarr.scan(images, **PSII)
    m.save(tmp_path / "exp.imagezarr.json")
    imagezarr.open_dataset(tmp_path / "exp.imagezarr.json").image.values  # noqa: B018
    assert snapshot(images) == before


def test_save_refuses_the_source_folder_unless_forced(psii):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    with pytest.raises(ManifestError, match="inside the source folder"):
        m.save(images / "exp.imagezarr.json")
    assert not (images / "exp.imagezarr.json").exists()
    m.save(images / "exp.imagezarr.json", force=True)
    assert (images / "exp.imagezarr.json").exists()


def test_save_is_atomic_and_leaves_no_temp_files(psii, tmp_path, monkeypatch):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    out = tmp_path / "exp.imagezarr.json"
    out.write_text("previous")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        m.save(out)
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.imagezarr.json", "images"]


def doc_of(psii, tmp_path) -> tuple[dict, Path]:
    images, _ = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    return json.loads(out.read_text()), out


def test_unknown_version_is_refused(psii, tmp_path):
    doc, out = doc_of(psii, tmp_path)
    doc["version"] = 99
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestVersionError, match="version 99 is not supported"):
        imagezarr.load_manifest(out)


@pytest.mark.parametrize(
    "bad", ["../outside.png", "/etc/passwd", "a/../../b.png", "C:/x.png", "a\\..\\b.png", ""]
)
def test_entries_escaping_the_root_are_refused(psii, tmp_path, bad):
    doc, out = doc_of(psii, tmp_path)
    doc["files"]["path"][0] = bad
    out.write_text(json.dumps(doc))
    with pytest.raises(UnsafePathError, match="leaves the dataset root"):
        imagezarr.load_manifest(out)


def test_outside_entries_load_when_explicitly_allowed(psii, tmp_path):
    doc, out = doc_of(psii, tmp_path)
    doc["files"]["path"][0] = "../elsewhere.png"
    out.write_text(json.dumps(doc))
    m = imagezarr.load_manifest(out, allow_outside_root=True)
    assert m.files[0].path == "../elsewhere.png"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["groups"][0]["chunks"].__setitem__(0, 10**9), "chunk file index"),
        (lambda d: d["groups"][0]["image"].__setitem__("shape", [2**30, 2**30]), "image shape"),
        (lambda d: d["groups"][0]["image"].__setitem__("dtype", "object"), "image dtype"),
        (lambda d: d["groups"][0]["image"].__setitem__("codec", {"name": "evil"}), "codec"),
        (lambda d: d["groups"][0].__setitem__("shape", [1, 1, 1, 1]), "do not fill the shape"),
        (lambda d: d["files"]["size"].__setitem__(0, -1), "negative size"),
        (lambda d: d["files"]["size"].pop(), "files.size: length 239, expected 240"),
        (lambda d: d["files"]["path"].pop(), "files columns differ in length"),
        (lambda d: d["files"]["size"].__setitem__(0, "12"), "values must be integers"),
        (lambda d: d.__setitem__("format", "other"), "not an imagezarr manifest"),
    ],
)
def test_malformed_documents_give_manifest_errors(psii, tmp_path, mutate, message):
    doc, out = doc_of(psii, tmp_path)
    mutate(doc)
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=message):
        imagezarr.load_manifest(out)


def test_not_json_names_the_file(tmp_path):
    p = tmp_path / "x.imagezarr.json"
    p.write_text("{nope")
    with pytest.raises(ManifestError, match=r"x\.imagezarr\.json' is not a JSON manifest"):
        imagezarr.load_manifest(p)


@pytest.fixture
def packed(monkeypatch):
    """Pack every column, as large manifests are, without generating a large dataset."""
    import imagezarr.manifest._model as mod

    monkeypatch.setattr(mod, "PACK_ABOVE", 10)
    return mod


def test_large_tables_are_packed_and_round_trip(psii, tmp_path, packed):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    out = m.save(tmp_path / "exp.imagezarr.json")
    doc = json.loads(out.read_text())
    assert doc["files"]["path"].startswith("zstd:")
    assert doc["groups"][0]["chunks"].startswith("zstd:")
    back = imagezarr.load_manifest(out)
    assert back.files == m.files
    np.testing.assert_array_equal(back.node("").file_index, m.node("").file_index)
    assert back.to_json() == m.to_json()


def test_packed_unsafe_path_is_refused(psii, tmp_path, packed):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    m.files.paths[5] = "../../etc/passwd"
    out = m.save(tmp_path / "exp.imagezarr.json")
    with pytest.raises(UnsafePathError, match=r"'../../etc/passwd' leaves the dataset root"):
        imagezarr.load_manifest(out)


def test_packed_decompression_bomb_is_refused(psii, tmp_path, packed):
    doc, out = doc_of(psii, tmp_path)
    bomb = packed._pack(b"\0" * (8 * 10**6))  # 8 MB of "sizes" for a 240-file table
    doc["files"]["size"] = bomb
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=r"files\.size does not unpack"):
        imagezarr.load_manifest(out)


@pytest.mark.parametrize(
    "bad", ["../x.png", "a/../../x.png", "/abs.png", "C:x.png", "a\\b.png", "", "a/.."]
)
def test_bulk_path_check_agrees_with_the_single_check(bad):
    from imagezarr.paths import check_all_relative, check_relative

    with pytest.raises(UnsafePathError):
        check_relative(bad)
    with pytest.raises(UnsafePathError):
        check_all_relative(["ok/a.png", bad, "ok/b.png"])
    check_all_relative(["ok/a.png", "a..b/c..png", "x/..y.png"])
