"""``imagezarr info``: the summary tree of a saved manifest."""

from __future__ import annotations

import click
from rich.markup import escape

from ..manifest import load_manifest
from ._common import echo_tree, remote_options, storage_options, summary_tree


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--root", help="Read the images from this folder instead of the recorded root.")
@click.option("--excluded", "show", is_flag=True, help="List every file the scan left out.")
@remote_options
def info(manifest: str, root: str | None, show: bool, options: tuple[str, ...]) -> None:
    """Print what MANIFEST describes: groups, arrays, dims, labels, holes, sizes, and the
    files the scan left out with the reason."""
    m = load_manifest(manifest, root=root, storage_options=storage_options(options))
    tree = summary_tree(m, title=manifest)
    if m.excluded:
        by_reason: dict[str, list[str]] = {}
        for e in m.excluded:
            by_reason.setdefault(e.reason, []).append(f"{e.path}: {e.detail}")
        branch = tree.add(f"[yellow]{len(m.excluded)} file(s) left out by the scan[/]")
        for reason, lines in by_reason.items():
            sub = branch.add(f"{len(lines)} {reason}")
            for line in lines if show else lines[:SHOWN]:
                sub.add(escape(line))
            if not show and len(lines) > SHOWN:
                sub.add(f"... {len(lines) - SHOWN} more (--excluded lists all)")
    echo_tree(tree)


SHOWN = 5
