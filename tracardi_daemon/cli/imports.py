"""``tracardi-daemon import run|status|cancel|failures``: imports from an ``import``
definition, run by the ``upgrade`` role."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from elasticsearch import Elasticsearch

from tracardi_daemon.cli.common import add_config_option, printable, run_with_backends
from tracardi_daemon.cli.progress import follow
from tracardi_daemon.cli.tasks import cancel_task, report_end, show_tasks
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ExitCode, InvalidInput
from tracardi_daemon.infra.queues import UPGRADE_QUEUE, work_queue
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.imports.failures import MAX_KEPT, FailureLog
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params, load_spec


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("import", help="import rows from a file, index or database")
    actions = parser.add_subparsers(dest="import_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="queue an import for the upgrade role")
    run.add_argument("definition", help="the id of an import definition")
    run.add_argument("--follow", action="store_true", help="show progress until done")
    run.add_argument("--dry-run", action="store_true",
                     help="read and check every row, report failures, write nothing")
    run.add_argument("--max-failed-rows", type=int, metavar="N",
                     help="fail when more rows than this fail (default: the "
                          "definition's max_failed_rows, else no limit)")
    run.add_argument("--debug", action=argparse.BooleanOptionalAction, default=None,
                     help="a Tracardi resource's test credentials (--debug) or production "
                          "ones (--no-debug); default: production ones in production mode "
                          "(tracardi.production), test ones otherwise, as Tracardi does")
    add_config_option(run)
    run.set_defaults(handler=_run)
    status = actions.add_parser("status", help="one import's progress, or all")
    status.add_argument("task", nargs="?")
    status.add_argument("--follow", action="store_true", help="show progress until done")
    add_config_option(status)
    status.set_defaults(handler=_status)
    cancel = actions.add_parser("cancel", help="stop an import after its current batch")
    cancel.add_argument("task")
    add_config_option(cancel)
    cancel.set_defaults(handler=cancel_task)
    failures = actions.add_parser("failures", help="the rows an import could not import")
    failures.add_argument("task")
    failures.add_argument("--offset", type=int, default=0, help="skip this many")
    failures.add_argument("--limit", type=int, default=100, help="show at most this many")
    failures.add_argument("--json", action="store_true", help="one JSON object per line")
    add_config_option(failures)
    failures.set_defaults(handler=_failures)


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        try:
            params = import_params(args.definition, dry_run=args.dry_run,
                                   max_failed_rows=args.max_failed_rows, debug=args.debug)
            spec = load_spec(DefinitionStore(elastic, settings), args.definition)
        except InvalidInput as exc:
            print(f"error: {exc}", file=sys.stderr)
            return int(ExitCode.USAGE)
        tasks = TaskStore(redis, elastic, settings)
        name = f"{'Dry run of import' if args.dry_run else 'Import'} {spec.name}"
        queue = work_queue(redis, settings.tracardi.tenant, UPGRADE_QUEUE, settings)
        record = queue_task(tasks, queue, IMPORT_TASK, name, params)
        print(f"queued {'dry run' if args.dry_run else 'import'} {record.id} "
              f"({spec.source} -> {spec.target}); follow it with: tracardi-daemon import "
              f"status {record.id} --follow")
        if not args.follow:
            return int(ExitCode.OK)
        return _final(follow(tasks, record.id, sys.stdout))

    return run_with_backends(args, env, action)


def _final(record: TaskRecord) -> int:
    return report_end(record, failed_items="row(s)",
                      look_at=f"tracardi-daemon import failures {record.id}")


def _status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    return show_tasks(args, env, task_type=IMPORT_TASK, none="no imports", final=_final)


def _failures(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.offset < 0 or args.limit < 1:
        print("error: --offset must be 0 or more and --limit 1 or more", file=sys.stderr)
        return int(ExitCode.USAGE)

    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        record = TaskStore(redis, elastic, settings).get(args.task)
        if record is None or record.type != IMPORT_TASK:
            print(f"no import {args.task!r}", file=sys.stderr)
            return int(ExitCode.FAILURE)
        log = FailureLog(redis, settings.tracardi.tenant, record.id)
        rows = log.rows(args.offset, args.limit)
        for failed in rows:
            if args.json:
                print(json.dumps(failed.to_dict(), ensure_ascii=False))
            else:
                column = f"  column {failed.column}" if failed.column else ""
                print(f"row {failed.row}{column}: {printable(failed.reason)}\n"
                      f"    {printable(failed.raw)}")
        if not args.json:
            kept = log.count()
            shown = f"{args.offset + 1}-{args.offset + len(rows)} of " if rows else ""
            note = (f" (the first {MAX_KEPT:,} are kept)"
                    if record.failed > kept >= MAX_KEPT else "")
            print(f"{shown}{record.failed:,} failed row(s){note}")
        return int(ExitCode.OK)

    return run_with_backends(args, env, action)
