"""The notebook view of a manifest: a summary table and, when cheap, a small contact sheet.

:func:`summary_html` never raises: anything that goes wrong while drawing the sheet leaves
the text summary with one line saying why there is no picture.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from .._format import human_bytes
from ..manifest import Manifest
from ..roots import is_url
from ._select import cell_positions, format_label, labels_of, select
from ._sheet import contact_sheet

__all__ = ["summary_html"]

SHEET_ROWS, SHEET_COLS, SHEET_WRAPPED = 6, 8, 24  # labels shown per dim in the notebook sheet
SHEET_SIZE = 96  # px, longer side of a notebook thumbnail
SHEET_BYTES = 64 * 2**20  # read at most this much for the notebook sheet
LABELS_SHOWN = 4
GROUPS_SHOWN = 20  # table rows; a manifest of a thousand plants stays readable


def _labels(values: tuple[Any, ...]) -> str:
    shown = [format_label(v) for v in values[:LABELS_SHOWN]]
    return ", ".join(shown) + (", ..." if len(values) > LABELS_SHOWN else "")


def _table(m: Manifest) -> str:
    rows = []
    for node in m.nodes[:GROUPS_SHOWN]:
        holes = int((node.file_index < 0).sum())
        shape = node.shape + tuple(node.image.shape)
        dims = "<br>".join(
            f"<b>{html.escape(d)}</b> [{n}]: {html.escape(_labels(labels_of(node, d)))}"
            for d, n in zip(node.dims, node.shape, strict=True)
        )
        cells = (
            html.escape(node.path or "/"),
            html.escape(f"{shape} {node.image.dtype} {node.image.format}"),
            html.escape(", ".join(node.image_dims)),
            dims,
            f"{holes} of {int(np.prod(node.shape))}",
        )
        rows.append(
            "<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in cells) + "</tr>"
        )
    head = "".join(
        f"<th style='text-align:left'>{h}</th>"
        for h in ("group", "image array", "dims", "labels", "holes")
    )
    more = len(m.nodes) - GROUPS_SHOWN
    tail = f"<div>... and {more} more groups</div>" if more > 0 else ""
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{tail}"


def _sheet(m: Manifest) -> tuple[str, str]:
    """``(img tag, note)``: a small contact sheet of the first group, or why there is none."""
    if not m.nodes or not len(m.files):
        return "", ""
    if is_url(m.root):
        return "", "No contact sheet for remote images here: call imagezarr.preview(...)."

    node = m.nodes[0]
    chosen = select(node, None, None, None)
    sel: dict[str, object] = {}
    limits = {chosen.rows: SHEET_ROWS, chosen.cols: SHEET_WRAPPED if chosen.wrap else SHEET_COLS}
    cut = []
    for dim, limit in limits.items():
        if dim is None:
            continue
        labels = labels_of(node, dim)
        if len(labels) > limit:
            sel[dim] = list(labels[:limit])
            cut.append(f"the first {limit} of {len(labels)} {dim}")
    shown = select(node, chosen.rows, chosen.cols, sel) if sel else chosen
    files = [i for i in _files(node, shown) if i >= 0]
    if int(m.files.sizes[files].sum()) > SHEET_BYTES:
        return "", "No contact sheet: the images are large; call imagezarr.preview(...)."
    sheet = contact_sheet(
        m,
        rows=chosen.rows,
        cols=chosen.cols,
        sel=sel or None,
        group=node.path,
        size=SHEET_SIZE,
    )
    data = io.BytesIO()
    sheet.image.save(data, format="PNG")
    tag = (
        "<img alt='contact sheet' src='data:image/png;base64,"
        f"{base64.b64encode(data.getvalue()).decode()}'>"
    )
    note = (
        f"Group {node.path or '/'}" + (f", {' and '.join(cut)}" if cut else "") + "; "
        "imagezarr.preview(manifest, rows=..., cols=..., sel=...) draws any other view."
    )
    return tag, note


def _files(node: Any, chosen: Any) -> list[int]:
    return [int(node.file_index[w]) for w in cell_positions(node, chosen).values() if w is not None]


def summary_html(m: Manifest) -> str:
    """The manifest as HTML for notebooks (registered with IPython by ``import imagezarr``);
    never raises."""
    formats = ", ".join(sorted({n.image.format for n in m.nodes})) or "-"
    head = (
        f"<b>imagezarr manifest</b>: {len(m.files):,} files, "
        f"{human_bytes(m.total_bytes)} referenced, "
        f"format {html.escape(formats)}; root <code>{html.escape(m.root)}</code>"
    )
    parts = [f"<div>{head}</div>"]
    if m.unmatched or m.unreadable:
        parts.append(f"<div>skipped: {m.unmatched} unmatched, {len(m.unreadable)} unreadable</div>")
    parts.extend(f"<div><i>{html.escape(note)}</i></div>" for note in m.notes)
    try:
        parts.append(_table(m))
    except Exception as e:  # a repr must not raise; say what went wrong instead
        parts.append(f"<div>(no table: {html.escape(f'{type(e).__name__}: {e}')})</div>")
    try:
        tag, note = _sheet(m)
    except Exception as e:  # a missing file, no Pillow, ...: the text summary still shows
        tag, note = "", f"No contact sheet: {type(e).__name__}: {e}"
    if tag:
        parts.append(f"<div>{tag}</div>")
    if note:
        parts.append(f"<div><small>{html.escape(note)}</small></div>")
    return "<div class='imagezarr-manifest'>" + "".join(parts) + "</div>"
