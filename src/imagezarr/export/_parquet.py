"""fsspec's Parquet reference layout (``LazyReferenceMapper``) for a zarr v3 hierarchy.

That layout is keyed the zarr v2 way: a chunk key is ``field/i.j.k``, and fsspec finds an
array's chunk grid in a ``field/.zarray`` entry of ``.zmetadata``. So the Parquet form declares
zarr v3's ``v2`` chunk key encoding (separator ``.``) on every array and carries a small
``.zarray`` entry (shape and chunks only) per array for fsspec. Shapes, chunk grids, codecs,
fill values, dimension names and attributes are exactly those of the JSON form.

A hole cannot be a missing row: with pandas >= 3 a null path reads back as NaN, which fsspec
takes for a url. So each hole row holds the array's fill chunk (all zeros) encoded with the
array's own codec, checked to decode back to zeros exactly; a codec that cannot do that is an
:class:`ExportError`.
"""

from __future__ import annotations

import base64
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import ExportError
from ..hierarchy import split_chunk_key, v2_chunk_key
from ._common import staged_dir
from ._v2 import to_v2

__all__ = ["write_parquet"]

V2_KEYS = {"name": "v2", "configuration": {"separator": "."}}
V2_DOCS = (".zgroup", ".zarray", ".zattrs")


def _raw(value: str) -> bytes:
    if value.startswith("base64:"):
        return base64.b64decode(value[7:])
    return value.encode("utf-8")


def write_parquet(
    doc: dict[str, Any], out: Path, *, record_size: int, zarr_format: int = 3
) -> None:
    """Write reference document ``doc`` (Zarr v3 form, absolute urls) as a Parquet reference
    folder, whose metadata are Zarr v3 (as described above) or, with ``zarr_format=2``, the
    v2 documents of :func:`~imagezarr.export._v2.to_v2`: the layout fsspec was made for,
    chunk rows the same."""
    try:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        msg = "Parquet references need pandas and pyarrow: pip install 'imagezarr[kerchunk]'"
        raise ExportError(msg) from e
    if "templates" in doc:
        msg = "fsspec's Parquet references do not support templates; use JSON with --templates"
        raise ExportError(msg)
    del pd
    refs = doc["refs"]
    meta: dict[str, Any] = {}
    grids: dict[str, tuple[int, ...]] = {}
    for key, value in refs.items():
        if key == "zarr.json" or key.endswith("/zarr.json"):
            node = json.loads(value)
            field = key[: -len("/zarr.json")] if "/" in key else ""
            if node.get("node_type") == "array":
                node["chunk_key_encoding"] = V2_KEYS
                shape = node["shape"]
                chunks = node["chunk_grid"]["configuration"]["chunk_shape"]
                meta[f"{field}/.zarray"] = {"shape": shape, "chunks": chunks}
                grids[field] = tuple(math.ceil(s / c) for s, c in zip(shape, chunks, strict=True))
            meta[key] = node
    v2 = to_v2(refs) if zarr_format == 2 else None  # strings re-encoded there: take those
    records: dict[tuple[str, int], dict[int, Any]] = defaultdict(dict)
    for key, value in refs.items():
        if key == "zarr.json" or key.endswith("/zarr.json"):
            continue
        field, _, index = key.partition("/c")
        if v2 is not None:
            value = v2[v2_chunk_key(*split_chunk_key(key))]  # type: ignore[misc]
        grid = grids[field]
        idx = [int(p) for p in index.strip("/").split("/")] if index.strip("/") else [0]
        flat = 0
        for i, n in zip(idx, grid or (1,), strict=True):
            flat = flat * n + i
        records[(field, flat // record_size)][flat % record_size] = value
    for field, grid in grids.items():
        total = math.prod(grid)
        holes = [
            (field, r)
            for r in range(math.ceil(total / record_size))
            if len(records[(field, r)]) < min(record_size, total - r * record_size)
        ]
        if holes:
            fill = _fill_chunk(meta[f"{field}/zarr.json" if field else "zarr.json"], field)
            for key in holes:
                n = min(record_size, total - key[1] * record_size)
                for i in range(n):
                    records[key].setdefault(i, fill)
    with staged_dir(out) as tmp:
        for (field, record), rows in records.items():
            paths: list[str | None] = [None] * record_size
            raws: list[bytes | None] = [None] * record_size
            for i, value in rows.items():
                if isinstance(value, list):
                    paths[i] = value[0]
                else:
                    raws[i] = value if isinstance(value, bytes) else _raw(value)
            table = pa.table(
                {
                    "path": pa.array(paths, pa.string()),
                    "offset": pa.array([0] * record_size, pa.int64()),
                    "size": pa.array([0] * record_size, pa.int64()),
                    "raw": pa.array(raws, pa.binary()),
                }
            )
            folder = tmp.joinpath(*field.split("/"))
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"refs.{record}.parq", compression="zstd")
        if v2 is not None:
            meta = {k: json.loads(v) for k, v in v2.items() if k.rpartition("/")[2] in V2_DOCS}
        met = {"metadata": meta, "record_size": record_size}
        (tmp / ".zmetadata").write_text(json.dumps(met, ensure_ascii=False), encoding="utf-8")


def _fill_chunk(node: dict[str, Any], field: str) -> bytes:
    """One chunk of zeros encoded with the array's codecs; verified to decode to zeros."""
    import numpy as np
    import zarr
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    doc = dict(node)
    doc["shape"] = doc["chunk_grid"]["configuration"]["chunk_shape"]
    doc["chunk_key_encoding"] = {"name": "default", "configuration": {"separator": "/"}}
    store = zarr.storage.MemoryStore()
    proto = default_buffer_prototype()
    sync(store.set("zarr.json", proto.buffer.from_bytes(json.dumps(doc).encode())))
    arr = zarr.open_array(store, mode="r+", zarr_format=3, config={"write_empty_chunks": True})
    arr[...] = 0
    key = "c/" + "/".join("0" * len(doc["shape"])) if doc["shape"] else "c"
    data = store._store_dict[key].to_bytes()
    if not bool(np.all(arr[...] == 0)):
        msg = (
            f"array {field!r}: its codec cannot encode an all-zero chunk exactly, so Parquet "
            "references cannot express its holes; export as JSON references instead"
        )
        raise ExportError(msg)
    return data
