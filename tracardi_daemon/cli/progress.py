"""What the CLI shows of a long job: one status line, and following it to the end, with a
tqdm progress bar on a terminal."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime
from typing import Protocol, TextIO

from tqdm import tqdm

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore

# without a terminal (a log file, a pipe) a line at most this often, plus the last one
PLAIN_EVERY_S = 5.0
_ERROR_CHARS = 120
# the bar counts done + failed, every item the job has dealt with; the status comes
# first, so that a narrow terminal cuts the ETA rather than the status
_BAR_WITH_TOTAL = "{desc}: {percentage:3.0f}%|{bar}| {n:,}/{total:,}{postfix}"
_BAR_OPEN_ENDED = "{desc}: {n:,} processed{postfix}"


def render(record: TaskRecord) -> str:
    """One plain line for status listings and logs, e.g. ``31%  62,000/200,000 done
    12 failed  8,400/s  ETA 16s  owner upgrade-0:1f2e since 2026-12-07 10:00:00Z
    running``; without a known total a count and a rate."""
    percent = record.percent
    if percent is None or record.total is None:
        counted = f"{record.done:,} done"
    else:
        # floored, so that 100% means all done
        counted = f"{int(percent)}%  {record.done:,}/{record.total:,} done"
    error = _error(record)
    return "  ".join([counted, *_details(record), *_ownership(record), _state(record),
                      *([error] if error else [])])


def _details(record: TaskRecord) -> list[str]:
    """What follows the count, in the status line and the bar alike: failures, and the
    speed while running or the duration once ended."""
    parts = [f"{record.failed:,} failed"]
    if not record.terminal:
        if record.rate is not None:
            parts.append(f"{_rate(record.rate)}/s")
        if record.eta_s is not None:
            parts.append(f"ETA {_duration(record.eta_s)}")
    elif record.started_at is not None and record.finished_at is not None:
        parts.append(f"took {_duration(record.finished_at - record.started_at)}")
    return parts


def _state(record: TaskRecord) -> str:
    if record.cancel_requested and not record.terminal:
        return f"{record.status}  (cancel requested)"
    return record.status


def _ownership(record: TaskRecord) -> list[str]:
    """Who runs a running task and since when (a takeover shows as a new owner)."""
    if record.status != "running" or not record.owner or record.owned_since is None:
        return []
    since = datetime.fromtimestamp(record.owned_since, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return [f"owner {record.owner} since {since}"]


def _error(record: TaskRecord) -> str | None:
    """The error of a failed task, on one line and cut short."""
    if record.status != "failed" or not record.last_error:
        return None
    error = " ".join(record.last_error.split())
    return f"error: {error[:_ERROR_CHARS]}{'...' if len(error) > _ERROR_CHARS else ''}"


def _rate(per_s: float) -> str:
    return f"{per_s:,.0f}" if per_s >= 100 else f"{per_s:.1f}"


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


class _Display(Protocol):
    def show(self, record: TaskRecord, *, last: bool) -> None: ...

    def close(self) -> None: ...


class _PlainLines:
    """Without a terminal: a rendered line at most every PLAIN_EVERY_S, and the last."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._written_at: float | None = None

    def show(self, record: TaskRecord, *, last: bool) -> None:
        now = time.monotonic()
        if last or self._written_at is None or now - self._written_at >= PLAIN_EVERY_S:
            self._out.write(render(record) + "\n")
            self._out.flush()
            self._written_at = now

    def close(self) -> None:
        pass


class _ProgressBar:
    """On a terminal: a tqdm bar redrawn from each record. The rate and ETA are the
    task's own (smoothed by the store), not tqdm's, which only sees this follower. A
    failed task's error goes on a line of its own, where it does not squeeze the bar."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._bar: tqdm | None = None
        self._error: str | None = None

    def show(self, record: TaskRecord, *, last: bool) -> None:
        total = record.total or None  # a total of 0 has nothing to draw
        bar_format = _BAR_OPEN_ENDED if total is None else _BAR_WITH_TOTAL
        processed = record.done + record.failed
        postfix = ", ".join(_details(record))
        self._error = _error(record)
        if self._bar is None:
            # made at the first record, so that its first drawing is already the job's
            self._bar = tqdm(
                total=total,
                initial=processed,
                bar_format=bar_format,
                desc=_state(record),
                postfix=postfix,
                file=self._out,
                dynamic_ncols=True,
                leave=True,
            )
            return
        # the total may become known later, and the count is set, not added to
        bar = self._bar
        bar.total, bar.bar_format, bar.n = total, bar_format, processed
        bar.set_description_str(_state(record), refresh=False)
        bar.set_postfix_str(postfix, refresh=False)
        bar.refresh()

    def close(self) -> None:
        if self._bar is None:
            return
        # draws the last state once more and ends the line
        self._bar.close()
        if self._error:
            self._out.write(self._error + "\n")
            self._out.flush()


def follow(
    store: TaskStore,
    task_id: str,
    out: TextIO,
    *,
    interval_s: float = 0.5,
    stop: threading.Event | None = None,
    tty: bool | None = None,
) -> TaskRecord:
    """Show the task until it is terminal (or ``stop`` is set) and return its last
    record. On a terminal a tqdm bar; elsewhere a line at most every PLAIN_EVERY_S
    seconds, and always the last one."""
    stop = stop or threading.Event()
    in_place = out.isatty() if tty is None else tty
    display: _Display = _ProgressBar(out) if in_place else _PlainLines(out)
    with contextlib.closing(display):
        while True:
            record = store.get(task_id)
            if record is None:
                raise InvalidInput(f"task {task_id!r} not found (unknown, or expired)")
            last = record.terminal or stop.is_set()
            display.show(record, last=last)
            if last:
                return record
            stop.wait(interval_s)
