"""The timing wheel against a brute-force model: every timer fires exactly once, never
early, in due order; cancelled timers never fire; any advance step, huge jumps too."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from tracardi_daemon.infra.timerwheel import Timer, TimingWheel

# small wheels cascade and overflow often; the default shape is covered as well
shapes = st.sampled_from([(1, 1), (1, 3), (2, 2), (3, 3), (6, 6)])
due_offsets = st.one_of(
    st.integers(-5, 70),
    st.floats(-5.0, 70.0, allow_nan=False),
    st.integers(0, 10**7),
    st.integers(0, 10**13),
)
steps = st.one_of(st.integers(0, 5), st.integers(0, 100), st.floats(0.0, 50.0),
                  st.integers(0, 10**13))


@dataclass
class Schedule:
    offset: float


@dataclass
class Cancel:
    index: int


@dataclass
class Advance:
    step: float


operations = st.lists(st.one_of(
    st.builds(Schedule, due_offsets),
    st.builds(Cancel, st.integers(0, 200)),
    st.builds(Advance, steps),
), max_size=120)


@settings(max_examples=400, deadline=None)
@given(shape=shapes, start=st.one_of(st.integers(0, 1000), st.just(1_700_000_000_123)),
       ops=operations)
def test_wheel_matches_model(shape: tuple[int, int], start: int, ops: list[object]) -> None:
    bits, levels = shape
    wheel: TimingWheel[int] = TimingWheel(start, slot_bits=bits, levels=levels)
    timers: list[Timer[int]] = []
    live: dict[int, float] = {}  # index -> due_ms of timers neither fired nor cancelled
    model_now = start
    clock = float(start)
    fired_at: dict[int, float] = {}
    for op in [*ops, Advance(10**14)]:
        if isinstance(op, Schedule):
            due = clock + op.offset
            timers.append(wheel.schedule(due, len(timers)))
            live[len(timers) - 1] = due
        elif isinstance(op, Cancel) and timers:
            index = op.index % len(timers)
            assert wheel.cancel(timers[index]) == (index in live)
            live.pop(index, None)
        elif isinstance(op, Advance):
            clock += op.step
            model_now = max(model_now, math.floor(clock))
            expected = sorted((due, i) for i, due in live.items() if math.ceil(due) <= model_now)
            got = wheel.advance(clock)
            assert [t.item for t in got] == [i for _, i in expected]
            for timer in got:
                assert timer.due_ms <= clock, "fired before its due time"
                assert timer.item not in fired_at, "fired twice"
                fired_at[timer.item] = clock
                del live[timer.item]
            assert len(wheel) == len(live)
            assert wheel.now_ms == model_now
        # a driver sleeping until next_due never oversleeps a timer, nor wakes for nothing
        next_due = wheel.next_due_ms()
        if live:
            assert next_due is not None
            assert next_due <= max(math.ceil(min(live.values())), model_now)
        else:
            assert next_due is None
    assert not live
    assert wheel.next_due_ms() is None


@settings(max_examples=200, deadline=None)
@given(shape=shapes, dues=st.lists(st.integers(1, 10**9), min_size=1, max_size=40))
def test_next_due_is_never_after_the_earliest_timer(shape: tuple[int, int],
                                                     dues: list[int]) -> None:
    bits, levels = shape
    wheel: TimingWheel[int] = TimingWheel(0, slot_bits=bits, levels=levels)
    for i, due in enumerate(dues):
        wheel.schedule(due, i)
    fired: list[int] = []
    hops = 0
    while (next_due := wheel.next_due_ms()) is not None:
        assert next_due <= min(d for i, d in enumerate(dues) if i not in fired)
        fired.extend(t.item for t in wheel.advance(next_due))
        hops += 1
    # a driver sleeping from one next_due to the next wakes a bounded number of times
    assert hops <= len(dues) * (levels + 1) + 1
    assert sorted(fired) == list(range(len(dues)))


def test_cancel_after_fire_and_twice_returns_false() -> None:
    wheel: TimingWheel[str] = TimingWheel(0)
    first = wheel.schedule(10, "a")
    second = wheel.schedule(20, "b")
    assert wheel.cancel(second) is True
    assert wheel.cancel(second) is False
    assert [t.item for t in wheel.advance(100)] == ["a"]
    assert wheel.cancel(first) is False
    assert not first.pending


def test_within_a_tick_timers_come_in_due_order() -> None:
    wheel: TimingWheel[str] = TimingWheel(0)
    for due, name in [(5.9, "c"), (5.2, "a"), (5.5, "b"), (6.0, "d")]:
        wheel.schedule(due, name)
    assert [t.item for t in wheel.advance(5.99)] == []
    assert [t.item for t in wheel.advance(6)] == ["a", "b", "c", "d"]


def test_wait_due_sleeps_until_the_timer_and_returns_it() -> None:
    now = [1000.0]
    waits: list[float] = []

    class FakeStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            assert timeout is not None
            waits.append(timeout)
            now[0] += timeout * 1000.0
            return False

    wheel: TimingWheel[str] = TimingWheel(clock_ms=lambda: now[0])
    wheel.schedule(1250.0, "job")
    assert [t.item for t in wheel.wait_due(FakeStop(), max_wait_s=1.0)] == ["job"]
    # a cascade point may split the sleep, but it never overshoots the due time
    assert abs(now[0] - 1250.0) < 1e-6
    assert len(waits) <= 3
    waits.clear()
    assert wheel.wait_due(FakeStop(), max_wait_s=1.0) == []
    assert waits == [1.0]


def test_wait_due_returns_nothing_when_stopped() -> None:
    wheel: TimingWheel[str] = TimingWheel()
    wheel.schedule(wheel.now_ms + 60_000, "later")
    stop = threading.Event()
    stop.set()
    assert wheel.wait_due(stop, max_wait_s=5.0) == []
    assert len(wheel) == 1


def test_schedule_and_cancel_from_other_threads() -> None:
    wheel: TimingWheel[int] = TimingWheel(0)
    per_thread = 2000
    cancelled: list[int] = []

    def producer(base: int) -> None:
        handles = [wheel.schedule((base + i) % 5000 + 1, base + i) for i in range(per_thread)]
        # racing the advancing thread: a cancel may come after the fire, never both
        cancelled.extend(h.item for h in handles[::2] if wheel.cancel(h))

    threads = [threading.Thread(target=producer, args=(k * per_thread,)) for k in range(4)]
    fired: list[Timer[int]] = []
    for thread in threads:
        thread.start()
    for step in range(0, 6000, 7):
        fired.extend(wheel.advance(step))
    for thread in threads:
        thread.join()
    fired.extend(wheel.advance(10_000))
    items = [t.item for t in fired]
    assert len(items) == len(set(items))
    assert not set(items) & set(cancelled)
    assert sorted(items + cancelled) == list(range(4 * per_thread))
    assert len(wheel) == 0
