"""Verify: is every file a manifest references still there, unchanged, decodable?

Stat (or HEAD) every file and judge it with the one freshness check the store uses
(:func:`imagezarr.roots.stale`), so ``verify`` reports exactly what a read would refuse.

>>> import imagezarr.testing, tempfile
>>> d = tempfile.mkdtemp()
>>> _ = imagezarr.testing.make_psii_experiment(d, plants=1, nights=1, steps=1, frames=2,
...                                            shape=(4, 6), holes=0)
>>> report = verify(imagezarr.scan(d), decode=True)
>>> report.ok, report.checked, report.decoded
(True, 2, 2)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Unpack

import numpy as np
import zarr

from .access import Access, AccessKeywords
from .errors import ChunkDecodeError, ChunkReadError, SourceChangedError
from .executor import Executor
from .hierarchy import image_array_path
from .manifest import ManifestLike, Opened, check_codecs, open_manifest
from .roots import READ_ERRORS, Check, error_text, stale
from .store import ImageZarrStore

__all__ = ["Problem", "VerifyReport", "verify"]

COPIED_SHARE = 0.5  # above this share of files changed in time only, the folder looks copied


@dataclass(frozen=True, slots=True)
class Problem:
    """One file that failed: ``kind`` is missing, changed, unreadable or undecodable."""

    path: str
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :func:`verify` found; ``advice`` says what to do when the pattern is telling
    (most files changed in time only: a copy that did not keep times)."""

    checked: int
    decoded: int
    problems: list[Problem] = field(default_factory=list)
    advice: str = ""
    root_gone: bool = False  # the root folder itself is not there: moved without its images?

    @property
    def ok(self) -> bool:
        return not self.problems


def _stat_problem(opened: Opened, check: Check, i: int) -> Problem | None:
    entry = opened.manifest.files[i]
    try:
        if check == "checksum":  # only the content can tell: read it
            data, st = opened.source.read(entry.path, limit=entry.size)
        else:
            data, st = None, opened.source.stat(entry.path)
    except FileNotFoundError:
        return Problem(entry.path, "missing", "file not found")
    except READ_ERRORS as e:
        return Problem(entry.path, "unreadable", error_text(e))
    reason = stale(entry, st, check, data)
    return None if reason is None else Problem(entry.path, "changed", reason)


def _advice(problems: list[Problem], n: int) -> str:
    times = sum(p.kind == "changed" and p.detail.startswith("modification time") for p in problems)
    if n and times > COPIED_SHARE * n:
        return (
            f"{times} of {n} files differ only in modification time: the folder looks copied "
            "without keeping times. If the images are the same, read with --check size "
            "(check='size'), or --check checksum after a scan with --checksum; "
            "`imagezarr update MANIFEST` records the new times."
        )
    return ""


def verify(
    manifest: ManifestLike | Opened,
    *,
    decode: bool = False,
    access: Access | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options: Unpack[AccessKeywords],
) -> VerifyReport:
    """Check every referenced file; with ``decode``, also read each one through zarr's pipeline.

    The access keywords (``root``, ``storage_options``, ``allow_outside_root``, ``check``;
    see :class:`~imagezarr.access.Access`) say where the images are and how a file counts as
    unchanged (``"mtime"``, ``"size"``, ``"checksum"``, ``"none"``), as for reads. Decoding
    goes through the same store and codecs as a real read, so it finds exactly the files
    that would fail there.
    """
    opened = open_manifest(manifest, access, **options)
    check_codecs(opened.manifest)  # a codec zarr cannot build is a broken manifest
    opened = opened.with_access(Access(on_error="raise"))  # verify reports, never fills
    m, mode = opened.manifest, opened.check
    n = len(m.files)
    executor = Executor(workers=workers)
    total = n * (2 if decode else 1)
    found = executor.map(
        lambda i: _stat_problem(opened, mode, i),
        range(n),
        workers=opened.source.workers,
        progress=None if progress is None else lambda done, _: progress(done, total),
    )
    problems = [p for p in found if p is not None]
    decoded = 0
    if decode:
        bad = {p.path for p in problems}
        slots = [
            (node, tuple(int(k) for k in idx))
            for node in m.nodes
            for idx in np.argwhere(node.file_index >= 0)
            if m.files.paths[node.file_index[tuple(idx)]] not in bad
        ]
        store = ImageZarrStore(opened)
        group = zarr.open_group(store, mode="r", zarr_format=3)

        def read(slot: tuple[object, tuple[int, ...]]) -> Problem | None:
            node, idx = slot
            arr = group[image_array_path(node)]  # type: ignore[arg-type]
            try:
                arr[idx]  # type: ignore[index]
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

        read_problems = executor.map(
            read,
            slots,
            workers=opened.source.workers,
            step=256,
            progress=None
            if progress is None
            else lambda done, all_: progress(n + done * n // max(1, all_), 2 * n),
        )
        problems.extend(p for p in read_problems if p is not None)
        decoded = len(slots)
    gone = _root_gone(opened, problems, n)
    advice = _moved_advice(opened) if gone else _advice(problems, n)
    return VerifyReport(n, decoded, problems, advice, root_gone=gone)


def _root_gone(opened: Opened, problems: list[Problem], n: int) -> bool:
    """Every file missing because the local root folder itself is not there."""
    folder = getattr(opened.source, "path", None)
    missing = sum(p.kind == "missing" for p in problems)
    return bool(n) and missing == n and isinstance(folder, str) and not os.path.isdir(folder)


def _moved_advice(opened: Opened) -> str:
    folder = getattr(opened.source, "path", "")
    return (
        f"the root folder {folder!r} does not exist: was the manifest moved or copied without "
        "its images? Pass the folder they are in now as root=... (--root FOLDER); "
        "`imagezarr update` would record every file as removed."
    )
