"""Stages 1-3 together: discovery rules, scan() options and real PlantCV layouts."""

from __future__ import annotations

import os

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr.discover import discover
from imagezarr.errors import DiscoveryError, InconsistentImagesError, ProbeError
from imagezarr.testing import PSII_SCAN as PSII
from imagezarr.testing import random_image, write_image


def test_discover_recursive_hidden_skipped_case_insensitive(tmp_path):
    for rel in ["a/b/x.PNG", "a/y.jpg", ".hidden.png", "a/.cache/z.png", "notes.txt", "c.Tif"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = [e.path for e in discover(tmp_path, extensions={".png", ".jpg", ".tif"})]
    assert found == ["a/b/x.PNG", "a/y.jpg", "c.Tif"]
    assert [e.path for e in discover(tmp_path, glob="*.png")] == ["a/b/x.PNG"]
    # a glob with a folder goes folder by folder: * stays in a/, ** goes any depth
    assert [e.path for e in discover(tmp_path, glob="a/*")] == ["a/y.jpg"]
    assert [e.path for e in discover(tmp_path, glob="a/**")] == ["a/b/x.PNG", "a/y.jpg"]
    entry = discover(tmp_path, glob="c.tif")[0]
    st = os.stat(tmp_path / "c.Tif")
    assert (entry.size, entry.mtime_ns) == (1, st.st_mtime_ns)


def test_discover_does_not_follow_symlinked_folders(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.png").write_bytes(b"x")
    (tmp_path / "real" / "loop").symlink_to(tmp_path, target_is_directory=True)
    assert [e.path for e in discover(tmp_path, glob="*")] == ["real/a.png"]


def test_file_links_leaving_the_root_are_refused_unless_allowed(tmp_path):
    outside = tmp_path / "elsewhere"
    write_image(outside / "secret.png", random_image((4, 4)))
    root = tmp_path / "root"
    write_image(root / "a.png", random_image((4, 4), seed=1))
    (root / "link.png").symlink_to(outside / "secret.png")
    (root / "inside.png").symlink_to(root / "a.png")  # a link within the root is fine
    with pytest.raises(DiscoveryError, match=r"1 symbolic link\(s\) .* point outside it: 'link"):
        imagezarr.scan(root)
    m = imagezarr.scan(root, allow_outside_root=True)
    assert [f.path for f in m.files] == ["a.png", "inside.png", "link.png"]


def test_missing_folder_and_empty_match_are_clear(tmp_path):
    with pytest.raises(DiscoveryError, match="does not exist or is not a folder"):
        imagezarr.scan(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DiscoveryError, match=r"no files under .* match a known image extension"):
        imagezarr.scan(tmp_path)


def test_unreadable_files_error_or_skip(tmp_path):
    write_image(tmp_path / "ok1.png", random_image((4, 4)))
    write_image(tmp_path / "ok2.png", random_image((4, 4), seed=1))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, not a picture")
    with pytest.raises(ProbeError) as info:
        imagezarr.scan(tmp_path)
    msg = str(info.value)
    assert msg.startswith("2 file(s) are not readable images: empty.png: empty file")
    assert "text.png: not a recognised image" in msg
    m = imagezarr.scan(tmp_path, on_unreadable="skip")
    assert [f.path for f in m.files] == ["ok1.png", "ok2.png"]
    assert m.unreadable == ("empty.png", "text.png")


def test_skip_unmatched_counts_them(psii):
    images, truth = psii
    write_image(images / "calibration.png", random_image((12, 16)))
    m = imagezarr.scan(images, **PSII, on_unmatched="skip")
    assert m.unmatched == 1
    assert len(m.files) == len(truth)


def test_progress_is_reported_until_done(psii):
    images, truth = psii
    calls = []
    imagezarr.scan(images, **PSII, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (len(truth), len(truth))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_mixed_shapes_without_grouping_fail_then_group_by_splits(tmp_path):
    for cam, shape in [("vis", (6, 8, 3)), ("nir", (5, 7))]:
        for f in range(2):
            write_image(tmp_path / f"{cam}_{f}.png", random_image(shape, seed=f))
    pattern = r"(?P<cam>\w+)_(?P<frame>\d)\.png"
    with pytest.raises(InconsistentImagesError, match=r"2 x png \(6, 8, 3\) uint8 \(e.g. 'vis_0"):
        imagezarr.scan(tmp_path, pattern=pattern, types={"frame": "int"})
    m = imagezarr.scan(tmp_path, pattern=pattern, types={"frame": "int"}, group_by="cam")
    assert [(n.path, n.image.shape) for n in m.nodes] == [("nir", (5, 7)), ("vis", (6, 8, 3))]
    vis = imagezarr.open_group(m)["vis/image"][:]
    np.testing.assert_array_equal(vis[1], imagecodecs.imread(tmp_path / "vis_1.png"))


# -- real layouts from PlantCV's own test data ---------------------------------------------


def test_plantcv_lemnatec_snapshot_folders(plantcv_data):
    root = plantcv_data / "snapshot_imgdir"
    m = imagezarr.scan(
        root,
        pattern=r"snapshot(?P<snapshot>\d+)/(?P<camera>[A-Z]+)_(?P<view>[A-Z]+)_(?P<angle>\d+)"
        r"_z(?P<zoom>\d+)_h(?P<lifter>\d+)_g(?P<gain>\d+)_e(?P<exposure>\d+)_(?P<id>\d+)\.jpg",
        types={"snapshot": "int"},
        dims=("snapshot",),
        group_by="camera",
    )
    assert [n.path for n in m.nodes] == ["NIR", "VIS"]
    nir = imagezarr.open_dataset(m, group="NIR")
    assert list(nir.snapshot.values) == [57381, 57382, 57383]
    assert str(nir.exposure.values) == "65"  # constant across snapshots: a scalar coordinate
    for s in nir.snapshot.values:
        path = root / f"snapshot{s}" / "NIR_SV_0_z1_h1_g0_e65_117779.jpg"
        if path.exists():
            got = nir.image.sel(snapshot=s).values
            np.testing.assert_array_equal(got, imagecodecs.imread(path))


def test_plantcv_flat_folder_with_a_3_byte_jpeg(plantcv_data):
    root = plantcv_data / "flat_imgdir"
    with pytest.raises(ProbeError, match=r"VIS_SV_0_z1_h1_g0_e82_999999\.jpeg"):
        imagezarr.scan(root)
    # the two cameras differ in shape: without grouping they cannot share one array
    with pytest.raises(InconsistentImagesError, match=r"1 x jpeg \(2056, 2454, 3\) uint8"):
        imagezarr.scan(root, on_unreadable="skip")
    m = imagezarr.scan(
        root,
        pattern=r"(?P<camera>[A-Z]+)_.*_(?P<id>\d+)\.jpe?g",
        group_by="camera",
        on_unreadable="skip",
    )
    assert m.unreadable == ("VIS_SV_0_z1_h1_g0_e82_999999.jpeg",)
    assert [(n.path, n.image.shape) for n in m.nodes] == [
        ("NIR", (254, 320)),
        ("VIS", (2056, 2454, 3)),
    ]


def test_plantcv_snapshot_dir_lying_pngs_are_named(plantcv_data):
    root = plantcv_data / "snapshot_dir"
    with pytest.raises(ProbeError) as info:
        imagezarr.scan(root)
    assert "NIR_TV_0_z300_h1_g0_e15000_v500_93059.png" in str(info.value)
    assert "VIS_TV_0_z300_h1_g0_e85_v500_93054.png" in str(info.value)
