"""Never a wrong pixel, never a hang: each reproducer from the trust issue as a test.

Every image is generated here; each test names what used to happen on the old main.
"""

from __future__ import annotations

import json
import ntpath
import os
import stat
import sys
import time
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr.errors import ChunkDecodeError, ChunkReadError, ManifestError, SourceChangedError
from imagezarr.manifest import from_json
from imagezarr.roots import LocalRoot, _local, _write, same_time
from imagezarr.testing import PSII_SCAN, make_psii_experiment
from imagezarr.verify import verify

posix_only = pytest.mark.skipif(os.name == "nt", reason="FIFOs and /dev/zero are POSIX")


@pytest.fixture
def exp(tmp_path: Path) -> tuple[Path, imagezarr.Manifest]:
    images = tmp_path / "img"
    make_psii_experiment(images, plants=2, nights=1, steps=1, frames=2, shape=(12, 16), holes=0)
    return images, imagezarr.scan(images, **PSII_SCAN)


def first(m: imagezarr.Manifest) -> tuple[tuple[int, ...], str]:
    node = m.node("")
    idx = tuple(int(i) for i in np.argwhere(node.file_index >= 0)[0])
    return idx, m.files.paths[node.file_index[idx]]


def read_first(m: imagezarr.Manifest, **kw: object) -> np.ndarray:
    idx, _ = first(m)
    return imagezarr.open_group(m, **kw)["image"][idx]


# -- decoded is declared ---------------------------------------------------------------------


def tampered(m: imagezarr.Manifest, base: Path, **image: object) -> imagezarr.Manifest:
    doc = m.to_json()
    doc["groups"][0]["image"].update(image)
    return from_json(json.loads(json.dumps(doc)), base=base)


def test_declared_int8_for_uint8_files_is_an_error_not_a_cast(exp, tmp_path):
    _, m = exp
    bad = tampered(m, tmp_path, dtype="int8")
    _, path = first(m)
    with pytest.raises(ChunkDecodeError, match=rf"{path}: .*decoded \(12, 16\) uint8, declared"):
        read_first(bad)


def test_transposed_shape_is_an_error_not_a_reshape(exp, tmp_path):
    _, m = exp
    bad = tampered(m, tmp_path, shape=[16, 12])
    _, path = first(m)
    with pytest.raises(ChunkDecodeError, match=r"decoded \(12, 16\) uint8, declared \(16, 12\)"):
        read_first(bad)
    with pytest.raises(ChunkDecodeError) as info:
        read_first(bad)
    assert info.value.path == path
    assert "refusing to reshape or cast" in str(info.value)


def test_a_replaced_image_of_another_size_is_refused_even_unchecked(exp):
    images, m = exp
    _, path = first(m)
    # same byte count is unlikely; with check="none" the decoder's own shape is the last guard
    (images / path).write_bytes(imagecodecs.png_encode(np.zeros((16, 12), np.uint8)))
    with pytest.raises(ChunkDecodeError, match="declared"):
        read_first(m, check="none")


# -- reads that cannot be fooled or hung -------------------------------------------------------


@posix_only
def test_a_fifo_in_place_of_an_image_fails_at_once(exp):
    images, m = exp
    _, path = first(m)
    (images / path).unlink()
    os.mkfifo(images / path)
    start = time.monotonic()
    with pytest.raises(ChunkReadError, match=rf"{path}: cannot read: not a regular file"):
        read_first(m)
    assert time.monotonic() - start < 5  # it used to block forever


@posix_only
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_link_to_dev_zero_is_refused_without_reading(exp):
    images, m = exp
    _, path = first(m)
    (images / path).unlink()
    (images / path).symlink_to("/dev/zero")
    # allow_outside_root: the device check itself must refuse it (it used to read 2.4 GiB)
    with pytest.raises(ChunkReadError, match="not a regular file"):
        read_first(m, allow_outside_root=True)


def test_a_huge_file_is_not_read_beyond_its_recorded_size(exp):
    images, m = exp
    _, path = first(m)
    target = images / path
    with open(target, "r+b") as f:  # sparse: 2 GiB on paper, nothing on disk
        f.truncate(2**31)
    data, st = LocalRoot(str(images)).read(path, limit=m.files[0].size)
    assert len(data) == m.files[0].size + 1
    assert st.size == 2**31
    with pytest.raises(SourceChangedError, match=r"size: manifest \d+ bytes, now 2147483648"):
        read_first(m)


def test_a_folder_swapped_for_a_link_outside_the_root_is_refused(exp, tmp_path):
    images, m = exp
    _, path = first(m)
    folder = path.split("/")[0]
    # the look-alike copy keeps size and mtime, so only the real path gives it away
    outside = tmp_path / "elsewhere"
    (images / folder).rename(outside)
    (images / folder).symlink_to(outside, target_is_directory=True)
    with pytest.raises(ChunkReadError, match="outside the root"):
        read_first(m)
    assert read_first(m, allow_outside_root=True).shape == (12, 16)
    report = verify(m)
    assert {p.kind for p in report.problems} == {"unreadable"}
    assert "outside the root" in report.problems[0].detail


def test_a_rewrite_racing_the_read_is_refused(exp, monkeypatch):
    images, m = exp
    _, path = first(m)
    target = images / path
    real_read = _local._read_all

    def racing(fd: int, limit: int) -> bytes:
        data = real_read(fd, limit)
        st = target.stat()  # a writer rewrites the file in place while we read
        target.write_bytes(b"\0" * st.st_size)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        return data

    monkeypatch.setattr(_local, "_read_all", racing)
    with pytest.raises(SourceChangedError, match="changed while it was read"):
        read_first(m)


def test_same_size_and_restored_mtime_is_seen_only_by_checksums(tmp_path):
    images = tmp_path / "img"
    truth = make_psii_experiment(
        images, plants=1, nights=1, steps=1, frames=2, shape=(12, 16), holes=0
    )
    m = imagezarr.scan(images, **PSII_SCAN, checksum=True)
    assert all(c.startswith("xxh3:") for c in m.files.checksums)
    _, path = first(m)
    target = images / path
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF  # a byte of the last IDAT chunk: same size, other content
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    # the documented limit: size + mtime cannot see it
    assert verify(m).ok
    with pytest.raises(SourceChangedError, match=r"content: checksum xxh3:\w+ in the manifest"):
        read_first(m, check="checksum")
    report = verify(m, check="checksum")
    assert [(p.path, p.kind) for p in report.problems] == [(path, "changed")]
    assert truth  # the other file still reads
    saved = m.save(tmp_path / "m.imagezarr.json")
    assert imagezarr.load_manifest(saved).files.checksums == m.files.checksums


def test_checksum_check_without_recorded_checksums_says_how(exp):
    _, m = exp
    with pytest.raises(SourceChangedError, match="re-scan with --checksum"):
        read_first(m, check="checksum")


# -- time checks that fit real file systems ----------------------------------------------------


def test_fat_and_exfat_times_count_as_the_same(exp):
    images, m = exp
    idx, path = first(m)
    recorded = m.files[m.node("").file_index[idx]].mtime_ns
    fat = (recorded // 2_000_000_000 + 1) * 2_000_000_000  # FAT rounds to 2 s
    os.utime(images / path, ns=(fat, fat))
    assert read_first(m).shape == (12, 16)
    assert same_time(recorded, (recorded // 10**7) * 10**7)  # exFAT: 10 ms
    assert not same_time(recorded, recorded + 3 * 10**9)


def test_a_copied_folder_gets_one_message_and_a_way_out(exp):
    images, m = exp
    for p in m.files.paths:  # cp without -p: every mtime moves on
        os.utime(images / p, ns=(time.time_ns(), time.time_ns() + 3600 * 10**9))
    report = verify(m)
    assert len(report.problems) == len(m.files)
    assert "looks copied" in report.advice
    assert "--check size" in report.advice
    assert verify(m, check="size").ok
    assert read_first(m, check="size").shape == (12, 16)
    with pytest.raises(SourceChangedError, match="check='size'"):
        read_first(m)


def test_times_before_1970_are_named_in_messages(exp):
    images, m = exp
    _, path = first(m)
    os.utime(images / path, ns=(0, -86_400 * 10**9 * 365))
    with pytest.raises(SourceChangedError, match=r"now 1969-01-01 00:00:00 UTC"):
        read_first(m)


def test_update_tells_a_new_time_from_new_content(tmp_path):
    images = tmp_path / "img"
    make_psii_experiment(images, plants=1, nights=1, steps=1, frames=2, shape=(12, 16), holes=0)
    m = imagezarr.scan(images, **PSII_SCAN, checksum=True)
    saved = m.save(tmp_path / "m.imagezarr.json")
    a, b = m.files.paths
    os.utime(images / a, ns=(0, time.time_ns() + 10**10))  # touched only
    data = bytearray((images / b).read_bytes())
    data[-20] ^= 0xFF
    (images / b).write_bytes(bytes(data))
    new, diff = imagezarr.update(saved, check="checksum")
    assert diff.changed == (b,)
    assert diff.retimed == (a,)
    assert new.files.checksums is not None


# -- writes ----------------------------------------------------------------------------------


def test_the_source_guard_compares_real_paths(exp, tmp_path):
    images, m = exp
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(images, target_is_directory=True)
    for where in (tmp_path / "link" / "m.json", tmp_path / "out" / ".." / "img" / "m.json"):
        with pytest.raises(ManifestError, match="inside the source folder"):
            m.save(where)


def test_update_output_inside_the_source_is_refused(exp, tmp_path):
    from imagezarr.cli import main

    images, m = exp
    saved = m.save(tmp_path / "m.imagezarr.json")
    assert main(["update", str(saved), "-q", "-o", str(images / "new.json")]) == 1
    assert not (images / "new.json").exists()
    assert main(["update", str(saved), "-q"]) == 0  # in place needs no --force


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_saved_files_get_the_umask_mode_or_keep_the_old_one(exp, tmp_path):
    _, m = exp
    old = os.umask(0o022)
    try:
        out = m.save(tmp_path / "m.imagezarr.json")
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        out.chmod(0o640)
        m.save(out)
        assert stat.S_IMODE(out.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_a_killed_save_leaves_nothing_behind_next_time(exp, tmp_path):
    _, m = exp
    stale = tmp_path / ".m.imagezarr.json.abc123.tmp"
    stale.write_bytes(b"half a manifest")
    hour_ago = time.time() - 2 * _write.STALE_SECONDS
    os.utime(stale, (hour_ago, hour_ago))
    fresh = tmp_path / ".m.imagezarr.json.def456.tmp"  # maybe a save running right now
    fresh.write_bytes(b"")
    m.save(tmp_path / "m.imagezarr.json")
    assert not stale.exists()
    assert fresh.exists()


def test_the_folder_is_fsynced_after_the_rename(exp, tmp_path, monkeypatch):
    _, m = exp
    synced: list[bool] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    m.save(tmp_path / "m.imagezarr.json")
    assert synced[-1] is True or os.name == "nt"


def test_a_replace_blocked_on_windows_is_retried_then_explained(tmp_path, monkeypatch):
    calls = []

    def blocked(src, dst):
        calls.append(dst)
        raise PermissionError(13, "The process cannot access the file")

    monkeypatch.setattr(_write.os, "name", "nt")
    monkeypatch.setattr(_write.os, "replace", blocked)
    monkeypatch.setattr(_write.time, "sleep", lambda s: None)
    with pytest.raises(PermissionError, match="another program keeps it open"):
        _write.replace_retrying(tmp_path / "a", tmp_path / "b")
    assert len(calls) == 9


# -- Windows path semantics, tested on any system ---------------------------------------------


@pytest.mark.parametrize(
    ("top", "target", "inside"),
    [
        ("C:\\data", "C:\\data\\a.png", True),
        ("C:\\data", "D:\\data\\a.png", False),  # commonpath raises across drives
        ("C:\\data", "C:\\database\\a.png", False),
        ("\\\\srv\\lab\\exp", "\\\\srv\\lab\\exp\\n1\\a.png", True),
        ("\\\\srv\\lab\\exp", "\\\\other\\lab\\exp\\a.png", False),
    ],
)
def test_inside_the_root_under_windows_rules(top, target, inside):
    assert _local._inside(top, target, ntpath) is inside


def test_case_collisions_are_reported_at_scan(tmp_path):
    images = tmp_path / "img"
    images.mkdir()
    png = imagecodecs.png_encode(np.zeros((4, 4), np.uint8))
    (images / "A1.png").write_bytes(png)
    try:
        (images / "a1.png").write_bytes(png)
    except OSError:
        pytest.skip("this file system folds case")
    if len(os.listdir(images)) < 2:
        pytest.skip("this file system folds case")
    with pytest.warns(UserWarning, match=r"differ only in case.*'A1.png', 'a1.png'"):
        imagezarr.scan(images)


@pytest.mark.skipif(sys.platform == "win32", reason="simulates Windows on POSIX")
def test_no_pread_on_windows_reads_the_same(exp, monkeypatch):
    images, m = exp
    want = read_first(m)
    monkeypatch.setattr(_local, "_HAS_PREAD", False)
    monkeypatch.delattr(_local.os, "pread")
    again = imagezarr.scan(images, **PSII_SCAN)
    assert again.files == m.files
    np.testing.assert_array_equal(read_first(again), want)


def test_cli_checksum_round_trip_and_copied_folder_advice(tmp_path, capsys):
    from imagezarr.cli import main

    images = tmp_path / "img"
    make_psii_experiment(images, plants=1, nights=1, steps=1, frames=2, shape=(12, 16), holes=0)
    out = tmp_path / "m.imagezarr.json"
    args = ["--pattern", PSII_SCAN["pattern"], "--type", "timestamp=%Y%m%dT%H%M%S"]
    assert main(["scan", str(images), *args, "--checksum", "-o", str(out), "-q"]) == 0
    target = next(images.rglob("*-1.png"))
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert main(["verify", str(out), "-q"]) == 0  # size + mtime cannot see it
    capsys.readouterr()
    assert main(["verify", str(out), "-q", "--checksum"]) == 1
    assert "content: checksum" in capsys.readouterr().out
    for p in images.rglob("*.png"):
        os.utime(p, ns=(0, time.time_ns() + 10**12))
    assert main(["verify", str(out), "-q"]) == 1
    printed = capsys.readouterr().out
    assert "looks copied" in printed
    assert "--check size" in printed


def test_locations_use_the_systems_separator(tmp_path, monkeypatch):
    root = LocalRoot(str(tmp_path))
    assert root.location("night 1/A1.png") == str(tmp_path / "night 1" / "A1.png")
    monkeypatch.setattr(_local.os, "sep", "\\\\")
    assert root.location("night 1/A1.png").endswith("night 1\\\\A1.png")


@pytest.mark.parametrize("name", ["t_12:00.png", "NUL.png", "com1.tif", "dot..png.", "space .png "])
def test_names_windows_cannot_hold_are_refused_at_scan(tmp_path, name):
    images = tmp_path / "img"
    imagezarr.testing.write_image(images / "ok.png", np.zeros((4, 4), np.uint8))
    try:
        (images / name).write_bytes((images / "ok.png").read_bytes())
    except OSError:
        pytest.skip("this file system cannot hold the name either")
    with pytest.raises(imagezarr.DiscoveryError, match=r"cannot be manifest entries: .*rename"):
        imagezarr.scan(images, glob="*")
