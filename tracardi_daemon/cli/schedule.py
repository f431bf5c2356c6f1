"""``tracardi-daemon schedule`` and ``scheduled list|cancel``: produce and inspect
delayed jobs from the command line.

Every bad input (duration, time, target, payload file) exits 2 with a message naming the
option; listings mask the credentials of webhook URLs."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tracardi_daemon.cli.common import (
    add_config_option,
    positive_int,
    printable,
    run_with_redis,
)
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ExitCode, InvalidInput
from tracardi_daemon.infra.delayed import DelayedStore, Job
from tracardi_daemon.infra.dispatch_targets import parse_target
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.redact import mask_json, mask_text
from tracardi_daemon.roles.scheduler.client import due_ms_for
from tracardi_daemon.roles.scheduler.limits import (
    JobLimits,
    check_due,
    check_interval,
    check_payload,
)

# a sign is accepted here so that "-5s" gets a clear "must be positive", not a parse error
_DURATION = re.compile(r"([+-]?)(\d+(?:\.\d+)?)(ms|s|m|h|d)?", re.ASCII)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# argparse takes "-5s" for an unknown option unless it looks like a negative number
_SIGNED_VALUE = re.compile(r"^-\.?\d")
_SHOWN_CHARS = 40  # of a bad value, in an error message
SchedulerCommand = Callable[[DelayedStore, argparse.Namespace, JobLimits], int]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _add_schedule_parser(sub)
    scheduled = sub.add_parser("scheduled", help="list or cancel delayed jobs")
    actions = scheduled.add_subparsers(dest="scheduled_command", required=True,
                                       metavar="ACTION")
    listing = actions.add_parser("list", help="show the next jobs by due time")
    listing.add_argument("--limit", type=positive_int, default=20,
                         help="how many (default 20)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(scheduler_command=list_command)
    cancelling = actions.add_parser("cancel", help="cancel a job by id")
    cancelling.add_argument("id", help="the job id printed by schedule")
    cancelling.set_defaults(scheduler_command=cancel_command)

    for command in (parser, listing, cancelling):
        add_config_option(command)
        command.set_defaults(handler=handler)


def _add_schedule_parser(
        sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = sub.add_parser("schedule", help="schedule a delayed (or recurring) job")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--in", dest="delay", metavar="DURATION",
                      help="fire after this long: 500ms, 30s, 10m, 2h, 1d")
    when.add_argument("--at", metavar="ISO-8601", help="fire at this time, e.g. "
                      "2030-01-01T09:00:00+00:00 (no offset means UTC)")
    parser.add_argument("--now-if-past", action="store_true",
                        help="with --at: fire at once if the time has passed (else refused)")
    parser.add_argument("--target", required=True,
                        help="stream:NAME, webhook:URL or tracker:[URL]")
    parser.add_argument("--payload", required=True, metavar="FILE",
                        help="JSON object file ('-' reads standard input)")
    parser.add_argument("--every", metavar="DURATION", help="repeat at this interval")
    parser.set_defaults(scheduler_command=schedule_command)
    # set after the options are added: argparse disables the matcher if an option
    # string matches it, and none of ours starts with "-<digit>"
    parser._negative_number_matcher = _SIGNED_VALUE  # no public hook for this
    return parser


def handler(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Build the Redis client and store from the settings and run the chosen command."""
    command: SchedulerCommand = args.scheduler_command

    def run(client: RedisClient, settings: Settings) -> int:
        limits = JobLimits.from_settings(settings.scheduler)
        try:
            return command(DelayedStore(client, settings.tracardi.tenant), args, limits)
        except InvalidInput as exc:  # bad input is a usage error here, not a failure
            print(f"error: {mask_text(str(exc))}", file=sys.stderr)
            return int(ExitCode.USAGE)

    return run_with_redis(args, env, run)


def schedule_command(store: DelayedStore, args: argparse.Namespace, limits: JobLimits) -> int:
    print(store.schedule(job_from_args(args, limits, time.time() * 1000)))
    return int(ExitCode.OK)


def job_from_args(args: argparse.Namespace, limits: JobLimits, now_ms: float) -> Job:
    """The job the ``schedule`` options describe; InvalidInput names the bad option."""
    every_s = None if args.every is None else interval_from("--every", args.every, limits)
    if args.delay is not None:
        due_ms = due_in("--in", args.delay, now_ms, limits)
    else:
        due_ms = due_at("--at", args.at, now_ms, limits, now_if_past=args.now_if_past)
    _check_target(args.target)
    return Job(target=args.target, payload=read_payload("--payload", args.payload, limits),
               due_ms=due_ms, interval_s=every_s)


def list_command(store: DelayedStore, args: argparse.Namespace, limits: JobLimits) -> int:
    jobs = store.list(args.limit)
    now_ms = int(time.time() * 1000)
    for job in jobs:
        shown = replace(job, target=mask_text(job.target), payload=mask_json(job.payload))
        print(shown.to_json() if args.json else printable(_one_line(shown, now_ms)))
    if not args.json:
        print(f"{len(jobs)} delayed job(s) shown")
    return int(ExitCode.OK)


def cancel_command(store: DelayedStore, args: argparse.Namespace, limits: JobLimits) -> int:
    if not store.cancel(args.id):
        print(f"no delayed job {_shown(args.id)}", file=sys.stderr)
        return int(ExitCode.FAILURE)
    print(f"cancelled {args.id}")
    return int(ExitCode.OK)


def parse_duration(option: str, value: str) -> float:
    """Seconds in ``value`` (500ms, 30s, 10m, 2h, 1d; a bare number is seconds), which
    may be negative or zero; InvalidInput naming ``option`` if it is no duration."""
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise InvalidInput(f"{option}: {_shown(value)} is not a duration like 500ms, 30s, "
                           "10m, 2h or 1d")
    seconds = float(match.group(2)) * _UNIT_S[match.group(3) or "s"]
    if not math.isfinite(seconds):  # hundreds of digits
        raise InvalidInput(f"{option}: {_shown(value)} is too long a duration")
    return -seconds if match.group(1) == "-" else seconds


def interval_from(option: str, value: str, limits: JobLimits) -> float:
    seconds = parse_duration(option, value)
    try:
        check_interval(seconds, limits)
    except InvalidInput as exc:
        raise InvalidInput(f"{option}: {_shown(value)}: {_detail(exc)}") from None
    return seconds


def due_in(option: str, value: str, now_ms: float, limits: JobLimits) -> int:
    """The due time ``value`` from now; it must be positive and within the limits."""
    seconds = parse_duration(option, value)
    if seconds <= 0:
        raise InvalidInput(f"{option}: {_shown(value)} must be positive (a delay from now)")
    return _checked_due(option, value, due_ms_for(delay_s=seconds, now_s=now_ms / 1000),
                        now_ms, limits)


def due_at(option: str, value: str, now_ms: float, limits: JobLimits, *,
           now_if_past: bool) -> int:
    """The due time of an ISO-8601 ``value`` (no offset = UTC). A past time is refused
    unless ``now_if_past``, which makes it due now."""
    at = parse_at(value)
    try:
        due_ms = due_ms_for(at=at)
    except InvalidInput as exc:
        raise InvalidInput(f"{option}: {_shown(value)}: {_detail(exc)}") from None
    if due_ms < now_ms:
        if not now_if_past:
            raise InvalidInput(f"{option}: {_shown(value)} is in the past; add --now-if-past "
                               "to fire it at once")
        due_ms = int(now_ms)
    return _checked_due(option, value, due_ms, now_ms, limits)


def _checked_due(option: str, value: str, due_ms: int, now_ms: float,
                 limits: JobLimits) -> int:
    try:
        check_due(due_ms, now_ms, limits)
    except InvalidInput as exc:
        raise InvalidInput(f"{option}: {_shown(value)}: {_detail(exc)}") from None
    return due_ms


def parse_at(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"--at: {_shown(value)} is not an ISO-8601 time such as "
                           "2030-01-01T09:00:00+00:00") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def read_payload(option: str, path: str, limits: JobLimits) -> dict[str, Any]:
    """The JSON object in file ``path`` ('-' = standard input), within the payload
    limits; InvalidInput naming ``option`` and the file otherwise."""
    name = "standard input" if path == "-" else path
    data = _read_bounded(option, path, name, limits.max_payload_bytes)
    try:
        payload = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{option}: {name} is not UTF-8 text "
                           f"(bad byte at offset {exc.start})") from None
    except RecursionError:  # the decoder's own limit, far above max_payload_depth
        raise InvalidInput(f"{option}: {name} nests deeper than {limits.max_payload_depth} "
                           "levels (scheduler.max_payload_depth)") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of over 4300 digits
        raise InvalidInput(f"{option}: {name} is not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise InvalidInput(f"{option}: {name} must hold a JSON object, not "
                           f"{type(payload).__name__}")
    try:
        check_payload(payload, limits)
    except InvalidInput as exc:
        raise InvalidInput(f"{option}: {name}: {_detail(exc)}") from None
    return payload


def _read_bounded(option: str, path: str, name: str, max_bytes: int) -> bytes:
    """The file's bytes; one larger than ``max_bytes`` is refused by its size before it
    is read, a stream (stdin, a FIFO, /dev/zero) after ``max_bytes + 1`` bytes."""
    try:
        if path == "-":
            stdin = getattr(sys.stdin, "buffer", None)  # None when stdin is closed
            if stdin is None:
                raise InvalidInput(f"{option}: there is no standard input to read")
            data: bytes = stdin.read(max_bytes + 1)
        else:
            with open(path, "rb") as handle:
                _refuse_larger(option, name, os.fstat(handle.fileno()).st_size, max_bytes)
                data = handle.read(max_bytes + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InvalidInput(f"{option}: cannot read {name}: {reason}") from None
    _refuse_larger(option, name, len(data), max_bytes)
    return data


def _refuse_larger(option: str, name: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise InvalidInput(f"{option}: {name} is larger than {max_bytes} bytes "
                           "(scheduler.max_payload_bytes)")


def _check_target(spec: str) -> None:
    try:
        parse_target(spec)
    except InvalidInput as exc:
        raise InvalidInput(f"--target: {exc}") from None
    except ValueError as exc:  # urlsplit on a malformed URL, e.g. an unclosed "["
        raise InvalidInput(f"--target: {_shown(spec)} is not a valid target ({exc})") from None


def _one_line(job: Job, now_ms: int) -> str:
    every = f"  every={_seconds_text(job.interval_s)}" if job.interval_s else ""
    return f"{job.id}  due={_due_text(job.due_ms, now_ms)}  target={job.target}{every}"


def _seconds_text(seconds: float | None) -> str:
    try:
        return f"{float(seconds or 0):g}s"
    except (TypeError, ValueError, OverflowError):  # stored by another producer
        return repr(seconds)


def _due_text(due_ms: int, now_ms: int) -> str:
    """ISO time and distance from now; a stored time beyond what datetime can show
    (a job written by another producer) is shown as its milliseconds."""
    try:
        at = datetime.fromtimestamp(due_ms / 1000, UTC).isoformat(timespec="milliseconds")
        return f"{at} (in {(due_ms - now_ms) / 1000:.1f}s)"
    except (OverflowError, ValueError, OSError):
        return f"{due_ms} ms since 1970 (out of range)"


def _shown(value: str) -> str:
    """A bad value for an error message: masked (before cutting, which could split a
    credential from its '@'), cut if long, quoted."""
    value = mask_text(value)
    if len(value) > _SHOWN_CHARS:
        value = value[:_SHOWN_CHARS] + "..."
    return repr(value)


def _detail(exc: InvalidInput) -> str:
    """The message of a check that named its own field (``due_ms: ...``), without it."""
    return str(exc).partition(": ")[2] or str(exc)

