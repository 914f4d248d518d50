"""The ``imagezarr`` console script: the command line, with Ctrl-C ending it at any moment,
imports included, with one line and exit status 130 (the shell's code for SIGINT).

Stdlib only and tiny, so that the window in which Python's own traceback can still show is
the few milliseconds before this module runs.
"""

from __future__ import annotations

import sys

from ._interrupt import interrupted


def main() -> None:
    """Run :func:`imagezarr.cli.main`; exit with its status."""
    try:
        from .cli import main as run

        code = run()
    except KeyboardInterrupt:
        code = interrupted()
    sys.exit(code)
