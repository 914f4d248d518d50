"""Stage 4, manifest: the single source of truth, saved as a small versioned JSON document.

The format is described in ``docs/manifest.md``. Loading treats the document as hostile input:
every field is type- and range-checked before use, and file entries may not leave the root.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .discover import FileEntry
from .errors import ManifestError, ManifestVersionError, UnsafePathError
from .layout import Coord, LayoutSpec, Node
from .probe import ImageInfo

__all__ = ["FORMAT", "VERSION", "Manifest", "load_manifest"]

FORMAT = "imagezarr-manifest"
VERSION = 1
SUFFIX = ".imagezarr.json"
# limits on what a hostile manifest can make us allocate
MAX_SIDE = 2**20
MAX_NDIM = 32
KINDS = ("int", "float", "str", "datetime")
DTYPES = ("bool", "uint8", "uint16", "uint32", "int8", "int16", "int32", "float32", "float64")


@dataclass(frozen=True, eq=False)
class Manifest:
    """A scanned dataset: the root, the file table, the layout used and the resulting nodes.

    ``root`` is an absolute path at run time; :meth:`save` stores it relative to the
    manifest's own folder so that moving both together keeps the manifest working.
    """

    root: str
    files: tuple[FileEntry, ...]
    layout: LayoutSpec
    nodes: tuple[Node, ...]
    unmatched: int = 0
    unreadable: tuple[str, ...] = ()
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def node(self, path: str = "") -> Node:
        """The node (group) at ``path``; ``""`` is the root group when there is no group_by."""
        for n in self.nodes:
            if n.path == path:
                return n
        known = ", ".join(repr(n.path) for n in self.nodes[:10])
        msg = f"no group {path!r} in this manifest; groups: {known}"
        raise KeyError(msg)

    def file_path(self, index: int) -> str:
        """Absolute local path of file ``index``."""
        return os.path.join(self.root, *self.files[index].path.split("/"))

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self, *, root: str | None = None) -> dict[str, Any]:
        """The JSON document; ``root`` is what to record as the root (default: absolute)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "generator": f"imagezarr {_version()}",
            "created": self.created,
            "root": self.root if root is None else root,
            "layout": self.layout.to_json(),
            "files": {
                "path": [f.path for f in self.files],
                "size": [f.size for f in self.files],
                "mtime_ns": [f.mtime_ns for f in self.files],
            },
            "unmatched": self.unmatched,
            "unreadable": list(self.unreadable),
            "groups": [_node_json(n) for n in self.nodes],
        }

    def save(
        self, path: str | os.PathLike[str], *, absolute_root: bool = False, force: bool = False
    ) -> Path:
        """Write the manifest atomically to ``path`` and return it.

        The root is recorded relative to the manifest's folder unless ``absolute_root``.
        Refuses to write inside the source folder unless ``force``.

        Examples
        --------
        >>> # m = imagezarr.scan("images/"); m.save("exp.imagezarr.json")
        """
        out = Path(path).absolute()
        root = Path(self.root)
        if not force and out.is_relative_to(root):
            msg = (
                f"refusing to write {str(out)!r} inside the source folder {self.root!r}: imagezarr "
                "never writes into the source; save elsewhere or pass force=True (--force)"
            )
            raise ManifestError(msg)
        recorded = self.root
        if not absolute_root:
            try:
                recorded = os.path.relpath(root, out.parent).replace(os.sep, "/")
            except ValueError:  # different drives on Windows
                recorded = self.root
        text = json.dumps(self.to_json(root=recorded), separators=(",", ":"), allow_nan=False)
        write_atomic(out, text.encode())
        return out


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _version() -> str:
    from . import __version__

    return __version__


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
        },
        "coords": {
            name: {
                "dims": list(c.dims),
                "kind": c.kind,
                "values": [_value_json(v) for v in c.values],
            }
            for name, c in n.coords.items()
        },
        "chunks": n.chunks.ravel().tolist(),
    }


def load_manifest(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
) -> Manifest:
    """Load and validate a manifest written by :meth:`Manifest.save`.

    ``root`` re-roots the manifest onto another copy of the images. Raises
    :class:`ManifestVersionError` for an unknown version and :class:`UnsafePathError` for an
    entry that leaves the root (unless ``allow_outside_root``).
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_bytes())
    except OSError as e:
        msg = f"cannot read manifest {str(p)!r}: {e.strerror or e}"
        raise ManifestError(msg) from e
    except (ValueError, RecursionError) as e:
        msg = f"{str(p)!r} is not a JSON manifest: {e}"
        raise ManifestError(msg) from e
    return from_json(
        doc, base=p.absolute().parent, name=str(p), root=root, allow_outside_root=allow_outside_root
    )


def from_json(
    doc: Any,
    *,
    base: Path,
    name: str = "<manifest>",
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
) -> Manifest:
    """Build a :class:`Manifest` from a parsed JSON document, validating every field."""
    v = _Validator(name)
    v.check(isinstance(doc, dict) and doc.get("format") == FORMAT, "not an imagezarr manifest")
    if doc.get("version") != VERSION:
        msg = (
            f"{name}: manifest format version {doc.get('version')!r} is not supported by this "
            f"imagezarr (reads version {VERSION}); upgrade imagezarr or re-scan the images"
        )
        raise ManifestVersionError(msg)
    recorded = v.typed(doc.get("root"), str, "root")
    top = Path(root) if root is not None else base / recorded
    files = v.files(doc.get("files"), allow_outside_root)
    layout = LayoutSpec.from_json(v.typed(doc.get("layout"), dict, "layout"))
    groups = v.typed(doc.get("groups"), list, "groups")
    nodes = tuple(v.node(g, len(files)) for g in groups)
    return Manifest(
        root=os.path.normpath(top.absolute()),
        files=files,
        layout=layout,
        nodes=nodes,
        unmatched=int(v.typed(doc.get("unmatched", 0), int, "unmatched")),
        unreadable=tuple(v.typed(doc.get("unreadable", []), list, "unreadable")),
        created=str(doc.get("created", "")),
    )


class _Validator:
    """Type and range checks that turn a hostile document into a clear ManifestError."""

    def __init__(self, name: str) -> None:
        self.name = name

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            msg = f"{self.name}: invalid manifest: {what}"
            raise ManifestError(msg)

    def typed(self, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
        self.check(
            isinstance(value, kind) and not isinstance(value, bool), f"{what} has a wrong type"
        )
        return value

    def files(self, doc: Any, allow_outside: bool) -> tuple[FileEntry, ...]:
        doc = self.typed(doc, dict, "files")
        paths = self.typed(doc.get("path"), list, "files.path")
        sizes = self.typed(doc.get("size"), list, "files.size")
        mtimes = self.typed(doc.get("mtime_ns"), list, "files.mtime_ns")
        self.check(len(paths) == len(sizes) == len(mtimes), "files columns differ in length")
        out = []
        for p, s, t in zip(paths, sizes, mtimes, strict=True):
            self.check(
                isinstance(p, str) and isinstance(s, int) and isinstance(t, int), f"file {p!r}"
            )
            self.check(s >= 0, f"file {p!r} has a negative size")
            if not allow_outside:
                check_relative(p, self.name)
            out.append(FileEntry(p, s, t))
        return tuple(out)

    def node(self, doc: Any, nfiles: int) -> Node:
        doc = self.typed(doc, dict, "group")
        path = self.typed(doc.get("path"), str, "group path")
        where = f"group {path!r}"
        dims = tuple(self.typed(doc.get("dims"), list, f"{where} dims"))
        shape = tuple(self.typed(doc.get("shape"), list, f"{where} shape"))
        self.check(len(dims) == len(shape) <= MAX_NDIM, f"{where}: dims and shape differ")
        self.check(all(isinstance(d, str) for d in dims), f"{where}: dims must be strings")
        self.check(all(isinstance(s, int) and 0 < s <= 2**40 for s in shape), f"{where}: shape")
        chunks = self.typed(doc.get("chunks"), list, f"{where} chunks")
        self.check(len(chunks) == math.prod(shape), f"{where}: chunks do not fill the shape")
        grid = np.array(chunks, dtype=np.int64) if chunks else np.empty(0, np.int64)
        self.check(bool(((grid >= -1) & (grid < nfiles)).all()), f"{where}: chunk file index")
        image = self.image(doc.get("image"), where)
        sizes = dict(zip(dims, shape, strict=True))
        coords = {
            str(k): self.coord(c, sizes, f"{where} coordinate {k!r}")
            for k, c in self.typed(doc.get("coords", {}), dict, f"{where} coords").items()
        }
        attrs = self.typed(doc.get("attrs", {}), dict, f"{where} attrs")
        return Node(path, attrs, dims, image, coords, grid.reshape(shape))

    def image(self, doc: Any, where: str) -> ImageInfo:
        doc = self.typed(doc, dict, f"{where} image")
        shape = tuple(self.typed(doc.get("shape"), list, f"{where} image shape"))
        self.check(
            len(shape) in (2, 3, 4)
            and all(isinstance(s, int) and 0 < s <= MAX_SIDE for s in shape),
            f"{where}: image shape {shape!r}",
        )
        dtype = doc.get("dtype")
        self.check(dtype in DTYPES, f"{where}: image dtype {dtype!r}")
        codec = self.typed(doc.get("codec"), dict, f"{where} codec")
        self.check(
            str(codec.get("name", "")).startswith("imagecodecs_"), f"{where}: codec {codec!r}"
        )
        fmt = self.typed(doc.get("format"), str, f"{where} format")
        axes = self.typed(doc.get("axes", ""), str, f"{where} axes")
        self.check(
            axes == "" or (len(axes) == len(shape) == len(set(axes)) and set(axes) <= set("yxcz")),
            f"{where}: axes {axes!r}",
        )
        return ImageInfo(fmt, shape, dtype, codec, axes)

    def coord(self, doc: Any, sizes: Mapping[str, int], what: str) -> Coord:
        doc = self.typed(doc, dict, what)
        dims = tuple(self.typed(doc.get("dims"), list, f"{what} dims"))
        self.check(all(d in sizes for d in dims), f"{what}: dims {dims} not among the group's")
        kind = doc.get("kind")
        self.check(kind in KINDS, f"{what}: kind {kind!r}")
        values = self.typed(doc.get("values"), list, f"{what} values")
        self.check(len(values) == math.prod(sizes[d] for d in dims), f"{what}: length")
        return Coord(dims, kind, tuple(_parse_value(x, kind) for x in values))


_VALUE_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "datetime": (str,),
}


def _parse_value(x: Any, kind: str) -> Any:
    if x is None:
        return None
    if not isinstance(x, _VALUE_TYPES[kind]) or isinstance(x, bool):
        msg = f"coordinate value {x!r} is not of kind {kind}"
        raise ManifestError(msg)
    if kind == "datetime":
        try:
            return datetime.fromisoformat(x)
        except ValueError as e:
            msg = f"coordinate value {x!r} is not an ISO datetime"
            raise ManifestError(msg) from e
    return float(x) if kind == "float" else x


def check_relative(path: str, name: str = "<manifest>") -> None:
    """Raise :class:`UnsafePathError` unless ``path`` stays inside the root.

    >>> check_relative("plants/A1.png")
    >>> check_relative("../secret.png")
    Traceback (most recent call last):
    imagezarr.errors.UnsafePathError: <manifest>: entry '../secret.png' leaves the dataset root ...
    """
    p = PurePosixPath(path)
    bad = (
        not path
        or p.is_absolute()
        or ".." in p.parts
        or "\\" in path
        or "\x00" in path
        or (len(path) > 1 and path[1] == ":")
    )
    if bad:
        msg = (
            f"{name}: entry {path!r} leaves the dataset root (absolute path, '..' or a drive); "
            "refusing to read it. Pass allow_outside_root=True only for a manifest you trust."
        )
        raise UnsafePathError(msg)
