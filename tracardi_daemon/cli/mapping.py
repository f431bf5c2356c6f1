"""``tracardi-daemon mapping run|status|cancel``: batch mapping jobs from the command
line (Tracardi's "Run in background"), and their progress."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict

from elasticsearch import Elasticsearch

from tracardi_daemon.cli.common import add_config_option, printable, run_with_backends
from tracardi_daemon.cli.definitions import load_definitions_file
from tracardi_daemon.cli.progress import follow
from tracardi_daemon.cli.tasks import cancel_task, show_tasks
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import BackendError, ExitCode, InvalidInput
from tracardi_daemon.infra.queues import MAPPING_QUEUE, work_queue
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.infra.scan import count
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Definition, EventToProfile, EventTypeMapping
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.redact import mask_json
from tracardi_daemon.roles.mapping.jobs import TASK_TYPE, JobSpec, submit, validate_spec


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("mapping", help="run batch mapping jobs and follow them")
    actions = parser.add_subparsers(dest="mapping_command", required=True, metavar="ACTION")

    run = actions.add_parser(
        "run", help="apply mapping definitions to stored events, as a background job")
    chosen = run.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--definition", action="append", metavar="ID",
                        help="an event-to-profile or event-type definition's id "
                             "(repeatable)")
    chosen.add_argument("--mappings", metavar="FILE",
                        help="a TOML or JSON file of event-to-profile / event-type "
                             "definitions to apply (not stored)")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--query", help="Lucene query over events, e.g. 'properties.plan:pro'")
    which.add_argument("--where", help="TQL condition over events, e.g. "
                                       "'event@properties.plan == \"pro\"'")
    run.add_argument("--from", dest="insert_from", metavar="TIME",
                     help="only events inserted at or after this ISO 8601 time")
    run.add_argument("--to", dest="insert_to", metavar="TIME",
                     help="only events inserted at or before this time (default: now)")
    run.add_argument("--dry-run", action="store_true",
                     help="count and show a sample of changes; write nothing")
    run.add_argument("--follow", action="store_true", help="show progress until done")
    add_config_option(run)
    run.set_defaults(handler=_run)

    status = actions.add_parser("status", help="one job's progress, or all mapping jobs")
    status.add_argument("task", nargs="?")
    status.add_argument("--follow", action="store_true", help="show progress until done")
    status.add_argument("--json", action="store_true", help="print the task record as JSON")
    add_config_option(status)
    status.set_defaults(handler=_status)

    cancel = actions.add_parser("cancel", help="stop a job after its current batch")
    cancel.add_argument("task")
    add_config_option(cancel)
    cancel.set_defaults(handler=cancel_task)


def _file_definitions(path: str) -> tuple[Definition, ...]:
    found = tuple(d for d in load_definitions_file(path)
                  if isinstance(d, EventToProfile | EventTypeMapping))
    if not found:
        raise InvalidInput(f"{path}: holds no event-to-profile or event-type definition")
    return found


def _stored_definitions(store: DefinitionStore, ids: list[str]) -> tuple[Definition, ...]:
    found: list[Definition] = []
    for definition_id in ids:
        match = [d for kind in (EventToProfile, EventTypeMapping)
                 if (d := store.get(kind, definition_id)) is not None]
        if not match:
            raise InvalidInput(f"--definition {definition_id!r}: no event-to-profile or "
                               "event-type definition has this id")
        found.extend(match)
    return tuple(found)


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    inline: tuple[Definition, ...] = ()
    if args.mappings:
        try:
            inline = _file_definitions(args.mappings)
        except InvalidInput as exc:
            print(f"error: {exc}", file=sys.stderr)
            return int(ExitCode.USAGE)

    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        try:
            definitions = inline or _stored_definitions(DefinitionStore(elastic, settings),
                                                        args.definition)
            spec = JobSpec(definitions, args.query, args.where, args.insert_from,
                           args.insert_to, args.dry_run)
            validate_spec(spec)
            selected = _count(elastic, settings, spec)
        except InvalidInput as exc:
            print(f"error: {exc}", file=sys.stderr)
            return int(ExitCode.USAGE)
        tasks = TaskStore(redis, elastic, settings)
        name = "Mapping " + ", ".join(d.name for d in definitions)
        record = submit(tasks, work_queue(redis, settings.tracardi.tenant, MAPPING_QUEUE, settings),
                        spec, name[:120] + (" (dry run)" if args.dry_run else ""))
        print(f"{selected:,} event(s) selected; queued mapping job {record.id}"
              f"{' (dry run)' if args.dry_run else ''}; "
              f"follow it with: tracardi-daemon mapping status {record.id} --follow")
        if args.follow:
            return _show_final(follow(tasks, record.id, sys.stdout))
        return int(ExitCode.OK)

    return run_with_backends(args, env, action)


def _status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.json and args.task is not None:
        return _status_json(args, env)
    return show_tasks(args, env, task_type=TASK_TYPE, none="no mapping jobs",
                      final=_show_final)


def _status_json(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        record = TaskStore(redis, elastic, settings).get(args.task)
        if record is None:
            print(f"no task {args.task!r}", file=sys.stderr)
            return int(ExitCode.FAILURE)
        print(json.dumps(mask_json(_plain(record)), indent=2, ensure_ascii=False))
        return int(ExitCode.OK)

    return run_with_backends(args, env, action)


def _count(elastic: Elasticsearch, settings: Settings, spec: JobSpec) -> int:
    """The events the job selects now; a query Elasticsearch refuses is the user's
    error, reported before anything is queued."""
    query = spec.query_body(spec.rules().event_types)
    try:
        return count(elastic, alias_name(settings.tracardi, "event"), query)
    except BackendError as exc:
        raise InvalidInput(f"the query is refused: {exc}") from exc


def _show_final(record: TaskRecord) -> int:
    if record.last_error:
        print(f"last error: {printable(record.last_error)}")
    for sample in (record.checkpoint or {}).get("samples", []):
        print(f"  profile {sample['profile_id']} ({sample['index']}):")
        for path, change in sample["changes"].items():
            print(f"    {path}: {json.dumps(change['before'])} -> "
                  f"{json.dumps(change['after'])}")
    if record.failed:
        print(f"{record.failed} event(s) failed: tracardi-daemon dead list {MAPPING_QUEUE}")
    return int(ExitCode.OK) if record.status == "finished" else int(ExitCode.FAILURE)


def _plain(record: TaskRecord) -> dict[str, object]:
    return asdict(record)
