"""Which images a contact sheet shows: labels of a dim, and choosing by label.

Every choice is made by label (``A10``, ``2020-05-31``, ``PSII3``), as the user sees them in
``imagezarr info``; an index is only a label when the dim has no coordinate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..layout import Node

__all__ = ["Selection", "cell_positions", "format_label", "labels_of", "select"]


def format_label(value: object) -> str:
    """A coordinate value as it is written on a sheet and matched against ``--sel``.

    >>> from datetime import datetime
    >>> format_label(datetime(2020, 5, 31)), format_label(datetime(2020, 5, 31, 21, 0))
    ('2020-05-31', '2020-05-31 21:00:00')
    >>> format_label(0.25), format_label(None), format_label("A10")
    ('0.25', '', 'A10')
    """
    if value is None:
        return ""
    if isinstance(value, datetime):
        midnight = (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0)
        return value.date().isoformat() if midnight else value.isoformat(sep=" ")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def labels_of(node: Node, dim: str) -> tuple[Any, ...]:
    """The values labelling ``dim``: its coordinate, or the positions when it has none."""
    coord = node.coords.get(dim)
    if coord is not None and coord.dims == (dim,):
        return tuple(coord.values)
    return tuple(range(node.shape[node.dims.index(dim)]))


def _matches(wanted: object, value: object) -> bool:
    if wanted is None or value is None:
        return False
    if not isinstance(wanted, str):
        return bool(wanted == value)
    forms = {format_label(value), str(value)}
    if isinstance(value, datetime):
        forms |= {value.isoformat(), value.isoformat(sep=" ")}
    return wanted.strip() in forms


def _position(node: Node, dim: str, wanted: object) -> int:
    labels = labels_of(node, dim)
    for i, value in enumerate(labels):
        if _matches(wanted, value):
            return i
    msg = f"{dim}={wanted} is not a label of {dim!r}; its labels: {_first(labels)}"
    raise KeyError(msg)


def _first(labels: Sequence[object], limit: int = 6) -> str:
    shown = [format_label(v) for v in labels[:limit]]
    return ", ".join(shown) + (f", ... ({len(labels)} in all)" if len(labels) > limit else "")


@dataclass(frozen=True)
class Selection:
    """The grid a sheet shows: positions along the row and column dims, the fixed dims.

    ``rows``/``cols`` are ``None`` for a sheet with a single row or column of cells.
    ``wrap`` is set when one dim is laid out over several rows (then each cell has its own
    label and ``row_positions`` index the flat list ``col_positions``).
    """

    rows: str | None
    cols: str | None
    row_positions: tuple[int, ...]
    col_positions: tuple[int, ...]
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    fixed: Mapping[str, int]
    notes: tuple[str, ...]
    wrap: int = 0


def select(
    node: Node,
    rows: str | None,
    cols: str | None,
    sel: Mapping[str, object] | None,
    *,
    wrap_above: int = 8,
) -> Selection:
    """Resolve the row and column dims, the labels chosen and the fixed dims of ``node``.

    Without ``rows`` and ``cols`` the first dim makes the rows and the last the columns; a
    node with one dim is laid out over several rows. Dims that are neither rows nor columns
    take the label ``sel`` gives, or their first label (said in ``notes``, for the caption).
    ``sel`` may give a list of labels for the row or column dim: those, in that order.
    """
    sel = dict(sel or {})
    dims = node.dims
    for name in (rows, cols, *sel):
        if name is not None and name not in dims:
            msg = (
                f"{name!r} is not a dim of group {node.path or '/'!r}; its dims: {', '.join(dims)}"
            )
            raise KeyError(msg)
    if rows is not None and rows == cols:
        msg = f"rows and cols must be different dims, both are {rows!r}"
        raise ValueError(msg)
    if rows is None and cols is None and dims:
        rows, cols = (dims[0], dims[-1]) if len(dims) > 1 else (None, dims[0])
    fixed: dict[str, int] = {}
    notes: list[str] = []
    for dim in dims:
        if dim in (rows, cols):
            continue
        labels = labels_of(node, dim)
        if dim in sel:
            wanted = sel[dim]
            if isinstance(wanted, list | tuple):
                if len(wanted) != 1:
                    msg = f"{dim} is not a row or column dim: give it one label, not {wanted!r}"
                    raise ValueError(msg)
                wanted = wanted[0]
            fixed[dim] = _position(node, dim, wanted)
            notes.append(f"{dim} = {format_label(labels[fixed[dim]])}")
        else:
            fixed[dim] = 0
            more = (
                f" (first of {len(labels)}; pick another with sel {dim}=LABEL)"
                if len(labels) > 1
                else ""
            )
            notes.append(f"{dim} = {format_label(labels[0])}{more}")
    row_pos = _positions(node, rows, sel)
    col_pos = _positions(node, cols, sel)
    wrap = 0
    if rows is None and cols is not None and len(col_pos) > wrap_above:
        # one dim of many labels: over several rows, near square, each cell labelled
        wrap = max(wrap_above, math.ceil(math.sqrt(len(col_pos))))
    return Selection(
        rows=rows,
        cols=cols,
        row_positions=row_pos,
        col_positions=col_pos,
        row_labels=tuple(format_label(labels_of(node, rows)[p]) for p in row_pos)
        if rows
        else ("",),
        col_labels=tuple(format_label(labels_of(node, cols)[p]) for p in col_pos)
        if cols
        else ("",),
        fixed=fixed,
        notes=tuple(notes),
        wrap=wrap,
    )


def _positions(node: Node, dim: str | None, sel: Mapping[str, object]) -> tuple[int, ...]:
    if dim is None:
        return (0,)
    if dim not in sel:
        return tuple(range(node.shape[node.dims.index(dim)]))
    wanted = sel[dim]
    items = wanted if isinstance(wanted, list | tuple) else [wanted]
    return tuple(_position(node, dim, w) for w in items)


def cell_positions(node: Node, chosen: Selection) -> dict[tuple[int, int], tuple[int, ...] | None]:
    """The outer index of the image in each cell by (row, column); None past a wrapped end."""

    def at(**picked: int) -> tuple[int, ...]:
        where = {**chosen.fixed, **picked}
        return tuple(where[d] for d in node.dims)

    cells: dict[tuple[int, int], tuple[int, ...] | None] = {}
    if chosen.wrap:
        assert chosen.cols is not None
        n = len(chosen.col_positions)
        for k in range(-(-n // chosen.wrap) * chosen.wrap):
            pos = chosen.col_positions[k] if k < n else None
            cells[divmod(k, chosen.wrap)] = None if pos is None else at(**{chosen.cols: pos})
        return cells
    for r, rp in enumerate(chosen.row_positions):
        for c, cp in enumerate(chosen.col_positions):
            picked = {
                **({chosen.rows: rp} if chosen.rows else {}),
                **({chosen.cols: cp} if chosen.cols else {}),
            }
            cells[r, c] = at(**picked)
    return cells
