"""Stage 3, layout: file names → typed fields → groups, arrays, dims and coordinates.

Pure: takes values, returns values, touches no file. Two verbs:

- :func:`match_fields` parses every relative path with the layout's regex into typed fields.
- :func:`arrange` turns matched files and their probed :class:`ImageInfo` into :class:`Node`\\ s,
  one per group, each holding one image array with labeled outer dims.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

from .errors import (
    DuplicateIndexError,
    InconsistentImagesError,
    LayoutError,
    PatternMismatchError,
)
from .probe import ImageInfo

__all__ = [
    "Coord",
    "FieldType",
    "LayoutSpec",
    "Node",
    "arrange",
    "match_fields",
    "natural_key",
    "parse_type",
]

Value = int | float | str | datetime
RESERVED = ("y", "x", "c", "z", "path", "present", "image")
MAX_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class FieldType:
    """How a field's text becomes a value: ``int``, ``float``, ``str`` or ``datetime``."""

    kind: Literal["int", "float", "str", "datetime"]
    fmt: str | None = None

    def convert(self, text: str) -> Value:
        if self.kind == "int":
            return int(text)
        if self.kind == "float":
            return float(text)
        if self.kind == "datetime":
            assert self.fmt is not None
            return datetime.strptime(text, self.fmt)
        return text


def parse_type(spec: str) -> FieldType:
    """Parse a type name: ``"int"``, ``"float"``, ``"str"`` or a strptime format.

    >>> parse_type("%Y%m%dT%H%M%S")
    FieldType(kind='datetime', fmt='%Y%m%dT%H%M%S')
    """
    if spec in ("int", "float", "str"):
        return FieldType(spec)  # type: ignore[arg-type]
    if "%" in spec:
        return FieldType("datetime", spec)
    msg = (
        f"unknown field type {spec!r}: use int, float, str, or a strptime format such as "
        "'%Y%m%dT%H%M%S'"
    )
    raise LayoutError(msg)


@dataclass(frozen=True, slots=True)
class LayoutSpec:
    """Everything needed to repeat a layout: the regex, field types, dims and grouping.

    A ``pattern`` containing ``/`` is matched against the whole path relative to the root (so
    folder names can be fields); otherwise against the file name alone.
    """

    pattern: str | None = None
    glob: str | None = None
    types: Mapping[str, str] = field(default_factory=dict)
    dims: tuple[str, ...] | None = None
    group_by: tuple[str, ...] = ()
    on_unmatched: Literal["error", "skip"] = "error"

    def fields(self) -> list[str]:
        """The named groups of the pattern, in order."""
        if self.pattern is None:
            return []
        return list(_compile(self.pattern).groupindex)

    def outer_dims(self) -> tuple[str, ...]:
        """The array's outer dims: ``dims``, else every field not used by ``group_by``."""
        if self.pattern is None:
            return ("file",)
        if self.dims is not None:
            return tuple(self.dims)
        return tuple(f for f in self.fields() if f not in self.group_by)

    def to_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "glob": self.glob,
            "types": dict(self.types),
            "dims": None if self.dims is None else list(self.dims),
            "group_by": list(self.group_by),
            "on_unmatched": self.on_unmatched,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LayoutSpec:
        dims = doc.get("dims")
        return cls(
            pattern=doc.get("pattern"),
            glob=doc.get("glob"),
            types=dict(doc.get("types") or {}),
            dims=None if dims is None else tuple(dims),
            group_by=tuple(doc.get("group_by") or ()),
            on_unmatched=doc.get("on_unmatched", "error"),
        )

    def validate(self) -> None:
        """Check the spec is self-consistent; raise :class:`LayoutError` naming the problem."""
        if self.on_unmatched not in ("error", "skip"):
            msg = f"on_unmatched must be 'error' or 'skip', not {self.on_unmatched!r}"
            raise LayoutError(msg)
        names = self.fields()
        if self.pattern is None:
            if self.group_by or self.dims or self.types:
                msg = "dims, group_by and types need a pattern with named groups"
                raise LayoutError(msg)
            return
        if not names:
            msg = f"pattern {self.pattern!r} has no named groups like (?P<plant>...)"
            raise LayoutError(msg)
        for what, listed in (
            ("dims", self.dims or ()),
            ("group_by", self.group_by),
            ("types", tuple(self.types)),
        ):
            unknown = [f for f in listed if f not in names]
            if unknown:
                msg = (
                    f"{what} names {unknown} but the pattern's fields are {names}: add a named "
                    "group (?P<name>...) for each"
                )
                raise LayoutError(msg)
        both = set(self.dims or ()) & set(self.group_by)
        if both:
            msg = f"{sorted(both)} cannot be both a dim and a group_by field"
            raise LayoutError(msg)
        if len(set(self.outer_dims())) != len(self.outer_dims()):
            msg = f"dims {list(self.outer_dims())} name a field twice"
            raise LayoutError(msg)
        clash = [f for f in names if f in RESERVED]
        if clash:
            msg = f"field names {clash} are reserved ({', '.join(RESERVED)}): rename"
            raise LayoutError(msg)
        for t in self.types.values():
            parse_type(t)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        msg = f"invalid pattern {pattern!r}: {e}"
        raise LayoutError(msg) from e


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key ordering digit runs by value: ``A2`` before ``A10``.

    >>> sorted(["A10", "a2", "A1"], key=natural_key)
    ['A1', 'a2', 'A10']
    """
    parts = re.split(r"(\d+)", text)
    # odd positions are digit runs in every key, so the tuples compare type-safely;
    # case only breaks ties, after the whole name compared case-insensitively
    folded = tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts))
    return (folded, text)


def _sort_key(value: Value) -> Any:
    return natural_key(value) if isinstance(value, str) else value


def match_fields(
    paths: Sequence[str], spec: LayoutSpec
) -> tuple[list[int], list[dict[str, Value]], list[str]]:
    """Parse each path into typed fields.

    Returns ``(kept, fields, unmatched)``: indices of the matched paths, their fields, and the
    unmatched paths (empty unless ``spec.on_unmatched == "skip"``).

    >>> spec = LayoutSpec(pattern=r"(?P<plant>\\w+)-(?P<frame>\\d+)\\.png", types={"frame": "int"})
    >>> match_fields(["p/A1-2.png"], spec)
    ([0], [{'plant': 'A1', 'frame': 2}], [])
    """
    spec.validate()
    if spec.pattern is None:
        return list(range(len(paths))), [{"file": p} for p in paths], []
    rx = _compile(spec.pattern)
    whole_path = "/" in spec.pattern
    types = {name: parse_type(spec.types.get(name, "str")) for name in rx.groupindex}
    kept: list[int] = []
    fields: list[dict[str, Value]] = []
    unmatched: list[str] = []
    for i, path in enumerate(paths):
        m = rx.fullmatch(path if whole_path else path.rsplit("/", 1)[-1])
        if m is None:
            unmatched.append(path)
            continue
        fields.append(_convert(m, types, path))
        kept.append(i)
    if unmatched and spec.on_unmatched == "error":
        shown = ", ".join(repr(p) for p in unmatched[:MAX_EXAMPLES])
        target = "relative path" if whole_path else "file name"
        msg = (
            f"{len(unmatched)} of {len(paths)} files match the glob but their {target} does not "
            f"match the pattern {spec.pattern!r}, e.g. {shown}. Fix the pattern, narrow the "
            "glob, or skip them (on_unmatched='skip', --skip-unmatched)."
        )
        raise PatternMismatchError(
            msg,
            paths=unmatched,
        )
    return kept, fields, unmatched


def _convert(m: re.Match[str], types: Mapping[str, FieldType], path: str) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for name, ftype in types.items():
        text = m.group(name)
        if text is None:
            msg = f"{path!r}: field {name!r} did not take part in the match"
            raise LayoutError(msg)
        try:
            out[name] = ftype.convert(text)
        except ValueError as e:
            shown = ftype.fmt if ftype.kind == "datetime" else ftype.kind
            msg = f"{path!r}: field {name!r} = {text!r} is not {shown}: {e}"
            raise LayoutError(msg) from e
    return out


@dataclass(frozen=True, slots=True)
class Coord:
    """A coordinate: its dims and its values, flat in C order; ``None`` marks a hole."""

    dims: tuple[str, ...]
    kind: Literal["int", "float", "str", "datetime"]
    values: tuple[Value | None, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """One group of the hierarchy and its image array.

    ``chunks`` has the outer shape and holds, per slot, the index of the file in the manifest's
    file table, or -1 for a hole.
    """

    path: str
    attrs: Mapping[str, Any]
    dims: tuple[str, ...]
    image: ImageInfo
    coords: Mapping[str, Coord]
    chunks: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.chunks.shape)

    @property
    def image_dims(self) -> tuple[str, ...]:
        """Outer dims followed by the image's own axes: ``y, x`` and ``c`` for channels."""
        return self.dims + self.image.dims


def _kind(values: Sequence[Value]) -> Literal["int", "float", "str", "datetime"]:
    v = values[0]
    if isinstance(v, datetime):
        return "datetime"
    if isinstance(v, bool | str):
        return "str"
    return "int" if isinstance(v, int) else "float"


def _group_name(values: Sequence[Value]) -> str:
    parts = []
    for v in values:
        text = v.isoformat() if isinstance(v, datetime) else str(v)
        # zarr node names may not contain "/" nor start with "__"
        text = text.replace("/", "_") or "_"
        parts.append("g" + text if text.startswith("__") else text)
    return "/".join(parts)


def arrange(
    paths: Sequence[str],
    fields: Sequence[Mapping[str, Value]],
    infos: Sequence[ImageInfo],
    spec: LayoutSpec,
) -> list[Node]:
    """Arrange files into groups of labeled grids.

    ``paths[i]``, ``fields[i]`` and ``infos[i]`` describe file ``i`` (its index in the file
    table). Raises :class:`DuplicateIndexError` or :class:`InconsistentImagesError`.
    """
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, f in enumerate(fields):
        groups.setdefault(tuple(f[g] for g in spec.group_by), []).append(i)
    nodes = []
    names: dict[str, tuple[Any, ...]] = {}
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        path = _group_name(key) if spec.group_by else ""
        if path in names:
            msg = (
                f"group values {names[path]} and {key} give the same group name {path!r}: "
                "choose another group_by field"
            )
            raise LayoutError(msg)
        names[path] = key
        attrs = {g: _jsonable(v) for g, v in zip(spec.group_by, key, strict=True)}
        nodes.append(_build_node(path, attrs, groups[key], paths, fields, infos, spec))
    return nodes


def _jsonable(v: Value) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _build_node(
    path: str,
    attrs: Mapping[str, Any],
    members: Sequence[int],
    paths: Sequence[str],
    fields: Sequence[Mapping[str, Value]],
    infos: Sequence[ImageInfo],
    spec: LayoutSpec,
) -> Node:
    where = f"array {path + '/image' if path else 'image'!r}"
    image = _common_image(where, members, paths, infos)
    dims = spec.outer_dims()
    labels = {d: sorted({fields[i][d] for i in members}, key=_sort_key) for d in dims}
    position = {d: {v: k for k, v in enumerate(labels[d])} for d in dims}
    shape = tuple(len(labels[d]) for d in dims)
    chunks = np.full(shape, -1, dtype=np.int64)
    slots: dict[tuple[int, ...], list[int]] = {}
    for i in members:
        idx = tuple(position[d][fields[i][d]] for d in dims)
        slots.setdefault(idx, []).append(i)
        chunks[idx] = i
    clashes = [(idx, files) for idx, files in slots.items() if len(files) > 1]
    if clashes:
        _raise_duplicates(where, dims, labels, clashes, paths)
    coords: dict[str, Coord] = {d: Coord((d,), _kind(labels[d]), tuple(labels[d])) for d in dims}
    others = [f for f in (fields[members[0]] if members else {}) if f not in dims]
    others = [f for f in others if f not in spec.group_by]
    for name in others:
        coords[name] = _smallest_coord(name, dims, shape, slots, fields)
    return Node(path, dict(attrs), dims, image, coords, chunks)


def _common_image(
    where: str, members: Sequence[int], paths: Sequence[str], infos: Sequence[ImageInfo]
) -> ImageInfo:
    kinds: dict[tuple[Any, ...], list[int]] = {}
    for i in members:
        info = infos[i]
        config = info.codec.get("configuration")
        signature = (
            info.format,
            tuple(info.shape),
            info.dtype,
            info.axes,
            info.codec.get("name"),
            None if config is None else json.dumps(config, sort_keys=True),
        )
        kinds.setdefault(signature, []).append(i)
    if len(kinds) > 1:
        lines = [
            f"{len(files)} x {infos[files[0]].format} {tuple(infos[files[0]].shape)} "
            f"{infos[files[0]].dtype} (e.g. {paths[files[0]]!r})"
            for files in sorted(kinds.values(), key=lambda f: -len(f))
        ]
        raise InconsistentImagesError(
            f"images of {where} differ; one array needs one format, shape and dtype: "
            + "; ".join(lines)
            + ". Split them with group_by or a narrower glob."
        )
    return infos[members[0]]


def _raise_duplicates(
    where: str,
    dims: Sequence[str],
    labels: Mapping[str, Sequence[Value]],
    clashes: Sequence[tuple[tuple[int, ...], list[int]]],
    paths: Sequence[str],
) -> None:
    shown = []
    for idx, files in clashes[:MAX_EXAMPLES]:
        slot = ", ".join(f"{d}={labels[d][k]!s}" for d, k in zip(dims, idx, strict=True))
        shown.append(f"({slot}): " + ", ".join(repr(paths[i]) for i in files))
    raise DuplicateIndexError(
        f"{len(clashes)} slot(s) of {where} with dims {list(dims)} have more than one file: "
        + "; ".join(shown)
        + ". Add the field that tells them apart to dims (or the pattern)."
    )


def _determined_by(
    subset: Sequence[int],
    slots: Mapping[tuple[int, ...], Sequence[int]],
    fields: Sequence[Mapping[str, Value]],
    name: str,
) -> dict[tuple[int, ...], Value] | None:
    """The field's value per position along ``subset`` dims, or None if it is not a function."""
    seen: dict[tuple[int, ...], Value] = {}
    for idx, files in slots.items():
        sub = tuple(idx[k] for k in subset)
        for i in files:
            value = fields[i][name]
            if seen.setdefault(sub, value) != value:
                return None
    return seen


def _smallest_coord(
    name: str,
    dims: Sequence[str],
    shape: Sequence[int],
    slots: Mapping[tuple[int, ...], Sequence[int]],
    fields: Sequence[Mapping[str, Value]],
) -> Coord:
    """A non-dim field becomes a coordinate over the smallest set of dims that determines it."""
    for size in range(len(dims) + 1):
        for subset in itertools.combinations(range(len(dims)), size):
            seen = _determined_by(subset, slots, fields, name)
            if seen is None:
                continue
            sub_shape = [shape[k] for k in subset]
            flat: list[Value | None] = [None] * math.prod(sub_shape)
            for sub, value in seen.items():
                flat[int(np.ravel_multi_index(sub, sub_shape)) if sub else 0] = value
            kind = _kind([v for v in flat if v is not None])
            return Coord(tuple(dims[k] for k in subset), kind, tuple(flat))
    msg = "the full set of dims always determines a field"
    raise AssertionError(msg)  # pragma: no cover
