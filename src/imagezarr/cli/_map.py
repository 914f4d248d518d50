"""``imagezarr map``: run a function per group of MANIFEST; a results table, images out."""

from __future__ import annotations

import click
from rich.markup import escape

from ..access import Access
from ..mapping import ERROR, MapError, map_groups
from ._common import console, lazy_progress, manifest_access


@click.command(name="map")
@manifest_access(on_error="A missing or corrupt image: raise (its group fails) or fill.")
@click.argument("function")
@click.option(
    "--by",
    required=True,
    help="Comma-separated dims (or group fields) whose labels make a group: barcode,night.",
)
@click.option("-o", "--output", "output", required=True, help="Results table: .csv or .parquet.")
@click.option("--group", help="Only this group of a grouped manifest.")
@click.option("--scheduler", help="dask.distributed scheduler address: one task per group there.")
@click.option("--workers", type=click.IntRange(min=1), help="Threads here (default: 1, inline).")
@click.option("--again", is_flag=True, help="Run every group again, not only missing and failed.")
@click.option("--force", is_flag=True, help="Allow writing inside the source folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print failures only.")
def map_command(
    manifest: str,
    access: Access,
    function: str,
    by: str,
    output: str,
    group: str | None,
    scheduler: str | None,
    workers: int | None,
    again: bool,
    force: bool,
    quiet: bool,
) -> None:
    """Run FUNCTION (FILE.py:NAME or MODULE:NAME) once per group of MANIFEST; write a table."""
    dims = [d.strip() for d in by.split(",") if d.strip()]
    try:
        with lazy_progress("groups", quiet=quiet) as progress:
            table = map_groups(
                manifest,
                function,
                dims,
                group=group,
                client=scheduler,
                workers=workers,
                out=output,
                resume=not again,
                progress=progress,  # type: ignore[arg-type]
                force=force,
                access=access,
            )
    except MapError as e:  # a usage error: exit 2, nothing written
        raise click.UsageError(str(e)) from None
    failed = table[table[ERROR] != ""]
    worked = len(table) - len(failed)
    kept = table.attrs.get("kept", 0)
    earlier = (
        f" ({kept} kept from the earlier run, {table.attrs.get('ran', 0)} run now)" if kept else ""
    )
    if failed.empty:
        if not quiet:
            console.print(f"[green]ok[/]: {worked} groups{earlier}, results in {escape(output)}")
        return
    labels = [c for c in table.columns if c in ("group", *dims)]
    for _, row in failed.head(20).iterrows():
        where = "  ".join(f"{c}={row[c]}" for c in labels)
        console.print(f"[red]failed[/] {escape(where)}: {escape(row[ERROR])}", soft_wrap=True)
    if len(failed) > 20:
        console.print(f"... and {len(failed) - 20} more")
    console.print(
        f"[red]FAILED[/]: {len(failed)} of {len(table)} groups failed ({worked} worked); results "
        f"in {escape(output)}. Run the same command again to retry only the failed groups.",
        soft_wrap=True,
    )
    raise click.exceptions.Exit(1)
