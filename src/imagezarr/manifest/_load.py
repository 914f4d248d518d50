"""Loading a manifest: the document is hostile input until every field has been checked.

Every field is type- and range-checked before use, limits bound what a document can make us
allocate, and file entries may not leave the root.
"""

from __future__ import annotations

import base64
import codecs
import functools
import inspect
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn, Unpack

import imagecodecs
import numpy as np

from .. import limits
from ..access import Access, AccessKeywords
from ..discover import FileTable
from ..errors import LayoutError, ManifestError, ManifestVersionError, UnsafePathError
from ..formats import CODEC_NAMES, NAMES, by_codec, by_name
from ..layout import Coord, Exclusion, LayoutSpec, Node
from ..layout.spec import RESERVED
from ..paths import PathColumn, check_all_relative
from ..probe import ImageInfo
from ..roots import (
    READ_ERRORS,
    authority,
    error_text,
    join_location,
    parent_of,
    read_location,
    root_url,
)
from ._guard import stamp_of
from ._model import FORMAT, VERSION, Manifest
from ._values import INT64, NAME_CHARS, PALETTE, parse_value, unplain, zstd_content_size

__all__ = ["ManifestLike", "check_codecs", "from_json", "load_manifest", "read_manifest"]

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
AXES = frozenset("yxczp")  # p: the pages of a multi-page file
ARRAYS = ("image", "path", "present")  # every group's own arrays, beside its coordinates
_RESERVED = ", ".join(RESERVED)
# a grid may exceed its file count by holes, but not without bound (a zstd bomb of -1s)
GRID_SLACK, GRID_FLOOR = 64, 2**24


def load_manifest(
    path: str | os.PathLike[str],
    *,
    access: Access | None = None,
    **options: Unpack[AccessKeywords],
) -> Manifest:
    """Load and validate a manifest written by :meth:`Manifest.save`.

    ``path`` may be a local file or a URL (``s3://bucket/exp.imagezarr.json``). Of the access
    keywords (see :class:`~imagezarr.access.Access`), ``root`` re-roots the manifest onto
    another copy of the images (a folder or a URL, e.g. a mirror), ``storage_options`` reach
    a remote manifest, and ``allow_outside_root`` admits entries that leave the root. Raises
    :class:`ManifestVersionError` for an unknown version and :class:`UnsafePathError` for an
    entry that leaves the root (unless ``allow_outside_root``).
    """
    return read_manifest(path, Access.of(access, options))[0]


def read_manifest(path: str | os.PathLike[str], how: Access) -> tuple[Manifest, str]:
    """:func:`load_manifest`, and the stamp of the bytes it was read from (what a save that
    must not replace another process's save compares)."""
    name = os.fspath(path)
    try:
        raw = read_location(name, how.options)
    except READ_ERRORS as e:
        msg = f"cannot read manifest {name!r}: {error_text(e)}"
        raise ManifestError(msg) from e
    where = parent_of(name)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:
        msg = f"{name!r} is not a JSON manifest: {e}"
        raise ManifestError(msg) from e
    m = from_json(doc, base=where, name=name, root=how.root, allow_outside_root=how.outside)
    return m, stamp_of(raw)


ManifestLike = Manifest | str | os.PathLike[str]


def from_json(
    doc: Any,
    *,
    base: Path | str,
    name: str = "<manifest>",
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
) -> Manifest:
    """Build a :class:`Manifest` from a parsed JSON document, validating every field.

    Whatever loads also opens: every name, type and range that zarr, xarray or the hierarchy
    relies on later is checked here, so a bad document fails now, as a :class:`ManifestError`
    naming the field, instead of as some other error when it is opened or read.
    """
    v = _Validator(name)
    v.check(isinstance(doc, dict) and doc.get("format") == FORMAT, "not an imagezarr manifest")
    version = doc.get("version")
    if type(version) is not int or version != VERSION:
        msg = (
            f"{name}: manifest format version {version!r} is not supported by this "
            f"imagezarr (reads version {VERSION}); upgrade imagezarr or re-scan the images"
        )
        raise ManifestVersionError(msg)
    v.plain(doc)
    recorded = v.typed(doc.get("root"), str, "root")
    v.check("\x00" not in recorded, "root holds a NUL character")
    v.typed(doc.get("generator", ""), str, "generator")
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
    unreadable = v.typed(doc.get("unreadable", []), list, "unreadable")
    v.check(all(type(u) is str for u in unreadable), "unreadable must hold strings")
    return Manifest(
        root=top,
        files=files,
        layout=layout,
        nodes=v.nodes(doc.get("groups"), len(files)),
        unmatched=v.integer(doc.get("unmatched", 0), "unmatched", low=0),
        unreadable=tuple(unreadable),
        created=v.typed(doc.get("created", ""), str, "created"),
        excluded=_exclusions(v.typed(doc.get("excluded", []), list, "excluded"), name),
    )


def _exclusions(items: list[Any], name: str) -> tuple[Exclusion, ...]:
    try:
        return tuple(Exclusion.from_json(e if isinstance(e, dict) else {}) for e in items)
    except LayoutError as e:
        msg = f"{name}: invalid manifest: excluded: {e}"
        raise ManifestError(msg) from e


def _resolve_root(
    recorded: str, base: str | os.PathLike[str], name: str, allow_outside: bool
) -> str:
    """An absolute root: URLs as they are, relative roots against the manifest's location.

    A manifest fetched from a URL may only point at its own host or bucket: otherwise a
    shared manifest could make the reader fetch any URL or local file.
    """
    top = join_location(base, recorded)
    home = authority(os.fspath(base))
    if home is not None and not allow_outside and authority(top) != home:
        msg = (
            f"{name}: the manifest's root {recorded!r} leaves {home}, where the "
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
            self.fail(what)

    def fail(self, what: str) -> NoReturn:
        msg = f"{self.name}: invalid manifest: {what}"
        raise ManifestError(msg)

    def typed(self, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
        self.check(
            isinstance(value, kind) and not isinstance(value, bool), f"{what} has a wrong type"
        )
        return value

    def integer(self, value: Any, what: str, *, low: int = INT64[0], high: int = INT64[1]) -> int:
        self.check(type(value) is int, f"{what} must be an integer, not {value!r}"[:200])
        self.check(low <= value <= high, f"{what} {value} is out of range [{low}, {high}]")
        return int(value)

    def plain(self, doc: dict[str, Any]) -> None:
        """Refuse what JSON cannot write back: NaN and infinities, lone surrogates (no UTF-8
        encodes them), and, for documents built in memory, values of other types.

        zarr writes attributes and coordinate strings as UTF-8 JSON when the manifest is
        opened, and :meth:`Manifest.save` writes strict JSON, so either would fail later.
        """
        try:  # one pass in C; the walk below only runs to name the culprit
            json.dumps(doc, allow_nan=False, ensure_ascii=False).encode()
        except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
            self.fail(unplain(doc))

    def unpack(self, value: str, limit: int, what: str, *, array: bool = False) -> Any:
        """Decode a packed column, never decompressing more than ``limit`` bytes.

        The zstd frame declares its decompressed size, which is checked against ``limit``
        before anything is allocated: a column of ten million paths allocates what it holds,
        not ``count * MAX_PATH_BYTES``, and a bomb is refused without being decompressed.
        """
        self.check(value.startswith("zstd:"), f"{what}: unknown packing")
        try:
            data = base64.b64decode(value[5:], validate=True)
        except ValueError as e:
            msg = f"{self.name}: invalid manifest: {what} does not unpack ({e})"
            raise ManifestError(msg) from e
        size = zstd_content_size(data)
        if size is None:
            self.fail(f"{what} does not unpack (not a zstd frame that declares its size)")
        self.check(
            size <= limit,
            f"{what} does not unpack: it declares {size} bytes, more than the {limit} its "
            "entries can hold",
        )
        if size == 0:
            return np.empty(0, np.uint8) if array else b""
        try:
            # decoded straight into bytes, or into a writable array for integer columns
            raw = imagecodecs.zstd_decode(data, out=np.empty(size, np.uint8) if array else size)
        except (ValueError, imagecodecs.ZstdError, MemoryError) as e:
            msg = f"{self.name}: invalid manifest: {what} does not unpack ({e!r})"
            raise ManifestError(msg) from e
        self.check(len(raw) == size, f"{what} does not unpack: {len(raw)} of {size} bytes")
        return raw

    def utf8(self, raw: bytes, what: str) -> None:
        """Refuse bytes that are not UTF-8 without decoding them into one large string."""
        if raw.isascii():  # the common case, checked in C a word at a time
            return
        decoder = codecs.getincrementaldecoder("utf-8")()
        view, block = memoryview(raw), 1 << 24
        try:
            for start in range(0, len(raw), block):
                decoder.decode(view[start : start + block], final=start + block >= len(raw))
        except UnicodeDecodeError as e:
            msg = f"{self.name}: invalid manifest: {what} is not UTF-8 ({e})"
            raise ManifestError(msg) from e

    def text(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            msg = f"{self.name}: invalid manifest: {what} is not UTF-8 ({e})"
            raise ManifestError(msg) from e

    def ints(self, value: Any, count: int, what: str) -> np.ndarray:
        if isinstance(value, str):
            raw = self.unpack(value, count * 8, what, array=True)
            self.check(len(raw) == count * 8, f"{what}: length")
            return raw.view("<i8").astype(np.int64, copy=False)
        self.typed(value, list, what)
        self.check(len(value) == count, f"{what}: length {len(value)}, expected {count}")
        self.check(all(type(v) is int for v in value), f"{what}: values must be integers")
        try:
            return np.array(value, dtype=np.int64) if value else np.empty(0, np.int64)
        except OverflowError:
            self.fail(f"{what}: values must fit in 64 bits (-2**63 to 2**63 - 1)")

    def files(self, doc: Any, allow_outside: bool) -> FileTable:
        doc = self.typed(doc, dict, "files")
        paths = doc.get("path")
        count = doc.get("count", len(paths) if isinstance(paths, list) else None)
        count = self.integer(count, "files.count", low=0, high=MAX_FILES)
        if isinstance(paths, str):
            joined = self.unpack(paths, count * MAX_PATH_BYTES, "files.path")
            self.utf8(joined, "files.path")
            # kept packed: ten million str objects would cost seconds and gigabytes
            paths = PathColumn.from_joined(joined) if count else []
        else:
            self.typed(paths, list, "files.path")
            self.check(all(type(p) is str for p in paths), "files.path must hold strings")
        self.check(len(paths) == count, "files columns differ in length")
        sizes = self.ints(doc.get("size"), count, "files.size")
        mtimes = self.ints(doc.get("mtime_ns"), count, "files.mtime_ns")
        self.check(bool((sizes >= 0).all()), "a file has a negative size")
        etags = self.strings(doc.get("etag"), count, "files.etag", _ETAG, 1024)
        sums = self.strings(doc.get("checksum"), count, "files.checksum", _CHECKSUM, 22)
        if not allow_outside:
            check_all_relative(paths, self.name)
        return FileTable(paths, sizes, mtimes, etags, sums)

    def strings(
        self, value: Any, count: int, what: str, form: re.Pattern[str], each: int
    ) -> list[str | None] | None:
        """An optional column of short texts (etags, checksums); ``""`` stands for none."""
        if value is None:
            return None
        if isinstance(value, str):
            value = self.text(self.unpack(value, count * each, what), what)
            value = value.split("\0") if count else []
        self.typed(value, list, what)
        self.check(len(value) == count, f"{what}: length")
        self.check(all(type(t) is str and form.fullmatch(t) for t in value), what)
        return [t or None for t in value]

    def nodes(self, doc: Any, nfiles: int) -> tuple[Node, ...]:
        """Every group, then what only the groups together decide: names and total size."""
        groups = self.typed(doc, list, "groups")
        budget = max(GRID_SLACK * nfiles, GRID_FLOOR)  # for all grids together
        nodes: list[Node] = []
        for g in groups:
            nodes.append(self.node(g, nfiles, budget))
            budget -= nodes[-1].file_index.size
        children = {n.path: {*ARRAYS, *n.coords} for n in nodes}
        self.check(len(children) == len(nodes), "two groups have the same path")
        for n in nodes:
            parts = n.path.split("/") if n.path else []
            for k, part in enumerate(parts):
                taken = children.get("/".join(parts[:k]), ())
                self.check(
                    part not in taken,
                    f"group {n.path!r} collides with array {part!r} of group "
                    f"{'/'.join(parts[:k])!r}",
                )
        return tuple(nodes)

    def node_name(self, value: Any, what: str) -> str:
        """A zarr node name that is safe as a folder name when the hierarchy is copied."""
        self.check(isinstance(value, str), f"{what} {value!r} is not a string"[:300])
        text: str = value
        self.check(
            bool(text)
            and text not in (".", "..", "zarr.json")
            and not text.startswith("__")  # reserved by the zarr spec
            and NAME_CHARS.search(text) is None,
            f"{what} {text!r} is not a valid zarr node name (empty, '.', '..', 'zarr.json', "
            "'__' first, or a slash, backslash or control character)"[:300],
        )
        # "D:" or "D:x" would name a drive when the hierarchy is copied to a Windows folder
        self.check(text[1:2] != ":", f"{what} {text!r} starts like a Windows drive"[:300])
        return text

    def node(self, doc: Any, nfiles: int, budget: int) -> Node:
        doc = self.typed(doc, dict, "group")
        path = self.typed(doc.get("path"), str, "group path")
        for part in path.split("/") if path else ():
            self.node_name(part, f"group path {path!r}: part")
        where = f"group {path!r}"
        dims = tuple(self.typed(doc.get("dims"), list, f"{where} dims"))
        shape = tuple(self.typed(doc.get("shape"), list, f"{where} shape"))
        self.check(len(dims) == len(shape) <= MAX_NDIM, f"{where}: dims and shape differ")
        for d in dims:
            self.node_name(d, f"{where}: dim")
            self.check(d not in RESERVED, f"{where}: dim {d!r} is reserved ({_RESERVED})")
        self.check(len(set(dims)) == len(dims), f"{where}: dims {list(dims)} repeat a name")
        self.check(
            all(type(s) is int and 0 < s <= 2**40 for s in shape) and math.prod(shape) <= 2**40,
            f"{where}: shape {list(shape)} must be positive integers, 2**40 slots at most"[:300],
        )
        size = math.prod(shape)
        self.check(
            size <= budget,
            f"{where}: a grid of {size} slots (with the groups before it) for {nfiles} files "
            "is implausibly sparse",
        )
        chunks = doc.get("chunks")
        if isinstance(chunks, list):
            self.check(len(chunks) == size, f"{where}: chunks do not fill the shape")
        grid = self.ints(chunks, size, f"{where} chunks")
        self.check(
            bool(((grid >= -1) & (grid < nfiles)).all()),
            f"{where}: a chunk file index is not -1 (a hole) nor one of the {nfiles} files",
        )
        image = self.image(doc.get("image"), where)
        # numpy, zarr and xarray compute the array's size in bytes as an int64
        nbytes = size * math.prod(image.shape) * np.dtype(image.dtype).itemsize
        self.check(nbytes < 2**62, f"{where}: the image array would hold {nbytes} bytes")
        sizes = dict(zip(dims, shape, strict=True))
        coords = {}
        for k, c in self.typed(doc.get("coords", {}), dict, f"{where} coords").items():
            what = f"{where} coordinate {k!r}"
            self.node_name(k, f"{where}: coordinate name")
            self.check(k not in RESERVED, f"{what}: the name is reserved ({_RESERVED})")
            coords[k] = self.coord(c, sizes, what)
            self.check(
                k not in sizes or coords[k].dims == (k,),
                f"{what}: a coordinate named after a dim must lie along that dim alone",
            )
        attrs = self.typed(doc.get("attrs", {}), dict, f"{where} attrs")
        self.check(all(type(k) is str for k in attrs), f"{where}: attrs keys must be strings")
        return Node(path, attrs, dims, image, coords, grid.reshape(shape))

    def image(self, doc: Any, where: str) -> ImageInfo:
        doc = self.typed(doc, dict, f"{where} image")
        shape = tuple(self.typed(doc.get("shape"), list, f"{where} image shape"))
        self.check(
            2 <= len(shape) <= 5
            and all(type(s) is int and 0 < s <= MAX_SIDE for s in shape)
            and math.prod(shape) <= MAX_IMAGE_ELEMENTS,
            f"{where}: image shape {shape!r}",
        )
        dtype = doc.get("dtype")
        self.check(isinstance(dtype, str) and dtype in DTYPES, f"{where}: image dtype {dtype!r}")
        fmt = self.typed(doc.get("format"), str, f"{where} format")
        self.check(fmt in NAMES, f"{where}: image format {fmt!r} is not one of {NAMES}")
        codec = self.codec(doc.get("codec"), where, fmt)
        axes = self.typed(doc.get("axes", ""), str, f"{where} axes")
        # axes name the image's dims: "" means y, x (and c); else one distinct letter per axis
        self.check(
            (axes == "" and len(shape) in (2, 3))
            or (len(axes) == len(shape) == len(set(axes)) and {"y", "x"} <= set(axes) <= AXES),
            f"{where}: axes {axes!r} do not fit image shape {shape}",
        )
        palette = self.typed(doc.get("palette", ""), str, f"{where} palette")
        self.check(PALETTE.fullmatch(palette) is not None, f"{where}: palette {palette!r}")
        info = ImageInfo(fmt, shape, dtype, codec, axes, palette)
        why = limits.over_budget(shape, info.dims)
        self.check(why is None, f"{where}: its image {why}")
        return info

    def codec(self, doc: Any, where: str, fmt: str) -> dict[str, Any]:
        """The image codec: one the probes emit, for the image's format, configured with plain
        values only. That zarr can build it as configured is checked when the manifest is
        opened (:func:`check_codecs`)."""
        codec = self.typed(doc, dict, f"{where} codec")
        name = codec.get("name")
        self.check(
            type(name) is str and name in CODEC_NAMES and by_codec(name).name == fmt,
            f"{where}: codec {name!r} is not the {fmt} codec {by_name(fmt).codec}"[:300],
        )
        extra = sorted(set(codec) - {"name", "configuration"})
        self.check(not extra, f"{where}: codec keys {extra} are unknown")
        config = self.typed(codec.get("configuration", {}), dict, f"{where} codec configuration")
        self.check(
            all(type(k) is str for k in config)
            and all(v is None or type(v) in (bool, int, float, str) for v in config.values()),
            f"{where}: codec configuration values must be plain numbers or strings",
        )
        return dict(codec)

    def coord(self, doc: Any, sizes: Mapping[str, int], what: str) -> Coord:
        doc = self.typed(doc, dict, what)
        dims = tuple(self.typed(doc.get("dims"), list, f"{what} dims"))
        self.check(
            all(type(d) is str and d in sizes for d in dims) and len(set(dims)) == len(dims),
            f"{what}: dims {dims} are not distinct dims of the group"[:300],
        )
        kind = doc.get("kind")
        self.check(isinstance(kind, str) and kind in KINDS, f"{what}: kind {kind!r}")
        values = self.typed(doc.get("values"), list, f"{what} values")
        self.check(len(values) == math.prod(sizes[d] for d in dims), f"{what}: length")
        try:
            parsed = tuple(parse_value(x, kind) for x in values)
        except ManifestError as e:
            msg = f"{self.name}: invalid manifest: {what}: {e}"
            raise ManifestError(msg) from e
        if kind == "datetime":  # one coordinate holds local times or UTC ones, never both
            aware = {v.tzinfo is not None for v in parsed if v is not None}
            self.check(len(aware) <= 1, f"{what}: mixes times with and without a UTC offset")
        return Coord(dims, kind, parsed)


def check_codecs(m: Manifest) -> None:
    """Refuse a manifest whose image codecs zarr could not build as the document says.

    Run by what builds or hands on codecs (the store, verify, the exports), not when a
    manifest is loaded: building a codec needs zarr and imagecodecs' codec classes, ~0.2 s of
    imports that ``info``, ``update`` and the other commands reading only the document never
    pay. A
    configuration may hold only keywords of that codec, and no ``numthreads``: how many
    threads decode is the reader's choice, not the document's.
    """
    for node in m.nodes:
        _check_codec(json.dumps(node.image.codec, sort_keys=True), node.path or "root group")


@functools.lru_cache(maxsize=256)
def _check_codec(text: str, where: str) -> None:
    from zarr.registry import get_codec_class

    from ..codecs import pin_codecs

    pin_codecs()
    codec = json.loads(text)
    name = codec["name"]
    config = codec.get("configuration", {})
    params = inspect.signature(get_codec_class(name).__init__).parameters.values()
    keywords = {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(config) - (keywords - {"numthreads"}))
    if unknown:
        msg = f"invalid manifest: {where}: codec configuration {unknown} is not accepted"[:500]
        raise ManifestError(msg)
    try:
        get_codec_class(name).from_dict(codec).to_dict()
    except Exception as e:  # a third-party constructor fed hostile values: anything
        msg = f"invalid manifest: {where}: codec {codec!r} ({e})"[:500]
        raise ManifestError(msg) from e
