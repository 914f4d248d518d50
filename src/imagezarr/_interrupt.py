"""How an interrupted command ends: one line on stderr and status 130 (the shell's code for
SIGINT). Stdlib only: the console script imports it before anything else."""

from __future__ import annotations

import sys

INTERRUPTED = 130


def interrupted(*, new_line: bool = True) -> int:
    """Say so in one line (after the terminal's ``^C``, on a line of its own unless one was
    begun already); the exit status for an interrupted command."""
    try:
        sys.stderr.write(("\n" if new_line else "") + "imagezarr: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed (a pipe gone): nothing left to tell
        pass
    return INTERRUPTED
