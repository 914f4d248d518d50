"""``imagezarr export``: the manifest as kerchunk references, Icechunk, a Zarr copy or links."""

from __future__ import annotations

from typing import Any

import click

from ..access import Access
from ..export import FORMATS
from ..export import export as run_export
from ..export.icechunk import branch_tip, icechunk_summary
from ..manifest import open_manifest
from ._common import console, lazy_progress, manifest_access

PROGRESS_LABELS = {
    "zarr": "copying images",
    "links": "linking images",
    "icechunk": "referencing",
    "kerchunk": "checking files",
}


@click.command()
@manifest_access(
    on_error="zarr: stop at a missing, changed or undecodable image, or copy it as zeros (warned)."
)
@click.option(
    "-f", "--format", "fmt", required=True, type=click.Choice(list(FORMATS)), help="What to write."
)
@click.option("-o", "--output", required=True, type=click.Path(), help="Where to write it.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTPUT.")
@click.option("--force", is_flag=True, help="Allow writing inside the source folder.")
@click.option(
    "--parquet/--json",
    default=None,
    help="kerchunk: Parquet or JSON (default: JSON, Parquet for *.parq or huge sets).",
)
@click.option("--templates", is_flag=True, help="kerchunk: urls as {{root}}/path, overridable.")
@click.option("--root-url", help="kerchunk: value of the root template (default: file url).")
@click.option(
    "--zarr-format",
    type=click.Choice(["2", "3"]),
    default=None,
    help="kerchunk: Zarr 2 keys and numcodecs ids (default: what kerchunk's engine, "
    "MultiZarrToZarr and VirtualiZarr read) or Zarr 3 (zarr.json, as the store).",
)
@click.option("--shards", type=int, help="zarr: images per shard (default: no sharding).")
@click.option(
    "--compressor",
    type=click.Choice(["zstd", "none"]),
    default="zstd",
    show_default=True,
    help="zarr: compressor of the copy.",
)
@click.option("--level", type=int, default=3, show_default=True, help="zarr: zstd level.")
@click.option(
    "--tag",
    help="icechunk: tag the new snapshot (or the unchanged tip) with this name.",
)
@click.option("--ome", is_flag=True, help="zarr: add OME-Zarr 0.5 multiscales metadata.")
@click.option(
    "--ome-axis",
    multiple=True,
    metavar="DIM=TYPE",
    help="zarr --ome: the OME type (time, channel, space, other) of a dim whose name does not "
    "say it (t/time, c/channel, z/plane are known).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
def export(
    manifest: str,
    access: Access,
    fmt: str,
    output: str,
    overwrite: bool,
    force: bool,
    parquet: bool | None,
    templates: bool,
    root_url: str | None,
    zarr_format: str | None,
    shards: int | None,
    compressor: str,
    level: int,
    tag: str | None,
    ome: bool,
    ome_axis: tuple[str, ...],
    quiet: bool,
) -> None:
    """Export MANIFEST to OUTPUT in the chosen format (see docs/export.md)."""
    options: dict[str, Any] = {}
    if fmt == "kerchunk":
        options = {"parquet": parquet, "templates": templates, "root_url": root_url}
        if zarr_format is not None:
            options["zarr_format"] = int(zarr_format)
    elif any((parquet is not None, templates, root_url, zarr_format)):
        msg = (
            "--parquet/--json, --templates, --root-url and --zarr-format apply to --format "
            "kerchunk only"
        )
        raise click.UsageError(msg)
    if fmt == "zarr":
        options = {
            "shards": shards,
            "compressor": None if compressor == "none" else "zstd",
            "level": level,
            "ome": ome,
            "ome_axes": dict(a.split("=", 1) for a in ome_axis if "=" in a) or None,
        }
    elif access.on_error is not None:
        msg = "--on-error applies to --format zarr only (the others copy no pixels)"
        raise click.UsageError(msg)
    if fmt != "zarr" and (shards is not None or ome or ome_axis):
        msg = "--shards, --ome and --ome-axis apply to --format zarr only"
        raise click.UsageError(msg)
    tip = None
    if fmt == "icechunk":
        options["tag"] = tag
        tip = None if overwrite else branch_tip(output)
    elif tag is not None:
        msg = "--tag applies to --format icechunk only"
        raise click.UsageError(msg)
    opened = open_manifest(manifest, access)
    with lazy_progress(PROGRESS_LABELS.get(fmt, "exporting"), quiet=quiet) as progress:
        options["progress"] = progress
        out = run_export(opened, fmt, output, overwrite=overwrite, force=force, **options)
    if quiet:
        return
    if tip is not None:  # an existing repository: say what the update committed
        console.print(icechunk_summary(out, tip), soft_wrap=True)
        return
    n = len(opened.manifest.files)
    console.print(f"wrote {fmt} export of {n} files to {out}", soft_wrap=True)
