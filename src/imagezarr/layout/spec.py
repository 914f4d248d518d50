"""Layout: the spec, everything needed to repeat a layout, and its validation.

:class:`LayoutSpec` holds the regex, field types, dims and grouping; :class:`Table` and
:class:`Lookup` name the sidecar tables it joins. Plain values: reading the tables and
matching file names is :mod:`.match`'s job, building the arrays :mod:`.arrange`'s.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Literal, NoReturn

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
# y and x name every image's own axes; c and z may be fields (microscopy t, c, z): the
# image's own c or z axis is renamed then (Node.image_dims)
RESERVED = ("y", "x", "path", "present", "image")
MAX_EXAMPLES = 5
CALLABLE_PREFIX = "callable:"
# the directives datetime.strptime reads (CPython's _strptime.TimeRE)
STRPTIME_DIRECTIVES = frozenset("aAbBcdfGHIjmMpSuUVwWxXyYzZ%")


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
    if not isinstance(spec, str):
        msg = f"a field type must be a string such as 'int', not {_what(spec)}"
        raise LayoutError(msg)
    if spec in ("int", "float", "str"):
        return FieldType(spec)  # type: ignore[arg-type]
    if "%" in spec:
        _check_strptime(spec)
        return FieldType("datetime", spec)
    msg = (
        f"unknown field type {spec!r}: use int, float, str, or a strptime format such as "
        "'%Y%m%dT%H%M%S'"
    )
    raise LayoutError(msg)


def _check_strptime(fmt: str) -> None:
    # read here rather than by a trial strptime: that would cache the format and so swallow
    # the DeprecationWarning strptime gives a format with a day but no year when first used
    at = fmt.find("%")
    while at != -1:
        code = fmt[at + 1 : at + 2]
        if code not in STRPTIME_DIRECTIVES:
            bad = f"'%{code}' is not a strptime directive" if code else "it ends in a lone '%'"
            msg = f"field type {fmt!r}: {bad}; write '%%' for a literal '%'"
            raise LayoutError(msg)
        at = fmt.find("%", at + 2)


@dataclass(frozen=True, slots=True)
class Table:
    """A sidecar table listing files, as imaging systems export them (``SnapshotInfo.csv``).

    Each row gives its columns as fields to the file(s) it names. ``file`` is a template of
    ``{column}`` references naming the file of a row: a name with a ``/`` is compared with the
    path relative to the root, otherwise with the file name; ``ignore_extension`` compares
    without the file's extension. ``split`` names columns holding lists (``{"tiles": ";"}``):
    one row per item, a trailing separator ignored. Column names lose their spaces (``plant
    barcode`` becomes ``plantbarcode``, as PlantCV reads them); ``columns`` renames or selects
    (``{column: field}``). Rows naming files that are not there (or nothing: an empty item)
    raise (``on_missing="error"``) or warn. Files the table does not list are unmatched
    (``on_unlisted="error"``) or left out, reported as not in the table (``"skip"``).

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
    on_unlisted: Literal["error", "skip"] = "error"

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
            **({"on_unlisted": self.on_unlisted} if self.on_unlisted != "error" else {}),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Table:
        """Read :meth:`to_json`'s document; raise :class:`LayoutError` naming a bad key."""
        return cls._read(_Reader(doc, "table"))

    @classmethod
    def _read(cls, doc: _Reader) -> Table:
        return cls(
            path=doc.text("path", required=True),
            file=doc.text("file", required=True),
            split=doc.text_map("split") or {},
            columns=doc.text_map("columns"),
            ignore_extension=doc.flag("ignore_extension", False),
            on_missing=doc.choice("on_missing", ("error", "warn")),
            on_unlisted=doc.choice("on_unlisted", ("error", "skip")),
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
        """Read :meth:`to_json`'s document; raise :class:`LayoutError` naming a bad key."""
        return cls._read(_Reader(doc, "lookup"))

    @classmethod
    def _read(cls, doc: _Reader) -> Lookup:
        return cls(
            path=doc.text("path", required=True),
            key=doc.text("key", required=True),
            column=doc.text("column"),
            columns=doc.text_map("columns"),
            on_missing=doc.choice("on_missing", ("error", "warn")),
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
    # images of one array that differ in format, shape or dtype: an error, leave out those
    # unlike most of their group, or give each kind its own group
    on_mismatch: Literal["error", "skip", "split"] = "error"
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
            "on_mismatch": self.on_mismatch if self.on_mismatch != "error" else None,
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
        """Read :meth:`to_json`'s document (validated, as every spec is on construction).

        Every key is checked (a missing or ``null`` key takes its default): a manifest may come
        from anywhere, so anything else raises a :class:`LayoutError` naming the key, such as
        ``tables[0].split.tiles must be a string, not a number``.
        """
        d = _Reader(doc, "")
        filters = d.object("filters") or _Reader({}, "filters")
        ranges = d.object("ranges") or _Reader({}, "ranges")
        return cls(
            pattern=d.text("pattern"),
            glob=d.text("glob"),
            types=d.text_map("types") or {},
            dims=d.texts("dims"),
            group_by=d.texts("group_by") or (),
            on_unmatched=d.choice("on_unmatched", ("error", "skip")),
            on_mismatch=d.choice("on_mismatch", ("error", "skip", "split")),
            target=d.choice("target", ("auto", "path", "name", "stem")),
            search=d.flag("search", False),
            recursive=d.flag("recursive", True),
            tables=tuple(Table._read(t) for t in d.objects("tables")),
            filters={k: filters.texts(k, required=True) or () for k in filters},
            ranges={k: ranges.bounds(k) for k in ranges},
            derived=d.text_map("derived") or {},
            lookups=tuple(Lookup._read(lk) for lk in d.objects("lookups")),
            preset=None if (preset := d.object("preset")) is None else dict(preset.doc),
            extensions=d.texts("extensions"),
        )

    def __post_init__(self) -> None:
        # a spec that exists is self-consistent: no verb meets an invalid one later
        self.validate()

    def validate(self, table_fields: Sequence[str] | None = None) -> None:
        """Check the spec is self-consistent; raise :class:`LayoutError` naming the problem.

        Field names coming from tables are only known once the tables are read: pass them as
        ``table_fields``; until then names that could come from a table are not checked.
        """
        for what, value, allowed in (
            ("on_unmatched", self.on_unmatched, ("error", "skip")),
            ("on_mismatch", self.on_mismatch, ("error", "skip", "split")),
            ("target", self.target, ("auto", "path", "name", "stem")),
        ):
            if value not in allowed:
                msg = f"{what} must be one of {list(allowed)}, not {value!r}"
                raise LayoutError(msg)
        for item in (*self.tables, *self.lookups):
            if item.on_missing not in ("error", "warn"):
                kind = "lookup" if isinstance(item, Lookup) else "table"
                msg = (
                    f"{kind} {item.path!r}: on_missing must be 'error' or 'warn', "
                    f"not {item.on_missing!r}"
                )
                raise LayoutError(msg)
        for table in self.tables:
            if table.on_unlisted not in ("error", "skip"):
                msg = f"table {table.path!r}: on_unlisted must be 'error' or 'skip'"
                raise LayoutError(msg)
            empty = [c for c, sep in table.split.items() if not sep]
            if empty:
                msg = f"table {table.path!r}: split {empty} needs a separator such as ';'"
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
            elif not isinstance(how, str) and not callable(how):
                msg = f"derived field {name!r} must be a text or a callable, not {_what(how)}"
                raise LayoutError(msg)
        names = self.fields(table_fields or ())
        known = set(names)
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
            unknown = [f for f in given if f not in known]
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
        twice = sorted(f for f, n in Counter(names).items() if n > 1)
        if twice:
            msg = f"fields {twice} are defined twice (pattern, table, derived or lookup): rename"
            raise LayoutError(msg)
        clash = [f for f in names if f in RESERVED]
        if clash:
            msg = f"field names {clash} are reserved ({', '.join(RESERVED)}): rename"
            raise LayoutError(msg)
        types: dict[str, FieldType] = {}
        for name, t in self.types.items():
            try:
                types[name] = parse_type(t)
            except LayoutError as e:
                msg = f"types.{name}: {e}"
                raise LayoutError(msg) from None
        for name, bounds in self.ranges.items():
            ftype = types.get(name, FieldType("str"))
            for bound in (b for b in bounds if b is not None):
                try:
                    ftype.convert(bound)
                except (TypeError, ValueError) as e:
                    shown = ftype.fmt if ftype.kind == "datetime" else ftype.kind
                    msg = f"ranges.{name}: bound {bound!r} is not {shown}: {e}"
                    raise LayoutError(msg) from None


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as e:
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


def _what(value: Any) -> str:
    """The JSON kind of ``value``, for messages: not its text, which may be huge."""
    for kind, name in ((bool, "true/false"), (str, "a string"), (int | float, "a number")):
        if isinstance(value, kind):
            return name
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return "null" if value is None else type(value).__name__


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


class _Reader:
    """Typed reads from one JSON object; every error names the key, as ``tables[0].split``.

    A missing or ``null`` key gives the default: :meth:`LayoutSpec.to_json` leaves out the
    keys it does not use.
    """

    def __init__(self, doc: Any, where: str) -> None:
        if not isinstance(doc, Mapping):
            self._fail(where or "the layout", "an object", doc)
        odd = [k for k in doc if not isinstance(k, str)]
        if odd:
            msg = f"{where or 'the layout'} has a key that is not a string: {_short(repr(odd[0]))}"
            raise LayoutError(msg)
        self.doc: Mapping[str, Any] = doc
        self.where = where

    def __iter__(self) -> Iterator[str]:
        return iter(self.doc)

    def name(self, key: str) -> str:
        return f"{self.where}.{_short(key)}" if self.where else _short(key)

    @staticmethod
    def _fail(name: str, expected: str, value: Any) -> NoReturn:
        msg = f"{name} must be {expected}, not {_what(value)}"
        raise LayoutError(msg)

    def _get(self, key: str, kind: Any, expected: str, required: bool) -> Any:
        value = self.doc.get(key)
        if value is None and required:
            self._fail(self.name(key), expected, value)
        # JSON's true is no number: bool, an int to Python, passes only where asked for
        if value is not None and (
            not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
        ):
            self._fail(self.name(key), expected, value)
        return value

    def text(self, key: str, *, required: bool = False) -> Any:
        value = self._get(key, str, "a string", required)
        if required and not value:
            msg = f"{self.name(key)} must not be empty"
            raise LayoutError(msg)
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, bool, "true or false", False)
        return default if value is None else value

    def choice(self, key: str, allowed: tuple[str, ...]) -> Any:
        value = self.text(key)
        if value is None:
            return allowed[0]
        if value not in allowed:
            msg = f"{self.name(key)} must be one of {list(allowed)}, not {_short(repr(value))}"
            raise LayoutError(msg)
        return value

    def texts(self, key: str, *, required: bool = False) -> tuple[str, ...] | None:
        items = self._get(key, list | tuple, "a list of strings", required)
        if items is None:
            return None
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self._fail(f"{self.name(key)}[{i}]", "a string", item)
        return tuple(items)

    def object(self, key: str) -> _Reader | None:
        value = self._get(key, Mapping, "an object", False)
        return None if value is None else _Reader(value, self.name(key))

    def objects(self, key: str) -> list[_Reader]:
        items = self._get(key, list | tuple, "a list of objects", False) or ()
        return [_Reader(item, f"{self.name(key)}[{i}]") for i, item in enumerate(items)]

    def text_map(self, key: str) -> dict[str, str] | None:
        """An object of strings, such as ``{column: field}``."""
        obj = self.object(key)
        if obj is None:
            return None
        for k, value in obj.doc.items():
            if not isinstance(value, str):
                self._fail(obj.name(k), "a string", value)
        return dict(obj.doc)

    def bounds(self, key: str) -> tuple[str | None, str | None]:
        """``[low, high]``, each a string or ``null`` for open."""
        value = self.doc.get(key)
        ok = isinstance(value, list | tuple) and len(value) == 2
        if not ok or any(b is not None and not isinstance(b, str) for b in value):
            self._fail(self.name(key), "[low, high], each a string or null", value)
        return value[0], value[1]
