"""The one map between zarr chunk keys and the images of a manifest.

``<group>/image/c/<i>/<j>/.../0/0`` names the image at outer index ``(i, j, ...)`` of a node
(the image dims are one chunk each, so their indices are always 0). The store reads through
it, ``serve`` answers requests with it, the viewer and the contact sheet ask it for keys, the
exports list references from it; none parses or writes a key itself. Only the keys zarr
writes are accepted: ``"0"``, ``"12"``; never ``"+0"``, ``"00"`` or ``"٠"``.

>>> from imagezarr.testing import synthetic_manifest
>>> m = synthetic_manifest(2, 1, 1, 3)
>>> chunks = ChunkMap(m.nodes)
>>> key = chunks.key(m.nodes[0], (1, 0, 0, 2))
>>> key
'image/c/1/0/0/2/0/0'
>>> ref = chunks.parse(key)
>>> ref.index, ref.file == int(m.nodes[0].file_index[1, 0, 0, 2]), ref.array
((1, 0, 0, 2), True, 'image')
>>> chunks.parse("image/c/01/0/0/2/0/0") is None, chunks.parse("image/zarr.json") is None
(True, True)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..layout import Node
from ..manifest import Manifest

__all__ = [
    "ChunkMap",
    "ChunkRef",
    "chunk_key",
    "chunk_refs",
    "image_array_path",
    "split_chunk_key",
    "v2_chunk_key",
]


def image_array_path(node: Node) -> str:
    """The key prefix of a node's image array: ``"A1/image"`` or ``"image"``."""
    return f"{node.path}/image" if node.path else "image"


def chunk_key(node: Node, index: Sequence[int]) -> str:
    """The zarr chunk key of the image at outer ``index`` of ``node``."""
    parts = [str(int(i)) for i in index] + ["0"] * len(node.image.shape)
    return f"{image_array_path(node)}/c/" + "/".join(parts)


def split_chunk_key(key: str) -> tuple[str, tuple[int, ...]] | None:
    """The array path and chunk indices of any zarr v3 default-encoded chunk key (coordinate
    arrays included), or None for a key that is not one.

    >>> split_chunk_key("A1/image/c/1/0/0"), split_chunk_key("night/c")
    (('A1/image', (1, 0, 0)), ('night', ()))
    >>> split_chunk_key("a/zarr.json") is None
    True
    """
    if key.endswith("/c"):  # a 0-d array's one chunk
        return key[:-2], ()
    head, sep, tail = key.rpartition("/c/")
    parts = tail.split("/")
    if not sep or not head or not all(_canonical(p) for p in parts):
        return None
    return head, tuple(int(p) for p in parts)


def v2_chunk_key(array: str, index: Sequence[int]) -> str:
    """The zarr v2 key (separator ``.``) of the chunk at ``index`` of ``array``.

    >>> v2_chunk_key("A1/image", (1, 0, 0)), v2_chunk_key("night", ())
    ('A1/image/1.0.0', 'night/0')
    """
    return f"{array}/{'.'.join(map(str, index)) if index else '0'}"


def chunk_refs(manifest: Manifest) -> Iterator[tuple[str, int]]:
    """Every present image chunk of ``manifest`` as ``(key, file index)`` (see
    :meth:`ChunkMap.refs`)."""
    return ChunkMap(manifest.nodes).refs()


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """What an image chunk key names: the node, the outer index, the file (-1: a hole)."""

    node: Node
    index: tuple[int, ...]
    file: int

    @property
    def array(self) -> str:
        """The image array's path (``"A1/image"``)."""
        return image_array_path(self.node)


def _canonical(part: str) -> bool:
    return part.isascii() and part.isdigit() and (part == "0" or not part.startswith("0"))


class ChunkMap:
    """Chunk keys <-> (node, outer index) <-> file index, for the nodes of one manifest."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.nodes = tuple(nodes)
        # "<array>/c/" -> (node, number of index parts after it): a dict lookup per depth
        self._prefixes = {
            f"{image_array_path(n)}/c/": (n, n.file_index.ndim + len(n.image.shape))
            for n in self.nodes
        }
        self._depths = sorted({k for _, k in self._prefixes.values()})

    def key(self, node: Node, index: Sequence[int]) -> str:
        """The chunk key of the image at outer ``index`` of ``node``."""
        return chunk_key(node, index)

    def parse(self, key: str) -> ChunkRef | None:
        """What ``key`` names, or None when it is not the key of an image chunk in the grid."""
        parts = key.split("/")
        for depth in self._depths:
            if len(parts) <= depth:
                continue
            hit = self._prefixes.get("/".join(parts[:-depth]) + "/")
            if hit is None or hit[1] != depth:
                continue
            node = hit[0]
            if not all(_canonical(p) for p in parts[-depth:]):
                return None
            idx = [int(p) for p in parts[-depth:]]
            outer, inner = tuple(idx[: node.file_index.ndim]), idx[node.file_index.ndim :]
            if any(inner) or any(not 0 <= i < s for i, s in zip(outer, node.shape, strict=True)):
                return None
            return ChunkRef(node, outer, int(node.file_index[outer]))
        return None

    def file(self, key: str) -> int | None:
        """The file index of an image chunk key, -1 for a hole, None for any other key."""
        ref = self.parse(key)
        return None if ref is None else ref.file

    def refs(self) -> Iterator[tuple[str, int]]:
        """Every present image chunk as ``(key, file index)``, node by node, in C order."""
        for node in self.nodes:
            for row in np.argwhere(node.file_index >= 0):
                idx = tuple(int(i) for i in row)
                yield chunk_key(node, idx), int(node.file_index[idx])

    def keys(self, prefix: str = "") -> Iterator[str]:
        """The keys of every present image chunk that start with ``prefix``."""
        for node in self.nodes:
            base = image_array_path(node) + "/c/"
            if base.startswith(prefix) or prefix.startswith(base):
                for row in np.argwhere(node.file_index >= 0):
                    key = chunk_key(node, tuple(int(i) for i in row))
                    if key.startswith(prefix):
                        yield key

    def children(self, prefix: str) -> set[str]:
        """The names below ``prefix`` inside the chunk trees (``list_dir`` of a store),
        derived from the grids: a million files list without a million keys."""
        out: set[str] = set()
        for node in self.nodes:
            out |= _grid_children(node, prefix)
        return out


def _grid_children(node: Node, prefix: str) -> set[str]:
    array = image_array_path(node)
    present = node.file_index >= 0
    if prefix == array:
        return {"c"} if present.any() else set()
    if not (prefix + "/").startswith(array + "/c/"):
        return set()
    tail = prefix[len(array) + 2 :].strip("/")
    if tail and not all(_canonical(p) for p in tail.split("/")):
        return set()
    idx = tuple(int(p) for p in tail.split("/")) if tail else ()
    outer = present.ndim
    if len(idx) >= outer + len(node.image.shape):
        return set()
    if len(idx) >= outer:  # inside the image dims: every present chunk has index 0 there
        head, inner = idx[:outer], idx[outer:]
        inside = all(0 <= i < s for i, s in zip(head, present.shape, strict=True))
        return {"0"} if inside and not any(inner) and present[head] else set()
    if any(not 0 <= i < s for i, s in zip(idx, present.shape, strict=False)):
        return set()
    sub = present[idx]
    axes = tuple(range(1, sub.ndim))
    hits = sub.any(axis=axes) if axes else sub
    return {str(int(i)) for i in np.nonzero(hits)[0]}
