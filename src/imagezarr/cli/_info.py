"""``imagezarr info``: the summary tree of a saved manifest."""

from __future__ import annotations

import click
from rich.markup import escape

from ..access import Access
from ..manifest import load_manifest
from ._common import echo_tree, manifest_access, summary_tree


@click.command()
@manifest_access(check=False)
@click.option("--excluded", "show", is_flag=True, help="List every file the scan left out.")
def info(manifest: str, access: Access, show: bool) -> None:
    """Print what MANIFEST describes: groups, arrays, dims, labels, holes, sizes, and the
    files the scan left out with the reason."""
    m = load_manifest(manifest, access=access)
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
