"""Check that every file a manifest references is still there, unchanged, and decodes.

>>> # report = imagezarr.verify.verify(imagezarr.load_manifest("exp.imagezarr.json"))
>>> # report.ok, report.problems[:3]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import zarr

from . import io
from .errors import ChunkDecodeError, ChunkReadError, SourceChangedError
from .io import error_text
from .manifest import Manifest
from .store import ImageZarrStore

__all__ = ["Problem", "VerifyReport", "verify"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One file that failed: ``kind`` is missing, changed, unreadable or undecodable."""

    path: str
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    decoded: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _stat_problem(m: Manifest, remote: io.ObjectRoot | None, i: int) -> Problem | None:
    entry = m.files[i]
    try:
        st = remote.head(entry.path) if remote is not None else io.stat(m.file_path(i))
    except FileNotFoundError:
        return Problem(entry.path, "missing", "file not found")
    except io.READ_ERRORS as e:
        detail = error_text(e)
        return Problem(entry.path, "unreadable", detail)
    if st.size != entry.size:
        return Problem(entry.path, "changed", f"size {entry.size} -> {st.size} bytes")
    if entry.etag is not None and st.etag is not None and st.etag != entry.etag:
        return Problem(entry.path, "changed", "etag differs from the scan")
    if st.mtime_ns != entry.mtime_ns:
        return Problem(entry.path, "changed", "modification time differs from the scan")
    return None


def verify(
    m: Manifest,
    *,
    decode: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Stat every referenced file; with ``decode``, also read each one through zarr's pipeline.

    Decoding goes through the same store and codecs as a real read, so it finds exactly the
    files that would fail there.
    """
    n = len(m.files)
    workers = workers or min(16, 4 * (os.cpu_count() or 1))
    remote = m.object_root() if m.remote else None  # one client for every HEAD, not one each
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found: list[Problem | None] = []
        for start in range(0, n, 512):
            found.extend(
                pool.map(lambda i: _stat_problem(m, remote, i), range(start, min(n, start + 512)))
            )
            if progress is not None:
                progress(len(found), n * (2 if decode else 1))
        problems = [p for p in found if p is not None]
        decoded = 0
        if decode:
            bad = {p.path for p in problems}
            slots = [
                (node, tuple(int(k) for k in idx))
                for node in m.nodes
                for idx in np.argwhere(node.file_index >= 0)
                if m.files[node.file_index[tuple(idx)]].path not in bad
            ]
            group = zarr.open_group(ImageZarrStore(m, check="stat"), mode="r", zarr_format=3)

            def read(slot: tuple[object, tuple[int, ...]]) -> Problem | None:
                node, idx = slot
                arr = group[f"{node.path}/image" if node.path else "image"]  # type: ignore[attr-defined]
                try:
                    arr[idx]
                except ChunkReadError as e:
                    kind = (
                        "undecodable"
                        if isinstance(e, ChunkDecodeError)
                        else "changed"
                        if isinstance(e, SourceChangedError)
                        else "unreadable"
                    )
                    path = e.path or "?"
                    return Problem(path, kind, str(e).removeprefix(f"{path}: "))
                return None

            for start in range(0, len(slots), 256):
                batch = slots[start : start + 256]
                problems.extend(p for p in pool.map(read, batch) if p is not None)
                decoded += len(batch)
                if progress is not None:
                    progress(n + decoded * n // max(1, len(slots)), 2 * n)
    return VerifyReport(checked=n, decoded=decoded, problems=problems)
