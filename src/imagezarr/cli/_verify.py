"""``imagezarr verify``: are the referenced files still there, unchanged, decodable?"""

from __future__ import annotations

import click

from ..access import Access
from ..verify import verify as run_verify
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
    for p in report.problems[:200]:
        console.print(f"[red]{p.kind:12}[/] {p.path}: {p.detail}", soft_wrap=True)
    if len(report.problems) > 200:
        console.print(f"... and {len(report.problems) - 200} more")
    how = f"{report.checked} files checked" + (f", {report.decoded} decoded" if decode else "")
    if report.ok:
        if not quiet:
            console.print(f"[green]ok[/]: {how}")
        return
    kinds: dict[str, int] = {}
    for p in report.problems:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    counts = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
    console.print(
        f"[red]FAILED[/]: {how}; {counts}. `imagezarr update {manifest}` accepts the changes."
    )
    if report.advice:
        console.print(f"[yellow]{report.advice}[/]", soft_wrap=True)
    raise click.exceptions.Exit(1)
