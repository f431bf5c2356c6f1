"""Hierarchical timing wheel (Varghese & Lauck) with a 1 ms tick: O(1) schedule and
cancel, and ``advance`` that jumps straight to the next non-empty slot."""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# where a timer currently lives; a timer in the wheel uses its level number (>= 0)
_READY = -1
_OVERFLOW = -2
_NOWHERE = -3


def wall_clock_ms() -> float:
    return time.time() * 1000.0


class Timer(Generic[T]):
    """A scheduled item; also the handle that ``cancel`` takes."""

    __slots__ = ("_home", "_level", "_slot", "due_ms", "item", "seq", "tick")

    def __init__(self, due_ms: float, item: T, seq: int) -> None:
        self.due_ms = due_ms
        self.item = item
        self.seq = seq
        # a timer fires in the first whole millisecond not earlier than its due time
        self.tick = math.ceil(due_ms)
        self._home: dict[int, Timer[T]] | None = None
        self._level = _NOWHERE
        self._slot = 0

    @property
    def pending(self) -> bool:
        """True while the timer is scheduled and has neither fired nor been cancelled."""
        return self._home is not None

    def __repr__(self) -> str:
        return f"Timer(due_ms={self.due_ms!r}, item={self.item!r})"


class TimingWheel(Generic[T]):
    """Timers by absolute due time in milliseconds.

    Level ``L`` has ``2**slot_bits`` slots of ``2**(slot_bits*L)`` ms each. A timer sits at
    the level of the highest digit in which its tick differs from the wheel's current
    tick, so every occupied slot lies ahead of the current position; reaching a slot of a
    coarser level cascades its timers down. Timers beyond the top level wait in an
    overflow heap. A bitmap per level finds the next occupied slot without ticking.
    Thread-safe: ``schedule``/``cancel`` may run on another thread than ``advance``.
    """

    def __init__(self, start_ms: float | None = None, *, slot_bits: int = 6, levels: int = 6,
                 clock_ms: Callable[[], float] = wall_clock_ms) -> None:
        if slot_bits < 1 or levels < 1:
            raise ValueError("slot_bits and levels must be at least 1")
        self._clock_ms = clock_ms
        self._bits = slot_bits
        self._levels = levels
        self._mask = (1 << slot_bits) - 1
        self._now = math.floor(clock_ms() if start_ms is None else start_ms)
        self._slots: list[list[dict[int, Timer[T]]]] = [
            [{} for _ in range(1 << slot_bits)] for _ in range(levels)]
        self._occupied = [0] * levels
        self._ready: dict[int, Timer[T]] = {}
        self._overflow: dict[int, Timer[T]] = {}
        self._overflow_heap: list[tuple[int, int]] = []
        self._seq = itertools.count()
        self._count = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    @property
    def now_ms(self) -> int:
        """The last millisecond processed; timers due up to it have been returned."""
        return self._now

    def schedule(self, due_ms: float, item: T) -> Timer[T]:
        """Add a timer; one due now or in the past fires on the next ``advance``."""
        with self._lock:
            timer = Timer(due_ms, item, next(self._seq))
            self._place(timer)
            self._count += 1
            return timer

    def cancel(self, timer: Timer[T]) -> bool:
        """Remove a pending timer; False if it already fired or was cancelled."""
        with self._lock:
            home = timer._home
            if home is None:
                return False
            del home[timer.seq]
            if timer._level >= 0 and not home:
                self._occupied[timer._level] &= ~(1 << timer._slot)
            timer._home = None
            self._count -= 1
            return True

    def advance(self, now_ms: float) -> list[Timer[T]]:
        """Move the wheel to ``now_ms`` and return every timer now due, in due order."""
        target = math.floor(now_ms)
        with self._lock:
            fired = self._take_ready()
            while (tick := self._next_event_tick()) is not None and tick <= target:
                self._now = tick
                self._cascade_at(tick)
                fired.extend(self._fire_tick(tick))
            # nothing is due before target, so every timer stays valid where it sits
            self._now = max(self._now, target)
            self._count -= len(fired)
            return fired

    def next_due_ms(self) -> float | None:
        """When ``advance`` may next return something (never later than the earliest
        timer; may be earlier, at a cascade point), or None if the wheel is empty."""
        with self._lock:
            if self._ready:
                return min(timer.due_ms for timer in self._ready.values())
            tick = self._next_event_tick()
            return None if tick is None else float(tick)

    def wait_due(self, stop: threading.Event, max_wait_s: float) -> list[Timer[T]]:
        """Sleep on ``stop`` until timers are due (at most ``max_wait_s``), then return
        them; empty if stopped or nothing came due. The scheduler role calls this per step.

        A timer scheduled from another thread while this waits, due earlier than the
        wait's end, fires late by at most ``max_wait_s``.
        """
        deadline_ms = self._clock_ms() + max_wait_s * 1000.0
        while True:
            now = self._clock_ms()
            due = self.next_due_ms()
            wake_ms = deadline_ms if due is None else min(deadline_ms, due)
            if wake_ms > now and stop.wait((wake_ms - now) / 1000.0):
                return []
            fired = self.advance(self._clock_ms())
            # waking at a cascade point fires nothing yet; wait on within the budget
            if fired or self._clock_ms() >= deadline_ms:
                return fired

    def _place(self, timer: Timer[T]) -> None:
        if timer.tick <= self._now:
            self._put(timer, self._ready, _READY, 0)
            return
        level = ((timer.tick ^ self._now).bit_length() - 1) // self._bits
        if level >= self._levels:
            self._put(timer, self._overflow, _OVERFLOW, 0)
            heapq.heappush(self._overflow_heap, (timer.tick, timer.seq))
            return
        slot = (timer.tick >> (self._bits * level)) & self._mask
        self._put(timer, self._slots[level][slot], level, slot)
        self._occupied[level] |= 1 << slot

    @staticmethod
    def _put(timer: Timer[T], home: dict[int, Timer[T]], level: int, slot: int) -> None:
        home[timer.seq] = timer
        timer._home = home
        timer._level = level
        timer._slot = slot

    def _next_event_tick(self) -> int | None:
        """The first tick after now where a slot starts that holds timers."""
        for level in range(self._levels):
            occupied = self._occupied[level]
            if occupied:
                shift = self._bits * level
                # every occupied slot is ahead of the current digit: the lowest bit wins
                slot = (occupied & -occupied).bit_length() - 1
                rotation_start = (self._now >> (shift + self._bits)) << (shift + self._bits)
                return rotation_start | (slot << shift)
        top = self._overflow_top()
        if top is None:
            return None
        span_bits = self._bits * self._levels
        return (top >> span_bits) << span_bits

    def _overflow_top(self) -> int | None:
        heap = self._overflow_heap
        while heap and heap[0][1] not in self._overflow:
            heapq.heappop(heap)  # cancelled; dropped lazily to keep cancel O(1)
        return heap[0][0] if heap else None

    def _cascade_at(self, tick: int) -> None:
        """Re-place the timers of every coarser slot that starts at ``tick``."""
        span_bits = self._bits * self._levels
        if tick & ((1 << span_bits) - 1) == 0:
            group = tick >> span_bits
            while (top := self._overflow_top()) is not None and top >> span_bits == group:
                _, seq = heapq.heappop(self._overflow_heap)
                self._place(self._overflow.pop(seq))
        for level in range(self._levels - 1, 0, -1):
            shift = self._bits * level
            if tick & ((1 << shift) - 1):
                continue
            slot = (tick >> shift) & self._mask
            if self._occupied[level] & (1 << slot):
                self._occupied[level] &= ~(1 << slot)
                timers = self._slots[level][slot]
                self._slots[level][slot] = {}
                for timer in timers.values():
                    self._place(timer)

    def _fire_tick(self, tick: int) -> list[Timer[T]]:
        slot = tick & self._mask
        due = self._take_ready()
        if self._occupied[0] & (1 << slot):
            self._occupied[0] &= ~(1 << slot)
            due.extend(self._detach(self._slots[0][slot]))
            self._slots[0][slot] = {}
            due.sort(key=lambda timer: (timer.due_ms, timer.seq))
        return due

    def _take_ready(self) -> list[Timer[T]]:
        if not self._ready:
            return []
        ready = sorted(self._detach(self._ready), key=lambda timer: (timer.due_ms, timer.seq))
        self._ready = {}
        return ready

    @staticmethod
    def _detach(home: dict[int, Timer[T]]) -> list[Timer[T]]:
        timers = list(home.values())
        for timer in timers:
            timer._home = None
            timer._level = _NOWHERE
        return timers
