"""``imagezarr serve``: the hierarchy as read-only Zarr v3 over HTTP, until Ctrl-C."""

from __future__ import annotations

import click

from ..access import Access
from ._common import console, host_option, manifest_access


@click.command()
@manifest_access()
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
@click.option("--workers", type=int, help="Threads that read and decode (default: per core).")
@click.option("--ome/--no-ome", default=True, show_default=True, help="OME-Zarr 0.5 metadata.")
def serve(
    manifest: str,
    access: Access,
    host: str,
    port: int,
    codec: str,
    token: str | None,
    workers: int | None,
    ome: bool,
) -> None:
    """Serve MANIFEST's hierarchy as read-only Zarr v3 over HTTP; print its URL."""
    from ..serve import serve as run_serve  # aiohttp only for this command

    run_serve(
        manifest,
        host=host,
        port=port,
        codec=codec,  # type: ignore[arg-type]
        token=token,
        access=access,
        workers=workers,
        ome=ome,
        echo=lambda line: console.print(line, soft_wrap=True, markup=False),
    )
    console.print("stopped")  # serve returns on Ctrl-C
