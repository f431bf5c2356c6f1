"""What the CLI shows of a long job: one progress line, and following it to the end."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.tasks import TaskRecord, TaskStore

# without a terminal (a log file, a pipe) a line at most this often, plus the last one
PLAIN_EVERY_S = 5.0
_ERROR_CHARS = 120


def render(record: TaskRecord, width: int = 30) -> str:
    """One line, e.g. ``[#########.....................]  31%  62,000/200,000 done
    12 failed  8,400/s  ETA 16s  running``; without a known total a count and a rate."""
    parts = []
    percent = record.percent
    if percent is None or record.total is None:
        parts.append(f"{record.done:,} done")
    else:
        filled = min(width, int(percent * width / 100))
        # floored, so that 100% means all done
        parts.append(f"[{'#' * filled}{'.' * (width - filled)}] {int(percent):3d}%")
        parts.append(f"{record.done:,}/{record.total:,} done")
    parts.append(f"{record.failed:,} failed")
    if not record.terminal:
        if record.rate is not None:
            parts.append(f"{_rate(record.rate)}/s")
        if record.eta_s is not None:
            parts.append(f"ETA {_duration(record.eta_s)}")
    elif record.started_at is not None and record.finished_at is not None:
        parts.append(f"took {_duration(record.finished_at - record.started_at)}")
    parts.append(record.status)
    if record.cancel_requested and not record.terminal:
        parts.append("(cancel requested)")
    if record.status == "failed" and record.last_error:
        error = " ".join(record.last_error.split())
        parts.append(f"error: {error[:_ERROR_CHARS]}{'...' if len(error) > _ERROR_CHARS else ''}")
    return "  ".join(parts)


def _rate(per_s: float) -> str:
    return f"{per_s:,.0f}" if per_s >= 100 else f"{per_s:.1f}"


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


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
    record. On a terminal one line is rewritten in place; elsewhere a line is written
    at most every PLAIN_EVERY_S seconds, and always the last one."""
    stop = stop or threading.Event()
    in_place = out.isatty() if tty is None else tty
    shown_width = 0
    written_at: float | None = None
    while True:
        record = store.get(task_id)
        if record is None:
            raise InvalidInput(f"task {task_id!r} not found (unknown, or expired)")
        last = record.terminal or stop.is_set()
        line = render(record)
        if in_place:
            # padded, so that a shorter line fully covers the one before
            out.write("\r" + line.ljust(shown_width) + ("\n" if last else ""))
            shown_width = len(line)
        elif last or written_at is None or time.monotonic() - written_at >= PLAIN_EVERY_S:
            out.write(line + "\n")
            written_at = time.monotonic()
        out.flush()
        if last:
            return record
        stop.wait(interval_s)
