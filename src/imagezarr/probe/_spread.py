"""Scale-out scans: the listing partitioned by prefix, each dask task listing and probing a part.

The client lists only the top of the source with a delimiter (one paged request per level,
however many files lie below) and, when that gives fewer prefixes than twice the cluster's
threads, the level below it too. Each task then lists one prefix (or a run of neighbouring
ones) and probes what it found in the same task, over a thread pool on the worker, so no
listing of the whole source passes through one process and no task is one file. The files
the client listed itself (those directly at the levels it listed) go out in batches of
:data:`BATCH`; a flat source is all such files, probed as scans always did on a cluster.

What comes back is the listing :func:`~imagezarr.discover.discover` would give and the header
of every file a task probed; the caller matches names against the whole listing as before,
so results do not depend on how the source was split.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from ..discover import in_path_order, listing_errors, prefix_groups, top_prefixes
from ..errors import ProbeError
from ..executor import BATCH, Executor, Progress
from ..roots import FileEntry, Root, stale
from ._common import ImageInfo
from ._many import Result, probe_entries, probe_task, split_results

__all__ = ["Spread", "list_and_probe", "take_probed"]

MIN_TASKS = 256  # one task per prefix up to this many prefixes (or 8 per worker thread)
Keep = Callable[[str], bool]


@dataclass(frozen=True)
class Spread:
    """The listing of a partitioned scan and the headers its tasks read."""

    entries: list[FileEntry]  # what discover() would list, in path order
    probed: dict[str, Result]  # header or error of each file a task probed, by path


def _to_probe(
    found: Sequence[FileEntry], wanted: Keep, known: Mapping[str, FileEntry]
) -> list[int]:
    """Indices of the files to probe: wanted by name and not known unchanged (the rule of an
    incremental scan, so files an earlier manifest holds unchanged are not read again)."""
    out = []
    for i, e in enumerate(found):
        if not wanted(e.path):
            continue
        old = known.get(e.path)
        if old is None or stale(old, e.stat, "mtime") is not None:
            out.append(i)
    return out


def _list_and_probe(
    root: Root,
    prefixes: Sequence[str],
    keep: Keep,
    wanted: Keep,
    known: Mapping[str, FileEntry],
) -> tuple[list[FileEntry], list[int], list[Result]]:
    """A task: list ``prefixes`` below ``root`` and probe what is wanted of it right here."""
    found: list[FileEntry] = []
    with listing_errors(root):
        for prefix in prefixes:
            found += root.list(keep, prefix)
    todo = _to_probe(found, wanted, known)
    results = probe_task(root, [found[i] for i in todo])
    return found, todo, results


def _known_below(
    known: Mapping[str, FileEntry], paths: list[str], prefixes: Sequence[str]
) -> dict[str, FileEntry]:
    """The entries of ``known`` below any of ``prefixes``; ``paths``: its keys, sorted."""
    out: dict[str, FileEntry] = {}
    for p in prefixes:
        # the paths below p/ sort from "p/" up to "p0" ("0" follows "/")
        lo, hi = bisect_left(paths, f"{p}/"), bisect_left(paths, f"{p}0")
        out.update((k, known[k]) for k in paths[lo:hi])
    return out


def list_and_probe(
    executor: Executor,
    root: Root,
    keep: Keep,
    *,
    wanted: Keep,
    known: Mapping[str, FileEntry],
    progress: Progress | None,
) -> Spread:
    """List ``root`` (files ``keep`` accepts) and probe the files ``wanted`` accepts, except
    those ``known`` holds unchanged, over the dask cluster of ``executor``.

    ``keep`` and ``wanted`` travel to the workers, so they must pickle. ``progress`` is called
    as ``progress(done, total)`` in files probed; until every listing task has returned, the
    total is an estimate from the tasks that did.
    """
    from distributed import as_completed

    client = executor.client
    threads = max(1, sum(client.nthreads().values()))
    with listing_errors(root):
        prefixes, loose = top_prefixes(root, keep, few=2 * threads)
    if not prefixes and not loose:
        return Spread([], {})
    groups = prefix_groups(prefixes, max(MIN_TASKS, 8 * threads))
    paths = sorted(known)
    shared = client.scatter(root, broadcast=True, hash=False)  # one store per worker, reused
    # a listing task maps to None, a batch task to the files it probes
    # (the key names show on the dashboard and in task streams)
    futures: dict[Any, list[FileEntry] | None] = {
        client.submit(
            _list_and_probe,
            shared,
            group,
            keep,
            wanted,
            _known_below(known, paths, group),
            key=f"imagezarr-list-{uuid4().hex}",
        ): None
        for group in groups
    }
    todo = [loose[i] for i in _to_probe(loose, wanted, known)]
    for s in range(0, len(todo), BATCH):
        batch = todo[s : s + BATCH]
        key = f"imagezarr-probe-{uuid4().hex}"
        futures[client.submit(probe_task, shared, batch, key=key)] = batch
    entries = list(loose)
    probed: dict[str, Result] = {}
    lists_done = by_lists = batched = 0
    try:
        for future in as_completed(futures):
            batch = futures[future]
            if batch is None:
                found, which, results = future.result()
                entries += found
                probed.update((found[i].path, r) for i, r in zip(which, results, strict=True))
                lists_done += 1
                by_lists += len(which)
            else:
                probed.update((e.path, r) for e, r in zip(batch, future.result(), strict=True))
                batched += len(batch)
            if progress is not None:
                guess = (len(groups) - lists_done) * by_lists / max(1, lists_done)
                progress(len(probed), len(probed) + len(todo) - batched + round(guess))
    except BaseException:
        client.cancel(list(futures))
        raise
    return Spread(in_path_order(entries), probed)


def take_probed(
    executor: Executor,
    root: Root,
    entries: Sequence[FileEntry],
    probed: Mapping[str, Result],
    *,
    progress: Progress | None,
) -> tuple[list[ImageInfo], list[tuple[int, ProbeError]]]:
    """The headers of ``entries`` from ``probed``; any file no task probed (a rule of the
    caller's that the tasks did not foresee) is probed on the cluster now."""
    results: list[Result | None] = [probed.get(e.path) for e in entries]
    missing = [k for k, r in enumerate(results) if r is None]
    if missing:
        infos, failed = probe_entries(
            root, [entries[k] for k in missing], executor=executor, progress=progress
        )
        errors = dict(failed)
        for j, k in enumerate(missing):
            results[k] = errors.get(j) or infos[j]
    return split_results(results)  # type: ignore[arg-type]
