"""Stage 4: the manifest document, its round trip, relocation and refusal of hostile input."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imagezarr
from imagezarr.cli import main
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


def group(doc: dict) -> dict:
    return doc["groups"][0]


def coords(doc: dict) -> dict:
    return group(doc)["coords"]


def rename(mapping: dict, old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


# each of these loaded before, then crashed (TypeError, KeyError, OverflowError, zarr's and
# xarray's own errors) when the manifest was opened or read; now each names its field
OPENS_ONLY_IF_VALID = [
    (lambda d: d["files"]["mtime_ns"].__setitem__(0, 2**63), r"files\.mtime_ns: .*64 bits"),
    (lambda d: d["files"]["size"].__setitem__(0, 2**64), r"files\.size: .*64 bits"),
    (lambda d: group(d)["dims"].__setitem__(0, ["a"]), r"dim \['a'\] is not a string"),
    (lambda d: coords(d)["frame"].__setitem__("dims", [["a"]]), r"'frame': dims .* not distinct"),
    (lambda d: group(d)["image"].__setitem__("codec", {"name": "imagecodecs_zstd"}), "codec"),
    (lambda d: group(d)["image"].__setitem__("codec", {"name": "imagecodecs_nope"}), "codec"),
    (
        lambda d: group(d)["image"].__setitem__("codec", {"name": "imagecodecs_tiff"}),
        "is not the png codec",
    ),
    (lambda d: group(d).__setitem__("path", ".."), r"group path '\.\.'"),
    (lambda d: group(d).__setitem__("path", "a//b"), r"group path 'a//b': part ''"),
    (lambda d: group(d).__setitem__("path", "/a"), r"group path '/a': part ''"),
    (
        lambda d: d["groups"].append({**group(d), "path": "image/x"}),
        "group 'image/x' collides with array 'image' of group ''",
    ),
    (
        lambda d: d["groups"].append({**group(d), "path": "timestamp"}),
        "collides with array 'timestamp'",
    ),
    (lambda d: d["groups"].append(group(d)), "two groups have the same path"),
    (lambda d: rename(coords(d), "timestamp", ".."), r"coordinate name '\.\.'"),
    (lambda d: rename(coords(d), "timestamp", "a/b"), "coordinate name 'a/b'"),
    (lambda d: rename(coords(d), "timestamp", ""), "coordinate name ''"),
    (lambda d: rename(coords(d), "timestamp", "image"), "'image': the name is reserved"),
    (lambda d: rename(coords(d), "timestamp", "y"), "'y': the name is reserved"),
    (lambda d: rename(coords(d), "timestamp", "night"), "named after a dim must lie along"),
    (lambda d: group(d)["dims"].__setitem__(0, "image"), "dim 'image' is reserved"),
    (lambda d: group(d)["dims"].__setitem__(0, "present"), "dim 'present' is reserved"),
    (lambda d: group(d)["dims"].__setitem__(0, "y"), "dim 'y' is reserved"),
    (lambda d: group(d)["dims"].__setitem__(1, "barcode"), "repeat a name"),
    (lambda d: coords(d)["frame"]["values"].__setitem__(0, 2**70), "does not fit in 64 bits"),
    (
        lambda d: coords(d)["frame"].update(kind="float", values=[10**400, 2, 3]),
        "not a finite number",
    ),
    (lambda d: coords(d)["frame"]["values"].__setitem__(0, math.nan), "nan is not a finite"),
    (lambda d: coords(d)["frame"]["values"].__setitem__(0, math.inf), "inf is not a finite"),
    (
        lambda d: coords(d)["timestamp"]["values"].__setitem__(0, "0001-01-01T00:00:00"),
        "outside the years 1678 to 2261",
    ),
    (
        lambda d: coords(d)["timestamp"]["values"].__setitem__(0, "2262-04-12T00:00:00"),
        "outside the years",
    ),
    (
        lambda d: coords(d)["timestamp"]["values"].__setitem__(0, "2020-06-01T00:00:00+02:00"),
        "mixes times with and without a UTC offset",
    ),
    (lambda d: coords(d)["barcode"]["values"].__setitem__(0, "A\udc80"), "lone surrogate"),
    (lambda d: group(d).__setitem__("attrs", {"a": math.nan}), r"groups: \[0\]\.attrs\.a"),
    (lambda d: group(d)["image"].__setitem__("axes", "yz"), "axes 'yz' do not fit"),
    (lambda d: group(d)["image"].__setitem__("shape", [2, 12, 16, 3]), "axes '' do not fit"),
    (lambda d: group(d)["image"].__setitem__("palette", ["x"]), "palette has a wrong type"),
    (lambda d: group(d)["image"].__setitem__("palette", "Z" * 65), "palette 'ZZZ"),
    (lambda d: group(d)["image"].__setitem__("shape", [True, 16]), "image shape"),
    (lambda d: d.__setitem__("unreadable", [1, 2]), "unreadable must hold strings"),
    (lambda d: d.__setitem__("unmatched", -5), "unmatched -5 is out of range"),
    (lambda d: d.__setitem__("created", 5), "created has a wrong type"),
    (lambda d: d.__setitem__("root", "images\x00"), "root holds a NUL"),
]


@pytest.mark.parametrize(("mutate", "message"), OPENS_ONLY_IF_VALID)
def test_what_would_not_open_is_refused_on_load(psii, tmp_path, mutate, message):
    doc, out = doc_of(psii, tmp_path)
    mutate(doc)
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=r"exp\.imagezarr\.json: invalid manifest: ") as e:
        imagezarr.load_manifest(out)
    assert re.search(message, str(e.value)), str(e.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"bogus": 1}, r"configuration \['bogus'\] is not accepted"),
        ({"numthreads": 9}, r"configuration \['numthreads'\] is not accepted"),
    ],
)
def test_codecs_zarr_could_not_build_are_refused_on_open(psii, tmp_path, config, message):
    """Loading reads the document only (``imagezarr info`` never imports zarr); opening
    builds the codecs as zarr will, and refuses before any pixel is read."""
    doc, out = doc_of(psii, tmp_path)
    group(doc)["image"]["codec"]["configuration"] = config
    out.write_text(json.dumps(doc))
    m = imagezarr.load_manifest(out)
    from imagezarr.export import export

    def exported(m):
        return export(m, "kerchunk", tmp_path / "refs.json")

    for opening in (imagezarr.open_store, imagezarr.open_dataset, imagezarr.verify, exported):
        with pytest.raises(ManifestError, match=rf"invalid manifest: .*{message}"):
            opening(m)
    assert main(["info", str(out)]) == 0
    assert main(["verify", str(out)]) == 1


def test_documents_built_in_memory_must_be_plain_json(psii, tmp_path):
    doc, _ = doc_of(psii, tmp_path)
    doc["created"] = object()
    with pytest.raises(ManifestError, match="created: a object is not a JSON value"):
        imagezarr.manifest.from_json(doc, base=tmp_path)
    doc["created"] = ""
    group(doc)["attrs"] = {"loop": group(doc)}  # a document that contains itself
    with pytest.raises(ManifestError, match="contains itself"):
        imagezarr.manifest.from_json(doc, base=tmp_path)
    group(doc)["attrs"] = {1: "x"}  # json.dumps would quietly turn the key into "1"
    with pytest.raises(ManifestError, match="attrs keys must be strings"):
        imagezarr.manifest.from_json(doc, base=tmp_path)


def test_a_version_that_only_equals_one_is_not_version_one(psii, tmp_path):
    doc, out = doc_of(psii, tmp_path)
    doc["version"] = True  # True == 1 in Python
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestVersionError, match="version True"):
        imagezarr.load_manifest(out)


def test_a_codec_configuration_the_codec_accepts_opens(psii, tmp_path):
    doc, out = doc_of(psii, tmp_path)
    group(doc)["image"]["codec"]["configuration"] = {"level": 3}
    out.write_text(json.dumps(doc))
    ds = imagezarr.open_dataset(out)
    assert ds.image[0, 0, 0, 0].shape == (12, 16)


def test_the_earliest_and_latest_times_xarray_decodes_load_and_open(psii, tmp_path):
    doc, out = doc_of(psii, tmp_path)
    values = coords(doc)["timestamp"]["values"]
    values[:2] = ["1678-01-01T00:00:00", "2261-12-31T23:59:59.999999"]
    out.write_text(json.dumps(doc))
    ds = imagezarr.open_dataset(out)
    assert str(ds.timestamp.values[0, 0, 0])[:4] == "1678"


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


def test_a_lying_frame_is_refused_before_anything_is_allocated(psii, tmp_path, packed):
    doc, out = doc_of(psii, tmp_path)
    # a zstd frame header declaring 2**40 bytes (8-byte size field), and nothing behind it
    header = b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + (2**40).to_bytes(8, "little")
    doc["files"]["path"] = "zstd:" + base64.b64encode(header).decode()
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=r"files\.path does not unpack: it declares 1099"):
        imagezarr.load_manifest(out)


def test_packed_columns_allocate_what_they_hold_not_a_bound(psii, tmp_path, packed, monkeypatch):
    """Unpacking used to allocate ``count * 4096`` bytes for the paths (40 GB for ten million
    files); now the frame's declared size, checked against that bound, is all it asks for."""
    import imagezarr.manifest._load as load

    images, _ = psii
    out = imagezarr.scan(images, **PSII, checksum=True).save(tmp_path / "exp.imagezarr.json")
    asked: list[tuple[int, int]] = []
    decode = imagecodecs.zstd_decode

    def spy(data, out=None):
        got = decode(data, out=out)
        asked.append((out if isinstance(out, int) else len(out), len(got)))
        return got

    monkeypatch.setattr(load.imagecodecs, "zstd_decode", spy)
    imagezarr.load_manifest(out)
    assert len(asked) == 5  # paths, sizes, mtimes, checksums and the chunk grid
    assert all(wanted == got for wanted, got in asked), asked


@pytest.mark.parametrize("size", [0, 1, 255, 256, 300, 65791, 70_000, 2**20])
def test_the_declared_size_of_a_zstd_frame_is_read_from_its_header(size):
    from imagezarr.manifest._values import zstd_content_size

    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert zstd_content_size(imagecodecs.zstd_encode(data, level=9)) == size
    assert zstd_content_size(b"not zstd") is None


SCALE = int(os.environ.get("IMAGEZARR_MANIFEST_FILES", "1000000"))


def test_a_manifest_of_a_million_files_saves_and_loads(tmp_path):
    """IMAGEZARR_MANIFEST_FILES=10000000 runs ten million files: a 36 MB manifest that
    loads in about 4 s of CPU and 2 GB peak RSS (the whole test: 20-40 s)."""
    from imagezarr.testing import synthetic_manifest

    m = synthetic_manifest(plants=SCALE // 1000, days=50, steps=4, frames=5)
    out = m.save(tmp_path / "big.imagezarr.json")
    back = imagezarr.load_manifest(out)
    assert len(back.files) == SCALE
    assert back.files.paths[-1] == m.files.paths[-1]
    np.testing.assert_array_equal(back.files.sizes, m.files.sizes)
    np.testing.assert_array_equal(back.node("").file_index, m.node("").file_index)


WINDOWS_UNSAFE = [
    "sub/D:/x.png",  # ntpath.join(root, "sub", "D:", "x.png") is "D:x.png"
    "a/D:x.png",
    "C:x.png",
    "a/b:stream.png",
    "NUL.png",
    "nul",
    "com1.tif",
    "x/LPT9.jpg",
    "Con .png",
    "x/aux.tar.gz",
    "CONIN$",
    "conout$.txt",
    "COM\N{SUPERSCRIPT ONE}.png",
    "a./b.png",
    "a/b.png.",
    "a /b.png",
    "a/b.png ",
    "...",
    "a\\b.png",
]
WINDOWS_SAFE = ["control/x.png", "conifer/COM0.png", "LPT10.png", "nul_1.png", "a.b/c.d", "x y/z"]


@pytest.mark.parametrize(
    "bad",
    ["../x.png", "a/../../x.png", "/abs.png", "C:x.png", "a\\b.png", "", "a/..", *WINDOWS_UNSAFE],
)
def test_bulk_path_check_agrees_with_the_single_check(bad):
    from imagezarr.paths import check_all_relative, check_relative

    with pytest.raises(UnsafePathError):
        check_relative(bad)
    with pytest.raises(UnsafePathError, match=re.escape(repr(bad))):
        check_all_relative(["ok/a.png", bad, "ok/b.png"])
    check_all_relative(["ok/a.png", "a..b/c..png", "x/..y.png", "a//b.png", "./c", *WINDOWS_SAFE])


@pytest.mark.parametrize("bad", WINDOWS_UNSAFE)
def test_windows_unsafe_entries_are_refused_listed_and_packed(psii, tmp_path, bad, monkeypatch):
    doc, out = doc_of(psii, tmp_path)
    doc["files"]["path"][3] = bad
    out.write_text(json.dumps(doc))
    with pytest.raises(UnsafePathError, match="unsafe on Windows"):
        imagezarr.load_manifest(out)
    import imagezarr.manifest._model as mod

    monkeypatch.setattr(mod, "PACK_ABOVE", 10)
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    m.files.paths[3] = bad
    out = m.save(tmp_path / "packed.imagezarr.json")
    with pytest.raises(UnsafePathError, match=re.escape(repr(bad))):
        imagezarr.load_manifest(out)


PIECES = st.sampled_from(
    [
        *("a", "b.png", ".", "..", "...", " ", ":", "C:", "D", "\\", "/", "//", "x.", "y "),
        *("CON", "con", "Nul", "aux", "PRN", "COM1", "lpt9", "COM\N{SUPERSCRIPT TWO}", "CONIN$"),
        *("conout$", "CON\N{LATIN SMALL LETTER DOTLESS I}N$", ".png", ".tar.gz", "COM", "é"),
        "LPT0",
    ]
)


@settings(max_examples=3000, derandomize=True, deadline=None, database=None)
@given(pieces=st.lists(PIECES, min_size=1, max_size=8))
def test_accepted_entries_stay_inside_the_root_on_windows(pieces):
    """Whatever the check accepts, Windows joins inside the root, to no device or stream; and
    the bulk check accepts exactly what the single one does."""
    import ntpath

    from imagezarr.paths import check_all_relative, check_relative

    entry = "".join(pieces)
    try:
        check_relative(entry)
    except UnsafePathError:
        with pytest.raises(UnsafePathError):
            check_all_relative(["ok.png", entry])
        return
    check_all_relative(["ok.png", entry])
    root = "C:\\data\\root"
    joined = ntpath.normpath(ntpath.join(root, *entry.split("/")))
    assert joined == root or joined.startswith(root + "\\"), (entry, joined)
    assert ntpath.splitdrive(joined)[0] == "C:"
    for part in entry.split("/"):
        # ntpath.isreserved (3.13) also reserves "*?<>|" and control characters, which are
        # not in PIECES: what it reserves here is a device, a stream or a dropped dot/space
        assert part in ("", ".") or not ntpath.isreserved(part), (entry, part)
