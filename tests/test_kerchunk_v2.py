"""kerchunk references that kerchunk's own tools take: Zarr v2 by default, read where
imagezarr cannot be imported, by kerchunk's xarray engine, fsspec's reference file system
(JSON, and Parquet under every hash seed), MultiZarrToZarr and VirtualiZarr's parsers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imagezarr
from imagezarr.errors import ExportError
from imagezarr.export import export, references
from imagezarr.testing import PSII_BY_PLANT, PSII_SCAN, make_psii_experiment

from .test_export import _foreign_site

pytest.importorskip("kerchunk")

GUARD = """
import importlib.util, json, site, sys, warnings
site.addsitedir(sys.argv[1])
assert importlib.util.find_spec("imagezarr") is None, "imagezarr is importable"
warnings.simplefilter("ignore")
import numpy as np, xarray as xr
import imagecodecs.numcodecs
imagecodecs.numcodecs.register_codecs()  # what a kerchunk user does for image codecs
out, how, target, group = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] or None
"""

OPEN = (
    GUARD
    + """
if how == "engine":
    ds = xr.open_dataset(target, engine="kerchunk", storage_options={"remote_protocol": "file"},
                         open_dataset_options={"mask_and_scale": False, "group": group})
elif how == "reference":
    ds = xr.open_dataset("reference://", engine="zarr", group=group, mask_and_scale=False,
                         backend_kwargs={"consolidated": False, "storage_options":
                                         {"fo": target, "remote_protocol": "file"}})
elif how == "lazy-fastparquet":  # fsspec's documented recipe for Parquet references
    import fsspec
    from fsspec.implementations.reference import LazyReferenceMapper
    lazy = LazyReferenceMapper(target, engine="fastparquet")
    fs = fsspec.filesystem("reference", fo=lazy, remote_protocol="file")
    ds = xr.open_dataset(fs.get_mapper(""), engine="zarr", group=group, consolidated=False,
                         mask_and_scale=False)
elif how == "mzz":
    from kerchunk.combine import MultiZarrToZarr
    parts = target.split("|")
    refs = MultiZarrToZarr(parts, concat_dims=["night"],
                           identical_dims=["barcode", "param", "frame"],
                           remote_protocol="file").translate()
    ds = xr.open_dataset("reference://", engine="zarr", mask_and_scale=False,
                         backend_kwargs={"consolidated": False, "storage_options":
                                         {"fo": refs, "remote_protocol": "file"}})
elif how.startswith("virtualizarr"):
    import zarr.registry
    from zarr.codecs.numcodecs._codecs import _NumcodecsBytesBytesCodec
    # VirtualiZarr names a v2 compressor "numcodecs.<id>" as a zarr 3 codec: one wrapper
    class Png(_NumcodecsBytesBytesCodec, codec_name="imagecodecs_png"):
        pass
    zarr.registry.register_codec("numcodecs.imagecodecs_png", Png)
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import LocalStore
    from virtualizarr import open_virtual_dataset
    from virtualizarr.parsers import KerchunkJSONParser, KerchunkParquetParser
    parser = KerchunkParquetParser() if how.endswith("parquet") else KerchunkJSONParser()
    registry = ObjectStoreRegistry({"file:///": LocalStore()})
    url = "file://" + target
    virtual = open_virtual_dataset(url, registry=registry, parser=parser)
    assert "image" in virtual.data_vars
    ds = xr.open_dataset(parser(url, registry), engine="zarr", zarr_format=3,
                         consolidated=False, mask_and_scale=False)
labels = {d: [str(v) for v in ds[d].values] for d in ds.image.dims if d in ds.coords}
# in the image's dim order (MultiZarrToZarr moves the concat dim of a coordinate first)
ts = ds.timestamp.transpose(*[d for d in ds.image.dims if d in ds.timestamp.dims])
np.savez(out, image=ds.image.values, present=ds.present.values,
         timestamp=ts.values.astype("datetime64[s]").astype("int64"))
print(json.dumps({"dims": list(ds.image.dims), "labels": labels, "dtype": str(ds.image.dtype)}))
"""
)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("v2")
    make_psii_experiment(
        tmp / "images é", plants=3, nights=2, steps=2, frames=2, shape=(6, 8), holes=2
    )
    return tmp, _foreign_site(tmp)


def foreign(site: Path, tmp: Path, how: str, target: str, group: str = "", seed: int = 0):
    """Open ``target`` in a Python where imagezarr cannot be imported; (info, arrays)."""
    out = tmp / f"got-{how}-{seed}.npz"
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", OPEN, str(site), str(out), how, target, group],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONHASHSEED": str(seed), "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1]), np.load(out)


def expected(m, group: str | None = None):
    ds = imagezarr.open_dataset(m, group=group).load()
    labels = {d: [str(v) for v in ds[d].values] for d in ds.image.dims if d in ds.coords}
    return ds, labels


def check(got, m, group: str | None = None) -> None:
    info, arrays = got
    ds, labels = expected(m, group)
    assert info["dims"] == list(ds.image.dims)
    assert info["labels"] == labels
    assert info["dtype"] == str(ds.image.dtype)
    np.testing.assert_array_equal(arrays["image"], ds.image.values)
    np.testing.assert_array_equal(arrays["present"], ds.present.values)
    stamps = ds.timestamp.values.astype("datetime64[s]").astype("int64")
    np.testing.assert_array_equal(arrays["timestamp"], stamps)


@pytest.mark.parametrize("how", ["engine", "reference", "virtualizarr"])
def test_json_v2_refs_open_without_imagezarr(experiment, how):
    tmp, site = experiment
    if how == "virtualizarr":
        pytest.importorskip("virtualizarr")
    m = imagezarr.scan(tmp / "images é", **PSII_SCAN)
    out = export(m, "kerchunk", tmp / f"{how}.json")
    doc = json.loads(out.read_text())
    assert ".zgroup" in doc["refs"]
    assert "image/.zarray" in doc["refs"]
    assert json.loads(doc["refs"]["image/.zarray"])["compressor"] == {"id": "imagecodecs_png"}
    assert json.loads(doc["refs"]["barcode/.zarray"])["dtype"] == "<U2"
    check(foreign(site, tmp, how, str(out)), m)


@pytest.mark.filterwarnings("ignore:Object at .zmetadata is not recognized:UserWarning")
@pytest.mark.parametrize("seed", range(6))
def test_parquet_v2_refs_load_under_every_hash_seed(experiment, seed):
    tmp, site = experiment
    pytest.importorskip("fastparquet")
    m = imagezarr.scan(tmp / "images é", **PSII_SCAN)
    out = tmp / "refs.parq"
    if not out.exists():
        export(m, "kerchunk", out, record_size=5)  # holes and several records per array
    check(foreign(site, tmp, "reference", str(out), seed=seed), m)
    check(foreign(site, tmp, "lazy-fastparquet", str(out), seed=seed), m)


def test_parquet_v2_refs_through_virtualizarr_and_the_engine(experiment):
    tmp, site = experiment
    pytest.importorskip("virtualizarr")
    m = imagezarr.scan(tmp / "images é", **PSII_SCAN)
    out = export(m, "kerchunk", tmp / "vz.parq", record_size=7)
    check(foreign(site, tmp, "virtualizarr-parquet", str(out)), m)
    check(foreign(site, tmp, "engine", str(out)), m)


def test_a_grouped_export_opens_by_group(experiment):
    tmp, site = experiment
    m = imagezarr.scan(tmp / "images é", **PSII_BY_PLANT)
    out = export(m, "kerchunk", tmp / "grouped.json")
    check(foreign(site, tmp, "engine", str(out), group="A2"), m, "A2")
    parq = export(m, "kerchunk", tmp / "grouped.parq", record_size=3)
    check(foreign(site, tmp, "reference", str(parq), group="A3"), m, "A3")


def test_multizarrtozarr_combines_two_nights_exported_apart(experiment, tmp_path):
    _, site = experiment
    images = tmp_path / "images"
    make_psii_experiment(images, plants=3, nights=2, steps=2, frames=2, shape=(6, 8), holes=0)
    parts = []
    for night in ("2020-05-31", "2020-06-01"):
        part = imagezarr.scan(images, glob=f"{night}/*.png", **PSII_SCAN)
        assert imagezarr.open_dataset(part).sizes["night"] == 1
        parts.append(str(export(part, "kerchunk", tmp_path / "nights" / f"{night}.json")))
    got = foreign(site, tmp_path, "mzz", "|".join(parts))
    assert got[0]["labels"]["night"] == ["2020-05-31", "2020-06-01"]
    check(got, imagezarr.scan(images, **PSII_SCAN))  # as the two nights scanned together


def test_zarr_3_refs_stay_available(tmp_path):
    make_psii_experiment(tmp_path / "img", plants=2, nights=1, steps=1, frames=2, shape=(4, 4))
    m = imagezarr.scan(tmp_path / "img", **PSII_SCAN)
    v3 = references(m, zarr_format=3)["refs"]
    assert "zarr.json" in v3
    assert not any(k.endswith(".zarray") for k in v3)
    with pytest.raises(ExportError, match="zarr_format must be 2 or 3"):
        references(m, zarr_format=4)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "imagezarr", "export"]
    done = subprocess.run(
        [
            *cmd,
            str(m.save(tmp_path / "m.imagezarr.json")),
            "-f",
            "kerchunk",
            "-o",
            str(out / "r.json"),
            "--zarr-format",
            "3",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "zarr.json" in json.loads((out / "r.json").read_text())["refs"]
    bad = subprocess.run(
        [
            *cmd,
            str(tmp_path / "m.imagezarr.json"),
            "-f",
            "links",
            "-o",
            str(out / "l"),
            "--zarr-format",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "--zarr-format apply to --format kerchunk only" in bad.stderr
