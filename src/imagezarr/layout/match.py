"""Layout: file names → typed fields.

Pure: takes values, returns values, touches no file. :func:`match_fields` parses every
relative path with the layout's regex into typed fields, joins fields from sidecar tables
(:class:`~.spec.Table`), filters, derives fields (``day`` with a day boundary, ``strftime``,
any Python callable) and joins lookup tables (:class:`~.spec.Lookup`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cached_property
from typing import Any, cast

from ..errors import LayoutError, PatternMismatchError
from ._tables import Absent, column_name, join_table, read_rows, table_fields
from .spec import (
    CALLABLE_PREFIX,
    MAX_EXAMPLES,
    FieldType,
    LayoutSpec,
    LayoutWarning,
    Lookup,
    Table,
    Value,
    _compile,
    _parse_derivation,
    parse_type,
)

__all__ = [
    "FILTERED",
    "NOT_LISTED",
    "NOT_MATCHED",
    "NO_FILE",
    "REASONS",
    "Exclusion",
    "NameTest",
    "day",
    "exclusion_counts",
    "match_fields",
    "natural_key",
    "table_paths",
]

_DIGIT_RUNS = re.compile(r"(\d+)")
NOT_MATCHED = "name does not match"
NOT_LISTED = "not in table"
NO_FILE = "table row without file"
FILTERED = "filtered out"
UNREADABLE = "unreadable header"  # the probe: not an image, truncated header, unsupported
OTHER_SIGNATURE = "other signature"  # a minority format, shape or dtype (on_mismatch="skip")
REASONS = (NOT_MATCHED, NOT_LISTED, NO_FILE, FILTERED, UNREADABLE, OTHER_SIGNATURE)


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why a file was left out of a scan, or a table entry names no file.

    ``reason`` is one of :data:`REASONS`: ``"name does not match"`` (the pattern),
    ``"not in table"`` (a sidecar table does not list it), ``"table row without file"`` (``path``
    is then the name as the table gives it) or ``"filtered out"`` (``filters`` or ``ranges``).
    ``detail`` says why in words. ``selected`` is for table entries: the entry passes the
    filters, so the file would be taken (PlantCV takes it, and fails to read it).

    >>> e = Exclusion("a/NIR_1.png", "filtered out", "imgtype='NIR' is not one of ['VIS']")
    >>> Exclusion.from_json(e.to_json()) == e
    True
    """

    path: str
    reason: str
    detail: str = ""
    selected: bool = False

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": self.path, "reason": self.reason, "detail": self.detail}
        return doc | ({"selected": True} if self.selected else {})

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Exclusion:
        reason = doc.get("reason")
        if reason not in REASONS or not isinstance(doc.get("path"), str):
            msg = f"an exclusion needs a path and a reason among {list(REASONS)}, not {doc!r}"
            raise LayoutError(msg)
        detail = doc.get("detail") or ""
        return cls(doc["path"], reason, str(detail), selected=doc.get("selected") is True)


def exclusion_counts(excluded: Iterable[Exclusion]) -> dict[str, int]:
    """How many of each reason, in the order of :data:`REASONS` (reasons with none left out).

    >>> exclusion_counts([Exclusion("a", "filtered out"), Exclusion("b", "not in table")])
    {'not in table': 1, 'filtered out': 1}
    """
    counts = dict.fromkeys(REASONS, 0)
    for e in excluded:
        counts[e.reason] += 1
    return {k: n for k, n in counts.items() if n}


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
    report: list[Exclusion] | None = None,
) -> tuple[list[int], list[dict[str, Value]], list[str]]:
    """Parse each path into typed fields.

    Returns ``(kept, fields, unmatched)``: indices of the kept paths, their fields, and the
    paths left out: not matching the pattern or not listed in a table (which raises unless
    ``spec.on_unmatched == "skip"`` or the table's ``on_unlisted == "skip"``), or removed by
    ``filters`` or ``ranges``. A name that does not match is left out without raising when a
    filter or range needs a field it lacks: it would be filtered out anyway. Files outside
    ``recursive`` are not candidates at all. ``tables`` holds the rows of every table the spec
    names, keyed by its path (reading them is the caller's job: this stage touches no file).
    ``report``, when given, receives one :class:`Exclusion` per path left out and per table
    entry naming no file, grouped by reason.

    >>> spec = LayoutSpec(pattern=r"(?P<plant>\\w+)-(?P<frame>\\d+)\\.png", types={"frame": "int"})
    >>> match_fields(["p/A1-2.png"], spec)
    ([0], [{'plant': 'A1', 'frame': 2}], [])
    >>> spec = LayoutSpec(pattern=r"(?P<p>A\\d+)-(?P<cam>\\w+)\\.png", filters={"cam": ("VIS",)})
    >>> report = []
    >>> match_fields(["A1-VIS.png", "A1-NIR.png", "notes.png"], spec, report=report)
    ([0], [{'p': 'A1', 'cam': 'VIS'}], ['A1-NIR.png', 'notes.png'])
    >>> [(e.path, e.reason) for e in report]
    [('notes.png', 'name does not match'), ('A1-NIR.png', 'filtered out')]
    """
    rows = {path: read_rows(path, tables) for path in table_paths(spec)}
    given = [f for t in spec.tables for f in table_fields(t, rows[t.path])]
    spec.validate(given if spec.tables else None)
    _check_callables(spec)
    types = {name: parse_type(t) for name, t in spec.types.items()}
    texts, unmatched = _match_texts(paths, spec)
    if spec.pattern is None and not spec.tables:
        texts = {i: {"file": paths[i]} for i in texts}
    partial: dict[int, dict[str, str]] = {i: {} for i in unmatched}
    unlisted: list[int] = []
    gone = set(unmatched)
    out: list[Exclusion] = []
    absent: list[tuple[Table, list[Absent]]] = []
    for table in spec.tables:
        missed, missing = join_table(table, rows[table.path], paths, texts, partial)
        gone.update(missed)
        if table.on_unlisted == "error":
            unlisted += missed
        listed = f"not listed in {_short_name(table.path)}"
        out += [Exclusion(paths[i], NOT_LISTED, listed) for i in missed]
        absent += [(table, missing)] if missing else []
    unmatched = [i for i in unmatched if i in partial]
    excused = {i: _excluded_by(spec, partial[i], types, paths[i]) for i in unmatched}
    strict = [i for i in unmatched if not excused[i]]
    if (strict or unlisted) and spec.on_unmatched == "error":
        _raise_unmatched(spec, paths, strict, unlisted)
    for i in unmatched:
        why = _preset_hint(spec, paths[i]) or f"it does not match {spec.pattern!r}"
        out.append(
            Exclusion(paths[i], NOT_MATCHED, why + (f"; {excused[i]}" if excused[i] else ""))
        )
    for table, missing in absent:
        out += [_absent_entry(spec, table, a, types) for a in missing]
        _missing_report(table, missing)
    removed: dict[int, str] = {}
    if spec.filters:
        removed = {i: why for i in sorted(texts) if (why := _filter_out(spec, texts[i]))}
    kept = [i for i in sorted(texts) if i not in removed]
    if types:
        fields = [_convert(texts[i], types, paths[i]) for i in kept]
    else:  # every field is text already: the fresh dicts of texts serve as they are
        fields = cast("list[dict[str, Value]]", [texts[i] for i in kept])
    if spec.ranges:
        outside = [_range_out(spec, f) for f in fields]
        removed.update((i, why) for i, why in zip(kept, outside, strict=True) if why)
        kept = [i for i, why in zip(kept, outside, strict=True) if not why]
        fields = [f for f, why in zip(fields, outside, strict=True) if not why]
    out += [Exclusion(paths[i], FILTERED, why) for i, why in sorted(removed.items())]
    for name, how in spec.derived.items():
        fn = how if callable(how) else _derivation(name, how)
        for i, f in zip(kept, fields, strict=True):
            f[name] = _derive_one(name, fn, f, paths[i])
    for lookup in spec.lookups:
        _join_lookup(lookup, rows[lookup.path], fields, types)
    if report is not None:
        report += sorted(out, key=lambda e: (REASONS.index(e.reason), natural_key(e.path)))
    return kept, fields, [paths[i] for i in sorted(gone | set(removed))]


@dataclass(frozen=True)
class NameTest:
    """Whether a path can be kept by :func:`match_fields` judging by the path alone: False
    for files outside ``recursive`` and names the pattern does not match, which no table,
    filter or lookup brings back. A value, so it pickles to dask workers that list and probe
    part of a source."""

    pattern: str | None
    search: bool
    target: str
    recursive: bool

    @classmethod
    def of(cls, spec: LayoutSpec) -> NameTest:
        """The test for ``spec``.

        >>> test = NameTest.of(LayoutSpec(pattern=r"A(?P<n>\\d+)\\.png", recursive=False))
        >>> test("A1.png"), test("B1.png"), test("night/A1.png")
        (True, False, False)
        """
        return cls(spec.pattern, spec.search, _target(spec), spec.recursive)

    @cached_property
    def _rx(self) -> re.Pattern[str] | None:
        return None if self.pattern is None else _compile(self.pattern)

    def __call__(self, path: str) -> bool:
        if not self.recursive and "/" in path:
            return False
        rx = self._rx
        if rx is None:
            return True
        subject = _subject(path, self.target)
        return (rx.search(subject) if self.search else rx.fullmatch(subject)) is not None


def table_paths(spec: LayoutSpec) -> list[str]:
    """The paths of every table the spec reads (its tables, then its lookups), each once.

    >>> spec = LayoutSpec(tables=(Table("a.csv", file="{f}"),), lookups=(Lookup("a.csv", "f"),))
    >>> table_paths(spec)
    ['a.csv']
    """
    return list(dict.fromkeys([t.path for t in spec.tables] + [lk.path for lk in spec.lookups]))


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
    # the preset's record is free-form JSON: a hint from a hostile one is left out, not raised
    plantcv = preset.get("name") == "plantcv" and isinstance(terms, list | tuple)
    if not plantcv or not terms or not isinstance(delimiter, str):
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


def _short_name(path: str) -> str:
    return re.split(r"[/\\]", path)[-1] or path


def _missing_report(table: Table, missing: Sequence[Absent]) -> None:
    """Raise or warn, as ``table.on_missing`` says, about its entries naming no file."""
    what = "files" if not table.ignore_extension else "files (any extension)"
    msg = (
        f"table {table.path!r} lists {len(missing)} {what} that are not among the scanned "
        "files: " + ", ".join(repr(a.key) for a in missing[:MAX_EXAMPLES])
    )
    if table.on_missing == "error":
        raise LayoutError(msg + "; pass on_missing='warn' to go on without them")
    warnings.warn(msg, LayoutWarning, stacklevel=3)


def _absent_entry(
    spec: LayoutSpec, table: Table, entry: Absent, types: Mapping[str, FieldType]
) -> Exclusion:
    """The report of a table entry naming no file; ``selected``: it passes the filters."""
    fields = dict(entry.fields)
    rx = None if spec.pattern is None else _compile(spec.pattern)
    subject = _subject(entry.key, _target(spec))
    m = None if rx is None else rx.search(subject) if spec.search else rx.fullmatch(subject)
    if m is not None:
        fields.update({k: v for k, v in m.groupdict().items() if v is not None})
    try:
        why = _excluded_by(spec, fields, types, entry.key)
    except LayoutError as e:
        why = str(e)
    notes = [f"listed in {_short_name(table.path)}", entry.note, why or "passes the filters"]
    return Exclusion(entry.key, NO_FILE, "; ".join(n for n in notes if n), selected=not why)


def _excluded_by(
    spec: LayoutSpec, texts: Mapping[str, str], types: Mapping[str, FieldType], where: str
) -> str:
    """Why ``filters`` or ``ranges`` remove a file with (perhaps only some of) these fields."""
    why = _filter_out(spec, texts)
    if why or not spec.ranges:
        return why
    lacking = [name for name in spec.ranges if texts.get(name) is None]
    if lacking:
        return f"no {lacking[0]!r} for the range on it"
    return _range_out(spec, _convert({k: texts[k] for k in spec.ranges}, types, where))


def _filter_out(spec: LayoutSpec, texts: Mapping[str, str]) -> str:
    for name, allowed in spec.filters.items():
        value = texts.get(name)
        if value is None:
            return f"no {name!r} for the filter on it"
        if value not in allowed:
            return f"{name}={value!r} is not one of {list(allowed)}"
    return ""


def _range_out(spec: LayoutSpec, fields: Mapping[str, Value]) -> str:
    for name, (low, high) in spec.ranges.items():
        ftype = parse_type(spec.types.get(name, "str"))
        value = fields[name]
        if low is not None and value < ftype.convert(low):  # type: ignore[operator]
            return f"{name}={_text(value)} is before {low!r}"
        if high is not None and value > ftype.convert(high):  # type: ignore[operator]
            return f"{name}={_text(value)} is after {high!r}"
    return ""


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


def _derivation(name: str, how: str) -> Callable[[Mapping[str, Any]], Any]:
    """The function computing derived field ``name`` as the text ``how`` says."""
    verb, source, arg = _parse_derivation(name, how)
    if verb == "strftime":
        fmt = cast("str", arg)
        return lambda f: _datetime_of(f, source, name).strftime(fmt)
    boundary = cast("time", arg)
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
    column = column_name(lookup.column or lookup.key)
    header = list(dict.fromkeys(k for row in rows for k in row))
    if column not in header:
        msg = f"lookup table {lookup.path!r} has no key column {column!r}; its columns are {header}"
        raise LayoutError(msg)
    wanted = lookup.columns or {c: c for c in header if c != column}
    added = {column_name(old): new for old, new in wanted.items()}
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
