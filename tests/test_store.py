"""Stage 5: the read-only zarr store, pixel-exact against an independent decode."""

from __future__ import annotations

import os
import pickle

import imagecodecs
import numpy as np
import pytest
import zarr
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import cpu, default_buffer_prototype
from zarr.testing.store import StoreTests

import imagezarr
from imagezarr.errors import ChunkDecodeError, ChunkReadError, SourceChangedError
from imagezarr.layout import LayoutSpec
from imagezarr.manifest import Manifest
from imagezarr.roots import LocalRoot
from imagezarr.store import ImageZarrStore
from imagezarr.testing import FORMAT_SUFFIXES, PSII_BY_PLANT, random_image, write_image
from imagezarr.testing import PSII_SCAN as PSII

FUSED = "zarr.core.codec_pipeline.FusedCodecPipeline"
BATCHED = "zarr.core.codec_pipeline.BatchedCodecPipeline"


@pytest.fixture(params=[BATCHED, FUSED], ids=["batched", "fused"])
def pipeline(request):
    with zarr.config.set({"codec_pipeline.path": request.param}):
        yield request.param


def reference_decode(path):
    """imagecodecs' own decoder, called as the zarr codec calls it (GIF: palette indices)."""
    if path.suffix == ".gif":
        return imagecodecs.gif_decode(path.read_bytes(), asrgb=False)
    return imagecodecs.imread(path)


def expected_grid(m: Manifest, node, images) -> np.ndarray:
    """The array the store must serve, built with imagecodecs.imread file by file."""
    out = np.zeros(node.shape + tuple(node.image.shape), dtype=node.image.dtype)
    for idx in np.argwhere(node.file_index >= 0):
        path = m.files[node.file_index[tuple(idx)]].path
        out[tuple(idx)] = imagecodecs.imread(images / path)
    return out


def test_full_read_is_pixel_exact_with_holes_as_zero(psii, pipeline):
    images, truth = psii
    m = imagezarr.scan(images, **PSII)
    node = m.node("")
    assert int((node.file_index < 0).sum()) == 4 * 4 * 3  # 4 missing visits x steps x frames
    arr = imagezarr.open_group(m)["image"]
    data = arr[:]
    np.testing.assert_array_equal(data, expected_grid(m, node, images))
    # and against the generator's own pixels, slot by slot
    for idx in np.argwhere(node.file_index >= 0)[:20]:
        np.testing.assert_array_equal(
            data[tuple(idx)], truth[m.files[node.file_index[tuple(idx)]].path]
        )
    hole = tuple(np.argwhere(node.file_index < 0)[0])
    assert not data[hole].any()


def test_groups_each_hold_their_own_array(psii):
    images, _ = psii
    m = imagezarr.scan(images, **PSII_BY_PLANT)
    group = imagezarr.open_group(m)
    assert sorted(group.group_keys(), key=lambda k: int(k[1:])) == [f"A{i}" for i in range(1, 13)]
    for node in m.nodes:
        arr = group[f"{node.path}/image"]
        assert arr.metadata.dimension_names == ("night", "param", "frame", "y", "x")
        np.testing.assert_array_equal(arr[:], expected_grid(m, node, images))
        assert dict(group[node.path].attrs) == {"barcode": node.path}


@pytest.mark.parametrize("suffix", FORMAT_SUFFIXES)
@pytest.mark.parametrize("shape", [(20, 24), (20, 24, 3)], ids=["gray", "rgb"])
def test_every_format_reads_pixel_exact(tmp_path, suffix, shape, pipeline):
    if suffix == ".webp" and len(shape) == 2:
        pytest.skip("the WebP encoder writes RGB only: no gray variant to test")
    if suffix == ".gif" and len(shape) == 3:
        pytest.skip("GIF holds palette indices, decoded as (h, w): covered by the gray variant")
    images = tmp_path / "img"
    for i in range(3):
        write_image(images / f"s{i}{suffix}", random_image(shape, seed=i))
    m = imagezarr.scan(images, pattern=r"s(?P<i>\d)\.\w+", types={"i": "int"})
    arr = imagezarr.open_group(m)["image"]
    expected = np.stack([reference_decode(images / f"s{i}{suffix}") for i in range(3)])
    assert arr.metadata.codecs[0].to_dict()["name"] == m.nodes[0].image.codec["name"]
    np.testing.assert_array_equal(arr[:], expected)


def test_uint16_png_keeps_its_dtype(tmp_path):
    pixels = random_image((10, 12), "uint16", seed=3)
    write_image(tmp_path / "img" / "a.png", pixels)
    arr = imagezarr.open_group(imagezarr.scan(tmp_path / "img"))["image"]
    assert arr.dtype == np.uint16
    np.testing.assert_array_equal(arr[0], pixels)


def first_file(m: Manifest):
    node = m.node("")
    idx = tuple(np.argwhere(node.file_index >= 0)[0])
    return idx, m.files[node.file_index[idx]].path


def test_changed_file_raises_naming_it(psii, pipeline):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    idx, path = first_file(m)
    write_image(images / path, random_image((12, 16), seed=99))
    arr = imagezarr.open_group(m)["image"]
    with pytest.raises(SourceChangedError, match=rf"{path}: file changed since the scan") as info:
        arr[idx]
    assert info.value.path == path
    assert "imagezarr verify" in str(info.value)


def test_same_size_rewrite_is_caught_by_mtime(psii):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    idx, path = first_file(m)
    target = images / path
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF
    target.write_bytes(bytes(data))
    # coarse file systems (1-2 s mtimes) could keep the old time: move it on explicitly
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    with pytest.raises(SourceChangedError, match="modification time"):
        imagezarr.open_group(m)["image"][idx]


def test_deleted_file_raises_naming_it(psii, pipeline):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    idx, path = first_file(m)
    (images / path).unlink()
    with pytest.raises(ChunkReadError, match=rf"{path}: file is missing"):
        imagezarr.open_group(m)["image"][idx]


def test_corrupt_bytes_with_original_stat_fail_to_decode_naming_the_file(psii, pipeline):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    idx, path = first_file(m)
    target = images / path
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[40:] = b"\x00" * (len(data) - 40)  # header intact, pixel data destroyed
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ChunkDecodeError, match=rf"{path}: cannot decode as PNG"):
        imagezarr.open_group(m)["image"][idx]


def test_store_pickles_and_reads_the_same(psii):
    images, _ = psii
    store = imagezarr.open_store(imagezarr.scan(images, **PSII))
    clone = pickle.loads(pickle.dumps(store))
    assert clone == store
    a = zarr.open_group(store, mode="r")["image"][2, 1]
    b = zarr.open_group(clone, mode="r")["image"][2, 1]
    np.testing.assert_array_equal(a, b)


async def test_getsize_comes_from_the_manifest_without_reading(psii, monkeypatch):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    store = imagezarr.open_store(m)
    idx, path = first_file(m)
    key = "image/c/" + "/".join(map(str, idx)) + "/0/0"
    monkeypatch.setattr(LocalRoot, "read", lambda *a, **k: pytest.fail("read a file"))
    assert await store.getsize(key) == (images / path).stat().st_size
    assert await store.exists(key)


async def test_keys_listing_and_byte_ranges(psii):
    images, _ = psii
    m = imagezarr.scan(images, **PSII)
    store = imagezarr.open_store(m)
    keys = [k async for k in store.list()]
    chunk_keys = [k for k in keys if k.startswith("image/c/")]
    assert len(chunk_keys) == len(m.files)
    assert "zarr.json" in keys
    assert "image/zarr.json" in keys
    assert "path/zarr.json" in keys
    top = sorted([k async for k in store.list_dir("")])
    assert {"zarr.json", "image", "path", "present", "barcode", "timestamp"} <= set(top)
    key = chunk_keys[0]
    whole = (await store.get(key, default_buffer_prototype())).to_bytes()
    for req, want in [
        (RangeByteRequest(2, 9), whole[2:9]),
        (OffsetByteRequest(5), whole[5:]),
        (SuffixByteRequest(4), whole[-4:]),
    ]:
        assert (await store.get(key, default_buffer_prototype(), req)).to_bytes() == want
    # a hole and a key out of range are simply absent
    hole = tuple(np.argwhere(m.node("").file_index < 0)[0])
    assert (
        await store.get("image/c/" + "/".join(map(str, hole)) + "/0/0", cpu.buffer_prototype)
        is None
    )
    assert await store.get("image/c/99/0/0/0/0/0", cpu.buffer_prototype) is None


def test_writes_are_refused(psii):
    images, _ = psii
    store = imagezarr.open_store(imagezarr.scan(images, **PSII))
    with pytest.raises(ValueError, match="read-only"):
        zarr.open_group(store, mode="a")
    with pytest.raises(NotImplementedError, match="always read-only"):
        store.with_read_only(False)


# -- zarr's own store contract ---------------------------------------------------------------


class _BackdoorStore(ImageZarrStore):
    """Test-only: starts empty so zarr's StoreTests can seed it through a back door."""

    def _setup(self) -> None:
        super()._setup()
        self._meta = {}


def _empty_manifest() -> Manifest:
    return Manifest(root=os.getcwd(), files=(), layout=LayoutSpec(), nodes=(), created="t")


_EMPTY = _empty_manifest()


class TestStoreContract(StoreTests[_BackdoorStore, cpu.Buffer]):
    store_cls = _BackdoorStore
    buffer_cls = cpu.Buffer

    async def set(self, store, key, value):
        store._meta[key] = value.to_bytes()

    async def get(self, store, key):
        return self.buffer_cls.from_bytes(store._meta[key])

    @pytest.fixture
    def store_kwargs(self):
        return {"manifest": _EMPTY}

    def test_store_repr(self, store):
        assert repr(store).startswith("ImageZarrStore(")

    def test_store_supports_writes(self, store):
        assert not store.supports_writes

    def test_store_supports_listing(self, store):
        assert store.supports_listing

    @staticmethod
    def _backdoor(store):
        async def set_(key, value):
            store._meta[key] = value.to_bytes()

        async def set_many(items):
            for k, v in items:
                store._meta[k] = v.to_bytes()

        store.set = set_
        store._set_many = set_many
        return store

    async def test_list(self, store):
        await super().test_list(self._backdoor(store))

    async def test_list_prefix(self, store):
        await super().test_list_prefix(self._backdoor(store))

    async def test_list_empty_path(self, store):
        await super().test_list_empty_path(self._backdoor(store))

    async def test_list_dir(self, store):
        await super().test_list_dir(self._backdoor(store))

    async def test_getsize_prefix(self, store):
        await super().test_getsize_prefix(self._backdoor(store))

    async def test_exists(self, store):
        await super().test_exists(self._backdoor(store))

    async def test_set_if_not_exists(self, store):
        await super().test_set_if_not_exists(self._backdoor(store))

    @pytest.mark.parametrize(
        "byte_range",
        [
            None,
            RangeByteRequest(1, 4),
            OffsetByteRequest(1),
            SuffixByteRequest(1),
            RangeByteRequest(10, 20),
        ],
    )
    async def test_get_sync_byte_range_parity(self, store, byte_range):
        await super().test_get_sync_byte_range_parity(self._backdoor(store), byte_range)

    async def test_serializable_store(self, store):
        clone = pickle.loads(pickle.dumps(store))
        assert clone == store
        assert clone.read_only

    _READ_ONLY = "the store is read-only by design; writes go nowhere"

    def test_store_read_only(self):
        pytest.skip(self._READ_ONLY)

    def test_store_open_read_only(self):
        pytest.skip(self._READ_ONLY)

    def test_set(self):
        pytest.skip(self._READ_ONLY)

    def test_set_not_open(self):
        pytest.skip(self._READ_ONLY)

    def test_set_many(self):
        pytest.skip(self._READ_ONLY)

    def test_clear(self):
        pytest.skip(self._READ_ONLY)

    def test_set_sync(self):
        pytest.skip(self._READ_ONLY)

    def test_sync_async_set_get_parity(self):
        pytest.skip(self._READ_ONLY)


def test_planar_tiff_keeps_channels_first_and_names_them(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    images = tmp_path / "img"
    images.mkdir()
    planes = [random_image((3, 10, 12), seed=i) for i in range(2)]
    for i, p in enumerate(planes):
        tifffile.imwrite(images / f"s{i}.tif", p, planarconfig="separate", photometric="rgb")
    m = imagezarr.scan(images, pattern=r"s(?P<i>\d)\.tif", types={"i": "int"})
    assert m.nodes[0].image_dims == ("i", "c", "y", "x")
    arr = imagezarr.open_group(m)["image"]
    assert arr.metadata.dimension_names == ("i", "c", "y", "x")
    np.testing.assert_array_equal(arr[:], np.stack(planes))
