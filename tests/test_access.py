"""One way to open a manifest: the Access value, and every verb honouring what a call names.

Each test here was a bug of the options re-declared in every signature: a named default
taken for "not given", xarray keywords refused, watch dropping options, an export without
freshness check, tables read without the scan's storage options, options silently ignored.
"""

from __future__ import annotations

import os
import pickle
import shutil
import threading
import warnings
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr import Access, open_manifest
from imagezarr.access import split_access
from imagezarr.cli import main
from imagezarr.errors import FilledChunkWarning, SourceChangedError
from imagezarr.roots import open_root
from imagezarr.testing import PSII_SCAN, loopback_s3, make_psii_experiment, write_image


def _touched(m: imagezarr.Manifest, index: int = 0) -> Path:
    """File ``index`` with its bytes kept and its modification time moved: only ``mtime``
    (or a checksum) tells it changed."""
    path = Path(open_manifest(m).location(index))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 7_000_000_000))
    return path


@pytest.fixture
def small(tmp_path):
    make_psii_experiment(tmp_path / "img", plants=2, nights=1, steps=1, frames=2, shape=(8, 8))
    return imagezarr.scan(tmp_path / "img", **PSII_SCAN)


# -- the value ------------------------------------------------------------------------------------


def test_access_merges_said_fields_and_refuses_what_it_cannot_use():
    base = Access(root="/data/copy", check="size", on_error="fill")
    assert (base | Access(check="mtime")) == Access(
        root="/data/copy", check="mtime", on_error="fill"
    )
    assert (base | Access()) == base
    assert Access.of(base, {"on_error": "raise"}).on_error == "raise"
    assert Access().resolved_check == "mtime"
    assert Access().resolved_on_error == "raise"
    with pytest.raises(TypeError, match="unknown keyword 'cheque'"):
        Access.of(None, {"cheque": "size"})
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'fill'"):
        Access(on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="check"):
        Access(check="md5")  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="cannot assign"):
        base.check = "none"  # type: ignore[misc]


def test_access_never_shows_credentials_but_travels_with_them():
    secret = {"config": {"secret_access_key": "hunter2"}}
    a = Access(storage_options=secret)
    assert "hunter2" not in repr(a)
    assert pickle.loads(pickle.dumps(a)).storage_options == secret


def test_split_access_takes_only_the_access_keywords():
    how, rest = split_access({"check": "size", "chunks": {}, "decode_times": False})
    assert Access.of(None, how) == Access(check="size")
    assert rest == {"chunks": {}, "decode_times": False}


def test_options_for_a_local_folder_are_refused_not_ignored(small, tmp_path):
    with pytest.raises(ValueError, match=r"storage options .* is a local folder"):
        open_root(tmp_path, {"config": {"region": "eu-west-1"}})
    with pytest.raises(ValueError, match=r"are local: drop them"):
        open_manifest(small, storage_options={"config": {"region": "eu-west-1"}})
    with pytest.raises(ValueError, match=r"storage options .* is a local folder"):
        imagezarr.scan(small.root, storage_options={"anon": True}, **PSII_SCAN)


def test_the_manifest_is_a_pure_value(small, tmp_path):
    """Nothing about how it was opened lives in it: saving two ways opened gives one file."""
    a = small.save(tmp_path / "a.imagezarr.json")
    opened = open_manifest(small, check="none", on_error="fill")
    b = opened.manifest.save(tmp_path / "b.imagezarr.json")
    assert a.read_bytes() == b.read_bytes()
    assert not hasattr(small, "storage_options")


# -- a named option always wins -------------------------------------------------------------------


def test_a_named_check_wins_over_the_stores_own(small):
    """A named default (``check="mtime"``, ``on_error="raise"``) is said, not "not given"."""
    path = _touched(small)
    loose = imagezarr.open_store(small, check="size", on_error="fill")
    ds = imagezarr.open_dataset(loose)  # the store's own access stands
    np.testing.assert_array_equal(ds.image.values.reshape(-1, 8, 8)[0], imagecodecs.imread(path))
    strict = imagezarr.open_dataset(loose, check="mtime", on_error="raise")
    with pytest.raises(SourceChangedError, match=path.name):
        strict.image.values  # noqa: B018
    # only the check is named: the store's on_error="fill" stands, so the file reads as 0
    group = imagezarr.open_group(loose, check="mtime")
    with pytest.warns(FilledChunkWarning, match=rf"{path.name}: read as fill value 0"):
        pixels = group["image"][:]
    assert not pixels.reshape(-1, 8, 8)[0].any()


def test_opened_manifests_keep_their_access_unless_told(small):
    path = _touched(small)
    opened = open_manifest(small, check="none")
    assert imagezarr.open_store(opened).check == "none"
    assert imagezarr.open_store(opened, check="mtime").check == "mtime"
    with pytest.raises(SourceChangedError, match=path.name):
        imagezarr.open_dataset(opened, access=Access(check="mtime")).image.values  # noqa: B018
    # a keyword wins over a ready access given in the same call
    relaxed = imagezarr.open_dataset(opened, check="size", access=Access(check="mtime"))
    assert int(relaxed.present.sum()) == len(small.files)


def test_xarray_keywords_pass_through(small):
    raw = imagezarr.open_dataset(small, decode_times=False)
    assert raw.timestamp.dtype.kind == "i"
    assert raw.timestamp.attrs["units"].startswith("seconds since")
    assert imagezarr.open_dataset(small).timestamp.dtype.kind == "M"
    dropped = imagezarr.open_dataset(small, drop_variables=["path"], chunks={})
    assert "path" not in dropped
    assert dropped.image.chunks is not None
    import xarray as xr

    via_engine = xr.open_dataset(small, engine="imagezarr", check="size", decode_times=False)
    assert via_engine.timestamp.dtype.kind == "i"


def test_a_missing_group_names_the_groups_there_are(tmp_path):
    make_psii_experiment(
        tmp_path / "img", plants=3, nights=1, steps=1, frames=1, shape=(4, 4), holes=0
    )
    m = imagezarr.scan(tmp_path / "img", **{**PSII_SCAN, "group_by": "barcode", "dims": ()})
    with pytest.raises(KeyError, match=r"no group 'A9' in this manifest; its groups: 'A1', 'A2'"):
        imagezarr.open_dataset(m, group="A9")


# -- every verb takes the same access -------------------------------------------------------------


def test_kerchunk_export_checks_freshness_like_the_others(small, tmp_path):
    from imagezarr.export import export

    _touched(small, 1)
    with pytest.raises(imagezarr.ExportError, match=r"changed since the scan \(modification"):
        export(small, "kerchunk", tmp_path / "refs.json")
    assert not (tmp_path / "refs.json").exists()
    out = export(small, "kerchunk", tmp_path / "refs.json", check="none")
    assert Path(out).is_file()


def test_kerchunk_cli_takes_check(small, tmp_path, capsys):
    _touched(small, 0)
    saved = small.save(tmp_path / "m.imagezarr.json")
    refs = tmp_path / "refs.json"
    assert main(["export", str(saved), "--format", "kerchunk", "-o", str(refs)]) == 1
    assert "changed" in capsys.readouterr().err
    assert not refs.exists()
    args = ["export", str(saved), "--format", "kerchunk", "-o", str(refs), "--check", "size"]
    assert main(args) == 0
    assert refs.is_file()


def test_every_verb_reads_a_moved_folder_through_root(small, tmp_path):
    """Re-rooting is one keyword everywhere: verify, preview, an export, the store, napari-less
    layers all read the copy, never the original."""
    copy = tmp_path / "copy"
    shutil.copytree(small.root, copy, copy_function=shutil.copy2)
    shutil.rmtree(small.root)
    assert imagezarr.verify(small, root=copy).ok
    assert imagezarr.verify(small, access=Access(root=copy), decode=True).ok
    from imagezarr.preview import contact_sheet

    sheet = contact_sheet(small, root=copy)
    assert (sheet.kinds == "image").sum() == len(small.files)
    assert not sheet.failed
    assert imagezarr.preview(small, root=copy).size == sheet.image.size
    from imagezarr.export import export

    out = export(small, "zarr", tmp_path / "copy.zarr", root=copy)
    assert Path(out).is_dir()
    ds = imagezarr.open_dataset(small, root=copy)
    assert int(ds.present.sum()) == len(small.files)


def test_watch_callback_has_its_own_name(small, tmp_path):
    saved = small.save(tmp_path / "m.imagezarr.json")
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'fill'"):
        imagezarr.watch(saved, on_error=print, rounds=1)  # type: ignore[arg-type]


def test_watch_follows_root_and_dry_run_from_the_cli(tmp_path, monkeypatch, capsys):
    """``update --watch`` passed neither ``--root`` nor ``--dry-run`` (nor
    ``--drop-undecodable``) on: it watched the recorded folder and saved."""
    images = tmp_path / "images"
    make_psii_experiment(images, plants=2, nights=1, steps=1, frames=2, shape=(8, 8))
    saved = imagezarr.scan(images, **PSII_SCAN).save(tmp_path / "m.imagezarr.json")
    before = saved.read_bytes()
    copy = tmp_path / "copy"
    shutil.copytree(images, copy, copy_function=shutil.copy2)
    night = next(p.name for p in copy.iterdir() if p.is_dir())
    write_image(copy / night / "A7-doi-20200531T210000-PSII0-1.png", np.ones((8, 8), np.uint8))
    real = imagezarr.api.watch
    heard: dict = {}

    def one_round(manifest, **kwargs):
        heard.update(kwargs)
        stop = threading.Event()
        threading.Timer(30, stop.set).start()  # never hang the suite if nothing changes
        return real(manifest, **{**kwargs, "rounds": 1, "interval": 0.05, "stop": stop})

    monkeypatch.setattr(imagezarr.api, "watch", one_round)
    args = ["update", str(saved), "--watch", "--root", str(copy), "--dry-run"]
    assert main([*args, "--drop-undecodable", "--no-events"]) == 0
    out = capsys.readouterr().out
    assert "1 added, 0 removed, 0 changed" in out
    assert "not saved (--dry-run)" in out
    assert saved.read_bytes() == before  # a dry run writes nothing
    assert heard["access"].root == str(copy)
    assert heard["drop_undecodable"] is True


def test_tables_beside_images_in_a_bucket_are_read_with_the_scans_options(tmp_path):
    """A lookup table in the bucket was read without the scan's storage options."""
    pytest.importorskip("moto.server")
    pytest.importorskip("obstore")
    images = tmp_path / "images"
    truth = make_psii_experiment(
        images, plants=2, nights=1, steps=1, frames=2, shape=(8, 8), holes=0
    )
    with loopback_s3() as s3:
        url = s3.upload(images, truth, "tables")
        s3.client.put_object(
            Bucket="lab", Key="tables/plants.csv", Body=b"barcode,genotype\nA1,wt\nA2,mutant\n"
        )
        lookup = imagezarr.Lookup(f"{url}/plants.csv", key="barcode")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no credentials warning, no fallback
            m = imagezarr.scan(url, storage_options=s3.options, lookups=[lookup], **PSII_SCAN)
        ds = imagezarr.open_dataset(m, storage_options=s3.options)
        assert ds.genotype.sel(barcode="A2").item() == "mutant"
