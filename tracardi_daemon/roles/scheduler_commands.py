"""``tracardi-daemon schedule`` and ``scheduled list|cancel``: produce and inspect
delayed jobs from the command line."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis import Redis

from tracardi_daemon.commands_common import add_config_option, run_with_redis
from tracardi_daemon.errors import ExitCode, InvalidInput
from tracardi_daemon.infra.delayed import DelayedStore, Job
from tracardi_daemon.scheduler_client import due_ms_for
from tracardi_daemon.settings import Settings

USAGE_ERROR = 2  # bad payload, target or duration: the caller's input, like argparse's
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
SchedulerCommand = Callable[[DelayedStore, argparse.Namespace], int]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("schedule", help="schedule a delayed (or recurring) job")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--in", dest="delay", metavar="DURATION",
                      help="fire after this long: 500ms, 30s, 10m, 2h, 1d")
    when.add_argument("--at", metavar="ISO-8601", help="fire at this time, e.g. "
                      "2030-01-01T09:00:00+00:00 (no offset means UTC)")
    parser.add_argument("--target", required=True,
                        help="stream:NAME, webhook:URL or tracker:[URL]")
    parser.add_argument("--payload", required=True, metavar="FILE",
                        help="JSON object file ('-' reads standard input)")
    parser.add_argument("--every", metavar="DURATION", help="repeat at this interval")
    parser.set_defaults(scheduler_command=schedule_command)

    scheduled = sub.add_parser("scheduled", help="list or cancel delayed jobs")
    actions = scheduled.add_subparsers(dest="scheduled_command", required=True,
                                       metavar="ACTION")
    listing = actions.add_parser("list", help="show the next jobs by due time")
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(scheduler_command=list_command)
    cancelling = actions.add_parser("cancel", help="cancel a job by id")
    cancelling.add_argument("id", help="the job id printed by schedule")
    cancelling.set_defaults(scheduler_command=cancel_command)

    for command in (parser, listing, cancelling):
        add_config_option(command)
        command.set_defaults(handler=handler)


def handler(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Build the Redis client and store from the settings and run the chosen command."""
    command: SchedulerCommand = args.scheduler_command

    def run(client: Redis[Any], settings: Settings) -> int:
        try:
            return command(DelayedStore(client, settings.tracardi.tenant), args)
        except InvalidInput as exc:  # bad input is a usage error here, not a failure
            print(f"error: {exc}", file=sys.stderr)
            return USAGE_ERROR

    return run_with_redis(args, env, run)


def schedule_command(store: DelayedStore, args: argparse.Namespace) -> int:
    every_s = None if args.every is None else parse_duration("--every", args.every)
    if args.delay is not None:
        due_ms = due_ms_for(delay_s=parse_duration("--in", args.delay))
    else:
        due_ms = due_ms_for(at=parse_at(args.at))
    job = Job(target=args.target, payload=read_payload(args.payload), due_ms=due_ms,
              interval_s=every_s)
    print(store.schedule(job))
    return int(ExitCode.OK)


def list_command(store: DelayedStore, args: argparse.Namespace) -> int:
    jobs = store.list(args.limit)
    now_ms = time.time() * 1000
    for job in jobs:
        if args.json:
            print(job.to_json())
            continue
        every = f"  every={job.interval_s:g}s" if job.interval_s else ""
        print(f"{job.id}  due={_iso(job.due_ms)} (in {(job.due_ms - now_ms) / 1000:.1f}s)"
              f"  target={job.target}{every}")
    if not args.json:
        print(f"{len(jobs)} delayed job(s) shown")
    return int(ExitCode.OK)


def cancel_command(store: DelayedStore, args: argparse.Namespace) -> int:
    if not store.cancel(args.id):
        print(f"no delayed job {args.id}", file=sys.stderr)
        return int(ExitCode.FAILURE)
    print(f"cancelled {args.id}")
    return int(ExitCode.OK)


def parse_duration(option: str, value: str) -> float:
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise InvalidInput(f"{option}: {value!r} is not a duration like 500ms, 30s, 10m, "
                           "2h or 1d")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    if option == "--every" and seconds <= 0:
        raise InvalidInput(f"{option}: {value!r} must be longer than zero")
    return seconds


def parse_at(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"--at: {value!r} is not an ISO-8601 time such as "
                           "2030-01-01T09:00:00+00:00") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def read_payload(path: str) -> dict[str, Any]:
    try:
        raw = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"--payload: cannot read {path}: {exc.strerror}") from None
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--payload: {path} is not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise InvalidInput(f"--payload: {path} must hold a JSON object, not "
                           f"{type(payload).__name__}")
    return payload


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
