"""``imagezarr verify``: are the referenced files still there, unchanged, decodable?"""

from __future__ import annotations

import click
from rich.markup import escape

from ..access import Access
from ..verify import verify as run_verify
from ._advice import for_cli
from ._common import console, lazy_progress, manifest_access


@click.command()
@manifest_access()
@click.option("--decode", is_flag=True, help="Also read and decode every image.")
@click.option("--checksum", is_flag=True, help="Same as --check checksum: hash every file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print problems only.")
def verify(manifest: str, access: Access, decode: bool, checksum: bool, quiet: bool) -> None:
    """Check every file MANIFEST references; exit 1 if any is missing, changed or corrupt."""
    if checksum:
        access = access | Access(check="checksum")
    with lazy_progress("verifying", quiet=quiet) as progress:
        report = run_verify(manifest, decode=decode, access=access, progress=progress)  # type: ignore[arg-type]
    shown = [] if report.root_gone else report.problems  # all missing: the advice says why
    for p in shown[:200]:
        console.print(f"[red]{p.kind:12}[/] {p.path}: {p.detail}", soft_wrap=True)
    if len(shown) > 200:
        console.print(f"... and {len(shown) - 200} more")
    how = f"{report.checked} files checked" + (f", {report.decoded} decoded" if decode else "")
    if report.ok:
        if not quiet:
            console.print(f"[green]ok[/]: {how}")
        return
    kinds: dict[str, int] = {}
    for p in report.problems:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    counts = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
    fix = "" if report.root_gone else f" `imagezarr update {manifest}` accepts the changes."
    console.print(f"[red]FAILED[/]: {how}; {counts}.{fix}", soft_wrap=True)
    if report.advice:
        console.print(f"[yellow]{escape(for_cli(report.advice))}[/]", soft_wrap=True)
    raise click.exceptions.Exit(1)
