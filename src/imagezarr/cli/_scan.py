"""``imagezarr scan``: folder → manifest, with a summary tree."""

from __future__ import annotations

import click

from .. import api
from ._common import echo_tree, lazy_progress, summary_tree


def _types(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, kind = v.partition("=")
        if not sep or not name:
            msg = f"--type takes FIELD=TYPE (e.g. frame=int), not {v!r}"
            raise click.BadParameter(msg)
        out[name.strip()] = kind.strip()
    return out


@click.command()
@click.argument("source", type=click.Path(file_okay=False))
@click.option("--pattern", help="Regex with named groups, e.g. '(?P<plant>\\w+)-(?P<frame>\\d+)'.")
@click.option("--glob", help="Which files to consider (default: every known image extension).")
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="FIELD=TYPE",
    help="int, float, str or a strptime format such as %Y%m%dT%H%M%S. Repeatable.",
)
@click.option("--dims", help="Comma-separated order of the outer dims.")
@click.option("--group-by", help="Field(s), comma-separated, giving one group per value.")
@click.option("--skip-unmatched", is_flag=True, help="Skip files that do not match the pattern.")
@click.option("--skip-unreadable", is_flag=True, help="Skip files whose header is not an image.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the manifest (*.imagezarr.json).",
)
@click.option("--absolute-root", is_flag=True, help="Record the root as an absolute path.")
@click.option("--force", is_flag=True, help="Allow writing the manifest inside the source folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
def scan(
    source: str,
    pattern: str | None,
    glob: str | None,
    types: tuple[str, ...],
    dims: str | None,
    group_by: str | None,
    skip_unmatched: bool,
    skip_unreadable: bool,
    output: str,
    absolute_root: bool,
    force: bool,
    quiet: bool,
) -> None:
    """Scan SOURCE into a manifest, reading only image headers."""
    with lazy_progress("probing headers", quiet=quiet) as progress:
        m = api.scan(
            source,
            pattern=pattern,
            glob=glob,
            types=_types(types),
            dims=dims,
            group_by=group_by,
            on_unmatched="skip" if skip_unmatched else "error",
            on_unreadable="skip" if skip_unreadable else "error",
            progress=progress,  # type: ignore[arg-type]
        )
    out = m.save(output, absolute_root=absolute_root, force=force)
    if not quiet:
        echo_tree(summary_tree(m, title=str(out)))
