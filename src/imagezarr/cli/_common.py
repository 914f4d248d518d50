"""Options, progress and summary output shared by the commands."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.tree import Tree

from .._format import human_bytes
from ..access import Access
from ..manifest import Manifest
from ._advice import for_cli

__all__ = [
    "check_option",
    "console",
    "heading",
    "host_option",
    "human_bytes",
    "lazy_progress",
    "manifest_access",
    "on_error_option",
    "remote_options",
    "storage_options",
    "summary_tree",
]

_CLIENT_KEYS = {
    "allow_http",
    "allow_invalid_certificates",
    "timeout",
    "connect_timeout",
    "proxy_url",
}


def storage_options(pairs: tuple[str, ...]) -> dict[str, object] | None:
    """``-O key=value`` pairs as obstore keywords: client settings apart, the rest as config."""
    if not pairs:
        return None
    config: dict[str, str] = {}
    client: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            msg = f"-O takes KEY=VALUE (e.g. endpoint=http://127.0.0.1:9000), not {pair!r}"
            raise click.BadParameter(msg)
        key = key.strip().lower()
        if key in _CLIENT_KEYS:
            client[key] = value.lower() == "true" if value.lower() in ("true", "false") else value
        else:
            config[key] = value
    out: dict[str, object] = {}
    if config:
        out["config"] = config
    if client:
        out["client_options"] = client
    return out


# piped or captured output is not wrapped: paths and patterns must stay pasteable
console = Console(highlight=False, width=None if sys.stdout.isatty() else 10_000)
err_console = Console(stderr=True, highlight=False)


@contextmanager
def lazy_progress(label: str, *, quiet: bool = False) -> Iterator[object]:
    """A ``progress(done, total)`` callback whose bar appears only once a task runs for >1 s."""
    start = time.monotonic()
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    state: dict[str, int | None] = {"task": None}

    def update(done: int, total: int) -> None:
        if quiet:
            return
        if state["task"] is None:
            if time.monotonic() - start < 1.0:
                return
            bar.start()
            state["task"] = bar.add_task(label, total=total)
        bar.update(state["task"], completed=done, total=total)  # type: ignore[arg-type]

    try:
        yield update
    finally:
        if state["task"] is not None:
            bar.stop()


def _labels(values: tuple[object, ...], limit: int = 4) -> str:
    shown = [v.isoformat(sep=" ") if hasattr(v, "isoformat") else str(v) for v in values[:limit]]
    return ", ".join(shown) + (", ..." if len(values) > limit else "")


def summary_tree(m: Manifest, *, title: str) -> Tree:
    """The manifest as a tree: groups, array shape, dims with sizes and first labels, holes."""
    formats = sorted({n.image.format for n in m.nodes})
    tree = Tree(
        f"[bold]{title}[/]: {len(m.files):,} files, {human_bytes(m.total_bytes)} referenced, "
        f"format {', '.join(formats) or '-'}; root {m.root}"
    )
    if m.unmatched or m.unreadable or m.excluded:
        counts: dict[str, int] = {}
        for e in m.excluded:
            counts[e.reason] = counts.get(e.reason, 0) + 1
        text = ", ".join(f"{n} {reason}" for reason, n in counts.items()) or (
            f"{m.unmatched} unmatched, {len(m.unreadable)} unreadable"
        )
        tree.add(f"[yellow]left out: {text} (imagezarr info --excluded lists them)[/]")
    for note in m.notes:
        tree.add(f"[dim]{escape(for_cli(note))}[/]")
    for node in m.nodes:
        holes = int((node.file_index < 0).sum())
        shape = node.shape + tuple(node.image.shape)
        branch = tree.add(
            f"[bold cyan]{node.path or '/'}[/] image {shape} {node.image.dtype} "
            f"{node.image.format}, dims ({', '.join(node.image_dims)}); "
            f"{holes:,} hole(s) of {int(np.prod(node.shape)):,}"
        )
        for name, coord in node.coords.items():
            if coord.dims == (name,):
                branch.add(f"{name} [{len(coord.values)}]: {_labels(coord.values)}")
            else:
                over = ", ".join(coord.dims) or "scalar"
                branch.add(f"{name} ({over}) {coord.kind}")
    return tree


def on_error_option(help: str) -> Any:
    """``--on-error raise|fill`` with the command's own words for what fill does."""
    return click.option(
        "--on-error",
        type=click.Choice(["raise", "fill"]),
        default=None,
        show_default="raise",
        help=help,
    )


host_option = click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; the default reaches this machine only (0.0.0.0: every one).",
)


def echo_tree(tree: Tree) -> None:
    console.print(tree)


def heading(title: str) -> None:
    """A section rule on a terminal; a plain line when piped (no 10,000-character rule)."""
    if console.is_terminal:
        console.rule(title)
    else:
        console.print(f"== {title} ==", markup=False)


scheduler_option = click.option(
    "--scheduler",
    help="dask.distributed scheduler address: list the source by folder and probe on its workers.",
)

check_option = click.option(
    "--check",
    type=click.Choice(["mtime", "size", "checksum", "none"]),
    default=None,
    show_default="mtime",
    help="How a file counts as unchanged: size + modification time; size only (copies that "
    "lost their times); the checksums recorded by scan --checksum; or not at all.",
)

remote_options = click.option(
    "-O",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Remote store setting, e.g. -O endpoint=http://127.0.0.1:9000 -O allow_http=true. "
    "Credentials come from the environment and are never saved.",
)


def manifest_access(*, check: bool = True, on_error: str | None = None) -> Any:
    """The options every command on a manifest shares, defined once: MANIFEST, ``--root``,
    ``-O``, ``--allow-outside-root`` and (``check``) ``--check`` and (``on_error``: its
    help) ``--on-error``. The command receives ``manifest`` and ``access`` (an
    :class:`~imagezarr.access.Access`; options not given are left to the library's defaults).
    """
    options = [
        click.argument("manifest", type=click.Path(dir_okay=False)),
        click.option(
            "--root",
            help="The images are here (a folder or URL) instead of the recorded root: a moved "
            "or copied folder, a mirror.",
        ),
        remote_options,
        click.option(
            "--allow-outside-root",
            is_flag=True,
            default=None,
            help="Let entries and symbolic links lead out of the root (trusted manifests only).",
        ),
    ]
    if check:
        options.append(check_option)
    if on_error is not None:
        options.append(on_error_option(on_error))

    def decorate(command: Any) -> Any:
        @functools.wraps(command)
        def run(**params: Any) -> Any:
            params["access"] = Access(
                root=params.pop("root"),
                storage_options=storage_options(params.pop("options")),
                allow_outside_root=params.pop("allow_outside_root") or None,
                check=params.pop("check", None),
                on_error=params.pop("on_error", None),
            )
            return command(**params)

        for option in reversed(options):
            run = option(run)
        return run

    return decorate
