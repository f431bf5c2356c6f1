"""The process pool seam: no worker before the first pooled batch, small batches and a
pool of one run in the calling thread, a worker's exception comes back as itself, and
a pool shut down refuses work."""

from __future__ import annotations

import os

import pytest

from tracardi_daemon.infra.cpu_pool import CpuPool, PoolUnavailable, _chunks


def pids_of(_shared: None, items: list[int]) -> list[int]:
    """The pid of the process each item ran in."""
    return [os.getpid() for _ in items]


def scaled(factor: int, items: list[int]) -> list[int]:
    return [item * factor for item in items]


def refuse_negative(_shared: None, items: list[int]) -> list[int]:
    for item in items:
        if item < 0:
            raise ValueError(f"item {item} is negative")
    return items


def _children() -> set[int]:
    """This process's live child processes, from /proc (the forkserver is one)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.add(int(entry))
    return found


def test_no_process_starts_before_the_first_pooled_batch() -> None:
    before = _children()
    pool = CpuPool(2, inline_below=4)
    try:
        assert pool.pids() == ()
        assert pool.map_chunks(scaled, 3, [1, 2]) == [3, 6]  # below the threshold
        assert pool.pids() == () and _children() == before
        ran_in = pool.map_chunks(pids_of, None, list(range(8)))
        assert os.getpid() not in ran_in
        assert set(ran_in) <= set(pool.pids()) and len(pool.pids()) >= 1
        assert _children() - before  # the forkserver now exists
    finally:
        pool.shutdown()


def test_small_batches_and_a_pool_of_one_run_in_the_calling_thread() -> None:
    single = CpuPool(1, inline_below=0)
    assert single.map_chunks(pids_of, None, list(range(100))) == [os.getpid()] * 100
    assert single.pids() == ()
    pool = CpuPool(2, inline_below=50)
    try:
        assert pool.map_chunks(pids_of, None, list(range(49))) == [os.getpid()] * 49
        assert pool.pids() == ()
    finally:
        pool.shutdown()


def test_results_keep_the_order_of_the_items() -> None:
    pool = CpuPool(2, inline_below=1)
    try:
        items = list(range(1001))
        assert pool.map_chunks(scaled, 2, items) == [item * 2 for item in items]
    finally:
        pool.shutdown()


def test_a_worker_exception_comes_back_with_its_type_and_message() -> None:
    pool = CpuPool(2, inline_below=1)
    try:
        with pytest.raises(ValueError, match="item -3 is negative"):
            pool.map_chunks(refuse_negative, None, [1, 2, 5, 4, -3, 6])
        assert pool.map_chunks(refuse_negative, None, [1, 2, 3]) == [1, 2, 3]  # still works
    finally:
        pool.shutdown()


def test_a_shut_down_pool_refuses_work_and_has_no_workers() -> None:
    pool = CpuPool(2, inline_below=1)
    pool.map_chunks(scaled, 1, [1, 2, 3, 4])
    workers = pool.pids()
    assert workers
    pool.shutdown()
    assert pool.pids() == ()
    for pid in workers:  # a worker that exited is reaped by the forkserver, not us
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)
    with pytest.raises(PoolUnavailable, match="shut down"):
        pool.map_chunks(scaled, 1, [1, 2, 3, 4])
    pool.shutdown(fast=True)  # twice is harmless


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_chunks_cover_the_items_once_in_order() -> None:
    assert _chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert _chunks([1], 4) == [[1]]
    assert _chunks([], 2) == []
