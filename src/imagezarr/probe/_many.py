"""Probing many files, where an :class:`~imagezarr.executor.Executor` runs them.

The per-format probes are pure; the executor decides how many run at once and where. Every
byte comes from the dataset's root, so the same code probes a folder, a share or a bucket.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ProbeError, UnsupportedImageError
from ..executor import Executor, Progress
from ..roots import READ_ERRORS, FileEntry, Root, error_text
from . import budgeted, probe
from ._common import HEAD_SIZE, ImageInfo
from ._png import png_info, read_head

__all__ = ["probe_entries", "probe_results", "probe_task", "split_results"]

SLOW_PROBE_SECONDS = 200e-6

Result = ImageInfo | ProbeError
PngHead = tuple[int, int, int, int]


def _probe_file(root: Root, entry: FileEntry, memo: dict[PngHead, ImageInfo | str]) -> Result:
    """Probe one file, with a lean path for well-formed PNGs.

    A small PNG's probe is a few microseconds of Python; the general path's closures, bounded
    reads and a new ImageInfo per file cost several times that. Here a PNG whose header lies
    in the first read costs that one read and a lookup in ``memo``; anything else goes to
    :func:`probe`, which reports every error, with the first read served from memory.
    """
    rel, size = entry.path, entry.size
    try:
        head = root.head(rel, min(size, HEAD_SIZE)) if size else b""
        if head and (found := read_head(head)) is not None:
            info = memo.get(found)
            if info is None:
                info = memo[found] = budgeted(png_info(*found))
            if isinstance(info, str):
                return UnsupportedImageError(f"{rel}: {info}", path=rel)
            return info

        def read(offset: int, length: int) -> bytes:
            if offset + length <= len(head):
                return head[offset : offset + length]
            return root.read_range(rel, offset, length)

        return probe(read, size=size, name=rel)
    except ProbeError as e:
        return e
    except READ_ERRORS as e:
        return ProbeError(f"{rel}: cannot read: {error_text(e)}", path=rel)


def _probe_batch(root: Root, entries: Sequence[FileEntry]) -> list[Result]:
    """Probe a batch of files; a module-level function so dask workers can run it."""
    # files of one batch sharing a header share one ImageInfo: a frozen value, and arrange
    # then compares each distinct one once
    memo: dict[PngHead, ImageInfo | str] = {}
    return [_probe_file(root, e, memo) for e in entries]


def split_results(results: list[Result]) -> tuple[list[ImageInfo], list[tuple[int, ProbeError]]]:
    """Headers in order (None where the probe failed) and the ``(index, error)`` failures."""
    failed = [(i, r) for i, r in enumerate(results) if isinstance(r, ProbeError)]
    infos = [r if isinstance(r, ImageInfo) else None for r in results]
    return infos, failed  # type: ignore[return-value]


def probe_entries(
    root: Root,
    entries: Sequence[FileEntry],
    *,
    executor: Executor,
    progress: Progress | None,
) -> tuple[list[ImageInfo], list[tuple[int, ProbeError]]]:
    """Probe every header where ``executor`` runs work: batches of dask tasks on a cluster,
    else here (inline, or threads when the files are slow to reach)."""
    if executor.on_cluster:
        results = executor.batches(probe_task, root, entries, name="probe", progress=progress)
    else:
        results = probe_results(root, entries, executor=executor, progress=progress)
    return split_results(results)


def probe_results(
    root: Root,
    entries: Sequence[FileEntry],
    *,
    executor: Executor,
    progress: Progress | None,
) -> list[Result]:
    """Each file's header or error, in order, probed in this process.

    Probing a page-cached file is tens of microseconds of Python: threads only add GIL
    contention there (slower than inline in benchmarks/run.py). On a network share, a cold
    disk or an object store each read waits on I/O and threads win by far: the executor's
    adaptive rule decides from the first batch.
    """
    return executor.adaptive(
        lambda batch: _probe_batch(root, batch),
        entries,
        first=root.first_batch,
        batch=root.batch,
        slow_seconds=SLOW_PROBE_SECONDS,
        workers=root.workers,
        progress=progress,
    )


def probe_task(root: Root, entries: Sequence[FileEntry]) -> list[Result]:
    """A dask task probing a batch of files, over the worker's own threads when the files
    are slow to reach (what :func:`probe_results` decides)."""
    return probe_results(root, entries, executor=Executor(), progress=None)
