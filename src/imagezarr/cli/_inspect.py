"""``imagezarr inspect``: what a scan would see, and why files would be left out; writes nothing."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..inspection import inspect as run_inspect
from ._common import console
from ._scan import layout_options, scan_keywords

SHOWN = 20  # excluded files listed per reason on a terminal (--json lists all)


@click.command()
@layout_options
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON, for scripts.")
def inspect(as_json: bool, **params: Any) -> None:
    """Look at SOURCE as `scan` would, with the same options, and report; nothing is written."""
    source, keywords = scan_keywords(params)
    report = run_inspect(source, **keywords)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
        return
    console.print(
        f"[bold]{escape(report.root)}[/]: {report.listed} file(s) listed, {report.matched} "
        f"matched, {report.readable} readable"
    )
    if report.inferred:  # the pattern read off the names, to paste into scan
        console.print(escape(report.inferred), soft_wrap=True, highlight=False)
    fields = Table(title="fields", title_justify="left")
    for column in ("field", "kind", "values", "examples"):
        fields.add_column(column)
    for f in report.fields:
        fields.add_row(f.name, f.kind, str(f.values), escape(", ".join(f.examples)))
    console.print(fields)
    layouts = Table(title="layouts (best first)", title_justify="left")
    for column in ("dims", "slots", "holes", ""):
        layouts.add_column(column)
    for c in report.candidates:
        mark = "chosen" if c.chosen else ""
        holes = f"{c.holes} ({c.hole_ratio:.0%})"
        layouts.add_row(", ".join(c.dims) or "-", str(c.slots), holes, mark)
    console.print(layouts)
    if len(report.signatures) > 1:
        kinds = "; ".join(f"{n} x {s}" for s, n in report.signatures.items())
        console.print(f"[yellow]images differ:[/] {escape(kinds)}")
    by_reason: dict[str, list[Any]] = {}
    for e in report.excluded:
        by_reason.setdefault(e.reason, []).append(e)
    for reason, items in by_reason.items():
        console.print(f"[yellow]{len(items)} {reason}[/]")
        for e in items[:SHOWN]:
            console.print(f"  {escape(e.path)}: {escape(e.detail)}", soft_wrap=True)
        if len(items) > SHOWN:
            console.print(f"  ... and {len(items) - SHOWN} more (--json lists all)")
    if report.problem:
        console.print(f"[red]a scan with these options would fail:[/] {escape(report.problem)}")
    elif not report.excluded:
        console.print("[green]every file would be scanned[/]")
