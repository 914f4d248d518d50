"""Path safety: a dataset's file entries must stay inside its root.

Shared by discovery (explicit file lists) and manifest loading (hostile documents).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from .errors import UnsafePathError

__all__ = ["check_all_relative", "check_relative"]

_DRIVE = re.compile(r"\x00[^\x00]:")


def check_all_relative(paths: Sequence[str], name: str = "<manifest>") -> None:
    """:func:`check_relative` for many paths at once (a million in well under a second).

    Substring searches over all paths joined by NUL (which no file name contains) run in C;
    only when one of them hits are the paths checked one by one, to name the culprit.
    """
    if not paths:
        return
    joined = "\x00" + "\x00".join(paths) + "\x00"
    parts = joined.replace("/", "\x00")
    suspicious = (
        "\\" in joined
        or "\x00/" in joined
        or "\x00\x00" in joined
        or "\x00..\x00" in parts
        or _DRIVE.search(joined) is not None
    )
    if not suspicious:
        return
    for p in paths:
        check_relative(p, name)


def check_relative(path: str, name: str = "<manifest>") -> None:
    """Raise :class:`UnsafePathError` unless ``path`` stays inside the root.

    >>> check_relative("plants/A1.png")
    >>> check_relative("../secret.png")
    Traceback (most recent call last):
    imagezarr.errors.UnsafePathError: <manifest>: entry '../secret.png' leaves the dataset root ...
    """
    p = PurePosixPath(path)
    bad = (
        not path
        or p.is_absolute()
        or ".." in p.parts
        or "\\" in path
        or "\x00" in path
        or (len(path) > 1 and path[1] == ":")
    )
    if bad:
        msg = (
            f"{name}: entry {path!r} leaves the dataset root (absolute path, '..' or a drive); "
            "refusing to read it. Pass allow_outside_root=True only for a manifest you trust."
        )
        raise UnsafePathError(msg)
