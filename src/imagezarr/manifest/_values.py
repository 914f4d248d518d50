"""Pure checks of manifest values: names, coordinate values, JSON cleanliness, zstd frames.

Used by :mod:`._load`; kept apart so that each module stays small.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from ..errors import ManifestError

__all__ = [
    "INT64",
    "NAME_CHARS",
    "PALETTE",
    "YEARS",
    "parse_value",
    "unplain",
    "zstd_content_size",
]

INT64 = (-(2**63), 2**63 - 1)  # sizes, times, chunk indices and int coordinates are int64

NAME_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")
PALETTE = re.compile(r"[0-9a-f]{0,64}")


def zstd_content_size(data: bytes) -> int | None:
    """The size the first zstd frame in ``data`` declares (RFC 8878, 3.1.1.1), or None.

    What ``zstd_encode`` writes declares it; a frame without it is refused, because its size
    would only be known by decompressing it.
    """
    if len(data) < 6 or data[:4] != b"\x28\xb5\x2f\xfd":
        return None
    descriptor = data[4]
    if descriptor & 0x08:  # a reserved bit
        return None
    single = bool(descriptor & 0x20)  # then no window descriptor, and a size always follows
    at = 5 + (0 if single else 1) + (0, 1, 2, 4)[descriptor & 3]
    width = (1 if single else 0, 2, 4, 8)[descriptor >> 6]
    if width == 0 or len(data) < at + width:
        return None
    size = int.from_bytes(data[at : at + width], "little")
    return size + 256 if width == 2 else size


def unplain(doc: Any) -> str:
    """Where in ``doc`` the first value JSON cannot write back is, and why, e.g.
    ``groups: [0].attrs.a: nan is not a finite number``."""
    stack: list[tuple[str, str, Any]] = [("the document", "", doc)]
    seen: set[int] = set()  # a document built in memory may contain itself: walk each once
    while stack:
        top, below, value = stack.pop()
        where = f"{top}: {below}" if below else top
        if isinstance(value, dict | list):
            if id(value) in seen:
                continue
            seen.add(id(value))
        if isinstance(value, dict):
            for k, item in value.items():
                if not isinstance(k, str) or not _encodes(k):
                    return f"{where}: key {k!r} is not UTF-8 text"
                # the top-level key leads, as in the other messages: "layout: types.t: ..."
                inner = f"{below}.{k}" if below else k
                stack.append((k, "", item) if value is doc else (top, inner, item))
        elif isinstance(value, list):
            stack.extend((top, f"{below}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str):
            if not _encodes(value):
                return f"{where}: {value[:100]!r} holds a lone surrogate, which UTF-8 cannot encode"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return f"{where}: {value} is not a finite number"
        elif value is not None and not isinstance(value, int):  # bool is an int
            return f"{where}: a {type(value).__name__} is not a JSON value"
    return "the document is nested too deeply or contains itself"


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


_VALUE_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "datetime": (str,),
}
# what xarray decodes into datetime64[ns] (1677-09-21 to 2262-04-11), whole years to spare a
# UTC offset; outside it, opening the dataset fails
YEARS = (1678, 2261)


def parse_value(x: Any, kind: str) -> Any:
    if x is None:
        return None
    if not isinstance(x, _VALUE_TYPES[kind]) or isinstance(x, bool):
        msg = f"coordinate value {x!r} is not of kind {kind}"[:300]
        raise ManifestError(msg)
    if kind == "datetime":
        try:
            when = datetime.fromisoformat(x)
        except ValueError as e:
            msg = f"coordinate value {x!r} is not an ISO datetime"[:300]
            raise ManifestError(msg) from e
        if not YEARS[0] <= when.year <= YEARS[1]:
            msg = f"coordinate value {x!r} is outside the years {YEARS[0]} to {YEARS[1]}"
            raise ManifestError(msg)
        return when
    if kind == "int" and not INT64[0] <= x <= INT64[1]:
        msg = f"coordinate value {x} does not fit in 64 bits"
        raise ManifestError(msg)
    if kind == "float":
        try:
            x = float(x)
        except OverflowError:
            x = math.inf
        if not math.isfinite(x):
            msg = f"coordinate value {x!r} is not a finite number"
            raise ManifestError(msg)
    return x
