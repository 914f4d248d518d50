"""The ``imagezarr`` command line: one module per command, shared options in ``_common``.

Library errors exit with status 1 and one clear line; ``-v`` shows the traceback. A command's
module (and what it needs: zarr, xarray, aiohttp, ...) is imported only when that command
runs, so ``--version`` and ``--help`` start in the time of Python and click alone.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback

import click

from .._interrupt import interrupted
from .._version import __version__
from ..errors import ImageZarrError
from ._advice import for_cli

__all__ = ["COMMANDS", "cli", "main"]

# command -> (its module in this package, its short help). The help is here so that
# `imagezarr --help` lists the commands without importing them; a test keeps it equal to
# the first line of each command's own help.
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("_scan", "Scan SOURCE into a manifest, reading only image headers."),
    "inspect": (
        "_inspect",
        "Look at SOURCE as `scan` would, with the same options, and report; nothing is written.",
    ),
    "info": (
        "_info",
        "Print what MANIFEST describes: groups, arrays, dims, labels, holes, sizes, and the "
        "files the scan left out with the reason.",
    ),
    "verify": (
        "_verify",
        "Check every file MANIFEST references; exit 1 if any is missing, changed or corrupt.",
    ),
    "update": (
        "_update",
        "Re-scan the images MANIFEST describes, with the layout it recorded; report the changes.",
    ),
    "map": (
        "_map",
        "Run FUNCTION (FILE.py:NAME or MODULE:NAME) once per group of MANIFEST; write a table.",
    ),
    "export": ("_export", "Export MANIFEST to OUTPUT in the chosen format (see docs/export.md)."),
    "preview": (
        "_preview",
        "Draw a contact sheet of MANIFEST: thumbnails in a grid labelled by the coordinates.",
    ),
    "serve": (
        "_serve",
        "Serve MANIFEST's hierarchy as read-only Zarr v3 over HTTP; print its URL.",
    ),
    "view": (
        "_view",
        "Browse MANIFEST in a web page: thumbnails by two dims, full images with pan/zoom.",
    ),
    "demo": (
        "_demo",
        "Generate a small PSII experiment in DIRECTORY, scan it, open it, compute on it.",
    ),
}


class _LazyGroup(click.Group):
    """A group whose commands are imported when named (see :data:`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"{__name__}.{COMMANDS[cmd_name][0]}")
        # a command named after a builtin (map) is NAME_command in its module
        command = getattr(module, cmd_name, None) or getattr(module, f"{cmd_name}_command")
        return command if isinstance(command, click.Command) else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        # stand-ins carrying only the help: click shortens it as it would the command's own
        rows = [
            (name, click.Command(name, short_help=h).get_short_help_str(limit))
            for name, (_, h) in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option(
    "--max-pixels",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Pixels one image may declare before it is refused undecoded (decompression-bomb "
    "guard; default 178956970 or $IMAGEZARR_MAX_PIXELS; 0: no budget).",
)
@click.version_option(__version__, prog_name="imagezarr")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, max_pixels: int | None) -> None:
    """A virtual, labeled Zarr hierarchy over existing folders of image files."""
    if max_pixels is not None:
        # the environment, not a module setting: dask workers and server threads see it too
        os.environ["IMAGEZARR_MAX_PIXELS"] = str(max_pixels)
    # INFO only when asked: the summary is the output, log lines are for -v
    level = (
        logging.ERROR if quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"verbose": verbose, "quiet": quiet}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; library errors become exit status 1 with one line on stderr."""
    try:
        code = cli.main(args=argv, prog_name="imagezarr", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:  # Ctrl-C inside a command: click ended the line already
        return interrupted(new_line=False)
    except KeyboardInterrupt:  # outside click's own handling (showing an error, say)
        return interrupted()
    except (ImageZarrError, OSError, KeyError, ValueError) as e:
        ctx = click.get_current_context(silent=True)
        verbose = "-v" in (argv or sys.argv) or "--verbose" in (argv or sys.argv)
        if verbose or (ctx is not None and (ctx.obj or {}).get("verbose")):
            traceback.print_exc()
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        click.echo(f"imagezarr: error: {for_cli(str(message))}", err=True)
        return 1
    # with standalone_mode=False click returns the exit code of click.exceptions.Exit
    return code if isinstance(code, int) else 0
