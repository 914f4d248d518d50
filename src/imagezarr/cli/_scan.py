"""``imagezarr scan``: folder → manifest, with a summary tree."""

from __future__ import annotations

import warnings
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from .. import api, presets
from ..errors import ImageZarrError
from ..layout import NO_FILE, Exclusion, LayoutSpec, LayoutWarning, Lookup, exclusion_counts
from ._common import (
    echo_tree,
    lazy_progress,
    remote_options,
    scheduler_option,
    storage_options,
    summary_tree,
)

SHOWN = 3  # examples listed per reason


def _plantcv_selection(tree: Tree, report: list[Exclusion], unreadable: tuple[str, ...]) -> None:
    """The PlantCV summary lines: what the configuration left out, and why, with examples."""
    counts = exclusion_counts(report)
    left = ", ".join(f"{n} {reason}" for reason, n in counts.items() if reason != NO_FILE)
    rows = [e for e in report if e.reason == NO_FILE]
    taken = sum(e.selected for e in rows)
    head = f"PlantCV selection: left out {left or 'nothing'}"
    if rows:
        head += f"; {len(rows)} table row(s) without file ({taken} passing the filters)"
    branch = tree.add(f"[yellow]{escape(head)}[/]" if report else escape(head))
    for reason in counts:
        items = [e for e in report if e.reason == reason]
        for e in items[:SHOWN]:
            branch.add(escape(f"{reason}: {e.path} ({e.detail})"))
        if len(items) > SHOWN:
            branch.add(escape(f"... {len(items) - SHOWN} more: {reason}"))
    if unreadable:
        shown = ", ".join(unreadable[:SHOWN]) + (", ..." if len(unreadable) > SHOWN else "")
        branch.add(escape(f"{len(unreadable)} selected file(s) are not readable images: {shown}"))


def _types(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, kind = v.partition("=")
        if not sep or not name:
            msg = f"--type takes FIELD=TYPE (e.g. frame=int), not {v!r}"
            raise click.BadParameter(msg)
        out[name.strip()] = kind.strip()
    return out


def _pairs(values: tuple[str, ...], option: str, example: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, rest = v.partition("=")
        if not sep or not name.strip():
            msg = f"{option} takes NAME=VALUE (e.g. {example}), not {v!r}"
            raise click.BadParameter(msg)
        out[name.strip()] = rest.strip()
    return out


def _lookups(values: tuple[str, ...], on_missing: Any) -> list[Lookup]:
    out = []
    for v in values:
        field, sep, rest = v.partition("=")
        path, colon, column = rest.rpartition(":")
        if not colon or "/" in column or "\\" in column or not path:
            path, column = rest, ""
        if not sep or not field.strip() or not path:
            msg = f"--lookup takes FIELD=TABLE[:COLUMN] (e.g. frame=frames.csv), not {v!r}"
            raise click.BadParameter(msg)
        out.append(Lookup(path, key=field.strip(), column=column or None, on_missing=on_missing))
    return out


def _preset(
    preset: str | None,
    plantcv_config: str | None,
    terms: str | None,
    delimiter: str | None,
    timestampformat: str | None,
    source: str | None = None,
) -> tuple[str | None, LayoutSpec | None]:
    if plantcv_config:  # a folder on the command line wins over the config's input_dir
        return presets.plantcv_config(plantcv_config, input_dir=source)
    if preset is None:
        if terms or delimiter or timestampformat:
            msg = "--terms, --delimiter and --timestampformat need --preset plantcv"
            raise click.UsageError(msg)
        return None, None
    if not terms:
        msg = "--preset plantcv needs --terms (PlantCV's filename_metadata), e.g. --terms id,camera"
        raise click.UsageError(msg)
    options: dict[str, Any] = {}
    if delimiter:
        options["delimiter"] = delimiter
    if timestampformat:
        options["timestampformat"] = timestampformat
    return None, presets.plantcv(terms, **options)


def layout_options(command: Any) -> Any:
    """The options that say which files and how to read their names: shared by scan and
    inspect, so the two take the same command line."""
    options = [
        click.argument("source", type=click.Path(file_okay=False), required=False),
        click.option(
            "--pattern", help="Regex with named groups, e.g. '(?P<plant>\\w+)-(?P<frame>\\d+)'."
        ),
        click.option(
            "--glob",
            help="Which files to consider (default: every known image extension). '*.png' at "
            "any depth; with a '/', folder by folder: './*.png' this folder only, "
            "'**/*.png' any depth.",
        ),
        click.option(
            "--type",
            "types",
            multiple=True,
            metavar="FIELD=TYPE",
            help="int, float, str or a strptime format such as %Y%m%dT%H%M%S. Repeatable.",
        ),
        click.option(
            "--dims", help="Comma-separated order of the outer dims (default: chosen for you)."
        ),
        click.option(
            "--infer/--no-infer",
            default=True,
            help="Without --pattern, read the fields off the file names (default) and print "
            "the pattern taken; --no-infer: one dim 'file' over the files.",
        ),
        click.option("--group-by", help="Field(s), comma-separated, giving one group per value."),
        click.option(
            "--preset", type=click.Choice(["plantcv"]), help="A named layout (PlantCV file names)."
        ),
        click.option("--terms", help="PlantCV filename_metadata, comma-separated."),
        click.option(
            "--delimiter",
            help="PlantCV delimiter: one character, or a regex whose groups are the terms.",
        ),
        click.option(
            "--timestampformat", help="PlantCV timestampformat (strptime), e.g. %Y%m%dT%H%M%S."
        ),
        click.option(
            "--plantcv-config",
            type=click.Path(dir_okay=False, exists=True),
            help="Read input_dir, filename_metadata, delimiter, ... from a PlantCV workflow "
            "config.",
        ),
        click.option(
            "--derive",
            multiple=True,
            metavar="NAME=HOW",
            help="A derived field: day(timestamp), day(timestamp, 20:00) or "
            "strftime(timestamp, %Y-%m).",
        ),
        click.option(
            "--lookup",
            multiple=True,
            metavar="FIELD=TABLE[:COLUMN]",
            help="Add the columns of a CSV/JSON table keyed by FIELD's values (key column COLUMN).",
        ),
        click.option(
            "--lookup-missing",
            type=click.Choice(["error", "warn"]),
            default="error",
            help="A value missing from a lookup table: error (default) or warn.",
        ),
        click.option(
            "--files",
            "file_list",
            help="Index file (path or URL) listing relative paths to take instead of listing "
            "SOURCE; needed for http(s):// sources.",
        ),
        remote_options,
        click.option("--workers", type=int, help="Header probes in flight (default: adaptive)."),
        click.option(
            "--allow-outside-root", is_flag=True, help="Follow symbolic links that leave SOURCE."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def scan_keywords(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """SOURCE and the keywords of :func:`imagezarr.scan` from the layout options' values."""
    given = params.pop("source")
    config_dir, layout = _preset(
        params.pop("preset"),
        params.pop("plantcv_config"),
        params.pop("terms"),
        params.pop("delimiter"),
        params.pop("timestampformat"),
        given,
    )
    source = given or config_dir
    if source is None:
        msg = "give the SOURCE folder (or --plantcv-config with an input_dir)"
        raise click.UsageError(msg)
    return source, {
        "layout": layout,
        "derived": _pairs(params.pop("derive"), "--derive", "day=day(timestamp, 20:00)"),
        "lookups": _lookups(params.pop("lookup"), params.pop("lookup_missing")),
        "pattern": params.pop("pattern"),
        "glob": params.pop("glob"),
        "types": _types(params.pop("types")) or None,
        "dims": params.pop("dims"),
        "infer": params.pop("infer"),
        "group_by": params.pop("group_by"),
        "files": params.pop("file_list"),
        "storage_options": storage_options(params.pop("options")),
        "workers": params.pop("workers"),
        "allow_outside_root": params.pop("allow_outside_root"),
    }


@click.command()
@layout_options
@click.option("--skip-unmatched", is_flag=True, help="Skip files that do not match the pattern.")
@click.option("--skip-unreadable", is_flag=True, help="Skip files whose header is not an image.")
@click.option(
    "--on-mismatch",
    type=click.Choice(["error", "skip", "split"]),
    default=None,
    help="Images of one array that differ in format, shape or dtype: stop (default), leave out "
    "those unlike most of their group, or give each kind its own group.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the manifest (*.imagezarr.json).",
)
@scheduler_option
@click.option(
    "--checksum",
    is_flag=True,
    help="Record a content checksum per file (reads every byte) for --check checksum.",
)
@click.option("--absolute-root", is_flag=True, help="Record the root as an absolute path.")
@click.option("--force", is_flag=True, help="Allow writing the manifest inside the source folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
def scan(
    skip_unmatched: bool,
    skip_unreadable: bool,
    on_mismatch: str | None,
    output: str,
    scheduler: str | None,
    checksum: bool,
    absolute_root: bool,
    force: bool,
    quiet: bool,
    **params: Any,
) -> None:
    """Scan SOURCE into a manifest, reading only image headers."""
    source, keywords = scan_keywords(params)
    layout = keywords["layout"]
    report: list[Exclusion] = []
    try:
        with lazy_progress("probing headers", quiet=quiet) as progress, warnings.catch_warnings():
            if _is_plantcv(layout):  # the summary lists the table rows without file
                warnings.filterwarnings("ignore", r"table .* not among the scanned", LayoutWarning)
            m = api.scan(
                source,
                **keywords,
                on_unmatched="skip" if skip_unmatched else "error",
                on_unreadable="skip" if skip_unreadable else "error",
                on_mismatch=on_mismatch,  # type: ignore[arg-type]
                progress=progress,  # type: ignore[arg-type]
                client=scheduler,
                checksum=checksum,
                report=report,
            )
    except ImageZarrError:
        if _is_plantcv(layout) and report and not quiet:  # why the selection came out so
            tree = Tree("[red]imagezarr scan stopped[/]")
            _plantcv_selection(tree, report, ())
            Console(stderr=True, highlight=False).print(tree)
        raise
    out = m.save(output, absolute_root=absolute_root, force=force)
    if not quiet:
        tree = summary_tree(m, title=str(out))
        if _is_plantcv(layout):
            _plantcv_selection(tree, report, m.unreadable)
        echo_tree(tree)


def _is_plantcv(layout: LayoutSpec | None) -> bool:
    return layout is not None and (layout.preset or {}).get("name") == "plantcv"
