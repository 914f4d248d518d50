"""Hostile or odd input: manifests that try to read elsewhere or allocate without bound, odd
keys and names. Each case comes from a review finding and must fail loudly, naming the cause."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import numpy as np
import pytest

import imagezarr
from imagezarr.errors import DiscoveryError, LayoutError, ManifestError, UnsafePathError
from imagezarr.manifest import from_json
from imagezarr.manifest._load import _resolve_root
from imagezarr.testing import PSII_SCAN as PSII
from imagezarr.testing import random_image, write_image


def saved_doc(psii, tmp_path):
    images, _ = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    return json.loads(out.read_text()), out


@pytest.mark.parametrize(
    ("recorded", "base"),
    [
        ("https://other.example/images", "https://host.example/m"),
        ("s3://other-bucket/images", "s3://lab/manifests"),
        ("HTTPS://OTHER.example/x", "https://host.example/m"),
    ],
)
def test_a_remote_manifest_cannot_point_at_another_host(recorded, base):
    with pytest.raises(UnsafePathError, match=r"leaves .*where the manifest lives"):
        _resolve_root(recorded, base, "m.json", allow_outside=False)
    # an explicit opt-in is honoured
    assert _resolve_root(recorded, base, "m.json", allow_outside=True)


def test_a_remote_manifest_may_point_inside_its_own_bucket():
    assert _resolve_root("../images", "s3://lab/manifests", "m", False) == "s3://lab/images"
    assert _resolve_root("s3://lab/exp", "s3://lab/m", "m", False) == "s3://lab/exp"
    # relative paths cannot climb out of the host, however many ".." they hold
    got = _resolve_root("../../../evil.example/x", "https://host.example/m", "m", False)
    assert got == "https://host.example/evil.example/x"
    assert _resolve_root("/etc", "s3://lab/manifests", "m", False) == "s3://lab/etc"


def test_a_sparse_grid_bomb_is_refused(psii, tmp_path):
    doc, out = saved_doc(psii, tmp_path)
    doc["groups"][0]["shape"] = [2**28]
    doc["groups"][0]["dims"] = ["barcode"]
    doc["groups"][0]["coords"] = {}
    doc["groups"][0]["chunks"] = "zstd:AAAA"
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match="implausibly sparse"):
        imagezarr.load_manifest(out)


def test_an_image_shape_bomb_is_refused(psii, tmp_path):
    doc, out = saved_doc(psii, tmp_path)
    doc["groups"][0]["image"]["shape"] = [2**20, 2**20, 4]
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match="image shape"):
        imagezarr.load_manifest(out)


def test_a_huge_file_count_is_refused(psii, tmp_path):
    doc, out = saved_doc(psii, tmp_path)
    doc["files"]["count"] = 2**40
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=r"files\.count"):
        imagezarr.load_manifest(out)


def test_bad_coordinate_value_names_manifest_and_coordinate(psii, tmp_path):
    doc, out = saved_doc(psii, tmp_path)
    doc["groups"][0]["coords"]["frame"]["values"][0] = 2.5
    out.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=r"exp\.imagezarr\.json.*coordinate 'frame'.*2\.5"):
        imagezarr.load_manifest(out)


async def test_only_canonical_chunk_keys_exist(psii):
    images, _ = psii
    store = imagezarr.open_store(imagezarr.scan(images, **PSII))
    assert await store.exists("image/c/0/0/0/0/0/0")
    for odd in [
        "image/c/+0/0/0/0/0/0",
        "image/c/00/0/0/0/0/0",
        "image/c/0/-0/0/0/0/0",
        "image/c/0/ 0/0/0/0/0",
        "image/c/0_0/0/0/0/0/0",
    ]:
        assert not await store.exists(odd), odd
    listed = [k async for k in store.list_dir("image/c/+0")]
    assert listed == []


def test_non_utf8_file_names_are_named_not_crashed_on(tmp_path):
    write_image(tmp_path / "ok.png", random_image((4, 4)))
    bad = os.fsencode(tmp_path) + b"/caf\xe9.png"
    with open(bad, "wb") as f:
        f.write((tmp_path / "ok.png").read_bytes())
    with pytest.raises(DiscoveryError, match=r"not valid UTF-8.*caf\\udce9\.png.*rename"):
        imagezarr.scan(tmp_path)


@pytest.mark.parametrize("value", ["zarr.json", ".", ".."])
def test_group_values_that_would_hide_nodes_are_refused(value):
    from imagezarr.layout.arrange import _group_name

    with pytest.raises(LayoutError, match="cannot name a zarr group"):
        _group_name([value])


def test_a_group_named_zarr_json_fails_the_scan_instead_of_vanishing(tmp_path):
    write_image(tmp_path / "img" / "zarr.json_1.png", random_image((4, 4)))
    write_image(tmp_path / "img" / "other_1.png", random_image((4, 4)))
    with pytest.raises(LayoutError, match=r"'zarr\.json' cannot name a zarr group"):
        imagezarr.scan(tmp_path / "img", pattern=r"(?P<g>[\w.]+)_(?P<i>\d)\.png", group_by="g")


def test_timezone_aware_times_are_stored_in_utc_and_sorted(tmp_path):
    for stamp in ["20230101T100000+0200", "20230101T090000+0000", "20230101T093000+0000"]:
        write_image(tmp_path / "img" / f"t_{stamp}.png", random_image((4, 4)))
    m = imagezarr.scan(
        tmp_path / "img", pattern=r"t_(?P<t>[\dT]+[+-]\d{4})\.png", types={"t": "%Y%m%dT%H%M%S%z"}
    )
    ds = imagezarr.open_dataset(m)
    got = [str(v)[:19] for v in ds.t.values]
    assert got == ["2023-01-01T08:00:00", "2023-01-01T09:00:00", "2023-01-01T09:30:00"]
    assert str(ds.path.values[0]) == "t_20230101T100000+0200.png"
    assert datetime(2023, 1, 1, 8, tzinfo=UTC) == m.node("").coords["t"].values[0]


def test_mixed_int_and_float_field_becomes_float_and_round_trips(tmp_path):
    for i, dose in enumerate(["1", "2.5"]):
        write_image(tmp_path / "img" / f"d{i}_{dose}.png", random_image((4, 4), seed=i))
    m = imagezarr.scan(
        tmp_path / "img",
        pattern=r"d(?P<i>\d)_(?P<dose>[\d.]+)\.png",
        types={"i": "int"},
        dims=["i"],
        derived={"dose_n": lambda f: float(f["dose"]) if "." in f["dose"] else int(f["dose"])},
    )
    coord = m.node("").coords["dose_n"]
    assert coord.kind == "float"
    ds = imagezarr.open_dataset(m)
    np.testing.assert_array_equal(ds.dose_n.values, [1.0, 2.5])
    out = m.save(tmp_path / "m.imagezarr.json")
    assert from_json(json.loads(out.read_text()), base=tmp_path).node("").coords["dose_n"].kind


def test_mixed_str_and_int_field_is_a_clear_error(tmp_path):
    for i, v in enumerate(["1", "x"]):
        write_image(tmp_path / "img" / f"d{i}_{v}.png", random_image((4, 4), seed=i))
    with pytest.raises(LayoutError, match=r"field 'v' mixes value kinds \['int', 'str'\]"):
        imagezarr.scan(
            tmp_path / "img",
            pattern=r"d(?P<i>\d)_(?P<raw>\w)\.png",
            types={"i": "int"},
            dims=["v"],
            derived={"v": lambda f: int(f["raw"]) if f["raw"].isdigit() else f["raw"]},
        )


def test_gifs_with_different_palettes_do_not_share_an_array(tmp_path):
    from PIL import Image

    indices = np.array([[0, 0, 1, 1], [1, 1, 0, 0]], np.uint8)
    for i, palette in enumerate([[255, 0, 0, 0, 0, 255], [0, 0, 255, 255, 0, 0]]):
        img = Image.fromarray(indices, mode="P")
        img.putpalette(palette + [0] * (768 - len(palette)))
        img.save(tmp_path / f"g{i}.gif")
    from imagezarr.errors import InconsistentImagesError

    with pytest.raises(InconsistentImagesError, match=r"1 x gif \(2, 4\) uint8"):
        imagezarr.scan(tmp_path, pattern=r"g(?P<i>\d)\.gif", types={"i": "int"})
    # the same palette stacks fine
    m = imagezarr.scan(tmp_path, glob="g0.gif")
    assert m.node("").image.palette


def test_wide_tiff_dtypes_survive_a_manifest_round_trip(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    for dtype in ["float16", "int64", "uint64", "complex64"]:
        folder = tmp_path / dtype
        folder.mkdir()
        pixels = (np.arange(12).reshape(3, 4) + 1).astype(dtype)
        tifffile.imwrite(folder / "a.tif", pixels)
        out = imagezarr.scan(folder).save(tmp_path / f"{dtype}.imagezarr.json")
        ds = imagezarr.open_dataset(out)
        assert ds.image.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ds.image.values[0], pixels)
