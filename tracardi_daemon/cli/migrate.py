"""``tracardi-daemon migrate plan|run|detach|status|cancel``: migrations between index
versions, from a shipped plan or a plan file (the daemon's TOML/JSON, or Tracardi's
JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from elasticsearch import Elasticsearch

from tracardi_daemon.cli.common import add_config_option, printable, run_with_backends
from tracardi_daemon.cli.migrate_detach import detach_command
from tracardi_daemon.cli.progress import follow
from tracardi_daemon.cli.tasks import cancel_task, report_end, show_tasks
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ExitCode, InvalidInput
from tracardi_daemon.infra.queues import UPGRADE_QUEUE, work_queue
from tracardi_daemon.infra.redis import RedisClient, text
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.keys import done_key
from tracardi_daemon.roles.upgrade.migration.job import (
    MIGRATION_TASK,
    migration_params,
    plan_key,
    resolve_work,
)
from tracardi_daemon.roles.upgrade.migration.plan import Plan, Step
from tracardi_daemon.roles.upgrade.migration.plan_files import (
    load_plan,
    shipped_plan,
    shipped_plans,
)
from tracardi_daemon.roles.upgrade.migration.targets import target_refusal


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("migrate", help="migrate an installation's indices")
    actions = parser.add_subparsers(dest="migrate_command", required=True, metavar="ACTION")
    for name, handler, summary in (
            ("plan", _plan, "show what a migration would do; change nothing"),
            ("run", _run, "queue a migration for the upgrade role"),
            ("detach", _detach, "before Tracardi's new version is installed: take the old "
                                "version's aliases off its indices")):
        command = actions.add_parser(name, help=summary)
        command.add_argument("--from", dest="from_version", metavar="VERSION",
                             help=f"the source db version; shipped plans start from "
                                  f"{', '.join(_shipped_sources())}")
        command.add_argument("--from-tenant", help="the source tenant (default: "
                                                   "Tracardi's for the version)")
        command.add_argument("--to-tenant", help="the target tenant (default: the plan's, "
                                                 "else the configured tracardi.tenant / "
                                                 "TENANT_NAME, else Tracardi's for the "
                                                 "version)")
        command.add_argument("--plan", metavar="FILE", help="a plan file instead of the "
                                                            "shipped plan")
        add_config_option(command)
        command.set_defaults(handler=handler)
        if name == "detach":
            command.add_argument("--restore", action="store_true",
                                 help="put back what detach took off")
        if name == "run":
            command.add_argument("--follow", action="store_true",
                                 help="show progress until done")
            command.add_argument("--force", action="store_true",
                                 help="run a plan that already finished again")
            command.add_argument("--max-failed-docs", type=int, metavar="N",
                                 help="fail when more documents than this fail "
                                      "(default: no limit)")
    status = actions.add_parser("status", help="one migration's progress, or all")
    status.add_argument("task", nargs="?")
    status.add_argument("--follow", action="store_true", help="show progress until done")
    add_config_option(status)
    status.set_defaults(handler=_status)
    cancel = actions.add_parser("cancel", help="stop a migration after its current batch")
    cancel.add_argument("task")
    add_config_option(cancel)
    cancel.set_defaults(handler=cancel_task)


def _shipped_sources() -> list[str]:
    return sorted({load_plan(shipped_plan(name)).source.version for name in shipped_plans()})


def choose_plan(from_version: str | None, plan_file: str | None,
                from_tenant: str | None) -> Plan:
    """The plan file, else the shipped plan starting from ``from_version``."""
    if plan_file is not None:
        plan = load_plan(Path(plan_file), from_version=from_version)
    else:
        if from_version is None:
            raise InvalidInput("give --from VERSION (or --plan FILE)")
        found = [load_plan(shipped_plan(name)) for name in shipped_plans()]
        matching = [plan for plan in found if plan.source.version == from_version]
        if not matching:
            raise InvalidInput(f"no shipped plan starts from {from_version!r}; shipped plans "
                               f"start from {', '.join(_shipped_sources())}")
        plan = matching[0]
    if from_tenant is not None:
        plan = replace(plan, source=replace(plan.source, tenant=from_tenant))
    return plan


def _load(args: argparse.Namespace) -> Plan | None:
    try:
        plan = choose_plan(args.from_version, args.plan, args.from_tenant)
        if args.to_tenant is not None and plan.target is not None:
            replace(plan.target, tenant=args.to_tenant)  # a bad name is a usage error
        return plan
    except InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def how_copied(step: Step) -> str:
    """How ``migrate plan`` says the daemon copies a step's documents."""
    ways = ([f"worker {step.worker}"] if step.worker else []) + (
        ["painless, interpreted"] if step.painless else [])
    return f"daemon copy ({', then '.join(ways)})" if ways else "daemon copy"


def _plan(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    plan = _load(args)
    if plan is None:
        return int(ExitCode.USAGE)

    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        chosen = plan.for_target_tenant(args.to_tenant, settings)
        target = chosen.target_layout(settings.tracardi)
        key = plan_key(chosen)
        work = resolve_work(elastic, chosen, target)
        done = redis.get(done_key(settings.tracardi.tenant, key))
        print(f"plan {key}: {chosen.source.style} {chosen.source.version}/{chosen.source.tenant} "
              f"-> {target.style} {target.version}/{target.tenant}")
        if done is not None:
            print(f"already done: {printable(text(done))} (migrate run --force repeats it)")
        for step in chosen.steps:
            items = [item for item in work if item.step == step.id]
            path = how_copied(step)
            print(f"\nstep {step.id} ({step.index}{', every partition' if step.multi else ''}"
                  f"): {path}")
            if not items:
                print("  no source index: skipped")
            for item in items:
                print(f"  {item.source} ({item.documents:,} docs) -> {item.target}")
            for transform in step.transforms:
                print(f"  transform: {json.dumps(transform.to_dict())}")
        refusal = target_refusal(elastic, work, {step.id: step for step in chosen.steps},
                                 source=chosen.source, target=target, key=key)
        if refusal is not None and done is None:
            print(f"\nrefused: {refusal}")
        total = sum(item.documents for item in work)
        print(f"\n{len(work)} index(es), {total:,} document(s)")
        return int(ExitCode.OK)

    return run_with_backends(args, env, action)


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    plan = _load(args)
    if plan is None:
        return int(ExitCode.USAGE)

    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        chosen = plan.for_target_tenant(args.to_tenant, settings)
        try:
            params = migration_params(chosen, force=args.force,
                                      max_failed_docs=args.max_failed_docs)
        except InvalidInput as exc:
            print(f"error: {exc}", file=sys.stderr)
            return int(ExitCode.USAGE)
        done = redis.get(done_key(settings.tracardi.tenant, params["key"]))
        if done is not None and not args.force:
            print(f"this plan already ran ({printable(text(done))}); nothing to do "
                  "(--force runs it again)")
            return int(ExitCode.OK)
        tasks = TaskStore(redis, elastic, settings)
        queue = work_queue(redis, settings.tracardi.tenant, UPGRADE_QUEUE, settings)
        record = queue_task(tasks, queue, MIGRATION_TASK,
                            f"Migration from {chosen.source.version}", params)
        print(f"queued migration {record.id}; follow it with: tracardi-daemon migrate "
              f"status {record.id} --follow")
        if not args.follow:
            return int(ExitCode.OK)
        return _final(follow(tasks, record.id, sys.stdout))

    return run_with_backends(args, env, action)


def _detach(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    plan = _load(args)
    if plan is None:
        return int(ExitCode.USAGE)
    return detach_command(args, env, plan)


def _final(record: TaskRecord) -> int:
    return report_end(record, failed_items="document(s)",
                      look_at=f"tracardi-daemon dead list {UPGRADE_QUEUE}")


def _status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    return show_tasks(args, env, task_type=MIGRATION_TASK, none="no migrations",
                      final=_final)
