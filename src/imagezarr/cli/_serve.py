"""``imagezarr serve``: the hierarchy as read-only Zarr v3 over HTTP, until Ctrl-C."""

from __future__ import annotations

import click

from ..manifest import load_manifest
from ._common import check_option, console, host_option, remote_options, storage_options


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False))
@host_option
@click.option("--port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option(
    "--codec",
    type=click.Choice(["original", "raw", "zstd", "gzip"]),
    default="original",
    show_default=True,
    help="Image chunks as the original files (readers need imagecodecs-zarr), or decoded "
    "pixels: raw, zstd or gzip (any Zarr v3 reader: zarr-python, zarrita.js, neuroglancer).",
)
@click.option(
    "--token",
    envvar="IMAGEZARR_TOKEN",
    help="Require 'Authorization: Bearer TOKEN' or ?token=TOKEN on every request. Also read "
    "from $IMAGEZARR_TOKEN, which, unlike the command line, other users cannot see.",
)
@click.option("--root", help="Serve the images in this folder instead of the recorded root.")
@check_option
@remote_options
@click.option("--workers", type=int, help="Threads that read and decode (default: per core).")
@click.option("--ome/--no-ome", default=True, show_default=True, help="OME-Zarr 0.5 metadata.")
def serve(
    manifest: str,
    host: str,
    port: int,
    codec: str,
    token: str | None,
    root: str | None,
    check: str,
    options: tuple[str, ...],
    workers: int | None,
    ome: bool,
) -> None:
    """Serve MANIFEST's hierarchy as read-only Zarr v3 over HTTP; print its URL."""
    from ..serve import serve as run_serve  # aiohttp only for this command

    m = load_manifest(manifest, root=root, storage_options=storage_options(options))
    run_serve(
        m,
        host=host,
        port=port,
        codec=codec,  # type: ignore[arg-type]
        token=token,
        check=check,  # type: ignore[arg-type]
        workers=workers,
        ome=ome,
        echo=lambda line: console.print(line, soft_wrap=True, markup=False),
    )
    console.print("stopped")  # serve returns on Ctrl-C
