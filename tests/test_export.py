"""Stage 7, export: every format reads back exactly what the store serves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import imagezarr
from imagezarr.cli import main
from imagezarr.errors import ExportError
from imagezarr.export import export, references
from imagezarr.export.icechunk import container_prefix
from imagezarr.testing import PSII_SCAN as PSII
from imagezarr.testing import make_psii_experiment, random_image, write_image

ic = pytest.importorskip("icechunk")
OPEN = {"consolidated": False, "zarr_format": 3, "mask_and_scale": False}
# a root name that URL quoting would break: space, non-ASCII, a literal %20
ROOT_NAME = "my imgs é %20"
PARQUET_WARNING = "ignore:Object at .zmetadata is not recognized:UserWarning"


def _psii(tmp: Path, **scan) -> Path:
    images = tmp / ROOT_NAME
    make_psii_experiment(images, plants=3, nights=2, steps=2, frames=2, shape=(6, 8), holes=2)
    m = imagezarr.scan(images, **{**PSII, **scan})
    return m.save(tmp / "psii.imagezarr.json")


def _rgb(tmp: Path) -> Path:
    images = tmp / ROOT_NAME
    for s in range(3):
        for f in range(2):
            if (s, f) != (1, 0):  # one hole
                write_image(images / f"s{s}-{f}.png", random_image((5, 7, 3), seed=10 * s + f))
    m = imagezarr.scan(
        images, pattern=r"(?P<sample>s\d+)-(?P<frame>\d+)\.png", types={"frame": "int"}
    )
    return m.save(tmp / "rgb.imagezarr.json")


def _stacks(tmp: Path) -> Path:
    """Multi-page TIFFs (z-stacks, deflate): one chunk per file, a page axis inside."""
    tifffile = pytest.importorskip("tifffile")
    images = tmp / ROOT_NAME
    images.mkdir(parents=True)
    for s in range(3):
        for t in range(2):
            if (s, t) != (2, 1):  # one hole
                stack = random_image((4, 6, 8), seed=10 * s + t).astype(np.uint16) * 100
                tifffile.imwrite(
                    images / f"s{s}_t{t}.tif", stack, photometric="minisblack", compression="zlib"
                )
    m = imagezarr.scan(images, pattern=r"(?P<sample>s\d+)_t(?P<t>\d+)\.tif", types={"t": "int"})
    assert m.nodes[0].image_dims == ("sample", "t", "page", "y", "x")
    return m.save(tmp / "stacks.imagezarr.json")


DATASETS = {
    "psii": _psii,
    "stacks": _stacks,
    "grouped": lambda tmp: _psii(tmp, group_by="barcode", dims=("night", "param", "frame")),
    "rgb": _rgb,
}


def _numcodecs() -> None:
    """What a reader of Zarr v2 references does: imagecodecs' codecs in numcodecs' registry."""
    import imagecodecs.numcodecs

    imagecodecs.numcodecs.register_codecs(verbose=False)


def _open_refs(fo: object, group: str, zarr_format: int = 2) -> xr.Dataset:
    _numcodecs()
    return xr.open_dataset(
        "reference://",
        engine="zarr",
        group=group or None,
        backend_kwargs={"storage_options": {"fo": fo, "remote_protocol": "file"}},
        **{**OPEN, "zarr_format": zarr_format},
    )


def _open_parquet(path: Path, group: str, zarr_format: int = 2) -> xr.Dataset:
    import fsspec
    from fsspec.implementations.reference import LazyReferenceMapper

    _numcodecs()
    lazy = LazyReferenceMapper(str(path), engine="pyarrow")
    fs = fsspec.filesystem("reference", fo=lazy, remote_protocol="file", asynchronous=True)
    store = zarr.storage.FsspecStore(fs, read_only=True, path="")
    return xr.open_dataset(
        store, engine="zarr", group=group or None, **{**OPEN, "zarr_format": zarr_format}
    )


def _open_icechunk(path: Path, group: str, root: str) -> xr.Dataset:
    repo = ic.Repository.open(
        ic.local_filesystem_storage(str(path)),
        authorize_virtual_chunk_access={
            container_prefix(root): ic.credentials.LocalFileSystemAccess
        },
    )
    store = repo.readonly_session("main").store
    return xr.open_dataset(store, engine="zarr", group=group or None, **OPEN)


EXPORTS = {
    # name: (format, output name, options, opener(out, group, root))
    "kerchunk-json": ("kerchunk", "refs.json", {}, lambda o, g, r: _open_refs(str(o), g)),
    "kerchunk-templates": (
        "kerchunk",
        "refs.json",
        {"templates": True},
        lambda o, g, r: _open_refs(str(o), g),
    ),
    "kerchunk-parquet": (
        "kerchunk",
        "refs.parq",
        {"record_size": 5},
        lambda o, g, r: _open_parquet(o, g),
    ),
    "kerchunk-json-v3": (
        "kerchunk",
        "refs.json",
        {"zarr_format": 3},
        lambda o, g, r: _open_refs(str(o), g, 3),
    ),
    "kerchunk-parquet-v3": (
        "kerchunk",
        "refs.parq",
        {"record_size": 5, "zarr_format": 3},
        lambda o, g, r: _open_parquet(o, g, 3),
    ),
    "icechunk": ("icechunk", "repo", {}, _open_icechunk),
    "zarr": ("zarr", "copy.zarr", {}, lambda o, g, r: xr.open_dataset(o, group=g or None, **OPEN)),
    "zarr-sharded": (
        "zarr",
        "copy.zarr",
        {"shards": 3, "level": 1},
        lambda o, g, r: xr.open_dataset(o, group=g or None, **OPEN),
    ),
    "links": (
        "links",
        "links.zarr",
        {},
        lambda o, g, r: xr.open_dataset(o, group=g or None, **OPEN),
    ),
}


@pytest.mark.filterwarnings(PARQUET_WARNING)
@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("kind", list(EXPORTS))
def test_export_reads_identical_to_store(tmp_path, dataset, kind):
    manifest = DATASETS[dataset](tmp_path)
    m = imagezarr.load_manifest(manifest)
    fmt, name, options, opener = EXPORTS[kind]
    out = export(manifest, fmt, tmp_path / "out" / name, **options)
    assert out == tmp_path / "out" / name
    if dataset != "grouped":  # grouping by plant leaves no missing visit inside a group
        assert sum((n.file_index < 0).sum() for n in m.nodes) > 0
    for node in m.nodes:
        expected = imagezarr.open_dataset(m, group=node.path or None).load()
        got = opener(out, node.path, m.root).load()
        if kind.startswith("kerchunk") and not kind.endswith("v3"):
            # Zarr v2 strings are fixed-width unicode (<U), the store's are StringDType
            strings = {
                k: got[k].astype(expected[k].dtype) for k in got.coords if got[k].dtype.kind == "U"
            }
            got = got.assign_coords(strings)
        xr.testing.assert_identical(got, expected)
        assert got.image.dtype == expected.image.dtype
        assert got.image.dims == expected.image.dims
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_kerchunk_document_shape(tmp_path):
    m = imagezarr.load_manifest(_psii(tmp_path))
    v2 = references(m)["refs"]  # Zarr v2 by default: what kerchunk's tools read
    assert json.loads(v2[".zgroup"]) == {"zarr_format": 2}
    assert json.loads(v2["image/.zattrs"])["_ARRAY_DIMENSIONS"][-2:] == ["y", "x"]
    assert v2["barcode/0"].startswith("base64:")
    doc = references(m, zarr_format=3)
    assert doc["version"] == 1
    refs = doc["refs"]
    assert json.loads(refs["zarr.json"])["node_type"] == "group"
    assert refs["barcode/c/0"].startswith("base64:")
    key, i = next(imagezarr.hierarchy.chunk_refs(m))
    assert refs[key] == [
        "file://" + imagezarr.open_manifest(m).location(i)
    ]  # absolute, not percent-encoded
    assert ROOT_NAME in refs[key][0]
    holes = sum(int((n.file_index < 0).sum()) for n in m.nodes)
    assert sum(isinstance(v, list) for v in refs.values()) == len(m.files) > 0
    assert holes > 0


def test_kerchunk_templates_follow_moved_images(tmp_path):
    manifest = _psii(tmp_path)
    m = imagezarr.load_manifest(manifest)
    expected = imagezarr.open_dataset(m).load()
    out = export(m, "kerchunk", tmp_path / "refs.json", templates=True)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["templates"] == {"root": "file://" + m.root}
    assert all(v[0].startswith("{{root}}/") for v in doc["refs"].values() if isinstance(v, list))
    moved = tmp_path / "elsewhere ü"
    shutil.move(m.root, moved)
    with pytest.raises(Exception, match="my imgs"):
        _open_refs(str(out), "").load()
    fo = {**doc, "templates": {"root": "file://" + str(moved)}}
    xr.testing.assert_identical(_open_refs(fo, "").load(), expected)


def test_kerchunk_root_url_needs_templates(tmp_path):
    m = imagezarr.load_manifest(_psii(tmp_path))
    with pytest.raises(ExportError, match="root_url only applies with templates"):
        export(m, "kerchunk", tmp_path / "r.json", root_url="s3://bucket/images")
    doc = references(m, templates=True, root_url="s3://bucket/images/")
    assert doc["templates"] == {"root": "s3://bucket/images"}


FOREIGN = """
import importlib.util, json, site, sys
site.addsitedir(sys.argv[1])
assert not any("/work/main/src" in p or p.endswith("/src") for p in sys.path), sys.path
assert importlib.util.find_spec("imagezarr") is None
try:
    import imagezarr
except ImportError:
    pass
else:
    raise SystemExit("imagezarr is importable")
import numpy as np, xarray as xr
ds = xr.open_dataset("reference://", engine="zarr",
                     backend_kwargs={"storage_options": {"fo": sys.argv[2]}},
                     consolidated=False, zarr_format=3, mask_and_scale=False)
np.savez(sys.argv[3], image=ds.image.values, present=ds.present.values,
         barcode=np.array(ds.barcode.values.tolist()), timestamp=ds.timestamp.values)
print("opened", dict(ds.sizes))
"""


def _foreign_site(tmp: Path) -> Path:
    """site-packages as symlinks, without imagezarr's editable-install .pth and metadata."""
    site = Path(sysconfig.get_paths()["purelib"])
    foreign = tmp / "foreign-site"
    foreign.mkdir()
    for entry in site.iterdir():
        if "imagezarr" in entry.name:
            continue
        (foreign / entry.name).symlink_to(entry)
    return foreign


def test_kerchunk_opens_where_imagezarr_is_not_importable(tmp_path):
    manifest = _psii(tmp_path)
    out = export(manifest, "kerchunk", tmp_path / "refs dir é" / "refs.json", zarr_format=3)
    foreign = _foreign_site(tmp_path)
    npz = tmp_path / "arrays.npz"
    # -I: no user site, no PYTHONPATH, no script dir; -S: no site-packages (and no .pth)
    # until the script adds the filtered copy
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", FOREIGN, str(foreign), str(out), str(npz)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "opened" in proc.stdout
    expected = imagezarr.open_dataset(manifest).load()
    got = np.load(npz)
    np.testing.assert_array_equal(got["image"], expected.image.values)
    np.testing.assert_array_equal(got["present"], expected.present.values)
    np.testing.assert_array_equal(got["barcode"], np.array(expected.barcode.values.tolist()))
    np.testing.assert_array_equal(got["timestamp"], expected.timestamp.values)
    # the same check fails when imagezarr is reachable: the guard in the script works
    proc = subprocess.run(
        [sys.executable, "-I", "-c", FOREIGN, str(foreign), str(out), str(npz)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0


@pytest.mark.filterwarnings(PARQUET_WARNING)
def test_kerchunk_parquet_chosen_by_suffix_and_flag(tmp_path):
    manifest = _psii(tmp_path)
    out = export(manifest, "kerchunk", tmp_path / "refs.parq")
    assert (out / ".zmetadata").is_file()
    assert list(out.rglob("refs.0.parq"))
    out = export(manifest, "kerchunk", tmp_path / "refs-dir", parquet=True)
    assert (out / ".zmetadata").is_file()
    with pytest.raises(ExportError, match="do not support templates"):
        export(manifest, "kerchunk", tmp_path / "t.parq", templates=True)


def test_icechunk_refuses_changed_file_on_read(tmp_path):
    manifest = _psii(tmp_path)
    m = imagezarr.load_manifest(manifest)
    out = export(m, "icechunk", tmp_path / "repo")
    _open_icechunk(out, "", m.root).load()
    target = Path(imagezarr.open_manifest(m).location(0))
    st = target.stat()
    target.write_bytes(target.read_bytes())  # same bytes, later modification time
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**10))
    with pytest.raises(Exception, match="checksum"):
        _open_icechunk(out, "", m.root).load()


def test_export_refuses_changed_source(tmp_path):
    manifest = _psii(tmp_path)
    m = imagezarr.load_manifest(manifest)
    Path(imagezarr.open_manifest(m).location(1)).write_bytes(b"changed")
    for fmt in ("icechunk", "links"):
        with pytest.raises(ExportError, match="changed since the scan"):
            export(m, fmt, tmp_path / f"out-{fmt}")
        assert not (tmp_path / f"out-{fmt}").exists()
    with pytest.raises(imagezarr.errors.SourceChangedError):
        export(m, "zarr", tmp_path / "copy.zarr")
    assert not (tmp_path / "copy.zarr").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("fmt", ["kerchunk", "icechunk", "zarr", "links"])
def test_refuses_source_folder_and_existing_output(tmp_path, fmt):
    manifest = _psii(tmp_path)
    m = imagezarr.load_manifest(manifest)
    inside = Path(m.root) / "export-out"
    with pytest.raises(ExportError, match="inside the source folder") as e:
        export(m, fmt, inside)
    assert str(inside) in str(e.value)
    assert "force=True (--force)" in str(e.value)
    assert not inside.exists()
    assert export(m, fmt, inside, force=True) == inside
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ExportError, match="already exists") as e:
        export(m, fmt, out)
    assert "overwrite=True (--overwrite)" in str(e.value)
    assert (out / "keep.txt").exists()
    export(m, fmt, out, overwrite=True)
    assert not (out / "keep.txt").exists()


def test_never_replaces_a_folder_holding_the_source(tmp_path):
    m = imagezarr.load_manifest(_psii(tmp_path))
    with pytest.raises(ExportError, match="contains the source folder"):
        export(m, "links", tmp_path, overwrite=True, force=True)
    assert Path(imagezarr.open_manifest(m).location(0)).is_file()


def test_links_are_absolute_symlinks(tmp_path):
    m = imagezarr.load_manifest(_psii(tmp_path))
    out = export(m, "links", tmp_path / "links.zarr")
    key, i = next(imagezarr.hierarchy.chunk_refs(m))
    link = out / key
    assert link.is_symlink()
    assert os.readlink(link) == imagezarr.open_manifest(m).location(i)
    assert (out / "zarr.json").is_file()
    assert not (out / "zarr.json").is_symlink()


def test_links_without_symlink_support(tmp_path, monkeypatch):
    m = imagezarr.load_manifest(_psii(tmp_path))

    def refuse(*args, **kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", refuse)
    with pytest.raises(ExportError, match="does not allow symlinks") as e:
        export(m, "links", tmp_path / "links.zarr")
    assert "Operation not permitted" in str(e.value)
    assert "--format kerchunk or zarr" in str(e.value)
    assert not (tmp_path / "links.zarr").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_zarr_copy_codecs_shards_and_progress(tmp_path):
    m = imagezarr.load_manifest(_psii(tmp_path))
    calls = []
    out = export(
        m, "zarr", tmp_path / "c.zarr", shards=4, progress=lambda d, t: calls.append((d, t))
    )
    total = int(np.prod(m.nodes[0].shape))
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    arr = zarr.open_array(out / "image", mode="r")
    assert arr.shards == (1, 1, 2, 2, 6, 8)
    assert arr.chunks == (1, 1, 1, 1, 6, 8)
    assert type(arr.compressors[0]).__name__ == "ZstdCodec"
    assert arr.metadata.dimension_names == m.nodes[0].image_dims
    out2 = export(m, "zarr", tmp_path / "raw.zarr", compressor=None)
    assert zarr.open_array(out2 / "image", mode="r").compressors == ()


def test_ome_metadata_and_refusal(tmp_path):
    manifest = _psii(tmp_path, group_by=("barcode", "night", "param"), dims=("frame",))
    m = imagezarr.load_manifest(manifest)
    out = export(m, "zarr", tmp_path / "ome.zarr", ome=True)
    node = m.nodes[0]
    attrs = json.loads((out / node.path / "zarr.json").read_text())["attributes"]
    ome = attrs["ome"]
    assert ome["version"] == "0.5"
    (ms,) = ome["multiscales"]
    assert ms["axes"] == [
        {"name": "frame", "type": "other"},
        {"name": "y", "type": "space"},
        {"name": "x", "type": "space"},
    ]
    assert ms["datasets"] == [
        {"path": "image", "coordinateTransformations": [{"type": "scale", "scale": [1.0] * 3}]}
    ]
    image = json.loads((out / node.path / "image" / "zarr.json").read_text())
    assert image["dimension_names"] == ["frame", "y", "x"]
    with pytest.raises(ExportError, match=r"OME-Zarr 0\.5 cannot express") as e:
        export(_psii(tmp_path / "b"), "zarr", tmp_path / "bad.zarr", ome=True)
    assert "barcode, night, param, frame, y, x" in str(e.value)
    with pytest.raises(ExportError, match="channels-last RGB"):
        export(_rgb(tmp_path / "c"), "zarr", tmp_path / "rgb.zarr", ome=True)


def test_unknown_format(tmp_path):
    with pytest.raises(ExportError, match="unknown export format 'tiff'; choose one of kerchunk"):
        export(_psii(tmp_path), "tiff", tmp_path / "x")


def test_cli_export(tmp_path, capsys):
    manifest = _psii(tmp_path)
    out = tmp_path / "refs.json"
    args = ["export", str(manifest), "--format", "kerchunk", "-o", str(out)]
    nfiles = len(imagezarr.load_manifest(manifest).files)
    assert main(args) == 0
    assert f"wrote kerchunk export of {nfiles} files to {out}" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8"))["version"] == 1
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "imagezarr: error:" in err
    assert "already exists" in err
    assert "--overwrite" in err
    assert main([*args, "--overwrite", "--templates"]) == 0
    assert "{{root}}" in out.read_text(encoding="utf-8")
    capsys.readouterr()
    copy = tmp_path / "copy.zarr"
    assert (
        main(["export", str(manifest), "-f", "zarr", "-o", str(copy), "--shards", "4", "-q"]) == 0
    )
    assert capsys.readouterr().out == ""
    assert zarr.open_array(copy / "image", mode="r").shards is not None
    assert main(["export", str(manifest), "-f", "zarr", "-o", str(tmp_path / "o"), "--ome"]) == 1
    assert "OME-Zarr 0.5 cannot express" in capsys.readouterr().err
    assert (
        main(["export", str(manifest), "-f", "links", "-o", str(tmp_path / "l"), "--shards", "2"])
        == 2
    )
    assert "--shards, --ome and --ome-axis apply to --format zarr only" in capsys.readouterr().err


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes and umask")
@pytest.mark.parametrize("fmt", ["zarr", "links", "icechunk"])
def test_exported_folders_get_the_umask_mode(tmp_path, fmt):
    images = tmp_path / "images"
    make_psii_experiment(images, plants=2, nights=1, steps=1, frames=1, holes=0, shape=(4, 4))
    m = imagezarr.scan(images, **PSII)
    old = os.umask(0o022)
    try:
        out = export(m, fmt, tmp_path / f"out.{fmt}")
    finally:
        os.umask(old)
    assert Path(out).stat().st_mode & 0o777 == 0o755


def test_icechunk_export_shows_no_rust_warnings(tmp_path):
    images = tmp_path / "images"
    make_psii_experiment(images, plants=2, nights=1, steps=1, frames=1, holes=0, shape=(4, 4))
    saved = imagezarr.scan(images, **PSII).save(tmp_path / "m.imagezarr.json")
    env = {k: v for k, v in os.environ.items() if k != "ICECHUNK_LOG"}
    cmd = [sys.executable, "-m", "imagezarr", "export", str(saved), "--format", "icechunk"]
    r = subprocess.run(
        [*cmd, "-o", str(tmp_path / "repo")], capture_output=True, text=True, env=env, check=False
    )
    assert r.returncode == 0, r.stderr
    assert "WARN" not in r.stderr
    assert r.stderr == ""
