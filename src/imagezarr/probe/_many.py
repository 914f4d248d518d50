"""Probing many files: batches over a thread pool, or over a dask cluster.

The per-format probes are pure; this module decides how many run at once. Every byte comes
from the dataset's root, so the same code probes a folder, a share or a bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

from ..errors import ProbeError
from ..roots import READ_ERRORS, FileEntry, Root, error_text
from . import probe
from ._common import HEAD_SIZE, ImageInfo
from ._png import png_info, read_head

__all__ = [
    "BATCH",
    "as_client",
    "map_batches",
    "probe_distributed",
    "probe_entries",
    "probe_results",
    "probe_task",
    "split_results",
]

Progress = Callable[[int, int], None]
BATCH = 256  # files per dask task: enough to hide a task's overhead, small enough to balance
SLOW_PROBE_SECONDS = 200e-6

Result = ImageInfo | ProbeError
PngHead = tuple[int, int, int, int]


def _probe_file(root: Root, entry: FileEntry, memo: dict[PngHead, ImageInfo]) -> Result:
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
                info = memo[found] = png_info(*found)
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
    memo: dict[PngHead, ImageInfo] = {}
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
    workers: int | None,
    progress: Progress | None,
) -> tuple[list[ImageInfo], list[tuple[int, ProbeError]]]:
    """Probe every header in a thread pool; header reads are I/O-bound and release the GIL."""
    return split_results(probe_results(root, entries, workers=workers, progress=progress))


def probe_results(
    root: Root,
    entries: Sequence[FileEntry],
    *,
    workers: int | None,
    progress: Progress | None,
) -> list[Result]:
    """What :func:`probe_entries` does, giving each file's header or error in order."""
    n = len(entries)
    batch = root.batch

    def many(start: int) -> list[Result]:
        # one task per batch of files: a future per file costs as much as a small probe
        return _probe_batch(root, entries[start : start + batch])

    results: list[Result] = []
    # Probing a page-cached file is tens of microseconds of Python: threads only add GIL
    # contention there (slower than inline in benchmarks/run.py). On a network share,
    # a cold disk or an object store each read waits on I/O and threads win by far. So time
    # the first batch inline and only go parallel when files are slow to reach.
    start = time.perf_counter()
    first = root.first_batch
    results.extend(_probe_batch(root, entries[:first]))
    slow = (time.perf_counter() - start) / max(1, len(results)) > SLOW_PROBE_SECONDS
    if progress is not None:
        progress(len(results), n)
    pool_size = workers or (root.workers if slow else 1)
    with ThreadPoolExecutor(max_workers=pool_size) as pool:
        for done in pool.map(many, range(first, n, batch)):
            results.extend(done)
            if progress is not None:
                progress(len(results), n)
    return results


def as_client(client: Any) -> Any:
    """A ``distributed.Client``: ``client`` itself, or one connected to the address given."""
    from distributed import Client

    return client if isinstance(client, Client) else Client(client)


def probe_task(root: Root, entries: Sequence[FileEntry]) -> list[Result]:
    """A dask task probing a batch of files, over the worker's own threads when the files
    are slow to reach (what :func:`probe_results` decides)."""
    return probe_results(root, entries, workers=None, progress=None)


def map_batches(
    client: Any,
    task: Callable[[Root, list[FileEntry]], list[Any]],
    root: Root,
    entries: Sequence[FileEntry],
    *,
    name: str,
    progress: Progress | None,
) -> list[Any]:
    """``task(root, batch)`` on a dask cluster for batches of 256 of ``entries``, one result
    per entry, in the order of ``entries``; the first failing task's error is raised.

    Tasks are keyed ``imagezarr-<name>-<uuid>``, so they show by name in a task stream.
    """
    from distributed import as_completed

    client = as_client(client)
    starts = list(range(0, len(entries), BATCH))
    futures = {
        client.submit(
            task, root, list(entries[s : s + BATCH]), key=f"imagezarr-{name}-{uuid4().hex}"
        ): s
        for s in starts
    }
    by_start: dict[int, list[Any]] = {}
    for future in as_completed(futures):
        by_start[futures[future]] = future.result()
        if progress is not None:
            progress(sum(len(v) for v in by_start.values()), len(entries))
    return [r for s in starts for r in by_start[s]]


def probe_distributed(
    client: Any,
    root: Root,
    entries: Sequence[FileEntry],
    *,
    progress: Progress | None,
) -> tuple[list[ImageInfo], list[tuple[int, ProbeError]]]:
    """Spread header probes over a dask cluster, in batches of 256 files."""
    results = map_batches(client, probe_task, root, entries, name="probe", progress=progress)
    return split_results(results)
