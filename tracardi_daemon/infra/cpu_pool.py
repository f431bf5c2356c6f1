"""The process pool for CPU-bound pure work: sized by a setting, started on first use,
and bypassed where a worker would not pay for pickling its input and its result."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from tracardi_daemon.errors import DaemonError

Shared = TypeVar("Shared")
Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many items a batch runs in the calling thread: a batch sent to the workers
# pays a fixed cost (a wake-up and a future per worker, ~1 ms) before any item. Above it
# the pool still pays per item: bench/pool.py on 2 idle cores measured a profile's or a
# document's pickle round trip at 1-5x the work done on it (a condition, a migration's
# transforms), so those jobs ran at 0.3-0.75x of one thread through the pool. The
# default job batches (1000) stay below this, inline; the pool is there for heavier
# per-item work and for operators who measure a gain on more cores.
INLINE_BELOW_ITEMS = 5000


class PoolUnavailable(DaemonError):
    """The pool was shut down (or a worker died) while a batch was under way."""


class CpuPool:
    """``map_chunks`` runs a pure function over a batch, in worker processes or inline.

    Thread-safe: every role thread shares one. No process exists until the first batch
    that goes to the workers; ``size`` 1 never starts one.
    """

    def __init__(self, processes: int = 0, *, inline_below: int = INLINE_BELOW_ITEMS,
                 start_method: str = "forkserver") -> None:
        self.size = processes or os.cpu_count() or 1  # 0: one per CPU
        self.inline_below = inline_below
        # forkserver: forking a process that runs threads can copy held locks
        self._start_method = start_method
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False

    def inline(self, items: int) -> bool:
        """Whether a batch of ``items`` runs in the calling thread."""
        return self.size == 1 or items < self.inline_below

    def map_chunks(self, function: Callable[[Shared, list[Item]], list[Result]],
                   shared: Shared, items: Sequence[Item]) -> list[Result]:
        """``function(shared, chunk)`` over consecutive chunks of ``items``, one chunk per
        worker, the results joined in the order of ``items``. ``function`` must be a
        module-level function and ``shared`` and the items picklable; an exception it
        raises in a worker is raised here, of the same type with the same message."""
        if self.inline(len(items)):
            return function(shared, list(items))
        futures = [self._submit(function, shared, chunk) for chunk in _chunks(items, self.size)]
        results: list[Result] = []
        try:
            for future in futures:
                results.extend(future.result())
        except (CancelledError, BrokenProcessPool) as exc:
            raise PoolUnavailable(f"process pool stopped during a batch of {len(items)} "
                                  f"item(s): {type(exc).__name__}") from exc
        finally:
            for future in futures:
                future.cancel()  # after a failure the rest is not wanted
        return results

    def _submit(self, function: Callable[[Shared, list[Item]], list[Result]],
                shared: Shared, chunk: list[Item]) -> Future[list[Result]]:
        with self._lock:
            if self._closed:
                raise PoolUnavailable("process pool is shut down")
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.size, mp_context=multiprocessing.get_context(self._start_method))
            return self._executor.submit(function, shared, chunk)

    def pids(self) -> tuple[int, ...]:
        """The worker processes running now (none before the first pooled batch)."""
        with self._lock:
            if self._executor is None:
                return ()
            # the executor keeps no public list of its workers
            return tuple(self._executor._processes or ())

    def shutdown(self, fast: bool = False) -> None:
        """Stop the workers: wait for batches under way, or (``fast``) cancel those not
        started and return at once. Later batches raise PoolUnavailable."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=not fast, cancel_futures=True)


def _chunks(items: Sequence[Item], count: int) -> list[list[Item]]:
    """``items`` in ``count`` consecutive chunks of nearly equal size."""
    size, extra = divmod(len(items), count)
    chunks, start = [], 0
    for number in range(count):
        end = start + size + (1 if number < extra else 0)
        if end > start:
            chunks.append(list(items[start:end]))
        start = end
    return chunks
