"""Stage 3, layout: file names → typed fields.

Pure: takes values, returns values, touches no file. :func:`match_fields` parses every
relative path with the layout's regex into typed fields, joins fields from sidecar tables
(:class:`~.spec.Table`), filters, derives fields (``day`` with a day boundary, ``strftime``,
any Python callable) and joins lookup tables (:class:`~.spec.Lookup`).
"""

from __future__ import annotations

import itertools
import json
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any, cast

from ..errors import LayoutError, PatternMismatchError
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

__all__ = ["day", "match_fields", "natural_key", "table_paths"]

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
        fn = how if callable(how) else _derivation(name, how)
        for i, f in zip(kept, fields, strict=True):
            f[name] = _derive_one(name, fn, f, paths[i])
    for lookup in spec.lookups:
        _join_lookup(lookup, rows[lookup.path], fields, types)
    left_out = sorted(set(unmatched) | set(removed))
    return kept, fields, [paths[i] for i in left_out]


def table_paths(spec: LayoutSpec) -> list[str]:
    """The paths of every table the spec reads (its tables, then its lookups), each once.

    >>> spec = LayoutSpec(tables=(Table("a.csv", file="{f}"),), lookups=(Lookup("a.csv", "f"),))
    >>> table_paths(spec)
    ['a.csv']
    """
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
