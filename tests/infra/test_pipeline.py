"""ReadAhead and WriteBehind: order, the end of reading, errors, and closing with a call
in flight (plain callables: these pieces know nothing of Elasticsearch)."""

from __future__ import annotations

import threading
import time

import pytest

from tracardi_daemon.infra.pipeline import ReadAhead, WriteBehind


class Batches:
    """Batches 0..n-1 of one item each, then []; ``fail_at`` raises once at that batch
    without moving on, as a scan whose search failed."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.next, self.fail_at, self.calls = n, 0, fail_at, 0
        self.running = threading.Lock()

    def __call__(self) -> list[int]:
        assert self.running.acquire(blocking=False), "fetch ran twice at once"
        try:
            self.calls += 1
            if self.next == self.fail_at:
                self.fail_at = None
                raise RuntimeError("search failed")
            if self.next >= self.n:
                return []
            self.next += 1
            return [self.next - 1]
        finally:
            self.running.release()


def test_read_ahead_returns_every_batch_in_order_then_stops_reading() -> None:
    source = Batches(5)
    reader = ReadAhead(source, name="t")
    got = []
    while batch := reader.next():
        got += batch
    assert got == [0, 1, 2, 3, 4]
    assert reader.next() == [] and source.calls == 6  # nothing read after the end
    reader.close()


def test_read_ahead_reads_the_next_batch_before_it_is_asked_for() -> None:
    source = Batches(3)
    reader = ReadAhead(source, name="t")
    assert reader.next() == [0]
    deadline = time.monotonic() + 5
    while source.next < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert source.next == 2  # batch 1 was read without a second call to next()
    reader.close()
    assert source.calls == 2


def test_a_failed_read_raises_and_the_next_call_reads_it_again() -> None:
    source = Batches(3, fail_at=1)
    reader = ReadAhead(source, name="t")
    assert reader.next() == [0]
    with pytest.raises(RuntimeError, match="search failed"):
        reader.next()
    assert [reader.next(), reader.next(), reader.next()] == [[1], [2], []]
    reader.close()


def test_write_behind_keeps_depth_calls_in_flight_and_returns_them_in_order() -> None:
    release = threading.Event()
    writes = WriteBehind[int](name="t", depth=2)
    assert writes.collect() is None and not writes.busy
    writes.submit(lambda: release.wait(5) and 1)
    writes.submit(lambda: 2)
    assert writes.full and writes.busy
    with pytest.raises(RuntimeError, match="collect first"):
        writes.submit(lambda: 3)
    release.set()
    assert (writes.collect(), writes.collect(), writes.collect()) == (1, 2, None)
    writes.close()


def test_a_failed_write_raises_from_collect() -> None:
    def fail() -> int:
        raise ValueError("bulk refused")

    writes = WriteBehind[int](name="t")
    writes.submit(fail)
    with pytest.raises(ValueError, match="bulk refused"):
        writes.collect()
    writes.close()


def test_close_waits_for_the_calls_in_flight_and_drops_their_results() -> None:
    finished = threading.Event()
    started = threading.Event()

    def slow() -> int:
        started.set()
        finished.wait(0.2)
        finished.set()
        return 1

    writes = WriteBehind[int](name="t")
    writes.submit(slow)
    started.wait(5)
    writes.close()
    assert finished.is_set() and writes.collect() is None and not writes.busy


def test_depth_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="depth must be at least 1"):
        WriteBehind[int](name="writes", depth=0)
