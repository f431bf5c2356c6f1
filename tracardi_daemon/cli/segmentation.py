"""``tracardi-daemon segmentation status|run|check|plan``: segments, their passes, and
re-segmenting chosen profiles from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from elasticsearch import Elasticsearch

from tracardi_daemon.cli.common import add_config_option, run_with_backends
from tracardi_daemon.cli.progress import follow
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ExitCode, InvalidInput
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.queues import SEGMENTATION_QUEUE, work_queue
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.infra.scan import count
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import LiveSegment, Segment
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.profiles import ProfileStore
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.segmentation.client import profile_changed
from tracardi_daemon.roles.segmentation.passes import (
    TASK_TYPE,
    PassSpec,
    fitted_spec,
    pass_spec,
    submit_pass,
)
from tracardi_daemon.roles.segmentation.rules import SegmentRules


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("segmentation", help="segments, passes and re-segmenting")
    actions = parser.add_subparsers(dest="segmentation_command", required=True,
                                    metavar="ACTION")
    status = actions.add_parser("status", help="segments, their path, last pass, counts")
    add_config_option(status)
    status.set_defaults(handler=_status)

    run = actions.add_parser("run", help="a pass of a segment or live segment now")
    run.add_argument("segment", help="a segment's or a live segment's id")
    run.add_argument("--dry-run", action="store_true",
                     help="count and show a sample of changes; write nothing")
    run.add_argument("--follow", action="store_true", help="show progress until done")
    add_config_option(run)
    run.set_defaults(handler=_run)

    check = actions.add_parser("check", help="re-evaluate profiles' segments: show what "
                                             "would change and queue them")
    check.add_argument("profile_ids", nargs="+", metavar="PROFILE_ID")
    check.add_argument("--dry-run", action="store_true", help="only show, queue nothing")
    add_config_option(check)
    check.set_defaults(handler=_check)

    plan = actions.add_parser("plan", help="which path a pass of a segment takes, and why")
    plan.add_argument("segment")
    add_config_option(plan)
    plan.set_defaults(handler=_plan)


def _definition(store: DefinitionStore, definition_id: str) -> Segment | LiveSegment:
    found = store.get(Segment, definition_id) or store.get(LiveSegment, definition_id)
    if found is None:
        raise InvalidInput(f"no segment or live segment has the id {definition_id!r}")
    return found


def _spec(elastic: Elasticsearch, settings: Settings, definition_id: str,
          dry_run: bool = False) -> PassSpec:
    store = DefinitionStore(elastic, settings)
    return pass_spec(_definition(store, definition_id), store.list(Segment),
                     now_iso=datetime.now(UTC).isoformat(), dry_run=dry_run)


def _status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        store = DefinitionStore(elastic, settings)
        segments = store.list(Segment)
        passes = TaskStore(redis, elastic, settings).list(TASK_TYPE)
        last: dict[str, TaskRecord] = {}
        for record in passes:  # newest first
            last.setdefault(str(record.params.get("definition")), record)
        alias = alias_name(settings.tracardi, "profile")
        rows = [("SEGMENT", "ID", "ENABLED", "PATH", "PROFILES", "LAST PASS")]
        now = datetime.now(UTC).isoformat()
        definitions: list[Segment | LiveSegment] = [*segments, *store.list(LiveSegment)]
        for definition in definitions:
            key = f"{definition.kind}:{definition.id}"
            try:
                spec = pass_spec(definition, segments, now_iso=now)
            except InvalidInput:
                rows.append((definition.name, key, _yes(definition.enabled), "workflow",
                             "-", _last(last.get(key))))
                continue
            members = count(elastic, alias, {"term": {"segments": spec.segment}})
            path = fitted_spec(spec, elastic, alias).path()[0]
            rows.append((spec.segment, key, _yes(definition.enabled), path,
                         f"{members:,}", _last(last.get(key))))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            print("  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row[:5]))
                  + "  " + row[5])
        return int(ExitCode.OK)

    return run_with_backends(args, env, action)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _last(record: TaskRecord | None) -> str:
    return "never" if record is None else f"{record.status} ({record.id[:8]})"


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        try:
            spec = _spec(elastic, settings, args.segment, args.dry_run)
        except InvalidInput as exc:
            print(f"error: {exc}", file=sys.stderr)
            return int(ExitCode.USAGE)
        tasks = TaskStore(redis, elastic, settings)
        queue = work_queue(redis, settings.tracardi.tenant, SEGMENTATION_QUEUE, settings)
        record = submit_pass(tasks, queue, spec, f"Segmentation pass {spec.definition}"
                             + (" (dry run)" if args.dry_run else ""))
        path = fitted_spec(spec, elastic, alias_name(settings.tracardi, "profile")).path()[0]
        print(f"queued pass {record.id} of {spec.definition} ({path} path)")
        if not args.follow:
            return int(ExitCode.OK)
        final = follow(tasks, record.id, sys.stdout)
        for sample in (final.checkpoint or {}).get("samples", []):
            print(f"  profile {sample['profile_id']}: {sample['before']} -> "
                  f"{sample['after']}")
        return int(ExitCode.OK) if final.status == "finished" else int(ExitCode.FAILURE)

    return run_with_backends(args, env, action)


def _check(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        rules = SegmentRules(DefinitionStore(elastic, settings).list(Segment))
        profiles = ProfileStore(elastic, redis, settings, BulkWriter(elastic))
        loaded = profiles.load_many(args.profile_ids)
        for profile_id in args.profile_ids:
            profile = loaded.get(profile_id)
            if profile is None:
                print(f"{profile_id}: no such profile")
                continue
            decision = rules.decide(profile.source)
            adds = ", ".join(ref.machine_name for ref in decision.add) or "-"
            removes = ", ".join(ref.machine_name for ref in decision.remove) or "-"
            print(f"{profile_id}: add {adds}; remove {removes}")
        if not args.dry_run and loaded:
            profile_changed(redis, settings.tracardi.tenant, list(loaded), source="cli")
            print(f"queued {len(loaded)} profile(s) for the segmentation role")
        return int(ExitCode.OK) if len(loaded) == len(set(args.profile_ids)) \
            else int(ExitCode.FAILURE)

    return run_with_backends(args, env, action)


def _plan(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        try:
            spec = _spec(elastic, settings, args.segment)
        except InvalidInput as exc:
            print(f"error: {exc}", file=sys.stderr)
            return int(ExitCode.USAGE)
        # the path the pass takes over the profile index as it is mapped now
        spec = fitted_spec(spec, elastic, alias_name(settings.tracardi, "profile"))
        path, why = spec.path()
        print(f"{spec.definition}: segment {spec.segment!r}, operation {spec.operation}")
        print(f"path: {path}: {why}")
        for phase in spec.phases():
            print(f"  {phase}: {spec.phase_query(phase)}")
        return int(ExitCode.OK)

    return run_with_backends(args, env, action)
