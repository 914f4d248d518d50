"""The zarr description of a manifest, built once and shared by the store, serve and exports.

- :mod:`._chunks`: the one chunk-key map (:class:`ChunkMap`: key <-> node + index <-> file).
- :mod:`._metadata`: the one metadata builder (:func:`build_metadata`, with the variants
  serve needs) and the coordinate chunks.
- :mod:`._ome`: OME-Zarr 0.5 attributes of an image group.
"""

from __future__ import annotations

from ._chunks import (
    ChunkMap,
    ChunkRef,
    chunk_key,
    chunk_refs,
    image_array_path,
    split_chunk_key,
    v2_chunk_key,
)
from ._metadata import Metadata, build_metadata, path_chunk_shape
from ._ome import ome_attributes

__all__ = [
    "ChunkMap",
    "ChunkRef",
    "Metadata",
    "build_metadata",
    "chunk_key",
    "chunk_refs",
    "image_array_path",
    "ome_attributes",
    "path_chunk_shape",
    "split_chunk_key",
    "v2_chunk_key",
]
