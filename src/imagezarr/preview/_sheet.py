"""Contact sheets: one group's images in a labelled grid (see :mod:`imagezarr.preview`)."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np

from .. import display
from ..access import Access, AccessKeywords, OnError
from ..errors import ChunkReadError, FilledChunkWarning, ManifestError
from ..executor import Executor
from ..layout import Node
from ..manifest import Manifest, ManifestLike, Opened, open_manifest
from ..roots import is_inside, is_url, root_url, write_location
from ..store import ImageZarrStore
from ._draw import Box, Geometry, draw_sheet, stretch
from ._select import Selection, cell_positions, format_label, labels_of, select
from ._thumbs import Thumbnailer, shown_channels, thumbnail_factor

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["MAX_CELLS", "PERCENTILES", "Sheet", "contact_sheet", "preview"]

PERCENTILES = display.PERCENTILES
MAX_CELLS = 10_000  # a larger sheet is too big to look at; choose labels with sel
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Sheet:
    """A drawn contact sheet and where everything on it is.

    Attributes
    ----------
    image
        The sheet, an RGB :class:`PIL.Image.Image`.
    group, rows, cols
        The group shown and the dims down the rows and across the columns (``None`` for a
        single row or column).
    row_labels, col_labels
        The labels written, one per row and column. When one dim wraps over several rows
        (``rows`` is ``None``), ``col_labels`` has one label per cell in reading order.
    kinds
        Per cell: ``"image"``, ``"hole"`` (no file in the manifest), ``"failed"`` (the file
        could not be read, ``on_error="fill"``) or ``""`` (no cell: the end of a wrapped row).
    cells
        ``(n rows, n cols, 4)`` thumbnail boxes ``(left, top, right, bottom)``; crop a cell
        with ``sheet.image.crop(tuple(sheet.cells[r, c]))``.
    geometry
        Every box: cells, row, column and cell labels, caption.
    factor, zoom
        Each thumbnail is the box average of ``factor x factor`` pixels, then enlarged
        ``zoom`` times (pixel copies) for images smaller than ``size``.
    limits
        The pixel values shown as black and white, for stretched (non-8-bit) images.
    fixed
        The label of every other dim, by dim.
    failed
        Files that could not be read (``on_error="fill"``), by relative path.
    caption
        The text under the sheet.
    root
        The images' folder (or URL), where :meth:`save` refuses to write.
    """

    image: Image.Image
    group: str
    rows: str | None
    cols: str | None
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    kinds: np.ndarray
    geometry: Geometry
    factor: int
    zoom: int
    limits: tuple[float, float] | None
    percentiles: tuple[float, float]
    fixed: Mapping[str, str]
    failed: tuple[str, ...]
    caption: str
    root: str = ""

    @property
    def cells(self) -> np.ndarray:
        return self.geometry.cells

    def cell(self, row: int, col: int) -> Image.Image:
        """The thumbnail of one cell, cropped from the sheet."""
        box: Box = tuple(int(v) for v in self.geometry.cells[row, col])  # type: ignore[assignment]
        return self.image.crop(box)

    def save(
        self,
        out: str | os.PathLike[str],
        *,
        storage_options: Mapping[str, Any] | None = None,
    ) -> str:
        """Write the sheet atomically (format from the suffix: .png, .jpg, .webp, ...).

        Refuses a path inside the images' folder: imagezarr never writes there.
        """
        target = root_url(out)
        source = self.root or None
        if source is not None and is_inside(target, source):
            msg = (
                f"refusing to write {target!r} inside the source folder {source!r}: imagezarr "
                "never writes into the source; save the sheet elsewhere"
            )
            raise ManifestError(msg)
        from PIL import Image

        suffix = Path(str(out)).suffix.lower()
        kind = Image.registered_extensions().get(suffix)
        if kind is None:
            msg = f"cannot tell the image format from {suffix or 'no suffix'!r}; use .png or .jpg"
            raise ValueError(msg)
        data = io.BytesIO()
        # a sheet is mostly flat colour and text: fast zlib level, still small
        options = {"compress_level": 1} if kind == "PNG" else {}
        self.image.save(data, format=kind, **options)
        where = write_location(target, data.getvalue(), storage_options)
        return where if is_url(where) else str(Path(where))


def preview(
    manifest: ManifestLike | Opened,
    *,
    rows: str | None = None,
    cols: str | None = None,
    sel: Mapping[str, object] | None = None,
    group: str | None = None,
    size: int = 160,
    out: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> Image.Image:
    """A contact sheet of ``manifest`` as a Pillow image, saved to ``out`` when given.

    Keywords as for :func:`contact_sheet`, which also returns the sheet's geometry.

    Examples
    --------
    >>> import imagezarr.testing, tempfile, pathlib
    >>> m = imagezarr.testing.small_manifest()
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "sheet.png"
    >>> image = preview(m, rows="barcode", cols="frame", out=out)
    >>> image.mode, out.exists()
    ('RGB', True)
    """
    sheet = contact_sheet(manifest, rows=rows, cols=cols, sel=sel, group=group, size=size, **kwargs)
    if out is not None:
        sheet.save(out)
    return sheet.image


def contact_sheet(
    manifest: ManifestLike | Opened,
    *,
    rows: str | None = None,
    cols: str | None = None,
    sel: Mapping[str, object] | None = None,
    group: str | None = None,
    size: int = 160,
    percentiles: tuple[float, float] = PERCENTILES,
    access: Access | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    max_cells: int = MAX_CELLS,
    **options: Unpack[AccessKeywords],
) -> Sheet:
    """Draw a labelled grid of thumbnails of one group of ``manifest``.

    Parameters
    ----------
    manifest
        A :class:`~imagezarr.manifest.Manifest`, or the path or URL of one.
    rows, cols
        The dims down the rows and across the columns. Default: the group's first and last
        dims; a group with one dim is laid out over several rows, each cell labelled.
    sel
        Labels (not positions) by dim: one label for each other dim (default: its first
        label, said in the caption), or a list of labels for ``rows``/``cols`` to show only
        those, in that order. Labels are written as in ``imagezarr info``: ``"A10"``,
        ``"2020-05-31"``, ``3``.
    group
        The group to show; needed when the manifest has more than one.
    size
        The longer side of a thumbnail, at most, in pixels. Images are reduced by a whole
        factor (box average), so a 480 x 640 image at ``size=200`` becomes 160 x 214.
    percentiles
        Contrast for images that are not 8-bit: these percentiles of all pixels shown map to
        black and white.
    access, **options
        As for :func:`imagezarr.open_store` (:class:`~imagezarr.access.Access`): where the
        images are and how a file counts as unchanged (``check``). ``on_error="raise"``
        (default): a missing, changed or undecodable file raises naming it; ``"fill"``: its
        cell is drawn crossed in red and a :class:`~imagezarr.errors.FilledChunkWarning`
        names the file.
    workers
        Threads that read and decode (default: one per core for local files).
    progress
        Called as ``progress(done, total)`` while thumbnails are made.
    max_cells
        Refuse larger sheets (choose labels with ``sel``).
    """
    opened = open_manifest(manifest, access, **options)
    on_error = opened.on_error
    # the sheet fills failed cells itself: its store raises, so that each failure is seen
    opened = opened.with_access(Access(on_error="raise"))
    m = opened.manifest
    node = _node(m, group)
    chosen = select(node, rows, cols, sel)
    where = cell_positions(node, chosen)
    if len(where) > max_cells:
        msg = (
            f"a sheet of {len(where)} cells is more than max_cells={max_cells}; choose rows and "
            "columns with sel (--sel DIM=LABEL, repeated for several labels)"
        )
        raise ValueError(msg)
    info = node.image
    height, width = info.shape[info.dims.index("y")], info.shape[info.dims.index("x")]
    factor, zoom = thumbnail_factor(height, width, size)
    store = ImageZarrStore(opened, pipeline=None)
    make = Thumbnailer(store, node, factor)
    todo = [(rc, w) for rc, w in where.items() if w is not None and node.file_index[w] >= 0]
    if workers is None:
        workers = (os.cpu_count() or 1) if opened.source.sync_reads else opened.source.workers
    thumbs, failures = _make_all(make, todo, workers, on_error, progress)
    for path, reason in failures.values():
        msg = f"{path}: shown as an empty cell crossed in red ({reason})"
        warnings.warn(msg, FilledChunkWarning, stacklevel=2)
    order = sorted(thumbs)
    shown, limits = stretch([thumbs[k] for k in order], percentiles)
    n_rows, n_cols = (max(r for r, _ in where) + 1, max(c for _, c in where) + 1)
    kinds = np.full((n_rows, n_cols), "", dtype="<U6")
    for (r, c), w in where.items():
        if w is not None:
            kinds[r, c] = (
                "failed" if (r, c) in failures else "image" if node.file_index[w] >= 0 else "hole"
            )
    rgb = shown_channels(info.dims, tuple(info.shape))
    caption = _caption(
        m,
        node,
        chosen,
        info_text=_pixels_text(info, rgb, limits, percentiles),
        factor=factor,
        zoom=zoom,
        holes="hole" in kinds,
        failed=bool(failures),
    )
    wrapped = bool(chosen.wrap)
    image, geometry = draw_sheet(
        kinds,
        dict(zip(order, shown, strict=True)),
        row_labels=() if wrapped else chosen.row_labels if chosen.rows else (),
        col_labels=() if wrapped else chosen.col_labels if chosen.cols else (),
        cell_labels=chosen.col_labels if wrapped else (),
        thumb_size=make.shape[:2],
        zoom=zoom,
        title=_title(m, node, chosen),
        caption=caption,
    )
    return Sheet(
        image=image,
        group=node.path,
        rows=chosen.rows,
        cols=chosen.cols,
        row_labels=chosen.row_labels,
        col_labels=chosen.col_labels,
        kinds=kinds,
        geometry=geometry,
        factor=factor,
        zoom=zoom,
        limits=limits,
        percentiles=percentiles,
        fixed={d: format_label(labels_of(node, d)[i]) for d, i in chosen.fixed.items()},
        failed=tuple(sorted(p for p, _ in failures.values())),
        caption=caption,
        root=m.root,
    )


def _node(m: Manifest, group: str | None) -> Node:
    if group is not None:
        return m.node(group.strip("/"))
    if len(m.nodes) == 1:
        return m.nodes[0]
    shown = ", ".join(n.path for n in m.nodes[:8]) + (", ..." if len(m.nodes) > 8 else "")
    msg = f"the manifest has {len(m.nodes)} groups; choose one with group= (--group): {shown}"
    raise KeyError(msg)


def _make_all(
    make: Thumbnailer,
    todo: list[tuple[tuple[int, int], tuple[int, ...]]],
    workers: int,
    on_error: OnError,
    progress: Progress | None,
) -> tuple[dict[tuple[int, int], np.ndarray], dict[tuple[int, int], tuple[str, str]]]:
    """Thumbnails by cell, made in ``workers`` threads; failures by cell as (path, reason).

    With ``on_error="raise"`` the first failure stops the rest and is raised. Warnings are
    left to the caller, so they come from the calling thread, one per file.
    """
    if on_error not in ("raise", "fill"):
        msg = f"on_error must be 'raise' or 'fill', not {on_error!r}"
        raise ValueError(msg)
    thumbs: dict[tuple[int, int], np.ndarray] = {}
    failures: dict[tuple[int, int], tuple[str, str]] = {}

    def one(item: tuple[tuple[int, int], tuple[int, ...]]) -> np.ndarray | tuple[str, str]:
        try:
            return make(item[1])
        except ChunkReadError as error:
            if on_error != "fill":
                raise
            path = error.path or "a file"
            return path, str(error).removeprefix(f"{path}: ").split("; run `", 1)[0]

    workers = max(1, workers)
    # small steps: with on_error="raise" the first failure stops all but a step's worth
    made = Executor(workers=workers).map(
        one, todo, workers=workers, progress=progress, step=4 * workers
    )
    for (rc, _), got in zip(todo, made, strict=True):
        if isinstance(got, tuple):
            failures[rc] = got
        else:
            thumbs[rc] = got
    return thumbs, failures


def _title(m: Manifest, node: Node, chosen: Selection) -> str:
    where = f"group {node.path}" if node.path else Path(m.root).name or m.root
    if chosen.wrap:
        return f"{where}: {chosen.cols}"
    parts = [
        f"rows: {chosen.rows}" if chosen.rows else "",
        f"columns: {chosen.cols}" if chosen.cols else "",
    ]
    return f"{where}; " + ", ".join(p for p in parts if p)


def _pixels_text(
    info: Any,
    shown: tuple[int, str],
    limits: tuple[float, float] | None,
    percentiles: tuple[float, float],
) -> str:
    channels, kind = shown
    what = {"rgb": "RGB", "gray": "gray"}[kind]
    if channels == 4:
        what += " (alpha not shown)"
    elif channels == 2 or channels > 4:
        what = f"channel 0 of {channels}, gray"
    if info.palette:
        what = "palette indices, gray"
    planes = [d for d in info.dims if d not in ("y", "x", "c")]
    if planes:
        what += f", first plane along {', '.join(planes)}"
    if limits is None:
        return f"{what}, {info.dtype} as stored (no contrast stretch)"
    lo, hi = (f"{v:.4g}" for v in limits)
    p0, p1 = (f"{p:g}" for p in percentiles)
    return f"{what}, {info.dtype} stretched: {p0}-{p1} percentile of the pixels shown, {lo} to {hi}"


def _caption(
    m: Manifest,
    node: Node,
    chosen: Selection,
    *,
    info_text: str,
    factor: int,
    zoom: int,
    holes: bool,
    failed: bool,
) -> str:
    info = node.image
    h, w = info.shape[info.dims.index("y")], info.shape[info.dims.index("x")]
    if factor > 1:
        size = f"{h} x {w} px images, shown as {factor} x {factor} pixel averages"
    else:
        size = f"{h} x {w} px images" + (f", enlarged {zoom}x" if zoom > 1 else "")
    lines = [f"{size}; {info_text}."]
    if chosen.notes:
        lines.append("; ".join(chosen.notes) + ".")
    marks = []
    if holes:
        marks.append("grey cross: no file (a hole in the manifest)")
    if failed:
        marks.append("red cross: file could not be read (see the warnings)")
    if marks:
        lines.append("; ".join(marks) + ".")
    return "\n".join(lines)
