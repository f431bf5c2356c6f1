"""What the command groups of long jobs (``mapping``, ``migrate``) share: listing and
showing their task records, and cancelling one."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping

from elasticsearch import Elasticsearch

from tracardi_daemon.cli.common import printable, run_with_backends
from tracardi_daemon.cli.progress import follow, render
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ExitCode
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore

# what a command prints after a job ended; returns the exit code
EndReport = Callable[[TaskRecord], int]


def report_end(record: TaskRecord, *, failed_items: str, look_at: str) -> int:
    """After a job ended: its error, how many ``failed_items`` failed and where to
    ``look_at`` them; exit code OK only when it finished."""
    if record.last_error:
        print(f"error: {printable(record.last_error)}", file=sys.stderr)
    if record.failed:
        print(f"{record.failed:,} {failed_items} failed: {look_at}")
    return int(ExitCode.OK) if record.status == "finished" else int(ExitCode.FAILURE)


def show_tasks(args: argparse.Namespace, env: Mapping[str, str], *, task_type: str,
               none: str, final: EndReport) -> int:
    """Every task of ``task_type`` (``args.task`` absent), or one, with ``--follow``."""
    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        tasks = TaskStore(redis, elastic, settings)
        if args.task is None:
            records = tasks.list(task_type)
            if not records:
                print(none)
            for listed in records:
                print(f"{listed.id}  {listed.name}\n    {render(listed)}")
            return int(ExitCode.OK)
        record = tasks.get(args.task)
        if record is None:
            print(f"no task {args.task!r}", file=sys.stderr)
            return int(ExitCode.FAILURE)
        if args.follow:
            return final(follow(tasks, args.task, sys.stdout))
        print(f"{record.id}  {record.name}\n{render(record)}")
        return final(record) if record.terminal else int(ExitCode.OK)

    return run_with_backends(args, env, action)


def cancel_task(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Ask the job ``args.task`` to stop after its current batch."""
    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        if not TaskStore(redis, elastic, settings).request_cancel(args.task):
            print(f"no running task {args.task!r}", file=sys.stderr)
            return int(ExitCode.FAILURE)
        print(f"cancel requested for {args.task}; it stops after its current batch")
        return int(ExitCode.OK)

    return run_with_backends(args, env, action)
