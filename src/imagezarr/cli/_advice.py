"""Library messages on the command line: the flag, not the Python keyword (stdlib only: the
error path of every command, --version included, goes through it)."""

from __future__ import annotations

import re

__all__ = ["for_cli"]

# library messages give both spellings of a fix, "pass force=True (--force)"; on the command
# line only the flag means anything: the Python half is dropped where its name is the flag's
_ADVICE = re.compile(r"\b(\w+)(=\S*)? \((--([\w-]+)[^()]*)\)")


def for_cli(message: str) -> str:
    """``message`` with Python advice turned into the command-line flag it names.

    >>> for_cli("pass force=True (--force)")
    'pass --force'
    >>> for_cli("or pass on_mismatch='skip' (--on-mismatch skip) to leave them out")
    'or pass --on-mismatch skip to leave them out'
    """

    def flag(m: re.Match[str]) -> str:
        name, value, cli, name_of_flag = m.groups()
        same = name.replace("_", "-") == name_of_flag or name_of_flag.startswith(
            name.replace("_", "-")
        )
        return cli if same and (value is not None or "_" in name or len(name) > 1) else m[0]

    return _ADVICE.sub(flag, message)
