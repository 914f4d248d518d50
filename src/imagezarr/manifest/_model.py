"""The manifest value: root, file table, layout and nodes, and how it is written as JSON.

The format is described in ``docs/manifest.md``.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np

from .._version import __version__
from ..discover import FileTable
from ..errors import ManifestError
from ..layout import Exclusion, LayoutSpec, Node
from ..paths import PathColumn, match_paths
from ..roots import (
    Check,
    is_inside,
    is_url,
    normalize_check,
    parent_of,
    relative_root,
    root_url,
    same_time,
    stale,
    write_location,
)

__all__ = [
    "FORMAT",
    "PACK_ABOVE",
    "SUFFIX",
    "VERSION",
    "FileDiff",
    "Manifest",
    "diff_files",
    "emptied_labels",
]

FORMAT = "imagezarr-manifest"
VERSION = 1
SUFFIX = ".imagezarr.json"
PACK_ABOVE = 5000  # larger file tables and chunk grids are stored packed (zstd + base64)


@dataclass(frozen=True, eq=False)
class Manifest:
    """A scanned dataset: the root, the file table, the layout used and the resulting nodes.

    A pure value: what is there, never how it is reached on this machine (that is an
    :class:`~imagezarr.access.Access`, given to each verb). ``root`` is an absolute path or a
    URL; :meth:`save` stores it relative to the manifest's own folder so that moving both
    together keeps the manifest working.
    """

    root: str
    files: FileTable
    layout: LayoutSpec
    nodes: tuple[Node, ...]
    unmatched: int = 0
    unreadable: tuple[str, ...] = ()
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    # every file the scan left out, with the reason (pattern, table, filter, header, kind)
    excluded: tuple[Exclusion, ...] = ()
    # what the scan chose and why (inferred dims, demoted fields): for the summary, not saved
    notes: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.files, FileTable):
            object.__setattr__(self, "files", FileTable.from_entries(self.files))

    def without(self, paths: Sequence[str]) -> Manifest:
        """This manifest with ``paths`` taken out: their slots become holes and they are
        listed with the unreadable files (e.g. files that no longer decode).

        >>> import imagezarr.testing
        >>> m = imagezarr.testing.synthetic_manifest(2, 1, 1, 1)
        >>> less = m.without([m.files.paths[0]])
        >>> len(less.files), less.node("").file_index.ravel().tolist(), len(less.unreadable)
        (1, [-1, 0], 1)
        """
        drop = set(paths)
        keep = [i for i, p in enumerate(self.files.paths) if p not in drop]
        remap = np.full(len(self.files) + 1, -1, dtype=np.int64)  # index -1 maps to -1 too
        remap[keep] = np.arange(len(keep))
        table = FileTable.from_entries(self.files[i] for i in keep)
        nodes = tuple(replace(n, file_index=remap[n.file_index]) for n in self.nodes)
        gone = tuple(p for p in self.files.paths if p in drop)
        return replace(
            self, files=table, nodes=nodes, unreadable=tuple(sorted({*self.unreadable, *gone}))
        )

    def node(self, path: str = "") -> Node:
        """The node (group) at ``path``; ``""`` is the root group when there is no group_by."""
        for n in self.nodes:
            if n.path == path:
                return n
        known = ", ".join(repr(n.path) for n in self.nodes[:10])
        msg = f"no group {path!r} in this manifest; groups: {known}"
        raise KeyError(msg)

    @property
    def total_bytes(self) -> int:
        return int(self.files.sizes.sum())

    def to_json(self, *, root: str | None = None) -> dict[str, Any]:
        """The JSON document; ``root`` is what to record as the root (default: absolute)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "generator": f"imagezarr {__version__}",
            "created": self.created,
            "root": self.root if root is None else root,
            "layout": self.layout.to_json(),
            "files": _files_json(self.files),
            "unmatched": self.unmatched,
            "unreadable": list(self.unreadable),
            **({"excluded": [e.to_json() for e in self.excluded]} if self.excluded else {}),
            "groups": [_node_json(n) for n in self.nodes],
        }

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        absolute_root: bool = False,
        force: bool = False,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Path | str:
        """Write the manifest atomically to ``path`` and return it.

        The root is recorded relative to the manifest's folder unless ``absolute_root`` (or
        the two lie on different drives). Refuses to write inside the source folder (real
        paths compared, so links and ``..`` do not get around it) unless ``force``.
        ``storage_options`` reach a remote ``path`` (``s3://...``).

        Examples
        --------
        >>> import imagezarr.testing, tempfile, pathlib
        >>> m = imagezarr.testing.synthetic_manifest(2, 1, 1, 1, root=tempfile.mkdtemp())
        >>> out = m.save(pathlib.Path(tempfile.mkdtemp()) / "exp.imagezarr.json")
        >>> out.name
        'exp.imagezarr.json'
        """
        target, data = self.encoded(path, absolute_root=absolute_root, force=force)
        out = write_location(target, data, storage_options)
        return out if is_url(out) else Path(out)

    def encoded(
        self, path: str | os.PathLike[str], *, absolute_root: bool = False, force: bool = False
    ) -> tuple[str, bytes]:
        """Where :meth:`save` would write (absolute path or URL) and the bytes it would write."""
        target = root_url(path)
        if not force and is_inside(target, self.root):
            msg = (
                f"refusing to write {target!r} inside the source folder {self.root!r}: imagezarr "
                "never writes into the source; save elsewhere or pass force=True (--force)"
            )
            raise ManifestError(msg)
        recorded = (
            root_url(self.root) if absolute_root else relative_root(self.root, parent_of(target))
        )
        return target, _dumps(self.to_json(root=recorded))


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def _value_json(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _node_json(n: Node) -> dict[str, Any]:
    return {
        "path": n.path,
        "attrs": dict(n.attrs),
        "dims": list(n.dims),
        "shape": list(n.shape),
        "image": {
            "format": n.image.format,
            "shape": list(n.image.shape),
            "dtype": n.image.dtype,
            "codec": n.image.codec,
            "axes": n.image.axes,
            **({"palette": n.image.palette} if n.image.palette else {}),
        },
        "coords": {
            name: {
                "dims": list(c.dims),
                "kind": c.kind,
                "values": [_value_json(v) for v in c.values],
            }
            for name, c in n.coords.items()
        },
        "chunks": _ints_json(n.file_index.ravel()),
    }


def _pack(data: bytes) -> str:
    return "zstd:" + base64.b64encode(imagecodecs.zstd_encode(data, level=9)).decode()


def _ints_json(values: np.ndarray) -> list[int] | str:
    """Small integer columns stay readable JSON; large ones are packed little-endian int64."""
    if values.size <= PACK_ABOVE:
        return values.tolist()  # type: ignore[no-any-return]
    return _pack(values.astype("<i8").tobytes())


def _files_json(files: FileTable) -> dict[str, Any]:
    if len(files) <= PACK_ABOVE:
        paths: list[str] | str = list(files.paths)
    else:
        # NUL cannot occur in a file name, so it separates paths unambiguously
        joined = files.paths.data if isinstance(files.paths, PathColumn) else None
        paths = _pack(joined or "\0".join(files.paths).encode())
    out: dict[str, Any] = {
        "count": len(files),
        "path": paths,
        "size": _ints_json(files.sizes),
        "mtime_ns": _ints_json(files.mtimes),
    }
    for key, column in (("etag", files.etags), ("checksum", files.checksums)):
        if column is not None:
            texts = [t or "" for t in column]
            out[key] = texts if len(files) <= PACK_ABOVE else _pack("\0".join(texts).encode())
    return out


@dataclass(frozen=True, slots=True)
class FileDiff:
    """How two file tables differ, by relative path.

    ``retimed`` lists files whose modification time changed while the check in use calls
    them unchanged (same size, or same checksum): a copy or a ``touch``, not new content.
    """

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: int
    retimed: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()  # present but undecodable, made holes on request
    labels: tuple[str, ...] = ()  # labels (and groups) left without files, and where they went
    redone: int = 0  # times a saving update was made again: another process had saved first

    @property
    def any(self) -> bool:
        return bool(
            self.added
            or self.removed
            or self.changed
            or self.retimed
            or self.dropped
            or self.labels
        )


def _at(column: Sequence[str | None] | None, index: int) -> str | None:
    return None if column is None else column[index]


def diff_files(old: FileTable, new: FileTable, check: Check | str = "mtime") -> FileDiff:
    """Compare two file tables with the freshness check ``check`` (see :func:`stale`).

    >>> from imagezarr.discover import FileEntry
    >>> a = FileTable.from_entries([FileEntry("a.png", 1, 1), FileEntry("b.png", 2, 2)])
    >>> b = FileTable.from_entries([FileEntry("b.png", 3, 2), FileEntry("c.png", 1, 1)])
    >>> d = diff_files(a, b)
    >>> d.added, d.removed, d.changed, d.unchanged
    (('c.png',), ('a.png',), ('b.png',), 0)
    """
    mode = normalize_check(check)
    i, j = match_paths(old.paths, new.paths)
    # identical records need no judging; only the rest goes through the freshness check
    same = (old.sizes[i] == new.sizes[j]) & (old.mtimes[i] == new.mtimes[j])
    for column in ("etags", "checksums"):
        a_col, b_col = getattr(old, column), getattr(new, column)
        if a_col is not None or b_col is not None:
            same &= np.array(
                [_at(a_col, x) == _at(b_col, y) for x, y in zip(i, j, strict=True)], dtype=bool
            )
    changed, retimed = [], []
    for k in np.flatnonzero(~same).tolist():
        was, now = old[int(i[k])], new[int(j[k])]
        if stale(was, now.stat, mode) is not None:
            changed.append(now.path)
        elif not same_time(was.mtime_ns, now.mtime_ns):
            retimed.append(now.path)
    kept_old, kept_new = np.zeros(len(old), bool), np.zeros(len(new), bool)
    kept_old[i], kept_new[j] = True, True
    return FileDiff(
        added=tuple(sorted(new.paths[int(k)] for k in np.flatnonzero(~kept_new))),
        removed=tuple(sorted(old.paths[int(k)] for k in np.flatnonzero(~kept_old))),
        changed=tuple(sorted(changed)),
        unchanged=len(i) - len(changed),
        retimed=tuple(sorted(retimed)),
    )


def emptied_labels(old: Manifest, new: Manifest, *, kept: bool) -> tuple[str, ...]:
    """One line per label (and group) of ``old`` that ``new`` holds no file of, saying where
    it went: removed from its coordinate, or (``kept``) kept as a slice of holes.

    >>> import imagezarr.testing
    >>> m = imagezarr.testing.synthetic_manifest(2, 1, 1, 1)
    >>> emptied_labels(m, m.without([m.files.paths[0]]), kept=True)
    ("barcode='A1': no file left, kept as holes",)
    """
    lines = []
    before = {n.path: n for n in old.nodes}
    now = {n.path for n in new.nodes}
    for path in sorted(before.keys() - now):
        lines.append(f"group {path!r}: no file left, removed")
    for node in new.nodes:
        prev = before.get(node.path)
        if prev is None:
            continue
        where = f"{node.path}: " if node.path else ""
        for d in node.dims:
            # a dim of both (dims may have been chosen again), labelled in both
            if d not in prev.dims or d not in prev.coords or d not in node.coords:
                continue
            if kept:  # labels whose slice is all holes now, and was not before
                empty_before = set(_empty_labels(prev, d))
                gone = [v for v in _empty_labels(node, d) if v not in empty_before]
                lines += [f"{where}{d}={_shown(v)}: no file left, kept as holes" for v in gone]
            else:
                present = set(node.coords[d].values)
                gone = [v for v in prev.coords[d].values if v not in present]
                lines += [f"{where}{d}={_shown(v)}: no file left, removed from {d}" for v in gone]
    return tuple(lines)


def _empty_labels(node: Node, dim: str) -> list[Any]:
    axis = node.dims.index(dim)
    others = tuple(a for a in range(node.file_index.ndim) if a != axis)
    empty = ~(node.file_index >= 0).any(axis=others)
    labels = node.coords[dim].values
    return [labels[k] for k in np.flatnonzero(empty).tolist()]


def _shown(value: Any) -> str:
    return repr(value.isoformat(sep=" ") if isinstance(value, datetime) else value)
