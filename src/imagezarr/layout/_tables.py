"""Layout: sidecar tables listing files, joined to the scanned paths.

Pure, like :mod:`.match`: rows come in as values (reading them is the caller's job). A
:class:`~.spec.Table` names one file per row (or per item of a ``split`` list); its columns
become the fields of that file. What does not join is returned, not raised: the files a table
does not list, and the entries naming no scanned file (:class:`Absent`).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import LayoutError
from .spec import Table

__all__ = ["Absent", "column_name", "join_table", "read_rows", "strip_extension", "table_fields"]


@dataclass(frozen=True, slots=True)
class Absent:
    """A table entry naming no scanned file: the name as the table gives it, the entry's
    fields, and a note (an empty list item, another file of the same name)."""

    key: str
    fields: Mapping[str, str]
    note: str = ""


def read_rows(path: str, tables: Mapping[str, Sequence[Mapping[str, Any]]] | None) -> list[dict]:
    """The rows of table ``path`` from ``tables``, column names and cells normalised."""
    if tables is None or path not in tables:
        msg = f"the rows of table {path!r} were not given: read it first (presets.read_table)"
        raise LayoutError(msg)
    return [{column_name(k): _cell(v) for k, v in row.items()} for row in tables[path]]


def column_name(name: Any) -> str:
    """Column names lose spaces, as PlantCV reads them; other non-word characters become ``_``."""
    return re.sub(r"\W", "_", str(name).replace(" ", "").strip())


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    return json.dumps(v)


def table_fields(table: Table, rows: Sequence[Mapping[str, str]]) -> list[str]:
    """The fields ``table`` gives each file; raise naming columns the rows lack."""
    header = list(dict.fromkeys(k for row in rows for k in row))
    missing = [c for c in table.template_columns() + list(table.split) if c not in header]
    if missing:
        msg = f"table {table.path!r} has no column(s) {missing}; its columns are {header}"
        raise LayoutError(msg)
    if table.columns is None:
        return header
    unknown = [c for c in table.columns if column_name(c) not in header]
    if unknown:
        msg = f"table {table.path!r} has no column(s) {unknown}; its columns are {header}"
        raise LayoutError(msg)
    return list(table.columns.values())


def join_table(
    table: Table,
    rows: Sequence[Mapping[str, str]],
    paths: Sequence[str],
    texts: dict[int, dict[str, str]],
    partial: dict[int, dict[str, str]],
) -> tuple[list[int], list[Absent]]:
    """Add the fields of ``table`` to ``texts`` (fields of matched names) and ``partial``
    (fields of names that did not match); return the files it does not list, removed from
    both, and its entries naming no file among ``paths``."""
    index: dict[str, dict[str, str]] = {}
    empty: dict[str, Absent] = {}
    for row in rows:
        for key, fields, blank in _table_entries(table, row):
            if blank:
                if key:  # names no file; the last such row wins, as in PlantCV's reader
                    empty[key] = Absent(key, fields, f"its {blank!r} entry is empty")
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
    for group in (texts, partial):
        for i in sorted(group):
            # a listed name with a "/" is a path relative to the root, else a file name
            key = strip_extension(paths[i]) if table.ignore_extension else paths[i]
            if key not in index:
                key = key.rsplit("/", 1)[-1]
            fields = index.get(key)
            if fields is None:
                unlisted.append(i)
                del group[i]
                continue
            used.add(key)
            clash = [k for k in fields if k in group[i]]
            if clash:
                msg = f"table {table.path!r} columns {clash} are also pattern fields: rename one"
                raise LayoutError(msg)
            group[i].update(fields)
    absent = [Absent(k, v) for k, v in index.items() if k not in used]
    if absent and not table.ignore_extension:
        stems: dict[str, str] = {}
        for p in paths:
            stems.setdefault(strip_extension(p), p)
        absent = [_other_extension(a, stems) for a in absent]
    absent += [a for k, a in empty.items() if k not in index]
    return sorted(unlisted), absent


def _other_extension(entry: Absent, stems: Mapping[str, str]) -> Absent:
    other = stems.get(strip_extension(entry.key)) if "/" in entry.key else None
    if other is None:
        return entry
    return Absent(entry.key, entry.fields, f"{other!r} is there: another extension")


def strip_extension(path: str) -> str:
    """The path without the extension of its file name.

    >>> strip_extension("snapshot1/VIS_SV.png"), strip_extension("a.b/c")
    ('snapshot1/VIS_SV', 'a.b/c')
    """
    head, _, name = path.rpartition("/")
    stem, dot, _ = name.rpartition(".")
    name = stem if dot and stem else name
    return f"{head}/{name}" if head else name


def _table_entries(table: Table, row: Mapping[str, str]) -> list[tuple[str, dict[str, str], str]]:
    """``(name, fields, blank)`` per file the row names; ``blank`` is the empty column, if any."""
    lists = {}
    for column, sep in table.split.items():
        cell = row.get(column, "")
        items = cell.split(sep)
        # "a;b;" lists two files, as PlantCV reads a tiles cell; "" and "a;;b" name an empty one
        lists[column] = [v.strip() for v in (items[:-1] if cell.endswith(sep) else items)]
    combos = itertools.product(*lists.values()) if lists else [()]
    out = []
    for combo in combos:
        cells = dict(row)
        cells.update(zip(lists, combo, strict=True))
        blank = next((c for c in table.template_columns() if not cells.get(c)), "")
        key = re.sub(r"\{([^{}]+)\}", lambda m: cells.get(m.group(1), ""), table.file)  # noqa: B023
        if table.columns is None:
            fields = cells
        else:
            fields = {new: cells.get(column_name(old), "") for old, new in table.columns.items()}
        out.append((key, fields, blank))
    return out
