"""No lost saves: two processes updating one manifest never drop what the other recorded.

The race: update A lists the folder; meanwhile update B (another process: a second
``imagezarr update``, or ``update --watch``) lists it too, with more files in it, and saves;
then A saves. Before the guard, A's save replaced B's and the files only B had seen were gone
from the manifest, both exiting 0. Each test here puts the other process in that window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import imagezarr
import imagezarr.updating
from imagezarr.cli import main
from imagezarr.errors import ManifestChangedError
from imagezarr.manifest import lock_path, read_stamp, save_replacing, stamp_of
from imagezarr.testing import random_image, write_image


def _add(folder, first: int, count: int) -> list[str]:
    names = [f"img_{i:04d}.png" for i in range(first, first + count)]
    for i, name in enumerate(names):
        write_image(folder / name, random_image((6, 8), seed=first + i))
    return names


@pytest.fixture
def experiment(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    _add(images, 0, 20)
    out = imagezarr.scan(images).save(tmp_path / "exp.imagezarr.json")
    return images, out


def _recorded(manifest) -> set[str]:
    with open(manifest, encoding="utf-8") as f:
        return set(json.load(f)["files"]["path"])


def _other_update(manifest) -> subprocess.CompletedProcess[str]:
    """``imagezarr update`` in a second process, to the end."""
    return subprocess.run(
        [sys.executable, "-m", "imagezarr", "update", str(manifest), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _in_the_window(monkeypatch, action):
    """Run ``action`` once, right after this process's update has listed the folder and
    before it saves: the moment another process's save used to be lost in."""
    real = imagezarr.updating._update_once
    calls = []

    def listed_then_other(*args, **kwargs):
        result = real(*args, **kwargs)
        if not calls:
            calls.append(action())
        return result

    monkeypatch.setattr(imagezarr.updating, "_update_once", listed_then_other)
    return calls


def test_an_update_that_saves_last_keeps_what_another_process_recorded(experiment, monkeypatch):
    images, manifest = experiment
    mine = _add(images, 100, 10)  # this update's listing sees these

    def other():
        theirs = _add(images, 200, 50)
        done = _other_update(manifest)
        assert done.returncode == 0, done.stderr
        assert set(theirs) <= _recorded(manifest)  # the other process saved them
        return theirs

    calls = _in_the_window(monkeypatch, other)
    new, diff = imagezarr.update(manifest, save=True)
    theirs = calls[0]
    recorded = _recorded(manifest)
    assert set(theirs) <= recorded, "the other process's 50 files were lost"
    assert set(mine) <= recorded
    assert recorded == {p.name for p in images.iterdir()}
    assert diff.redone == 1
    # made again from the other's save: only what that save lacked is new to this one
    assert diff.added == ()
    assert len(new.files) == 80


def test_watch_and_update_together_lose_nothing(experiment, monkeypatch):
    images, manifest = experiment
    _add(images, 100, 10)

    def other():
        theirs = _add(images, 200, 50)
        assert _other_update(manifest).returncode == 0
        return theirs

    calls = _in_the_window(monkeypatch, other)
    heard = []
    saved = imagezarr.watch(
        manifest, interval=0.05, rounds=1, events=False, on_change=lambda d, m: heard.append(d)
    )
    assert set(calls[0]) <= _recorded(manifest)
    assert _recorded(manifest) == {p.name for p in images.iterdir()}
    assert saved == 0
    assert heard == []
    # the watch goes on from the other's save: a later change is saved on top of it
    later = _add(images, 300, 3)
    assert imagezarr.watch(manifest, interval=0.05, rounds=1, events=False) == 1
    assert set(later) | set(calls[0]) <= _recorded(manifest)


def test_the_cli_says_it_made_the_update_again(experiment, monkeypatch, capsys):
    images, manifest = experiment
    _add(images, 100, 4)
    _in_the_window(monkeypatch, lambda: (_add(images, 200, 5), _other_update(manifest)))
    assert main(["update", str(manifest), "-q"]) == 0
    text = capsys.readouterr().out
    assert f"another process saved {manifest} while this update ran: made again" in text
    assert "nothing it recorded is lost" in text
    assert len(_recorded(manifest)) == 29


def test_an_output_written_meanwhile_is_not_replaced_blindly(experiment, monkeypatch, tmp_path):
    images, manifest = experiment
    copy = tmp_path / "copy.imagezarr.json"
    _add(images, 100, 2)

    def other():
        _add(images, 200, 3)
        done = subprocess.run(
            [sys.executable, "-m", "imagezarr", "update", str(manifest), "-o", str(copy), "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    _in_the_window(monkeypatch, other)
    _, diff = imagezarr.update(manifest, save=copy)
    assert diff.redone == 1  # made again after the other wrote the copy, listing afresh
    assert _recorded(copy) == {p.name for p in images.iterdir()}


def test_concurrent_updates_in_many_processes_keep_every_file(experiment):
    images, manifest = experiment
    running = []
    for batch in range(6):
        _add(images, 1000 + 40 * batch, 40)
        running.append(
            subprocess.Popen(
                [sys.executable, "-m", "imagezarr", "update", str(manifest), "-q"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        time.sleep(0.05)
    for p in running:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    assert _recorded(manifest) == {p.name for p in images.iterdir()}


def test_a_stale_stamp_is_refused_and_names_what_happened(tmp_path):
    target = str(tmp_path / "m.json")
    with pytest.raises(ManifestChangedError, match=r"m\.json' was removed by another process"):
        save_replacing(b"{}", target, stamp_of(b"what this update read"))
    out, stamp = save_replacing(b"{}", target, None)
    assert out == target
    assert stamp == read_stamp(target) == stamp_of(b"{}")
    with pytest.raises(ManifestChangedError, match="was created by another process"):
        save_replacing(b"[]", target, None)
    with pytest.raises(ManifestChangedError, match="was replaced by another process"):
        save_replacing(b"[]", target, stamp_of(b"old"))
    with open(target, "rb") as f:
        assert f.read() == b"{}"  # every refused save left the file as it was


def test_a_save_waits_for_the_lock_and_a_killed_holder_releases_it(tmp_path):
    target = str(tmp_path / "m.json")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import filelock, sys, time
                held = filelock.FileLock({str(lock_path(target))!r})
                held.acquire()
                print("held", flush=True)
                time.sleep(600)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ManifestChangedError, match=r"another process has been saving .*lock"):
            save_replacing(b"{}", target, None, timeout=0.3)
        assert not os.path.exists(target)
        holder.kill()  # like kill -9: the operating system drops its lock
        holder.wait()
        assert save_replacing(b"{}", target, None, timeout=10)[0] == target
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_save_true_needs_a_manifest_read_from_a_file(experiment):
    _, manifest = experiment
    with pytest.raises(ValueError, match="pass save=PATH"):
        imagezarr.update(imagezarr.load_manifest(manifest), save=True)
