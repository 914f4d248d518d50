"""Path safety: a dataset's file entries must stay inside its root.

Shared by discovery (explicit file lists) and manifest loading (hostile documents).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np

from .errors import UnsafePathError

__all__ = [
    "PathColumn",
    "check_all_relative",
    "check_relative",
    "match_paths",
    "portable_problems",
]

# Windows reads these component names as devices, whatever the case, the extension or
# trailing spaces ("nul", "NUL.png", "com1 .tif"); ¹²³ count as digits there
_DEVICES = frozenset(
    (
        "CON",
        "PRN",
        "AUX",
        "NUL",
        "CONIN$",
        "CONOUT$",
        *(f"{port}{n}" for port in ("COM", "LPT") for n in "123456789¹²³"),
    )
)
_SEP, _NUL, _DOT, _SPACE, _COLON, _BACKSLASH = (ord(c) for c in "/\x00. :\\")


def _stem(text: str) -> int:
    return int.from_bytes(text.encode(), "big")


# what may follow the first three letters of a device name (upper-cased by clearing bit 5):
# the end of the name for CON, PRN, AUX and NUL; "IN$"/"OUT$" for CON ("ı" starts with 0xC4);
# a digit for COM and LPT (¹²³ start with 0xC2)
_BARE = np.array([_stem(d) for d in ("CON", "PRN", "AUX", "NUL")], dtype=np.uint32)
_PORTS = np.array([_stem("COM"), _stem("LPT")], dtype=np.uint32)
_CON_MORE = np.array([ord("I"), ord("O"), 0xC4], dtype=np.uint8)
_DIGITS = np.array([*b"123456789", 0xC2], dtype=np.uint8)
_FIRST = np.zeros(256, dtype=bool)  # the first letters of device names, in either case
_FIRST[[ord(c) | case for c in "CPANL" for case in (0, 0x20)]] = True


def check_all_relative(paths: Sequence[str], name: str = "<manifest>") -> None:
    """:func:`check_relative` for many paths at once (a million in about a fifth of a second).

    The paths are joined by NUL (which no file name contains) into bytes, where vectorised
    comparisons look for every byte or pair of bytes that could be unsafe, block by block so
    that ten million paths need no more than a few blocks' worth of scratch memory. Only the
    paths holding such a byte are then checked one by one, which names the culprit.
    A :class:`PathColumn` is checked in place, without a copy.
    """
    for i in _suspects_of(paths):
        check_relative(paths[i], name)


def _suspects_of(paths: Sequence[str]) -> Iterable[int]:
    if not paths:
        return []
    if isinstance(paths, PathColumn):  # its offsets come from the NULs: none is inside a path
        return _suspects(paths.data)
    joined = "\x00".join(paths).encode("utf-8", "surrogatepass")
    if joined.count(b"\x00") != len(paths) - 1:  # a NUL inside a path: no byte view is exact
        return range(len(paths))
    return _suspects(joined)


def _suspects(joined: bytes, block: int = 2**22) -> list[int]:
    """Indices of the NUL-joined paths that hold a byte that could be unsafe."""
    found: list[int] = []
    first, start = 0, 0  # the index of the block's first path, and where it starts
    while start <= len(joined):
        end = joined.find(b"\x00", start + block)
        end = len(joined) if end < 0 else end
        piece = b"\x00" + joined[start:end] + b"\x00"  # whole paths, each between two NULs
        suspects, nuls = _block_suspects(piece)
        found += [first + int(i) for i in suspects]
        first += nuls - 1
        start = end + 1
    return found


def _block_suspects(raw: bytes) -> tuple[np.ndarray, int]:
    """The suspects of a block of whole paths, and the block's number of NULs."""
    data = np.frombuffer(raw, np.uint8)
    sep = data == _NUL
    nuls = int(np.count_nonzero(sep))
    sep |= data == _SEP
    # empty or absolute paths and empty components (a separator before a separator), and
    # components ending in a dot or a space ("..", "a.", "b "): a byte before a separator
    before = data[:-1] == _DOT
    before |= data[:-1] == _SPACE
    before |= sep[:-1]
    before &= sep[1:]
    devices = _devices(data, sep)
    if not (b":" in raw or b"\\" in raw or before.any() or devices.size):
        return devices, nuls
    bad = (data == _COLON) | (data == _BACKSLASH)
    bad[:-1] |= before
    bad[devices] = True
    # the path each suspicious byte belongs to: path i lies between NUL i and NUL i + 1
    owners = np.searchsorted(np.flatnonzero(data == _NUL), np.flatnonzero(bad), "right") - 1
    return np.unique(owners), nuls


def _devices(data: np.ndarray, sep: np.ndarray) -> np.ndarray:
    """Offsets of components that may be Windows device names: a close superset of them
    (``CONIFER`` passes), which the one-by-one check narrows."""
    starts = np.flatnonzero(sep[:-4]) + 1  # the last component's 3 letters end before NUL
    # clearing bit 5 upper-cases ASCII letters and maps no other byte onto one
    starts = starts[_FIRST[data[starts]]]  # few components start with C, P, A, N or L
    head = [data[starts + k].astype(np.uint32) & 0xDF for k in range(3)]
    stems = (head[0] << 16) | (head[1] << 8) | head[2]
    bare, ports = np.isin(stems, _BARE), np.isin(stems, _PORTS)
    con = stems == _stem("CON")
    hits = starts[bare | ports]
    if not hits.size:
        return hits
    bare, ports, con = bare[bare | ports], ports[bare | ports], con[bare | ports]
    after = data[hits + 3]
    whole = sep[hits + 3] | (after == _DOT) | (after == _SPACE)
    more = np.isin(after & 0xDF, _CON_MORE)
    return hits[(bare & whole) | (con & more) | (ports & np.isin(after, _DIGITS))]


def check_relative(path: str, name: str = "<manifest>") -> None:
    """Raise :class:`UnsafePathError` unless ``path`` stays inside the root, on POSIX and on
    Windows alike.

    Refused: empty and absolute paths, ``..``, backslashes, NUL, and what Windows would read
    elsewhere: a ``:`` in any component (a drive, ``D:x.png``, or a stream), device names
    (``NUL.png``, ``com1.tif``) and components ending in a dot or space (Windows drops them).

    >>> check_relative("plants/A1.png")
    >>> check_relative("../secret.png")
    Traceback (most recent call last):
    imagezarr.errors.UnsafePathError: <manifest>: entry '../secret.png' leaves the dataset root ...
    """
    problem = _problem(path)
    if problem is not None:
        msg = (
            f"{name}: entry {path!r} leaves the dataset root or is unsafe on Windows "
            f"({problem}); refusing to read it. Pass allow_outside_root=True only for a "
            "manifest you trust."
        )
        raise UnsafePathError(msg)


def _problem(path: str) -> str | None:
    if not path or path.startswith("/"):
        return "an empty or absolute path"
    if "\\" in path or "\x00" in path:
        return "a backslash or NUL"
    for part in path.split("/"):
        if part in ("", "."):
            continue  # "a//b" and "a/./b" name a/b on every system
        if part == "..":
            return "'..'"
        if ":" in part:
            return f"a drive or stream in {part!r}"
        if part[-1] in ". ":
            return f"{part!r} ends with a dot or space"
        if part.partition(".")[0].rstrip(" ").upper() in _DEVICES:
            return f"{part!r} is a Windows device name"
    return None


def portable_problems(paths: Sequence[str]) -> list[tuple[str, str]]:
    """``(path, why)`` for every relative path that could not be a manifest entry (it would
    not be one file on Windows, or leaves the root); the bulk check of a listing, so that
    only suspicious paths are looked at one by one.

    >>> portable_problems(["night 1/A1.png", "t_12:00.png"])
    [('t_12:00.png', "a drive or stream in 't_12:00.png'")]
    """
    return [(paths[i], why) for i in _suspects_of(paths) if (why := _problem(paths[i])) is not None]


def match_paths(old: Sequence[str], new: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(i, j)``: the positions of the paths found in both, ``old[i[k]] == new[j[k]]``, in
    the order of ``new``. Paths are unique within each sequence (file tables).

    Sorted numpy string arrays and a binary search, where two dicts of 100,000 paths and a
    lookup per path cost three times as much; tables come in path order, so the sort is
    usually skipped.

    >>> match_paths(["a", "b", "c"], ["c", "x", "a"])
    (array([2, 0]), array([0, 2]))
    """
    a = np.array(list(old), dtype=np.dtypes.StringDType())
    b = np.array(list(new), dtype=np.dtypes.StringDType())
    order = None if a.size < 2 or bool((a[1:] > a[:-1]).all()) else np.argsort(a, kind="stable")
    ranked = a if order is None else a[order]
    pos = np.searchsorted(ranked, b)
    inside = np.flatnonzero(pos < a.size)
    j = inside[ranked[pos[inside]] == b[inside]]
    i = pos[j] if order is None else order[pos[j]]
    return i.astype(np.int64), j.astype(np.int64)


class PathColumn(Sequence[str]):
    """Many relative paths held as one NUL-joined UTF-8 buffer and an offset per path.

    Ten million paths cost their bytes plus 8 bytes each here, where a list of ``str`` costs
    about 80 bytes more per path and seconds to build: a large manifest loads its packed
    path column as it is and decodes a path only when one is asked for. No library offers
    a plain, picklable string column without pulling in Arrow, hence this small class.

    >>> c = PathColumn.from_paths(["a.png", "nacht 2/b.png"])
    >>> len(c), c[1], list(c), c == ["a.png", "nacht 2/b.png"]
    (2, 'nacht 2/b.png', ['a.png', 'nacht 2/b.png'], True)
    """

    __slots__ = ("data", "offsets")
    _BLOCK = 1 << 16  # paths decoded together when iterating

    def __init__(self, data: bytes, offsets: np.ndarray) -> None:
        #: the paths joined by NUL, in UTF-8 (NUL is in no file name)
        self.data = data
        #: path ``i`` is ``data[offsets[i]:offsets[i + 1] - 1]`` (``len(data) + 1`` ends it)
        self.offsets = offsets

    @classmethod
    def from_joined(cls, data: bytes, block: int = 1 << 24) -> PathColumn:
        """The column of ``"\\0".join(paths).encode()`` (one or more paths), scanned in
        blocks so that ten million paths need no more scratch memory than a block's worth."""
        raw = np.frombuffer(data, np.uint8)
        parts = [np.zeros(1, np.int64)]
        for start in range(0, raw.size, block):
            parts.append(np.flatnonzero(raw[start : start + block] == 0) + (start + 1))
        parts.append(np.array([raw.size + 1], np.int64))
        return cls(data, np.concatenate(parts))

    @classmethod
    def from_paths(cls, paths: Iterable[str]) -> PathColumn:
        if isinstance(paths, PathColumn):
            return paths
        paths = list(paths)
        if not paths:  # b"" alone would read as one empty path
            return cls(b"", np.zeros(1, np.int64))
        return cls.from_joined("\x00".join(paths).encode("utf-8", "surrogatepass"))

    def __len__(self) -> int:
        return self.offsets.size - 1

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> PathColumn: ...
    def __getitem__(self, index: int | slice) -> str | PathColumn:
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        n = len(self)
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            msg = f"path index {index} out of range for {n} paths"
            raise IndexError(msg)
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.data[start : end - 1].decode("utf-8", "surrogatepass")

    def strings(self, start: int, stop: int) -> list[str]:
        """Paths ``start`` to ``stop - 1``, decoded together (fast for long runs)."""
        if start >= stop:
            return []
        a, b = int(self.offsets[start]), int(self.offsets[stop]) - 1
        return self.data[a:b].decode("utf-8", "surrogatepass").split("\x00")

    def pick(self, index: np.ndarray) -> list[str]:
        """The paths at ``index`` (an integer array), decoded one by one."""
        data, starts, ends = self.data, self.offsets[index], self.offsets[index + 1] - 1
        return [
            data[a:b].decode("utf-8", "surrogatepass")
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), self._BLOCK):
            yield from self.strings(start, min(start + self._BLOCK, len(self)))

    def take(self, index: np.ndarray) -> PathColumn:
        """The paths at ``index`` (an integer array), as a new column."""
        return PathColumn.from_paths(self.pick(np.asarray(index, np.int64)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PathColumn):
            return self.data == other.data
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PathColumn({len(self)} paths, {len(self.data)} bytes)"

    def __reduce__(self) -> tuple[object, ...]:
        return (PathColumn, (self.data, self.offsets))
