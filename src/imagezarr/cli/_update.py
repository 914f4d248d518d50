"""``imagezarr update``: scan a manifest's root again with its recorded layout."""

from __future__ import annotations

from datetime import datetime

import click

from .. import api
from ..access import Access
from ..manifest import FileDiff, Manifest
from ._common import (
    console,
    echo_tree,
    lazy_progress,
    manifest_access,
    scheduler_option,
    summary_tree,
)


@click.command()
@manifest_access()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the new manifest here instead of replacing MANIFEST.",
)
@click.option("--dry-run", is_flag=True, help="Only report what changed; write nothing.")
@click.option("--force", is_flag=True, help="Allow writing OUTPUT inside the source folder.")
@click.option(
    "--drop-undecodable",
    is_flag=True,
    help="Decode every image and turn those that fail (corrupt, truncated) into holes.",
)
@click.option(
    "--removed",
    type=click.Choice(["shrink", "holes"]),
    default="shrink",
    show_default=True,
    help="A label whose files are all gone: leaves its coordinate (as in a new scan), or "
    "stays as a slice of holes so that shapes only grow.",
)
@click.option("--watch", is_flag=True, help="Keep updating until Ctrl-C; save on each change.")
@click.option(
    "--interval",
    type=float,
    default=60.0,
    show_default=True,
    help="With --watch: the longest wait between updates.",
)
@click.option(
    "--events/--no-events",
    default=None,
    help="With --watch: update as soon as the folder reports changes (file-system events; "
    "needs watchfiles). Default: when the root is a local folder and watchfiles is installed.",
)
@scheduler_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
def update(
    manifest: str,
    access: Access,
    output: str | None,
    dry_run: bool,
    force: bool,
    drop_undecodable: bool,
    removed: str,
    watch: bool,
    interval: float,
    events: bool | None,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Re-scan the images MANIFEST describes, with the layout it recorded; report the changes.

    Only new and changed files are probed; unchanged ones keep what the manifest recorded.
    """
    if watch and scheduler:
        msg = "--watch updates in this process; --scheduler is for a single update"
        raise click.UsageError(msg)
    if watch:
        _watch(
            manifest,
            access,
            output=output,
            interval=interval,
            removed=removed,
            events=events,
            drop_undecodable=drop_undecodable,
            dry_run=dry_run,
        )
        return
    with lazy_progress("probing headers", quiet=quiet) as progress:
        new, diff = api.update(
            manifest,
            access=access,
            drop_undecodable=drop_undecodable,
            client=scheduler,
            removed=removed,  # type: ignore[arg-type]
            progress=progress,  # type: ignore[arg-type]
            save=False if dry_run else (output or True),
            force=force,
        )
    for what, paths in (
        ("added", diff.added),
        ("removed", diff.removed),
        ("changed", diff.changed),
        ("retimed", diff.retimed),
        ("dropped", diff.dropped),
    ):
        for p in paths[:20]:
            console.print(f"{what:8} {p}", soft_wrap=True)
        if len(paths) > 20:
            console.print(f"{what:8} ... and {len(paths) - 20} more")
    for line in diff.labels[:20]:
        console.print(f"label    {line}", soft_wrap=True)
    if len(diff.labels) > 20:
        console.print(f"label    ... and {len(diff.labels) - 20} more")
    retimed = f" ({len(diff.retimed)} with only a new modification time)" if diff.retimed else ""
    if diff.dropped:
        retimed += f"; {len(diff.dropped)} undecodable file(s) dropped (now holes)"
    console.print(
        f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed, "
        f"{diff.unchanged} unchanged{retimed}"
    )
    if diff.redone:
        console.print(
            f"another process saved {manifest} while this update ran: made again from its "
            f"save ({diff.redone}x), so nothing it recorded is lost",
            soft_wrap=True,
        )
    if dry_run:
        return
    if not diff.any and output is None:  # the manifest already says it all: left be
        console.print(f"nothing changed: {manifest} left as it was", soft_wrap=True)
        return
    if not quiet:
        echo_tree(summary_tree(new, title=str(output or manifest)))


def _watch(
    manifest: str,
    access: Access,
    *,
    output: str | None,
    interval: float,
    removed: str,
    events: bool | None,
    drop_undecodable: bool,
    dry_run: bool,
) -> None:
    def said(diff: FileDiff, new: Manifest) -> None:
        when = datetime.now().isoformat(sep=" ", timespec="seconds")
        where = "not saved (--dry-run)" if dry_run else f"saved to {output or manifest}"
        console.print(
            f"{when}: {len(diff.added)} added, {len(diff.removed)} removed, "
            f"{len(diff.changed)} changed"
            + (f", {len(diff.dropped)} undecodable dropped" if diff.dropped else "")
            + (f", {len(diff.labels)} label(s) emptied ({removed})" if diff.labels else "")
            + f"; {len(new.files):,} files, {where}",
            soft_wrap=True,
        )

    def failed(error: Exception) -> None:
        when = datetime.now().isoformat(sep=" ", timespec="seconds")
        console.print(f"{when}: not updated, trying again: {error}", soft_wrap=True)

    started: list[str | None] = []

    def announce(folder: str | None) -> None:
        started.append(folder)
        how = f"on changes in {folder} and " if folder else ""
        console.print(
            f"watching {manifest}: updating {how}every {interval:g} s; Ctrl-C stops",
            soft_wrap=True,
        )

    try:
        api.watch(
            manifest,
            interval=interval,
            output=output,
            access=access,
            removed=removed,  # type: ignore[arg-type]
            on_change=said,
            on_failure=failed,
            events=events,
            on_start=announce,
            drop_undecodable=drop_undecodable,
            dry_run=dry_run,
        )
    except (ImportError, ValueError) as e:
        if started:  # not the --events refusal: a failure while watching
            raise
        raise click.UsageError(str(e)) from e
    except KeyboardInterrupt:
        console.print("stopped")
