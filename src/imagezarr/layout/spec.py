"""Stage 3, layout: the spec, everything needed to repeat a layout, and its validation.

:class:`LayoutSpec` holds the regex, field types, dims and grouping; :class:`Table` and
:class:`Lookup` name the sidecar tables it joins. Plain values: reading the tables and
matching file names is :mod:`.match`'s job, building the arrays :mod:`.arrange`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Literal

from ..errors import LayoutError

__all__ = [
    "CALLABLE_PREFIX",
    "RESERVED",
    "Derivation",
    "FieldType",
    "LayoutSpec",
    "LayoutWarning",
    "Lookup",
    "Table",
    "Value",
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


def _parse_derivation(name: str, how: str) -> tuple[str, str, str | time]:
    """Read ``day(FIELD)``, ``day(FIELD, HH:MM)`` or ``strftime(FIELD, FORMAT)`` into
    ``(verb, field, argument)``: the day boundary as a time, or the strftime format."""
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
        return verb, source, arg
    try:
        boundary = time.fromisoformat(arg) if arg else time(0)
    except ValueError as e:
        msg = f"derived field {name!r}: day boundary {arg!r} is not a time such as 20:00"
        raise LayoutError(msg) from e
    return verb, source, boundary
