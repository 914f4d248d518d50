"""Stage 8, the ``imagezarr`` command line: one module per command, shared options here.

Library errors exit with status 1 and one clear line; ``-v`` shows the traceback.
"""

from __future__ import annotations

import logging
import sys
import traceback

import click

from ..errors import ImageZarrError
from . import _demo, _export, _info, _inspect, _preview, _scan, _serve, _update, _verify, _view

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="imagezarr")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """A virtual, labeled Zarr hierarchy over existing folders of image files."""
    # INFO only when asked: the summary is the output, log lines are for -v
    level = (
        logging.ERROR if quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"verbose": verbose, "quiet": quiet}


for command in (
    _scan.scan,
    _inspect.inspect,
    _info.info,
    _verify.verify,
    _update.update,
    _export.export,
    _preview.preview,
    _serve.serve,
    _view.view,
    _demo.demo,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; library errors become exit status 1 with one line on stderr."""
    try:
        code = cli.main(args=argv, prog_name="imagezarr", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except (ImageZarrError, OSError, KeyError, ValueError) as e:
        ctx = click.get_current_context(silent=True)
        verbose = "-v" in (argv or sys.argv) or "--verbose" in (argv or sys.argv)
        if verbose or (ctx is not None and (ctx.obj or {}).get("verbose")):
            traceback.print_exc()
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        click.echo(f"imagezarr: error: {message}", err=True)
        return 1
    # with standalone_mode=False click returns the exit code of click.exceptions.Exit
    return code if isinstance(code, int) else 0
