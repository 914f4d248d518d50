"""``imagezarr verify``: are the referenced files still there, unchanged, decodable?"""

from __future__ import annotations

import click

from ..manifest import load_manifest
from ..verify import verify as run_verify
from ._common import check_option, console, lazy_progress, remote_options, storage_options


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--decode", is_flag=True, help="Also read and decode every image.")
@click.option("--root", help="Check the images in this folder instead of the recorded root.")
@check_option
@click.option("--checksum", is_flag=True, help="Same as --check checksum: hash every file.")
@remote_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print problems only.")
def verify(
    manifest: str,
    decode: bool,
    root: str | None,
    check: str,
    checksum: bool,
    options: tuple[str, ...],
    quiet: bool,
) -> None:
    """Check every file MANIFEST references; exit 1 if any is missing, changed or corrupt."""
    m = load_manifest(manifest, root=root, storage_options=storage_options(options))
    check = "checksum" if checksum else check
    with lazy_progress("verifying", quiet=quiet) as progress:
        report = run_verify(m, decode=decode, check=check, progress=progress)  # type: ignore[arg-type]
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
