"""The same reference set as Zarr v2: what kerchunk's tools read.

kerchunk's xarray engine, ``kerchunk.combine.MultiZarrToZarr`` and VirtualiZarr's kerchunk
parsers expect Zarr v2 keys (``.zgroup``, ``.zarray``, ``.zattrs`` with
``_ARRAY_DIMENSIONS``, chunk keys ``name/i.j.k``) and numcodecs codec ids. Our hierarchy is
written once, as Zarr v3 (``hierarchy.build_metadata``); this module translates each v3
document into its v2 pair and each chunk key into the v2 form. The chunk bytes are the same:
the v3 ``bytes`` codec writes what v2 stores uncompressed, ``zstd`` frames bytes exactly as
numcodecs' ``Zstd`` does, and an image chunk is the file whose imagecodecs codec
(``imagecodecs_png``, ...) has the same name and configuration in both registries (readers
call ``imagecodecs.numcodecs.register_codecs()``). Strings are the exception: v3's variable-
length strings become fixed-width unicode (``<U<n>``, n the longest), because VirtualiZarr
cannot type v2 object arrays ("ambiguous"), while every reader takes ``<U``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..errors import ExportError
from ..hierarchy import split_chunk_key, v2_chunk_key

__all__ = ["to_v2"]

_STRING = "string"


def _is_doc(key: str) -> bool:
    return key == "zarr.json" or key.endswith("/zarr.json")


def _dtype(data_type: str) -> str:
    """The v2 dtype of a non-string v3 data type: little-endian."""
    return np.dtype(data_type).newbyteorder("<").str


def _unicode(chunks: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The ``<U<n>`` dtype and the re-encoded chunks of a v3 string array's inline chunks."""
    import base64

    from numcodecs import VLenUTF8

    decoded = {}
    for key, value in chunks.items():
        raw = base64.b64decode(value.removeprefix("base64:"))
        decoded[key] = np.asarray(VLenUTF8().decode(raw), dtype=object)
    width = max([1, *(len(str(v)) for a in decoded.values() for v in a.ravel())])
    dtype = np.dtype(f"<U{width}")
    out = {}
    for key, values in decoded.items():
        data = np.asarray(values.astype(str), dtype=dtype).tobytes()
        out[key] = "base64:" + base64.b64encode(data).decode("ascii")
    return dtype.str, out


def _compressor(name: str, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The v2 ``compressor`` of a v3 codec chain (v2 ``filters`` are never needed)."""
    compressor: dict[str, Any] | None = None
    for codec in doc["codecs"]:
        kind, config = codec["name"], dict(codec.get("configuration") or {})
        if kind == "bytes":
            if config.get("endian", "little") != "little":
                msg = f"{name}: big-endian chunks have no v2 form here"
                raise ExportError(msg)
        elif kind == "vlen-utf8":
            pass  # re-encoded as fixed-width unicode (see the module docstring)
        elif kind in ("zstd", "gzip") or kind.startswith("imagecodecs_"):
            if compressor is not None:
                msg = f"{name}: two compressors ({compressor['id']}, {kind}) have no v2 form"
                raise ExportError(msg)
            if kind == "zstd":
                config.pop("checksum", None)  # numcodecs' Zstd has checksum too, default off
            compressor = {"id": kind, **config}
        else:
            msg = f"{name}: the codec {kind!r} has no Zarr v2 form in kerchunk references"
            raise ExportError(msg)
    return compressor


def to_v2(refs: dict[str, Any]) -> dict[str, Any]:
    """The v2 form of a v3 reference mapping (``key -> JSON text | base64 text | [url]``)."""
    docs = {k[: -len("zarr.json")]: json.loads(v) for k, v in refs.items() if _is_doc(k)}
    arrays = {p: d for p, d in docs.items() if d["node_type"] == "array"}
    chunks: dict[str, dict[str, Any]] = {p: {} for p in arrays}  # array path -> v2 key -> ref
    for key, value in refs.items():
        if _is_doc(key):
            continue
        split = split_chunk_key(key)
        if split is None or split[0] + "/" not in arrays:
            msg = f"{key!r}: not a chunk key of an array in the hierarchy"
            raise ExportError(msg)
        chunks[split[0] + "/"][v2_chunk_key(*split)] = value
    out: dict[str, Any] = {}
    for path, doc in docs.items():
        attrs = dict(doc.get("attributes") or {})
        if doc["node_type"] == "group":
            out[path + ".zgroup"] = json.dumps({"zarr_format": 2})
            out[path + ".zattrs"] = json.dumps(attrs, ensure_ascii=False)
            continue
        name = path.rstrip("/")
        compressor = _compressor(name, doc)
        if doc["data_type"] == _STRING:
            if any(not isinstance(v, str) for v in chunks[path].values()):
                msg = f"{name}: a string array whose chunks are not inline has no v2 form here"
                raise ExportError(msg)
            dtype, chunks[path] = _unicode(chunks[path])
            fill: Any = None
        else:
            # no fill value: xarray's default decoding would otherwise mask every pixel equal
            # to it (black in an image, 0 in a label) as NaN and turn the array into floats;
            # a hole still reads as zeros, which is what v2 readers fill with
            dtype, fill = _dtype(doc["data_type"]), None
        array = {
            "zarr_format": 2,
            "shape": doc["shape"],
            "chunks": doc["chunk_grid"]["configuration"]["chunk_shape"],
            "dtype": dtype,
            "compressor": compressor,
            "filters": None,
            "fill_value": fill,
            "order": "C",
            "dimension_separator": ".",
        }
        out[path + ".zarray"] = json.dumps(array)
        dims = doc.get("dimension_names") or []
        out[path + ".zattrs"] = json.dumps({**attrs, "_ARRAY_DIMENSIONS": dims}, ensure_ascii=False)
    for rows in chunks.values():
        out.update(rows)
    return out
