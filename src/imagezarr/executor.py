"""Where work runs: this thread, a pool of threads, or a dask cluster. One value for all.

Probing headers, computing checksums, stat'ing listed files, verifying, drawing contact
sheets and the cluster scan all take an :class:`Executor` instead of a ``client`` and a
``workers`` count travelling side by side. The rules live here once:

- **threads**: reads that wait on a disk, share or bucket release the GIL; ``workers``
  threads (default: what the root suggests) run them, results in order, the first error
  raised.
- **adaptive**: a page-cached header probe is tens of microseconds of Python, where threads
  only add GIL contention. :meth:`Executor.adaptive` times a first batch inline and goes
  parallel only when items are slow to reach (the rule benchmarks/run.py measured).
- **dask**: with a ``distributed.Client`` or a scheduler address, batches become named
  tasks (``imagezarr-<name>-<uuid>``, so they show by name in a task stream); a client
  connected from an address lives for :meth:`Executor.running` and is closed after it.

>>> ex = Executor.of(workers=3)
>>> ex.on_cluster, ex.map(lambda x: x * x, range(5), workers=None)
(False, [0, 1, 4, 9, 16])
>>> Executor.of(ex) is ex
True
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from uuid import uuid4

__all__ = ["BATCH", "Executor", "Progress"]

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int, int], None]
BATCH = 256  # items per dask task: enough to hide a task's overhead, small enough to balance


class Executor:
    """Where work runs (see the module docstring). Build one with :meth:`of`."""

    def __init__(self, client: Any = None, workers: int | None = None) -> None:
        if workers is not None and (type(workers) is not int or workers < 1):
            msg = f"workers must be a positive integer, not {workers!r}"
            raise ValueError(msg)
        self._where = client  # a distributed.Client, a scheduler address, or None
        self._client: Any = None
        self.workers = workers

    @classmethod
    def of(cls, where: Executor | Any = None, workers: int | None = None) -> Executor:
        """``where`` itself when it is an executor; else one running on the dask cluster
        ``where`` names (a ``distributed.Client`` or an address such as
        ``"tcp://scheduler:8786"``), or in threads here when it is None."""
        if isinstance(where, Executor):
            return where
        return cls(where, workers)

    def __repr__(self) -> str:
        where = "threads" if self._where is None else f"dask {self._where!r}"
        return f"Executor({where}, workers={self.workers})"

    @property
    def on_cluster(self) -> bool:
        """Whether work goes to a dask cluster."""
        return self._where is not None

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (connected on first use for an address)."""
        if not self.on_cluster:
            msg = "this executor runs in threads here: it has no dask client"
            raise RuntimeError(msg)
        if self._client is None:
            from distributed import Client

            self._client = self._where if isinstance(self._where, Client) else Client(self._where)
        return self._client

    @contextlib.contextmanager
    def running(self) -> Iterator[Executor]:
        """This executor for a ``with`` block; a client it connected to an address itself is
        closed after it, so none is left reconnecting once the cluster is gone."""
        try:
            yield self
        finally:
            if self._client is not None and self._client is not self._where:
                self._client.close()
                self._client = None

    # -- here ------------------------------------------------------------------------------

    def map(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        workers: int | None,
        progress: Progress | None = None,
        step: int = 512,
    ) -> list[R]:
        """``fn`` of every item, in order, over ``self.workers`` (else ``workers``) threads;
        inline for one. The first error is raised; ``progress(done, total)`` every ``step``."""
        todo = list(items)
        n = max(1, self.workers or workers or 1)
        out: list[R] = []
        if n == 1 or len(todo) <= 1:
            for start in range(0, len(todo), step):
                out.extend(fn(x) for x in todo[start : start + step])
                if progress is not None:
                    progress(len(out), len(todo))
            return out
        with ThreadPoolExecutor(max_workers=n) as pool:
            for start in range(0, len(todo), step):
                out.extend(pool.map(fn, todo[start : start + step]))
                if progress is not None:
                    progress(len(out), len(todo))
        return out

    def adaptive(
        self,
        batch_fn: Callable[[Sequence[T]], list[R]],
        items: Sequence[T],
        *,
        first: int,
        batch: int,
        slow_seconds: float,
        workers: int,
        progress: Progress | None = None,
    ) -> list[R]:
        """``batch_fn`` over ``items`` in batches, in order: the first ``first`` inline and
        timed; the rest in ``self.workers`` (else ``workers``) threads when an item took
        longer than ``slow_seconds``, else inline too (threads would only contend for the
        GIL). One task per batch: a future per item costs as much as a small probe."""
        n = len(items)
        start = time.perf_counter()
        results = list(batch_fn(items[:first]))
        slow = (time.perf_counter() - start) / max(1, len(results)) > slow_seconds
        if progress is not None:
            progress(len(results), n)
        size = self.workers or (workers if slow else 1)
        starts = range(first, n, batch)
        if size == 1:
            done_batches: Iterable[list[R]] = (batch_fn(items[s : s + batch]) for s in starts)
            for done in done_batches:
                results.extend(done)
                if progress is not None:
                    progress(len(results), n)
            return results
        with ThreadPoolExecutor(max_workers=size) as pool:
            for done in pool.map(lambda s: batch_fn(items[s : s + batch]), starts):
                results.extend(done)
                if progress is not None:
                    progress(len(results), n)
        return results

    def each(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        context: Any = None,
        name: str = "task",
        workers: int | None = None,
    ) -> Iterator[tuple[int, R]]:
        """``(position, fn(context, item))`` for every item, as each finishes: one task per
        item, inline (one worker), over threads, or on the cluster (``context`` sent there
        once). For work whose items are large (a group of images each), and results that
        should be kept as they come (a results table written as it grows)."""
        if self.on_cluster:
            yield from self._each_on_cluster(fn, items, context, name)
            return
        n = max(1, self.workers or workers or 1)
        if n == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                yield i, fn(context, item)
            return
        from concurrent.futures import as_completed

        with ThreadPoolExecutor(max_workers=n) as pool:
            futures = {pool.submit(fn, context, item): i for i, item in enumerate(items)}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:  # a consumer that stops early (Ctrl-C) leaves nothing queued
                for future in futures:
                    future.cancel()

    def _each_on_cluster(
        self, fn: Callable[..., R], items: Sequence[T], context: Any, name: str
    ) -> Iterator[tuple[int, R]]:
        from distributed import as_completed

        client = self.client
        shared = client.scatter(context, broadcast=True) if context is not None else None
        tag = uuid4().hex
        futures = {
            client.submit(fn, shared, item, key=f"imagezarr-{name}-{tag}-{i}", pure=False): i
            for i, item in enumerate(items)
        }
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            client.cancel(list(futures))

    # -- on the cluster ------------------------------------------------------------------------

    def batches(
        self,
        task: Callable[..., list[R]],
        context: Any,
        items: Sequence[T],
        *,
        name: str,
        progress: Progress | None = None,
        batch: int = BATCH,
    ) -> list[R]:
        """``task(context, batch)`` on the cluster for batches of ``items``: one result per
        item, in the order of ``items``; the first failing task's error is raised."""
        from distributed import as_completed

        client = self.client
        starts = list(range(0, len(items), batch))
        futures = {
            client.submit(
                task, context, list(items[s : s + batch]), key=f"imagezarr-{name}-{uuid4().hex}"
            ): s
            for s in starts
        }
        by_start: dict[int, list[R]] = {}
        for future in as_completed(futures):
            by_start[futures[future]] = future.result()
            if progress is not None:
                progress(sum(len(v) for v in by_start.values()), len(items))
        return [r for s in starts for r in by_start[s]]
