"""``imagezarr info``: the summary tree of a saved manifest."""

from __future__ import annotations

import click

from ..manifest import load_manifest
from ._common import echo_tree, remote_options, storage_options, summary_tree


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--root", help="Read the images from this folder instead of the recorded root.")
@remote_options
def info(manifest: str, root: str | None, options: tuple[str, ...]) -> None:
    """Print what MANIFEST describes: groups, arrays, dims, labels, holes, sizes."""
    echo_tree(
        summary_tree(
            load_manifest(manifest, root=root, storage_options=storage_options(options)),
            title=manifest,
        )
    )
