"""Stage 3, layout: file names → typed fields → groups, arrays, dims and coordinates.

Pure: takes values, returns values, touches no file. Two verbs:

- :func:`match_fields` parses every relative path with the layout's regex into typed fields,
  joins fields from sidecar tables (:class:`Table`), filters, derives fields (``day`` with a
  day boundary, ``strftime``, any Python callable) and joins lookup tables (:class:`Lookup`).
- :func:`arrange` turns matched files and their probed :class:`ImageInfo` into :class:`Node`\\ s,
  one per group, each holding one image array with labeled outer dims.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal, cast

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
    "Derivation",
    "FieldType",
    "LayoutSpec",
    "LayoutWarning",
    "Lookup",
    "Node",
    "Table",
    "arrange",
    "day",
    "match_fields",
    "natural_key",
    "parse_type",
]

Value = int | float | str | datetime
Derivation = str | Callable[[Mapping[str, Any]], Any]
RESERVED = ("y", "x", "c", "z", "path", "present", "image")
MAX_EXAMPLES = 5
CALLABLE_PREFIX = "callable:"


class LayoutWarning(UserWarning):
    """Something was left out or unmatched, on purpose (``on_missing="warn"``); never silent."""


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


def _text_map(doc: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (doc or {}).items()}


@dataclass(frozen=True, slots=True)
class Table:
    """A sidecar table listing files, as imaging systems export them (``SnapshotInfo.csv``).

    Each row gives its columns as fields to the file(s) it names. ``file`` is a template of
    ``{column}`` references naming the file of a row: a name with a ``/`` is compared with the
    path relative to the root, otherwise with the file name; ``ignore_extension`` compares
    without the file's extension. ``split`` names columns holding lists (``{"tiles": ";"}``):
    one row per item, empty items ignored. Column names lose their spaces (``plant barcode`` becomes
    ``plantbarcode``, as PlantCV reads them); ``columns`` renames or selects (``{column:
    field}``). Rows naming files that are not there raise (``on_missing="error"``) or warn.

    >>> t = Table("SnapshotInfo.csv", file="snapshot{id}/{tiles}", split={"tiles": ";"})
    >>> t.template_columns()
    ['id', 'tiles']
    """

    path: str
    file: str
    split: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, str] | None = None
    ignore_extension: bool = False
    on_missing: Literal["error", "warn"] = "error"

    def template_columns(self) -> list[str]:
        return re.findall(r"\{([^{}]+)\}", self.file)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "file": self.file,
            "split": dict(self.split),
            "columns": None if self.columns is None else dict(self.columns),
            "ignore_extension": self.ignore_extension,
            "on_missing": self.on_missing,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Table:
        cols = doc.get("columns")
        return cls(
            path=str(doc["path"]),
            file=str(doc["file"]),
            split=_text_map(doc.get("split")),
            columns=None if cols is None else _text_map(cols),
            ignore_extension=bool(doc.get("ignore_extension", False)),
            on_missing=doc.get("on_missing", "error"),
        )


@dataclass(frozen=True, slots=True)
class Lookup:
    """A table mapping the values of field ``key`` to labels: each other column becomes a field.

    ``column`` is the table's key column (default: ``key``); ``columns`` selects and renames
    the added columns (``{column: field}``; default: all others, spaces removed). Values are
    compared as text (``frame`` 1 matches a cell ``1``). A value missing from the table raises
    (``on_missing="error"``) or warns and leaves the added fields empty; it is never dropped.

    >>> Lookup("frames.csv", key="frame").to_json()["column"]
    'frame'
    """

    path: str
    key: str
    column: str | None = None
    columns: Mapping[str, str] | None = None
    on_missing: Literal["error", "warn"] = "error"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "key": self.key,
            "column": self.column or self.key,
            "columns": None if self.columns is None else dict(self.columns),
            "on_missing": self.on_missing,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Lookup:
        cols = doc.get("columns")
        return cls(
            path=str(doc["path"]),
            key=str(doc["key"]),
            column=doc.get("column"),
            columns=None if cols is None else _text_map(cols),
            on_missing=doc.get("on_missing", "error"),
        )


def _callable_name(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}" if module else str(name)


@dataclass(frozen=True, slots=True)
class LayoutSpec:
    """Everything needed to repeat a layout: the regex, field types, dims and grouping.

    A ``pattern`` containing ``/`` is matched against the whole path relative to the root (so
    folder names can be fields); otherwise against the file name alone. ``target`` forces
    ``"path"``, ``"name"`` or ``"stem"`` (the file name without its extension, as PlantCV
    parses names); ``search=True`` uses :func:`re.search` instead of a full match.

    Optional, in the order they apply: ``recursive=False`` keeps only files directly in the
    root; ``tables`` join fields from sidecar tables listing files; ``filters`` keep files whose
    field text is one of the listed values; ``types`` convert text to values; ``ranges`` keep
    values between inclusive bounds (text in the field's type, ``None`` for open);
    ``derived`` computes new fields (:func:`derive`); ``lookups`` add fields from tables keyed
    by a field's values. ``preset`` records the options a preset was built from;
    ``extensions`` (``(".png",)``) replaces the default list of image extensions when there is
    no ``glob``.
    """

    pattern: str | None = None
    glob: str | None = None
    types: Mapping[str, str] = field(default_factory=dict)
    dims: tuple[str, ...] | None = None
    group_by: tuple[str, ...] = ()
    on_unmatched: Literal["error", "skip"] = "error"
    target: Literal["auto", "path", "name", "stem"] = "auto"
    search: bool = False
    recursive: bool = True
    tables: tuple[Table, ...] = ()
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)
    derived: Mapping[str, Derivation] = field(default_factory=dict)
    lookups: tuple[Lookup, ...] = ()
    preset: Mapping[str, Any] | None = None
    extensions: tuple[str, ...] | None = None

    def pattern_fields(self) -> list[str]:
        """The named groups of the pattern, in order."""
        if self.pattern is None:
            return []
        return list(_compile(self.pattern).groupindex)

    def fields(self, table_fields: Sequence[str] = ()) -> list[str]:
        """Every field: the pattern's, ``table_fields`` (known once tables are read), derived
        fields and, for lookups with explicit ``columns``, the fields they add."""
        names = self.pattern_fields() or ([] if self.tables else ["file"])
        names += [f for f in table_fields if f not in names]
        names += list(self.derived)
        for lk in self.lookups:
            names += list((lk.columns or {}).values())
        return names

    def outer_dims(self) -> tuple[str, ...]:
        """The array's outer dims: ``dims``, else every pattern field not used by ``group_by``."""
        if self.dims is not None:
            return tuple(self.dims)
        if self.pattern is None:
            return ("file",)
        return tuple(f for f in self.pattern_fields() if f not in self.group_by)

    def callables(self) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
        """The derived fields given as Python callables."""
        return {k: v for k, v in self.derived.items() if callable(v)}

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "pattern": self.pattern,
            "glob": self.glob,
            "types": dict(self.types),
            "dims": None if self.dims is None else list(self.dims),
            "group_by": list(self.group_by),
            "on_unmatched": self.on_unmatched,
        }
        # the keys below are optional: written only when used, so older layouts are unchanged
        extra: dict[str, Any] = {
            "target": self.target if self.target != "auto" else None,
            "search": self.search or None,
            "recursive": None if self.recursive else False,
            "tables": [t.to_json() for t in self.tables] or None,
            "filters": {k: list(v) for k, v in self.filters.items()} or None,
            "ranges": {k: list(v) for k, v in self.ranges.items()} or None,
            "derived": {
                k: CALLABLE_PREFIX + _callable_name(v) if callable(v) else v
                for k, v in self.derived.items()
            }
            or None,
            "lookups": [lk.to_json() for lk in self.lookups] or None,
            "preset": None if self.preset is None else dict(self.preset),
            "extensions": None if self.extensions is None else list(self.extensions),
        }
        doc.update({k: v for k, v in extra.items() if v is not None})
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LayoutSpec:
        dims = doc.get("dims")
        ranges = doc.get("ranges") or {}
        return cls(
            pattern=doc.get("pattern"),
            glob=doc.get("glob"),
            types=dict(doc.get("types") or {}),
            dims=None if dims is None else tuple(dims),
            group_by=tuple(doc.get("group_by") or ()),
            on_unmatched=doc.get("on_unmatched", "error"),
            target=doc.get("target", "auto"),
            search=bool(doc.get("search", False)),
            recursive=bool(doc.get("recursive", True)),
            tables=tuple(Table.from_json(t) for t in doc.get("tables") or ()),
            filters={str(k): tuple(map(str, v)) for k, v in (doc.get("filters") or {}).items()},
            ranges={str(k): (v[0], v[1]) for k, v in ranges.items()},
            derived={str(k): str(v) for k, v in (doc.get("derived") or {}).items()},
            lookups=tuple(Lookup.from_json(lk) for lk in doc.get("lookups") or ()),
            preset=doc.get("preset"),
            extensions=None if doc.get("extensions") is None else tuple(doc["extensions"]),
        )

    def validate(self, table_fields: Sequence[str] | None = None) -> None:
        """Check the spec is self-consistent; raise :class:`LayoutError` naming the problem.

        Field names coming from tables are only known once the tables are read: pass them as
        ``table_fields``; until then names that could come from a table are not checked.
        """
        for what, value, allowed in (
            ("on_unmatched", self.on_unmatched, ("error", "skip")),
            ("target", self.target, ("auto", "path", "name", "stem")),
        ):
            if value not in allowed:
                msg = f"{what} must be one of {list(allowed)}, not {value!r}"
                raise LayoutError(msg)
        for item in (*self.tables, *self.lookups):
            if item.on_missing not in ("error", "warn"):
                msg = f"on_missing must be 'error' or 'warn', not {item.on_missing!r}"
                raise LayoutError(msg)
        needs = self.group_by or self.dims or self.types
        if self.pattern is None and not self.tables and needs:
            msg = "dims, group_by and types need a pattern with named groups (or a table)"
            raise LayoutError(msg)
        if self.pattern is not None and not self.pattern_fields():
            msg = f"pattern {self.pattern!r} has no named groups like (?P<plant>...)"
            raise LayoutError(msg)
        for name, how in self.derived.items():
            if isinstance(how, str) and not how.startswith(CALLABLE_PREFIX):
                _parse_derivation(name, how)
        names = self.fields(table_fields or ())
        unknown_ok = bool(self.tables) and table_fields is None
        lookup_ok = any(lk.columns is None for lk in self.lookups)
        listed = [
            ("dims", self.dims or (), lookup_ok),
            ("group_by", self.group_by, lookup_ok),
            ("types", tuple(self.types), lookup_ok),
            ("filters", tuple(self.filters), False),
            ("ranges", tuple(self.ranges), False),
            ("lookup keys", tuple(lk.key for lk in self.lookups), False),
        ]
        for what, given, lenient in listed:
            unknown = [f for f in given if f not in names]
            if unknown and not unknown_ok and not lenient:
                msg = (
                    f"{what} names {unknown} but the layout's fields are {names}: add a named "
                    "group (?P<name>...), a table column, a derived field or a lookup for each"
                )
                raise LayoutError(msg)
        both = set(self.dims or ()) & set(self.group_by)
        if both:
            msg = f"{sorted(both)} cannot be both a dim and a group_by field"
            raise LayoutError(msg)
        if len(set(self.outer_dims())) != len(self.outer_dims()):
            msg = f"dims {list(self.outer_dims())} name a field twice"
            raise LayoutError(msg)
        twice = sorted({f for f in names if names.count(f) > 1})
        if twice:
            msg = f"fields {twice} are defined twice (pattern, table, derived or lookup): rename"
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


_DIGIT_RUNS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key ordering digit runs by value: ``A2`` before ``A10``.

    >>> sorted(["A10", "a2", "A1"], key=natural_key)
    ['A1', 'a2', 'A10']
    """
    # odd positions are digit runs in every key, so the tuples compare type-safely;
    # case only breaks ties, after the whole name compared case-insensitively
    if text.isascii():  # casefold is lower for ASCII; one call instead of one per part
        parts: list[Any] = _DIGIT_RUNS.split(text.lower())
        parts[1::2] = map(int, parts[1::2])
        return (tuple(parts), text)
    parts = _DIGIT_RUNS.split(text)
    parts[1::2] = map(int, parts[1::2])
    parts[0::2] = map(str.casefold, parts[0::2])
    return (tuple(parts), text)


def _sort_key(value: Value | None) -> Any:
    # a value missing from a lookup (None) sorts after every real value
    if value is None:
        return (1,)
    return (0, natural_key(value) if isinstance(value, str) else value)


def match_fields(
    paths: Sequence[str],
    spec: LayoutSpec,
    *,
    tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> tuple[list[int], list[dict[str, Value]], list[str]]:
    """Parse each path into typed fields.

    Returns ``(kept, fields, unmatched)``: indices of the kept paths, their fields, and the
    paths left out (not matching the pattern or not listed in a table, which raises unless
    ``spec.on_unmatched == "skip"``, or removed by ``recursive``, ``filters`` or ``ranges``).
    ``tables`` holds the rows of every table the spec names, keyed by its path (reading them is
    the caller's job: this stage touches no file).

    >>> spec = LayoutSpec(pattern=r"(?P<plant>\\w+)-(?P<frame>\\d+)\\.png", types={"frame": "int"})
    >>> match_fields(["p/A1-2.png"], spec)
    ([0], [{'plant': 'A1', 'frame': 2}], [])
    """
    spec.validate()
    rows = {path: _rows(path, tables) for path in table_paths(spec)}
    table_fields = [f for t in spec.tables for f in _table_fields(t, rows[t.path])]
    spec.validate(table_fields if spec.tables else None)
    _check_callables(spec)
    texts, unmatched = _match_texts(paths, spec)
    if spec.pattern is None and not spec.tables:
        texts = {i: {"file": paths[i]} for i in texts}
    unlisted: list[int] = []
    reports: list[tuple[Table, str]] = []
    for table in spec.tables:
        missed, report = _join_table(table, rows[table.path], paths, texts)
        unlisted += missed
        reports += [(table, report)] if report else []
    if (unmatched or unlisted) and spec.on_unmatched == "error":
        _raise_unmatched(spec, paths, unmatched, unlisted)
    for table, report in reports:
        if table.on_missing == "error":
            raise LayoutError(report + "; pass on_missing='warn' to go on without them")
        warnings.warn(report, LayoutWarning, stacklevel=2)
    unmatched += unlisted
    removed = [i for i in sorted(texts) if _filtered_out(spec, texts[i])] if spec.filters else []
    dropped = set(removed)
    kept = [i for i in sorted(texts) if i not in dropped]
    types = {name: parse_type(t) for name, t in spec.types.items()}
    if types:
        fields = [_convert(texts[i], types, paths[i]) for i in kept]
    else:  # every field is text already: the fresh dicts of texts serve as they are
        fields = cast("list[dict[str, Value]]", [texts[i] for i in kept])
    if spec.ranges:
        inside = [_in_ranges(spec, f) for f in fields]
        removed += [i for i, ok in zip(kept, inside, strict=True) if not ok]
        kept = [i for i, ok in zip(kept, inside, strict=True) if ok]
        fields = [f for f, ok in zip(fields, inside, strict=True) if ok]
    for name, how in spec.derived.items():
        fn = how if callable(how) else _parse_derivation(name, how)
        for i, f in zip(kept, fields, strict=True):
            f[name] = _derive_one(name, fn, f, paths[i])
    for lookup in spec.lookups:
        _join_lookup(lookup, rows[lookup.path], fields, types)
    left_out = sorted(set(unmatched) | set(removed))
    return kept, fields, [paths[i] for i in left_out]


def table_paths(spec: LayoutSpec) -> list[str]:
    return list(dict.fromkeys([t.path for t in spec.tables] + [lk.path for lk in spec.lookups]))


def _rows(path: str, tables: Mapping[str, Sequence[Mapping[str, Any]]] | None) -> list[dict]:
    if tables is None or path not in tables:
        msg = f"the rows of table {path!r} were not given: read it first (presets.read_table)"
        raise LayoutError(msg)
    return [{_column_name(k): _cell(v) for k, v in row.items()} for row in tables[path]]


def _column_name(name: Any) -> str:
    """Column names lose spaces, as PlantCV reads them; other non-word characters become ``_``."""
    return re.sub(r"\W", "_", str(name).replace(" ", "").strip())


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    return json.dumps(v)


def _table_fields(table: Table, rows: Sequence[Mapping[str, str]]) -> list[str]:
    header = list(dict.fromkeys(k for row in rows for k in row))
    missing = [c for c in table.template_columns() + list(table.split) if c not in header]
    if missing:
        msg = f"table {table.path!r} has no column(s) {missing}; its columns are {header}"
        raise LayoutError(msg)
    if table.columns is None:
        return header
    unknown = [c for c in table.columns if _column_name(c) not in header]
    if unknown:
        msg = f"table {table.path!r} has no column(s) {unknown}; its columns are {header}"
        raise LayoutError(msg)
    return list(table.columns.values())


def _check_callables(spec: LayoutSpec) -> None:
    for name, how in spec.derived.items():
        if isinstance(how, str) and how.startswith(CALLABLE_PREFIX):
            fn = how.removeprefix(CALLABLE_PREFIX)
            short = fn.split(".")[-1]
            msg = (
                f"derived field {name!r} was computed by the Python callable {fn!r}, which cannot "
                f"be saved in JSON: provide it again, e.g. derived={{{name!r}: {short}}}"
            )
            raise LayoutError(msg)


def _target(spec: LayoutSpec) -> str:
    if spec.target != "auto":
        return spec.target
    return "path" if spec.pattern is not None and "/" in spec.pattern else "name"


def _subject(path: str, target: str) -> str:
    if target == "path":
        return path
    name = path.rsplit("/", 1)[-1]
    if target == "stem":
        stem, dot, _ = name.rpartition(".")
        return stem if dot and stem else name
    return name


def _match_texts(
    paths: Sequence[str], spec: LayoutSpec
) -> tuple[dict[int, dict[str, str]], list[int]]:
    texts: dict[int, dict[str, str]] = {}
    unmatched: list[int] = []
    rx = None if spec.pattern is None else _compile(spec.pattern)
    target = _target(spec)
    for i, path in enumerate(paths):
        if not spec.recursive and "/" in path:
            continue
        if rx is None:
            texts[i] = {}
            continue
        subject = _subject(path, target)
        m = rx.search(subject) if spec.search else rx.fullmatch(subject)
        if m is None:
            unmatched.append(i)
            continue
        out = {}
        for name in rx.groupindex:
            text = m.group(name)
            if text is None:
                msg = f"{path!r}: field {name!r} did not take part in the match"
                raise LayoutError(msg)
            out[name] = text
        texts[i] = out
    return texts, unmatched


def _raise_unmatched(
    spec: LayoutSpec, paths: Sequence[str], unmatched: Sequence[int], unlisted: Sequence[int]
) -> None:
    parts = []
    if unmatched:
        shown = ", ".join(repr(paths[i]) for i in unmatched[:MAX_EXAMPLES])
        hint = _preset_hint(spec, paths[unmatched[0]])
        target = {"path": "relative path", "name": "file name", "stem": "file name"}
        parts.append(
            f"{len(unmatched)} of {len(paths)} files match the glob but their "
            f"{target[_target(spec)]} does not match the pattern {spec.pattern!r}, e.g. {shown}"
            + (f" ({hint})" if hint else "")
        )
    if unlisted:
        shown = ", ".join(repr(paths[i]) for i in unlisted[:MAX_EXAMPLES])
        tables = ", ".join(repr(t.path) for t in spec.tables)
        parts.append(
            f"{len(unlisted)} of {len(paths)} files match the glob but they are not listed in "
            f"the table(s) {tables}, e.g. {shown}"
        )
    msg = (
        "; ".join(parts) + ". Fix the pattern or table, narrow the glob, or skip them "
        "(on_unmatched='skip', --skip-unmatched)."
    )
    raise PatternMismatchError(msg, paths=[paths[i] for i in [*unmatched, *unlisted]])


def _preset_hint(spec: LayoutSpec, path: str) -> str:
    """For the PlantCV preset: say how many parts the name has, in PlantCV's own terms."""
    preset = spec.preset or {}
    terms = preset.get("filename_metadata")
    delimiter = preset.get("delimiter")
    if preset.get("name") != "plantcv" or not terms or not isinstance(delimiter, str):
        return ""
    stem = _subject(path, "stem")
    if len(delimiter) != 1:
        return (
            f"{stem!r} does not match the delimiter regex {delimiter!r} with one group for each "
            f"of the {len(terms)} filename_metadata terms {list(terms)}"
        )
    parts = stem.split(delimiter)
    return (
        f"{stem!r} has {len(parts)} part(s) split on {delimiter!r} but filename_metadata lists "
        f"{len(terms)} terms {list(terms)}"
    )


def _join_table(
    table: Table,
    rows: Sequence[Mapping[str, str]],
    paths: Sequence[str],
    texts: dict[int, dict[str, str]],
) -> tuple[list[int], str]:
    """Add the fields of ``table`` to ``texts``; return the files it does not list, and a
    report of the listed files that are not there (empty if none)."""
    index: dict[str, dict[str, str]] = {}
    empty = 0
    for row in rows:
        for key, fields in _table_entries(table, row):
            if not key:
                empty += 1
                continue
            if index.setdefault(key, fields) != fields:
                diff = sorted(k for k in fields if fields[k] != index[key].get(k))
                msg = (
                    f"table {table.path!r} lists {key!r} twice with different values of {diff}: "
                    "make the rows agree or remove one"
                )
                raise LayoutError(msg)
    unlisted: list[int] = []
    used: set[str] = set()
    for i in sorted(texts):
        # a listed name with a "/" is a path relative to the root, else a file name
        key = paths[i]
        if table.ignore_extension:
            key = _strip_extension(key)
        if key not in index:
            key = key.rsplit("/", 1)[-1]
        fields = index.get(key)
        if fields is None:
            unlisted.append(i)
            del texts[i]
            continue
        used.add(key)
        clash = [k for k in fields if k in texts[i]]
        if clash:
            msg = f"table {table.path!r} columns {clash} are also pattern fields: rename one"
            raise LayoutError(msg)
        texts[i].update(fields)
    missing = [k for k in index if k not in used]
    if not missing:
        return unlisted, ""
    what = "files" if not table.ignore_extension else "files (any extension)"
    msg = (
        f"table {table.path!r} lists {len(missing)} {what} that are not among the scanned "
        "files: " + ", ".join(repr(k) for k in missing[:MAX_EXAMPLES])
    )
    return unlisted, msg + (f" (and {empty} empty file entries)" if empty else "")


def _strip_extension(path: str) -> str:
    head, _, name = path.rpartition("/")
    stem, dot, _ = name.rpartition(".")
    name = stem if dot and stem else name
    return f"{head}/{name}" if head else name


def _table_entries(table: Table, row: Mapping[str, str]) -> list[tuple[str, dict[str, str]]]:
    lists = {c: [v.strip() for v in row.get(c, "").split(sep)] for c, sep in table.split.items()}
    combos = itertools.product(*lists.values()) if lists else [()]
    out = []
    for combo in combos:
        cells = dict(row)
        cells.update(zip(lists, combo, strict=True))
        if any(not cells.get(c) for c in table.template_columns()):
            out.append(("", {}))
            continue
        key = re.sub(r"\{([^{}]+)\}", lambda m: cells[m.group(1)], table.file)  # noqa: B023
        if table.columns is None:
            fields = cells
        else:
            fields = {new: cells.get(_column_name(old), "") for old, new in table.columns.items()}
        out.append((key, fields))
    return out


def _filtered_out(spec: LayoutSpec, texts: Mapping[str, str]) -> bool:
    return any(texts.get(k) not in allowed for k, allowed in spec.filters.items())


def _in_ranges(spec: LayoutSpec, fields: Mapping[str, Value]) -> bool:
    for name, (low, high) in spec.ranges.items():
        ftype = parse_type(spec.types.get(name, "str"))
        value = fields[name]
        if low is not None and value < ftype.convert(low):  # type: ignore[operator]
            return False
        if high is not None and value > ftype.convert(high):  # type: ignore[operator]
            return False
    return True


def day(value: datetime, boundary: time = time(0)) -> datetime:
    """The day a measurement belongs to: its date, or the next day from ``boundary`` on.

    A lab whose night runs start at 20:00 counts them to the next day:

    >>> day(datetime(2020, 5, 31, 21, 1), time(20))
    datetime.datetime(2020, 6, 1, 0, 0)
    >>> day(datetime(2020, 6, 1, 2, 30), time(20))
    datetime.datetime(2020, 6, 1, 0, 0)
    """
    start = datetime(value.year, value.month, value.day, tzinfo=value.tzinfo)
    late = boundary != time(0) and value.time() >= boundary
    return start + timedelta(days=1) if late else start


def _parse_derivation(name: str, how: str) -> Callable[[Mapping[str, Any]], Any]:
    """``day(FIELD)``, ``day(FIELD, HH:MM)`` or ``strftime(FIELD, FORMAT)``."""
    m = re.fullmatch(r"\s*(\w+)\(\s*(\w+)\s*(?:,\s*(.*?))?\s*\)\s*", how)
    if m is None or m.group(1) not in ("day", "strftime"):
        msg = (
            f"derived field {name!r}: cannot read {how!r}; use day(FIELD), day(FIELD, HH:MM) "
            "or strftime(FIELD, FORMAT), or a Python callable"
        )
        raise LayoutError(msg)
    verb, source, arg = m.groups()
    if verb == "strftime":
        if not arg:
            msg = f"derived field {name!r}: strftime needs a format, e.g. strftime({source}, %Y-%m)"
            raise LayoutError(msg)
        return lambda f: _datetime_of(f, source, name).strftime(arg)
    try:
        boundary = time.fromisoformat(arg) if arg else time(0)
    except ValueError as e:
        msg = f"derived field {name!r}: day boundary {arg!r} is not a time such as 20:00"
        raise LayoutError(msg) from e
    return lambda f: day(_datetime_of(f, source, name), boundary)


def _datetime_of(fields: Mapping[str, Any], source: str, name: str) -> datetime:
    if source not in fields:
        msg = f"derived field {name!r} needs field {source!r}; the fields are {list(fields)}"
        raise LayoutError(msg)
    value = fields[source]
    if not isinstance(value, datetime):
        msg = (
            f"derived field {name!r} needs a datetime, but {source!r} is {value!r}: give it a "
            f"strptime type, e.g. types={{{source!r}: '%Y%m%dT%H%M%S'}}"
        )
        raise LayoutError(msg)
    return value


def _derive_one(
    name: str, fn: Callable[[Mapping[str, Any]], Any], fields: Mapping[str, Value], path: str
) -> Value:
    try:
        value = fn(dict(fields))
    except LayoutError:
        raise
    except Exception as e:
        msg = f"{path!r}: derived field {name!r} failed: {type(e).__name__}: {e}"
        raise LayoutError(msg) from e
    if isinstance(value, bool) or not isinstance(value, int | float | str | datetime):
        msg = (
            f"{path!r}: derived field {name!r} gave {value!r}; a field must be an int, float, "
            "str or datetime"
        )
        raise LayoutError(msg)
    return value


def _join_lookup(
    lookup: Lookup,
    rows: Sequence[Mapping[str, str]],
    fields: list[dict[str, Value]],
    types: Mapping[str, FieldType],
) -> None:
    column = _column_name(lookup.column or lookup.key)
    header = list(dict.fromkeys(k for row in rows for k in row))
    if column not in header:
        msg = f"lookup table {lookup.path!r} has no key column {column!r}; its columns are {header}"
        raise LayoutError(msg)
    wanted = lookup.columns or {c: c for c in header if c != column}
    added = {_column_name(old): new for old, new in wanted.items()}
    unknown = [c for c in added if c not in header]
    if unknown:
        msg = f"lookup table {lookup.path!r} has no column(s) {unknown}; its columns are {header}"
        raise LayoutError(msg)
    index: dict[str, dict[str, Value]] = {}
    for row in rows:
        key = row.get(column, "")
        values = _convert({new: row.get(old, "") for old, new in added.items()}, types, lookup.path)
        if index.setdefault(key, values) != values:
            msg = f"lookup table {lookup.path!r} lists {column}={key!r} twice with different values"
            raise LayoutError(msg)
    missing: dict[str, int] = {}
    for f in fields:
        if lookup.key not in f:
            msg = f"lookup {lookup.path!r} needs field {lookup.key!r}; the fields are {list(f)}"
            raise LayoutError(msg)
        clash = [n for n in added.values() if n in f]
        if clash:
            msg = f"lookup table {lookup.path!r} columns {clash} are already fields: rename"
            raise LayoutError(msg)
        key = _text(f[lookup.key])
        found = index.get(key)
        if found is None:
            missing[key] = missing.get(key, 0) + 1
        f.update(found or dict.fromkeys(added.values()))  # type: ignore[arg-type]
    if missing:
        shown = ", ".join(f"{k!r} ({n} files)" for k, n in list(missing.items())[:MAX_EXAMPLES])
        msg = (
            f"{len(missing)} value(s) of {lookup.key!r} are not in lookup table "
            f"{lookup.path!r} (column {column!r}): {shown}"
        )
        if lookup.on_missing == "error":
            raise LayoutError(msg + "; add them, or pass on_missing='warn' to leave them empty")
        warnings.warn(msg + "; their looked-up fields are left empty", LayoutWarning, stacklevel=3)


def _text(value: Value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


STR = FieldType("str")


def _convert(
    texts: Mapping[str, str], types: Mapping[str, FieldType], path: str
) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for name, text in texts.items():
        ftype = types.get(name, STR)
        if text is None:
            out[name] = None  # type: ignore[assignment]
            continue
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

    ``file_index`` has the outer shape and holds, per slot, the index of the file in the manifest's
    file table, or -1 for a hole.
    """

    path: str
    attrs: Mapping[str, Any]
    dims: tuple[str, ...]
    image: ImageInfo
    coords: Mapping[str, Coord]
    file_index: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.file_index.shape)

    @property
    def image_dims(self) -> tuple[str, ...]:
        """Outer dims followed by the image's own axes: ``y, x`` and ``c`` for channels."""
        return self.dims + self.image.dims


def _kind_of(v: Value) -> str:
    if isinstance(v, datetime):
        return "datetime-tz" if v.tzinfo is not None else "datetime"
    if isinstance(v, bool | str):
        return "str"
    return "int" if isinstance(v, int) else "float"


_PLAIN_KINDS: dict[type, Literal["int", "float", "str"]] = {int: "int", float: "float", str: "str"}


def _kind(values: Sequence[Value], name: str = "") -> Literal["int", "float", "str", "datetime"]:
    """The one kind all values share; ints mixed with floats are floats; else LayoutError."""
    exact = {type(v) for v in values}
    if len(exact) == 1 and (kind := _PLAIN_KINDS.get(exact.pop())) is not None:
        return kind  # one plain type: a set of types is much cheaper than a kind per value
    kinds = {_kind_of(v) for v in values} or {"str"}
    if kinds == {"int", "float"}:
        return "float"
    if kinds == {"datetime-tz"}:
        return "datetime"
    if len(kinds) > 1:
        examples = {_kind_of(v): v for v in values}
        msg = (
            f"field {name!r} mixes value kinds {sorted(kinds)} (e.g. "
            + ", ".join(f"{v!r}" for v in examples.values())
            + "); one field needs one kind: give it a type, or make the derivation or lookup "
            "return one kind"
        )
        raise LayoutError(msg)
    return kinds.pop()  # type: ignore[return-value]


def _group_name(values: Sequence[Value]) -> str:
    parts = []
    for v in values:
        text = v.isoformat() if isinstance(v, datetime) else str(v)
        # zarr node names may not contain "/" nor start with "__"
        text = text.replace("/", "_") or "_"
        if text in ("zarr.json", ".", ".."):
            msg = (
                f"group value {text!r} cannot name a zarr group (it would hide or escape "
                "other nodes); choose another group_by field or map the value with a lookup"
            )
            raise LayoutError(msg)
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
    if not spec.group_by:
        groups[()] = list(range(len(fields)))
    for i, f in enumerate(fields if spec.group_by else ()):
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
    columns = {d: [fields[i][d] for i in members] for d in dims}
    for d in dims:
        _kind([v for v in columns[d] if v is not None], d)  # one kind, so values sort
    labels = {d: _sorted_labels(columns[d]) for d in dims}
    shape = tuple(len(labels[d]) for d in dims)
    chunks = np.full(shape, -1, dtype=np.int64)
    # per dim, the label position of every member; zipped, the slot of every member
    positions = []
    for d in dims:
        where_of = {v: k for k, v in enumerate(labels[d])}
        positions.append([where_of[v] for v in columns[d]])
    others = [f for f in (fields[members[0]] if members else {}) if f not in dims]
    others = [f for f in others if f not in spec.group_by]
    if not others and _fill_unique(chunks, members, positions):
        slots: dict[tuple[int, ...], list[int]] = {}  # not needed: no field left to place
    else:
        slots = _fill_slots(chunks, members, positions)
    clashes = [(idx, files) for idx, files in slots.items() if len(files) > 1]
    if clashes:
        _raise_duplicates(where, dims, labels, clashes, paths)
    coords: dict[str, Coord] = {
        d: Coord((d,), _kind([v for v in labels[d] if v is not None], d), tuple(labels[d]))
        for d in dims
    }
    for name in others:
        coords[name] = _smallest_coord(name, dims, shape, slots, fields)
    return Node(path, dict(attrs), dims, image, coords, chunks)


def _sorted_labels(values: Sequence[Value]) -> list[Value]:
    """The distinct values in label order."""
    # dict.fromkeys keeps the input order, which is nearly sorted already (files come in path
    # order), so the sort is close to linear; a set's hash order made it 40% of arrange
    unique = list(dict.fromkeys(values))
    if all(type(v) is str for v in unique):
        # as _sort_key orders them, without a second call per value
        return sorted(unique, key=natural_key)  # type: ignore[arg-type]
    return sorted(unique, key=_sort_key)


def _fill_unique(chunks: np.ndarray, members: Sequence[int], positions: list[list[int]]) -> bool:
    """Write every member into its slot of ``chunks`` in one go; False (nothing written) if
    two members share a slot, or there are no dims."""
    if not positions or not members:
        return False
    flat = np.ravel_multi_index(np.array(positions, dtype=np.intp), chunks.shape)
    ordered = np.sort(flat)  # not np.bincount: that allocates the whole, maybe sparse, grid
    if (ordered[1:] == ordered[:-1]).any():
        return False
    chunks.reshape(-1)[flat] = members
    return True


def _fill_slots(
    chunks: np.ndarray, members: Sequence[int], positions: list[list[int]]
) -> dict[tuple[int, ...], list[int]]:
    """Group members by slot and write the last of each into ``chunks``."""
    dims = len(positions)
    slots: dict[tuple[int, ...], list[int]] = {}
    for i, idx in zip(
        members, zip(*positions, strict=True) if dims else [()] * len(members), strict=True
    ):
        slots.setdefault(idx, []).append(i)
    if slots:  # one vectorised assignment: per-slot numpy indexing costs a microsecond each
        where_ = np.array(list(slots), dtype=np.intp).reshape(len(slots), dims)
        chunks[tuple(where_.T)] = [files[-1] for files in slots.values()]
    return slots


def _common_image(
    where: str, members: Sequence[int], paths: Sequence[str], infos: Sequence[ImageInfo]
) -> ImageInfo:
    # probes of one scan often share ImageInfo objects: compare each distinct one once
    distinct = list({id(infos[i]): infos[i] for i in members}.values())
    if len({_image_signature(info) for info in distinct}) == 1:
        return infos[members[0]]
    kinds: dict[tuple[Any, ...], list[int]] = {}
    for i in members:
        kinds.setdefault(_image_signature(infos[i]), []).append(i)
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


def _image_signature(info: ImageInfo) -> tuple[Any, ...]:
    """What images of one array must share."""
    config = info.codec.get("configuration")
    return (
        info.format,
        tuple(info.shape),
        info.dtype,
        info.axes,
        info.codec.get("name"),
        info.palette,
        None if config is None else json.dumps(config, sort_keys=True),
    )


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
            kind = _kind([v for v in flat if v is not None], name)
            return Coord(tuple(dims[k] for k in subset), kind, tuple(flat))
    msg = "the full set of dims always determines a field"
    raise AssertionError(msg)  # pragma: no cover
