"""The one executor: inline, threads by the adaptive rule, or a dask cluster."""

from __future__ import annotations

import threading
import time

import pytest

from imagezarr.executor import Executor


def test_map_keeps_order_raises_the_first_error_and_reports_progress():
    seen: list[tuple[int, int]] = []
    ex = Executor(workers=4)
    assert ex.map(
        lambda x: -x, range(10), workers=None, progress=lambda *a: seen.append(a), step=3
    ) == [-x for x in range(10)]
    assert seen == [(3, 10), (6, 10), (9, 10), (10, 10)]

    def boom(x: int) -> int:
        if x == 5:
            raise KeyError(x)
        return x

    with pytest.raises(KeyError):
        ex.map(boom, range(10), workers=None)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        Executor(workers=0)


def test_adaptive_runs_inline_when_items_are_quick_and_in_threads_when_slow():
    def batch_fn(delay: float):
        def run(items):
            time.sleep(delay * len(items))
            return [(x, threading.current_thread().name) for x in items]

        return run

    quick = Executor().adaptive(
        batch_fn(0), list(range(40)), first=8, batch=8, slow_seconds=1e-3, workers=4
    )
    assert [x for x, _ in quick] == list(range(40))
    assert {t for _, t in quick} == {threading.current_thread().name}
    slow = Executor().adaptive(
        batch_fn(2e-3), list(range(40)), first=8, batch=8, slow_seconds=1e-3, workers=4
    )
    assert [x for x, _ in slow] == list(range(40))
    assert len({t for _, t in slow}) > 1  # went parallel after the timed first batch
    pinned = Executor(workers=1).adaptive(
        batch_fn(2e-3), list(range(24)), first=8, batch=8, slow_seconds=1e-3, workers=4
    )
    assert {t for _, t in pinned} == {threading.current_thread().name}


def test_threads_here_have_no_client():
    with pytest.raises(RuntimeError, match="no dask client"):
        Executor().client  # noqa: B018


@pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")
def test_batches_run_as_named_tasks_and_an_address_is_closed_after_use():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        ex = Executor.of(cluster.scheduler_address)
        with ex.running():
            with distributed.get_task_stream(ex.client) as stream:
                got = ex.batches(_double_all, 10, list(range(600)), name="probe", batch=256)
            client = ex.client
        assert got == [10 + 2 * x for x in range(600)]
        names = {distributed.utils.key_split(t["key"]) for t in stream.data}
        assert names == {"imagezarr-probe"}
        assert client.status == "closed"  # connected here, so closed here
        with distributed.Client(cluster) as mine:
            ex = Executor.of(mine)
            with ex.running():
                ex.batches(_double_all, 0, [1], name="x")
            assert mine.status == "running"  # the caller's client stays theirs


def _double_all(offset: int, items: list[int]) -> list[int]:
    return [offset + 2 * x for x in items]
