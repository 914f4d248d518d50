"""Loading a manifest: the document is hostile input until every field has been checked.

Every field is type- and range-checked before use, limits bound what a document can make us
allocate, and file entries may not leave the root.
"""

from __future__ import annotations

import base64
import json
import math
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np

from ..discover import FileTable
from ..errors import LayoutError, ManifestError, ManifestVersionError, UnsafePathError
from ..layout import Coord, Exclusion, LayoutSpec, Node
from ..paths import check_all_relative, check_relative
from ..probe import ImageInfo
from ..roots import READ_ERRORS, error_text, is_url, read_location, root_url
from ._model import FORMAT, VERSION, Manifest

__all__ = ["ManifestLike", "as_manifest", "from_json", "load_manifest"]

_ETAG = re.compile(r"[^\x00]{0,1024}", re.S)
_CHECKSUM = re.compile(r"(?:xxh3:[0-9a-f]{16})?")
# limits on what a hostile manifest can make us allocate
MAX_SIDE = 2**20
MAX_NDIM = 32
KINDS = ("int", "float", "str", "datetime")
MAX_PATH_BYTES = 4096
DTYPES = (
    "bool",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)
MAX_IMAGE_ELEMENTS = 2**33  # per image, as the probes allow: 2**31 pixels x a few samples
MAX_FILES = 2**27
# a grid may exceed its file count by holes, but not without bound (a zstd bomb of -1s)
GRID_SLACK, GRID_FLOOR = 64, 2**24


def load_manifest(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> Manifest:
    """Load and validate a manifest written by :meth:`Manifest.save`.

    ``path`` may be a local file or a URL (``s3://bucket/exp.imagezarr.json``). ``root``
    re-roots the manifest onto another copy of the images (a folder or a URL, e.g. a mirror);
    ``storage_options`` configure access to remote roots and are never saved. Raises
    :class:`ManifestVersionError` for an unknown version and :class:`UnsafePathError` for an
    entry that leaves the root (unless ``allow_outside_root``).
    """
    name = os.fspath(path)
    options = dict(storage_options or {})
    try:
        raw = read_location(name, options)
    except READ_ERRORS as e:
        msg = f"cannot read manifest {name!r}: {error_text(e)}"
        raise ManifestError(msg) from e
    where: Path | str = (
        name.rstrip("/").rpartition("/")[0] if is_url(name) else Path(name).absolute().parent
    )
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:
        msg = f"{name!r} is not a JSON manifest: {e}"
        raise ManifestError(msg) from e
    m = from_json(doc, base=where, name=name, root=root, allow_outside_root=allow_outside_root)
    return replace(m, storage_options=options, allow_outside_root=allow_outside_root)


ManifestLike = Manifest | str | os.PathLike[str]


def as_manifest(
    manifest: ManifestLike,
    *,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> Manifest:
    """A manifest object, loaded from a path or URL if need be, re-rooted onto ``root``.

    ``root`` is a copy of the images (a folder or a URL, e.g. a mirror); ``storage_options``
    reach remote manifests and roots; ``allow_outside_root`` lets entries and links lead out
    of the root (only for manifests you trust).
    """
    if not isinstance(manifest, Manifest):
        return load_manifest(
            manifest,
            root=root,
            allow_outside_root=allow_outside_root,
            storage_options=storage_options,
        )
    changes: dict[str, Any] = {}
    if root is not None:
        changes["root"] = root_url(root)
    if storage_options is not None:
        changes["storage_options"] = dict(storage_options)
    if allow_outside_root:
        changes["allow_outside_root"] = True
    return replace(manifest, **changes) if changes else manifest


def from_json(
    doc: Any,
    *,
    base: Path | str,
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
    if root is None:
        top = _resolve_root(recorded, base, name, allow_outside_root)
    else:  # a root given by the caller is relative to the current directory, like any path
        top = root_url(root)
    files = v.files(doc.get("files"), allow_outside_root)
    try:
        layout = LayoutSpec.from_json(v.typed(doc.get("layout"), dict, "layout"))
    except LayoutError as e:
        msg = f"{name}: invalid manifest: layout: {e}"
        raise ManifestError(msg) from e
    groups = v.typed(doc.get("groups"), list, "groups")
    nodes = tuple(v.node(g, len(files)) for g in groups)
    return Manifest(
        root=top,
        files=files,
        layout=layout,
        nodes=nodes,
        unmatched=int(v.typed(doc.get("unmatched", 0), int, "unmatched")),
        unreadable=tuple(v.typed(doc.get("unreadable", []), list, "unreadable")),
        created=str(doc.get("created", "")),
        excluded=_exclusions(v.typed(doc.get("excluded", []), list, "excluded"), name),
    )


def _exclusions(items: list[Any], name: str) -> tuple[Exclusion, ...]:
    try:
        return tuple(Exclusion.from_json(e if isinstance(e, dict) else {}) for e in items)
    except LayoutError as e:
        msg = f"{name}: invalid manifest: excluded: {e}"
        raise ManifestError(msg) from e


def _authority(url: str) -> str:
    """``scheme://host`` (or bucket) of a URL: where a remote manifest may point."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0]}"


def _resolve_root(recorded: str, base: Path | str, name: str, allow_outside: bool) -> str:
    """An absolute root: URLs as they are, relative roots against the manifest's location.

    A manifest fetched from a URL may only point at its own host or bucket: otherwise a
    shared manifest could make the reader fetch any URL or local file.
    """
    if is_url(recorded):
        top = recorded.rstrip("/")
    elif os.path.isabs(recorded) and not isinstance(base, str):
        return os.path.normpath(recorded)
    elif isinstance(base, str):  # a manifest in a bucket with a relative root
        scheme, _, rest = base.partition("://")
        host, _, path = rest.partition("/")
        joined = posixpath.normpath(posixpath.join("/", path, recorded))
        top = f"{scheme}://{host}{joined}".rstrip("/")
    else:
        return os.path.normpath((base / recorded).absolute())
    if isinstance(base, str) and not allow_outside and _authority(top) != _authority(base):
        msg = (
            f"{name}: the manifest's root {recorded!r} leaves {_authority(base)}, where the "
            "manifest lives; refusing to read there. Pass root= to choose the images, or "
            "allow_outside_root=True for a manifest you trust."
        )
        raise UnsafePathError(msg)
    return top


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

    def unpack(self, value: str, limit: int, what: str) -> bytes:
        """Decode a packed column, never decompressing more than ``limit`` bytes."""
        self.check(value.startswith("zstd:"), f"{what}: unknown packing")
        try:
            return bytes(imagecodecs.zstd_decode(base64.b64decode(value[5:]), out=limit))
        except (ValueError, imagecodecs.ZstdError) as e:
            msg = f"{self.name}: invalid manifest: {what} does not unpack ({e})"
            raise ManifestError(msg) from e

    def ints(self, value: Any, count: int, what: str) -> np.ndarray:
        if isinstance(value, str):
            raw = self.unpack(value, count * 8, what)
            self.check(len(raw) == count * 8, f"{what}: length")
            return np.frombuffer(raw, dtype="<i8").astype(np.int64)
        self.typed(value, list, what)
        self.check(len(value) == count, f"{what}: length {len(value)}, expected {count}")
        self.check(all(type(v) is int for v in value), f"{what}: values must be integers")
        return np.array(value, dtype=np.int64) if value else np.empty(0, np.int64)

    def files(self, doc: Any, allow_outside: bool) -> FileTable:
        doc = self.typed(doc, dict, "files")
        paths = doc.get("path")
        count = doc.get("count", len(paths) if isinstance(paths, list) else None)
        self.typed(count, int, "files.count")
        self.check(0 <= count <= MAX_FILES, f"files.count {count} is out of range")
        packed = isinstance(paths, str)
        if packed:
            blob = self.unpack(paths, count * MAX_PATH_BYTES, "files.path").decode(
                "utf-8", "replace"
            )
            paths = blob.split("\0") if count else []
        else:
            self.typed(paths, list, "files.path")
            self.check(all(type(p) is str for p in paths), "files.path must hold strings")
        self.check(len(paths) == count, "files columns differ in length")
        sizes = self.ints(doc.get("size"), count, "files.size")
        mtimes = self.ints(doc.get("mtime_ns"), count, "files.mtime_ns")
        self.check(bool((sizes >= 0).all()), "a file has a negative size")
        etags = self.strings(doc.get("etag"), count, "files.etag", _ETAG)
        sums = self.strings(doc.get("checksum"), count, "files.checksum", _CHECKSUM)
        if not allow_outside:
            if packed:  # split on NUL, so no path holds one: the bulk check is exact
                check_all_relative(paths, self.name)
            else:
                for p in paths:
                    check_relative(p, self.name)
        return FileTable(paths, sizes, mtimes, etags, sums)

    def strings(
        self, value: Any, count: int, what: str, form: re.Pattern[str]
    ) -> list[str | None] | None:
        """An optional column of short texts (etags, checksums); ``""`` stands for none."""
        if value is None:
            return None
        if isinstance(value, str):
            value = self.unpack(value, count * 1024, what).decode("utf-8", "replace")
            value = value.split("\0") if count else []
        self.typed(value, list, what)
        self.check(len(value) == count, f"{what}: length")
        self.check(all(type(t) is str and form.fullmatch(t) for t in value), what)
        return [t or None for t in value]

    def node(self, doc: Any, nfiles: int) -> Node:
        doc = self.typed(doc, dict, "group")
        path = self.typed(doc.get("path"), str, "group path")
        where = f"group {path!r}"
        dims = tuple(self.typed(doc.get("dims"), list, f"{where} dims"))
        shape = tuple(self.typed(doc.get("shape"), list, f"{where} shape"))
        self.check(len(dims) == len(shape) <= MAX_NDIM, f"{where}: dims and shape differ")
        self.check(all(isinstance(d, str) for d in dims), f"{where}: dims must be strings")
        self.check(
            all(isinstance(s, int) and 0 < s <= 2**40 for s in shape) and math.prod(shape) <= 2**40,
            f"{where}: shape",
        )
        size = math.prod(shape)
        self.check(
            size <= max(GRID_SLACK * nfiles, GRID_FLOOR),
            f"{where}: a grid of {size} slots for {nfiles} files is implausibly sparse",
        )
        chunks = doc.get("chunks")
        if isinstance(chunks, list):
            self.check(len(chunks) == size, f"{where}: chunks do not fill the shape")
        grid = self.ints(chunks, size, f"{where} chunks")
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
            and all(isinstance(s, int) and 0 < s <= MAX_SIDE for s in shape)
            and math.prod(shape) <= MAX_IMAGE_ELEMENTS,
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
        palette = self.typed(doc.get("palette", ""), str, f"{where} palette")
        return ImageInfo(fmt, shape, dtype, codec, axes, palette[:64])

    def coord(self, doc: Any, sizes: Mapping[str, int], what: str) -> Coord:
        doc = self.typed(doc, dict, what)
        dims = tuple(self.typed(doc.get("dims"), list, f"{what} dims"))
        self.check(all(d in sizes for d in dims), f"{what}: dims {dims} not among the group's")
        kind = doc.get("kind")
        self.check(kind in KINDS, f"{what}: kind {kind!r}")
        values = self.typed(doc.get("values"), list, f"{what} values")
        self.check(len(values) == math.prod(sizes[d] for d in dims), f"{what}: length")
        try:
            return Coord(dims, kind, tuple(_parse_value(x, kind) for x in values))
        except ManifestError as e:
            msg = f"{self.name}: invalid manifest: {what}: {e}"
            raise ManifestError(msg) from e


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
