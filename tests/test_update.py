"""Re-scanning with a manifest's recorded layout, from Python and the CLI."""

from __future__ import annotations

import dataclasses
import json
import uuid

import numpy as np
import pytest

import imagezarr
from imagezarr.cli import main
from imagezarr.testing import PSII_SCAN as PSII
from imagezarr.testing import psii_image, write_image


def test_update_reports_and_applies_changes(psii, tmp_path):
    images, truth = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    names = sorted(truth)
    (images / names[0]).unlink()
    replaced = psii_image((12, 16), plant=9, step=9, frame=9, seed=9)
    write_image(images / names[1], replaced)
    new_name = names[0].replace("-1.png", "-7.png")
    write_image(images / new_name, psii_image((12, 16), plant=1, step=0, frame=7, seed=3))
    new, diff = imagezarr.update(out)
    assert diff.removed == (names[0],)
    assert diff.changed == (names[1],)
    assert diff.added == (new_name,)
    assert diff.unchanged == len(truth) - 2
    assert new.layout.to_json() == imagezarr.load_manifest(out).layout.to_json()
    ds = imagezarr.open_dataset(new)
    assert 7 in ds.frame.values  # the new frame became a label
    hit = np.argwhere(ds.path.values == names[1])[0]
    np.testing.assert_array_equal(ds.image.values[tuple(hit)], replaced)


def test_update_cli_dry_run_then_write(psii, tmp_path, capsys):
    images, truth = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    before = out.read_text()
    (images / sorted(truth)[0]).unlink()
    assert main(["update", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert f"removed  {sorted(truth)[0]}" in text
    assert "0 added, 1 removed, 0 changed" in text
    assert out.read_text() == before
    assert main(["update", str(out), "-q"]) == 0
    assert len(json.loads(out.read_text())["files"]["path"]) == len(truth) - 1
    assert main(["verify", str(out)]) == 0  # the updated manifest matches the folder again


def test_update_needs_callables_again(tmp_path):
    write_image(tmp_path / "img" / "p1_1.png", psii_image((4, 4), plant=1, step=0, frame=1, seed=0))
    m = imagezarr.scan(
        tmp_path / "img",
        pattern=r"p(?P<p>\d)_(?P<f>\d)\.png",
        derived={"plate": lambda f: f"plate{f['p']}"},
    )
    out = m.save(tmp_path / "m.imagezarr.json")
    with pytest.raises(imagezarr.LayoutError, match="provide it again"):
        imagezarr.update(out)
    new, diff = imagezarr.update(out, derived={"plate": lambda f: f"plate{f['p']}"})
    assert not diff.any
    assert new.node("").coords["plate"].values == ("plate1",)


def _count_probes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from imagezarr.probe import _many

    probed: list[str] = []
    real = _many._probe_file

    def counting(root, entry, memo):
        probed.append(entry.path)
        return real(root, entry, memo)

    monkeypatch.setattr(_many, "_probe_file", counting)
    return probed


def test_update_probes_only_new_and_changed_files(psii, tmp_path, monkeypatch):
    images, truth = psii
    m = imagezarr.scan(images, **PSII, checksum=True)
    out = m.save(tmp_path / "exp.imagezarr.json")
    names = sorted(truth)
    new_name = names[0].replace("-1.png", "-7.png")
    write_image(images / new_name, psii_image((12, 16), plant=1, step=0, frame=7, seed=3))
    write_image(images / names[5], psii_image((12, 16), plant=9, step=9, frame=9, seed=9))
    probed = _count_probes(monkeypatch)
    new, diff = imagezarr.update(out)
    assert sorted(probed) == sorted([new_name, names[5]])
    assert diff.added == (new_name,)
    assert diff.changed == (names[5],)
    # checksums: recorded ones kept, new ones computed from the new bytes
    sums = dict(zip(new.files.paths, new.files.checksums, strict=True))
    old = dict(zip(m.files.paths, m.files.checksums, strict=True))
    assert sums[names[1]] == old[names[1]]
    assert sums[names[5]] != old[names[5]]
    assert sums[new_name].startswith("xxh3:")
    # and the result equals a full re-scan
    full = imagezarr.scan(images, layout=new.layout, checksum=True)
    assert full.files == new.files
    assert [n.file_index.tolist() for n in full.nodes] == [n.file_index.tolist() for n in new.nodes]


def test_update_of_a_bucket_probes_only_the_new_object(monkeypatch, tmp_path):
    pytest.importorskip("moto.server")
    from imagezarr.testing import loopback_s3, make_psii_experiment

    images = tmp_path / "img"
    truth = make_psii_experiment(
        images, plants=3, nights=1, steps=2, frames=2, shape=(8, 8), holes=0
    )
    names = sorted(truth)
    prefix = f"update-{uuid.uuid4().hex}"
    with loopback_s3() as s3:
        url = s3.upload(images, names[:-1], prefix)
        m = imagezarr.scan(url, storage_options=s3.options, **PSII)
        out = m.save(tmp_path / "s3.imagezarr.json")
        s3.upload(images, names[-1:], prefix)
        probed = _count_probes(monkeypatch)
        new, diff = imagezarr.update(out, storage_options=s3.options)
    assert probed == [names[-1]]
    assert diff.added == (names[-1],)
    assert len(new.files) == len(names)


def _watching(out, on_change, failures, stop, **options):
    """``imagezarr.watch(out)`` started in a thread, errors collected in ``failures``."""
    import threading

    watcher = threading.Thread(
        target=imagezarr.api.watch,
        args=(out,),
        kwargs={
            "on_change": on_change,
            "on_failure": lambda e: failures.append(str(e)),
            "stop": stop,
            **options,
        },
    )
    watcher.start()
    return watcher


def test_watch_saves_each_change_set_and_stops_cleanly(psii, tmp_path):
    import threading
    import time

    images, truth = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    reader = imagezarr.open_dataset(out)  # opened before: must keep reading as it was
    seen: list[tuple[int, int]] = []
    failures: list[str] = []
    stop = threading.Event()

    def heard(diff, new):
        seen.append((len(diff.added), len(new.files)))
        if len(seen) == 2:
            stop.set()

    before = out.read_bytes()
    # polling: the half-copied file below is met by a round
    watcher = _watching(out, heard, failures, stop, interval=0.05, events=False)
    time.sleep(0.3)
    assert out.read_bytes() == before  # nothing changed: nothing written
    names = sorted(truth)
    for k, frame in enumerate((7, 8)):
        name = names[0].replace("-1.png", f"-{frame}.png")
        if k == 1:  # a file still being copied in: empty for a while, then complete
            (images / name).write_bytes(b"")
            time.sleep(0.3)
        write_image(images / name, psii_image((12, 16), plant=1, step=0, frame=frame, seed=k))
        deadline = time.monotonic() + 20
        while len(seen) <= k and time.monotonic() < deadline:
            time.sleep(0.05)
    watcher.join(timeout=20)
    assert not watcher.is_alive()
    assert seen == [(1, len(truth) + 1), (1, len(truth) + 2)]
    assert any("empty file" in f for f in failures)  # the half-copied file: retried, not fatal
    assert len(imagezarr.load_manifest(out).files) == len(truth) + 2
    assert 7 not in reader.frame.values  # the old reader still sees its own manifest
    assert reader.image.isel(frame=0).values.any()


def test_watch_follows_file_system_events(psii, tmp_path):
    """With events, a new image is taken in long before the (here 120 s) interval, and a
    copy in progress (an empty file, completed 0.2 s later) is taken in once complete."""
    import threading
    import time

    pytest.importorskip("watchfiles")
    images, truth = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    heard = threading.Event()
    seen: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def changed(diff, new):
        seen.append(len(diff.added))
        heard.set()
        stop.set()

    watcher = _watching(out, changed, failures, stop, interval=120, events=True)
    time.sleep(1)  # the first round has run
    name = sorted(truth)[0].replace("-1.png", "-7.png")
    (images / name).write_bytes(b"")
    time.sleep(0.2)
    write_image(images / name, psii_image((12, 16), plant=1, step=0, frame=7, seed=1))
    assert heard.wait(30), "no update after a file-system event"
    watcher.join(timeout=10)
    assert not watcher.is_alive()
    assert seen == [1]
    # the empty file is normally never seen (0.2 s < the 0.5 s of quiet awaited); a machine
    # stalling longer between the two writes makes one round fail on it, and retry
    assert all("empty file" in f for f in failures), failures
    assert len(imagezarr.load_manifest(out).files) == len(truth) + 1


def test_watch_events_need_a_local_folder_and_watchfiles(psii, tmp_path, monkeypatch):
    images, _ = psii
    scanned = imagezarr.scan(images, **PSII)
    m = imagezarr.open_manifest(scanned)
    assert imagezarr.updating.watches_events(m, False) is None
    remote = imagezarr.open_manifest(dataclasses.replace(scanned, root="s3://lab/exp"))
    assert imagezarr.updating.watches_events(remote) is None  # a bucket: polling only
    with pytest.raises(ValueError, match="a remote root reports no file-system events"):
        imagezarr.updating.watches_events(remote, True)
    monkeypatch.setitem(__import__("sys").modules, "watchfiles", None)  # not installed
    assert imagezarr.updating.watches_events(m) is None
    with pytest.raises(ImportError, match=r"pip install imagezarr\[watch\]"):
        imagezarr.updating.watches_events(m, True)
    out = scanned.save(tmp_path / "exp.imagezarr.json")
    assert main(["update", str(out), "--watch", "--events"]) == 2


def test_cli_watch_stops_on_ctrl_c(psii, tmp_path, monkeypatch, capsys):
    images, _ = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")

    watches_events = imagezarr.updating.watches_events

    def interrupted(manifest, **kwargs):  # the start of a real watch, then Ctrl-C
        kwargs["on_start"](watches_events(imagezarr.open_manifest(manifest), kwargs["events"]))
        raise KeyboardInterrupt

    monkeypatch.setattr(imagezarr.api, "watch", interrupted)
    assert main(["update", str(out), "--watch", "--interval", "0.1"]) == 0
    printed = capsys.readouterr().out
    assert "stopped" in printed
    assert f"updating on changes in {images}" in printed.replace("\n", "")


def test_update_sorts_new_labels_in_among_the_kept_ones(psii, tmp_path):
    """An update reuses the recorded label order (no natural sort of every label again) and
    places new labels where a full scan would: the result equals a full re-scan."""
    images, truth = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    night = sorted(truth)[0].split("/")[0]
    for plant in (0, 13, 100):  # before A1, between A12 and A100, after everything
        name = f"{night}/A{plant}-doi-20200531T210000-PSII0-1.png"
        write_image(images / name, psii_image((12, 16), plant=plant, step=0, frame=1, seed=5))
    for gone in [n for n in truth if "/A5-" in n]:  # a label that disappears
        (images / gone).unlink()
    new, diff = imagezarr.update(out)
    assert len(diff.added) == 3
    full = imagezarr.scan(images, layout=new.layout)
    for name in new.nodes[0].dims:
        assert new.nodes[0].coords[name].values == full.nodes[0].coords[name].values
    labels = new.nodes[0].coords["barcode"].values
    assert labels[:2] == ("A0", "A1")
    assert labels[-3:] == ("A12", "A13", "A100")
    assert "A5" not in labels
    assert new.nodes[0].file_index.tolist() == full.nodes[0].file_index.tolist()


def test_label_order_of_an_earlier_scan_is_reused_only_for_the_same_types():
    from imagezarr.layout.arrange import _sorted_labels

    assert _sorted_labels([2.5, 1.0], known=[1, 2]) == [1.0, 2.5]  # int labels became float
    assert _sorted_labels(["b", "a"], known=[1]) == ["a", "b"]
    assert _sorted_labels([3, 1, 2], known=[3, 1]) == [3, 1, 2]  # the recorded order is kept
    assert _sorted_labels(["x"], known=["y"]) == ["x"]
    # None (not found by a lookup) sorts last and does not stop the reuse
    assert _sorted_labels(["b", "a"], known=["a", None], keep=True) == ["a", "b", None]
    assert _sorted_labels([None, "c"], known=["a", "b"], keep=True) == ["a", "b", "c", None]
    assert _sorted_labels([None], known=[None]) == [None]


@pytest.mark.parametrize("removed", ["shrink", "holes"])
def test_a_label_whose_files_are_all_gone_shrinks_or_stays_as_holes(
    psii, tmp_path, capsys, removed
):
    images, truth = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    before = imagezarr.load_manifest(out).node()
    gone = sorted(n for n in truth if "/A5-" in n)
    for name in gone:
        (images / name).unlink()
    assert main(["update", str(out), "--removed", removed, "-q"]) == 0
    printed = capsys.readouterr().out
    assert f"0 added, {len(gone)} removed, 0 changed" in printed
    node = imagezarr.load_manifest(out).node()
    labels = node.coords["barcode"].values
    if removed == "holes":
        assert "label    barcode='A5': no file left, kept as holes" in printed
        assert node.shape == before.shape
        assert labels == before.coords["barcode"].values
        assert (node.file_index[labels.index("A5")] < 0).all()
        ds = imagezarr.open_dataset(out)
        assert not ds.present.sel(barcode="A5").any()
        assert (ds.image.sel(barcode="A5").values == 0).all()
    else:
        assert "label    barcode='A5': no file left, removed from barcode" in printed
        assert node.shape[0] == before.shape[0] - 1
        assert "A5" not in labels
    # a second update with nothing new reports nothing: an emptied label is told once
    assert main(["update", str(out), "--removed", removed, "-q"]) == 0
    assert "label    " not in capsys.readouterr().out


def test_a_group_whose_files_are_all_gone_is_reported(psii, tmp_path):
    images, truth = psii
    m = imagezarr.scan(
        images,
        pattern=PSII["pattern"],
        types=PSII["types"],
        group_by="barcode",
        dims=("night", "param", "frame"),
    )
    for name in (n for n in truth if "/A7-" in n):
        (images / name).unlink()
    new, diff = imagezarr.update(m, removed="holes")
    assert "A7" not in [n.path for n in new.nodes]
    assert diff.labels == ("group 'A7': no file left, removed",)


def test_update_keeps_the_dims_the_scan_chose_while_the_files_fit_them(tmp_path):
    """One night at first: night is no dim. More plants keep the dims (and the shape grows);
    a second night no longer fits them (two files per slot), so the dims are chosen again
    and the note counts the grid as built."""
    import shutil

    from imagezarr.testing import make_psii_experiment

    images = tmp_path / "images"
    make_psii_experiment(images, plants=3, nights=1, steps=2, frames=2, shape=(6, 8), holes=0)
    scan = {k: v for k, v in PSII.items() if k != "dims"}
    first = imagezarr.scan(images, **scan)
    assert first.node().dims == ("barcode", "param", "frame")
    (night,) = [p.name for p in images.iterdir()]
    write_image(
        images / night / "A4-doi-20200531T220000-PSII0-1.png",
        psii_image((6, 8), plant=4, step=0, frame=1, seed=2),
    )
    second, diff = imagezarr.update(first)
    assert diff.added == (f"{night}/A4-doi-20200531T220000-PSII0-1.png",)
    assert second.node().dims == first.node().dims  # kept, though choosing again might differ
    assert second.node().shape == (4, 2, 2)
    assert second.layout.dims is None  # still the scan's choice, for the next update
    assert second.notes == ("dims kept from the manifest: (barcode, param, frame)",)
    shutil.copytree(images / night, images / "2020-06-01")
    for name in (images / night).glob("A1-*"):
        name.unlink()
    third, _ = imagezarr.update(second, removed="holes")
    node = third.node()
    assert node.dims == ("night", "barcode", "param", "frame")
    holes = int((node.file_index < 0).sum())
    note = next(n for n in third.notes if n.startswith("dims chosen"))
    assert f"{node.file_index.size} slot(s), {holes} hole(s)" in note


def test_cli_update_leaves_an_unchanged_manifest_alone(psii, tmp_path, capsys):
    images, _ = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    before = (out.read_bytes(), out.stat().st_mtime_ns)
    assert main(["update", str(out)]) == 0
    assert f"nothing changed: {out} left as it was" in capsys.readouterr().out.replace("\n", "")
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before
    copy = tmp_path / "copy.imagezarr.json"  # an output asked for is written all the same
    assert main(["update", str(out), "-o", str(copy), "-q"]) == 0
    assert imagezarr.load_manifest(copy).files == imagezarr.load_manifest(out).files
