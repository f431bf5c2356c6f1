"""Overlapping the three waits of a copy job.

A copy job spends its time reading a batch (Elasticsearch searching), transforming it
(Python) and writing it (Elasticsearch indexing), and these need not follow each other.
``ReadAhead`` reads batch N+1 in a background thread while the caller works on batch N;
``WriteBehind`` writes batch N (and N-1, with a depth of 2: two bulk requests keep two
of Elasticsearch's write threads busy) while the caller transforms batch N+1. Results
come back in order, so the caller's checkpoint logic stays sequential: it records a
batch when it collects that batch's write.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["ReadAhead", "WriteBehind"]

T = TypeVar("T")


class ReadAhead(Generic[T]):
    """Calls ``fetch`` one call ahead of the caller, in order, one call at a time.

    ``fetch`` is never run by two threads at once, so a reader that is not thread-safe
    (a ``Scan``) may be wrapped. An empty batch ends the reading: nothing is fetched after
    it. A fetch that raised raises from ``next``, and the next call fetches again: with a
    reader that does not move on a failed read (a ``Scan``), that repeats the read.
    ``close`` waits for a read in flight, so the reader can be closed safely afterwards;
    the batch it read is dropped — the caller's checkpoint still points before it.
    """

    def __init__(self, fetch: Callable[[], list[T]], *, name: str) -> None:
        self._fetch = fetch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: Future[list[T]] | None = None
        self._ended = False

    def next(self) -> list[T]:
        """The next batch ([] at the end), starting the read of the one after it."""
        if self._ended:
            return []
        future, self._pending = self._pending, None
        if future is None:
            future = self._executor.submit(self._fetch)
        batch = future.result()
        if batch:
            self._pending = self._executor.submit(self._fetch)
        else:
            self._ended = True
        return batch

    def close(self) -> None:
        """Wait for a read in flight and stop the thread. Idempotent."""
        self._ended = True
        future, self._pending = self._pending, None
        if future is not None:
            future.cancel()
        self._executor.shutdown(wait=True)


class WriteBehind(Generic[T]):
    """Up to ``depth`` calls in flight in background threads, collected in the order
    they were submitted: ``submit`` starts one (collect first while ``full``),
    ``collect`` waits for the oldest and returns its result (or raises its error).
    ``close`` waits for the calls in flight and drops their results."""

    def __init__(self, *, name: str, depth: int = 1) -> None:
        if depth < 1:
            raise ValueError(f"{name}: depth must be at least 1, not {depth}")
        self._name = name
        self._depth = depth
        self._executor: ThreadPoolExecutor | None = None
        self._pending: deque[Future[T]] = deque()

    @property
    def full(self) -> bool:
        return len(self._pending) >= self._depth

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(self, call: Callable[[], T]) -> None:
        if self.full:
            raise RuntimeError(f"{self._name}: {self._depth} calls in flight; collect first")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self._depth,
                                                thread_name_prefix=self._name)
        self._pending.append(self._executor.submit(call))

    def collect(self) -> T | None:
        """The result of the oldest call in flight; None if there is none."""
        return self._pending.popleft().result() if self._pending else None

    def close(self) -> None:
        """Wait for the calls in flight (their results are dropped) and stop the threads."""
        self._pending.clear()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
