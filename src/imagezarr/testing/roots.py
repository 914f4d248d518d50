"""The contract every :class:`~imagezarr.roots.Root` keeps, as a reusable test suite.

Subclass :class:`RootTests` (as zarr's ``StoreTests``) and give it ``make_root(files)``: a
root whose files are exactly ``files`` (relative path -> bytes). The same tests then run for
a local folder, an S3 bucket, an HTTP server, or a root of your own. A root that cannot list
(plain HTTP) or write sets ``can_list`` / ``can_write`` to False and those tests skip.

>>> issubclass(RootTests, object)
True
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from ..roots import READ_ERRORS, Root, TooLarge

__all__ = ["SAMPLE", "RootTests"]

# names a root must carry as they are: spaces, umlauts, a '#', nested folders, a dotted dir
SAMPLE: dict[str, bytes] = {
    "a.png": b"\x89PNG\r\n\x1a\n" + bytes(range(64)),
    "night 1/Größe ü.tif": b"II*\x00" + b"x" * 300,
    "night 1/deep/b#1.jpg": b"\xff\xd8\xff" + b"y" * 5000,
    "v1.2/c.bmp": b"BM" + b"z" * 40,
}


class RootTests:
    """Tests of the :class:`~imagezarr.roots.Root` contract; subclass and define
    :meth:`make_root`."""

    can_list = True
    can_write = True

    def make_root(self, files: Mapping[str, bytes]) -> Root:
        """A root holding exactly ``files``."""
        raise NotImplementedError

    @pytest.fixture
    def root(self) -> Root:
        return self.make_root(SAMPLE)

    # -- reading ---------------------------------------------------------------------------

    def test_read_gives_the_bytes_and_their_stat(self, root: Root) -> None:
        for rel, data in SAMPLE.items():
            got, st = root.read(rel)
            assert got == data, rel
            assert st.size == len(data), rel
            assert root.stat(rel).size == len(data), rel

    def test_async_reads_agree_with_sync_ones(self, root: Root) -> None:
        async def both() -> list[Any]:
            rel = "night 1/deep/b#1.jpg"
            return [await root.read_async(rel), await root.stat_async(rel)]

        (data, st), st2 = asyncio.run(both())
        assert data == SAMPLE["night 1/deep/b#1.jpg"]
        assert st.size == st2.size == len(data)

    def test_ranges_and_heads(self, root: Root) -> None:
        data = SAMPLE["night 1/deep/b#1.jpg"]
        assert root.read_range("night 1/deep/b#1.jpg", 10, 100) == data[10:110]
        assert root.head("night 1/deep/b#1.jpg", 16) == data[:16]
        assert root.head("a.png", 10_000) == SAMPLE["a.png"]  # a short file: all of it

    def test_a_limit_bounds_what_is_read(self, root: Root) -> None:
        """``limit`` (the size a manifest recorded) bounds the allocation: a larger file is
        refused before its body is fetched (``TooLarge``), or at most ``limit + 1`` bytes
        come back with a stat that shows the real size, which the freshness check refuses."""
        rel = "night 1/deep/b#1.jpg"
        try:
            data, st = root.read(rel, limit=100)
        except TooLarge:
            pass
        else:
            assert len(data) <= 101
            assert st.size == len(SAMPLE[rel])
        assert root.read("a.png", limit=len(SAMPLE["a.png"]))[0] == SAMPLE["a.png"]

    def test_missing_files_are_file_not_found(self, root: Root) -> None:
        with pytest.raises(FileNotFoundError):
            root.read("night 1/nope.png")
        with pytest.raises(FileNotFoundError):
            root.stat("nope.png")

    def test_paths_leaving_the_root_are_refused(self, root: Root) -> None:
        for rel in ("../outside.png", "night 1/../../outside.png", "/etc/passwd"):
            with pytest.raises((ValueError, *READ_ERRORS)):
                root.read(rel)

    def test_locations_name_the_file(self, root: Root) -> None:
        where = root.location("night 1/Größe ü.tif")
        assert where.replace("\\", "/").endswith("Größe ü.tif")
        assert root.url in where or not root.remote

    # -- listing -----------------------------------------------------------------------------

    def test_list_gives_every_file_with_its_size(self, root: Root) -> None:
        if not self.can_list:
            pytest.skip("this root cannot list")
        entries = {e.path: e.size for e in root.list(lambda rel: True)}
        assert entries == {rel: len(data) for rel, data in SAMPLE.items()}

    def test_list_keeps_what_the_filter_keeps_and_lists_a_prefix(self, root: Root) -> None:
        if not self.can_list:
            pytest.skip("this root cannot list")
        tifs = [e.path for e in root.list(lambda rel: rel.endswith(".tif"))]
        assert tifs == ["night 1/Größe ü.tif"]
        under = sorted(e.path for e in root.list(lambda rel: True, "night 1/"))
        assert under == ["night 1/Größe ü.tif", "night 1/deep/b#1.jpg"]

    def test_list_level_gives_folders_and_files_of_one_level(self, root: Root) -> None:
        if not self.can_list:
            pytest.skip("this root cannot list")
        folders, files = root.list_level(lambda rel: True)
        assert sorted(f.rstrip("/") for f in folders) == ["night 1", "v1.2"]
        assert [e.path for e in files] == ["a.png"]

    # -- writing -----------------------------------------------------------------------------

    def test_write_then_read_back(self, root: Root) -> None:
        if not self.can_write:
            pytest.skip("this root cannot write")
        root.write("out/new file.json", b"{}")
        assert root.read("out/new file.json")[0] == b"{}"
        root.write("out/new file.json", b"[1]")  # replaced whole
        assert root.read("out/new file.json")[0] == b"[1]"
