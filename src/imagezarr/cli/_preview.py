"""``imagezarr preview``: a labelled contact sheet of a manifest's images."""

from __future__ import annotations

import warnings

import click

from ..access import Access
from ..errors import FilledChunkWarning
from ..preview import contact_sheet
from ._common import console, err_console, lazy_progress, manifest_access


def parse_sel(pairs: tuple[str, ...]) -> dict[str, object]:
    """``DIM=LABEL`` pairs by dim; a dim given several times takes the list of its labels.

    >>> parse_sel(("night=2020-05-31", "barcode=A1", "barcode=A10"))
    {'night': '2020-05-31', 'barcode': ['A1', 'A10']}
    """
    sel: dict[str, object] = {}
    for pair in pairs:
        dim, sep, label = pair.partition("=")
        if not sep or not dim.strip():
            msg = f"--sel takes DIM=LABEL (e.g. night=2020-05-31), not {pair!r}"
            raise click.BadParameter(msg)
        dim = dim.strip()
        if dim in sel:
            before = sel[dim]
            sel[dim] = [*before, label] if isinstance(before, list) else [before, label]
        else:
            sel[dim] = label
    return sel


@click.command()
@manifest_access(
    on_error="Stop at a missing, changed or undecodable image, or draw its cell crossed in red "
    "(and name the file)."
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The sheet to write: .png, .jpg or .webp.",
)
@click.option("--rows", metavar="DIM", help="Dim down the rows (default: the first dim).")
@click.option("--cols", metavar="DIM", help="Dim across the columns (default: the last dim).")
@click.option(
    "--sel",
    multiple=True,
    metavar="DIM=LABEL",
    help="Fix another dim to a label (default: its first label), or, repeated for the rows or "
    "columns dim, show only those labels in that order.",
)
@click.option("-g", "--group", help="The group to show (needed when there are several).")
@click.option(
    "--size",
    default=160,
    show_default=True,
    type=click.IntRange(min=8),
    help="Longer side of a thumbnail, at most, in pixels.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
def preview(
    manifest: str,
    access: Access,
    output: str,
    rows: str | None,
    cols: str | None,
    sel: tuple[str, ...],
    group: str | None,
    size: int,
    quiet: bool,
) -> None:
    """Draw a contact sheet of MANIFEST: thumbnails in a grid labelled by the coordinates."""
    with (
        lazy_progress("drawing thumbnails", quiet=quiet) as progress,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", FilledChunkWarning)
        sheet = contact_sheet(
            manifest,
            rows=rows,
            cols=cols,
            sel=parse_sel(sel),
            group=group,
            size=size,
            access=access,
            progress=progress,  # type: ignore[arg-type]
        )
    for w in caught:
        if issubclass(w.category, FilledChunkWarning):
            err_console.print(f"[yellow]warning[/]: {w.message}", soft_wrap=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    out = sheet.save(output, storage_options=access.storage_options)
    if quiet:
        return
    n_rows, n_cols = sheet.kinds.shape
    counts = {k: int((sheet.kinds == k).sum()) for k in ("image", "hole", "failed")}
    extra = "".join(
        f", {n} {word}" + ("s" if n != 1 and word == "hole" else "")
        for word, n in (("hole", counts["hole"]), ("failed", counts["failed"]))
        if n
    )
    where = f"group {sheet.group}, " if sheet.group else ""
    console.print(
        f"wrote {out}: {n_rows} x {n_cols} cells, {counts['image']} images{extra}; {where}"
        f"rows {sheet.rows or '-'}, columns {sheet.cols or '-'}",
        soft_wrap=True,
        markup=False,
    )
    for line in sheet.caption.splitlines()[1:]:
        console.print(f"  {line}", soft_wrap=True, markup=False)
