"""The one chunk-key map: every key the store, serve and the viewer use comes from it."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import zarr

import imagezarr
from imagezarr.hierarchy import ChunkMap, chunk_refs
from imagezarr.testing import PSII_SCAN, make_psii_experiment

SRC = Path(__file__).resolve().parents[1] / "src" / "imagezarr"


@pytest.fixture
def grouped(tmp_path):
    make_psii_experiment(tmp_path / "img", plants=3, nights=2, steps=2, frames=2, shape=(4, 6))
    return imagezarr.scan(
        tmp_path / "img",
        **{**PSII_SCAN, "group_by": "barcode", "dims": ("night", "param", "frame")},
    )


def test_every_index_round_trips_and_nothing_else_parses(grouped):
    chunks = ChunkMap(grouped.nodes)
    for node in grouped.nodes:
        for idx in itertools.product(*map(range, node.shape)):
            ref = chunks.parse(chunks.key(node, idx))
            assert ref is not None
            assert (ref.node.path, ref.index, ref.file) == (node.path, idx, node.file_index[idx])
        key = chunks.key(node, (0,) * len(node.shape))
        base, _, tail = key.rpartition("/c/")
        for bad in ("01", "+0", "٠", "-1", str(max(node.shape) + 5), "0x0"):
            assert chunks.parse(f"{base}/c/{bad}/{tail.split('/', 1)[1]}") is None
        assert chunks.parse(key + "/0") is None  # one index too many
        assert chunks.parse(key.rsplit("/", 1)[0] + "/1") is None  # image dims are one chunk
    assert chunks.parse("nope/image/c/0/0/0/0/0") is None


def test_refs_and_listing_agree_with_what_zarr_reads(grouped):
    store = imagezarr.open_store(grouped)
    listed = {k for k in store._keys() if "/c/" in k and "/image/" in k}
    refs = dict(chunk_refs(grouped))
    assert set(refs) == listed
    assert all(i >= 0 for i in refs.values())
    group = zarr.open_group(store, mode="r")
    for node in grouped.nodes:
        arr = group[f"{node.path}/image"]
        present = np.asarray(group[f"{node.path}/present"][...])
        assert int(present.sum()) == sum(1 for k in refs if k.startswith(f"{node.path}/image/"))
        # list_dir of the chunk tree, derived from the grid, is what the keys say
        first = store.chunks.children(f"{node.path}/image/c")
        assert first == {k.split("/")[3] for k in refs if k.startswith(f"{node.path}/image/c/")}
        assert arr.nchunks_initialized == int(present.sum())


def test_no_module_parses_or_writes_chunk_keys_itself():
    """Only hierarchy/_chunks.py knows the key syntax; the store, serve and viewer ask it."""
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        if rel.startswith("hierarchy/"):
            continue
        text = path.read_text()
        if re.search(r"""["']/c/["']|\[-k - 1\] == "c"|"c", \*""", text):
            offenders.append(rel)
        if rel.startswith("serve/") and re.search(r"store\._\w", text):
            offenders.append(rel + " (store internals)")
    assert offenders == []
