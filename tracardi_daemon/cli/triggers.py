"""``tracardi-daemon triggers test``: send what a workflow trigger would send for a
profile, once and at once, to see that its target takes it.

The payload is the one the ``trigger`` role builds for a synthetic transition (``add``,
or ``remove`` for a segment-remove trigger) with a fresh change id, so a receiver that
drops repeated idempotency keys takes every test."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from elasticsearch import Elasticsearch

from tracardi_daemon.cli.common import add_config_option, printable, run_with_backends
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ExitCode, InvalidInput
from tracardi_daemon.infra.dispatch import Attempt, Dispatcher, Target, Timeouts, parse_target
from tracardi_daemon.infra.outbound import OutboundPolicy
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import WorkflowTrigger, machine_name
from tracardi_daemon.model.tracardi_flow import configured_flow_runner
from tracardi_daemon.redact import mask_text
from tracardi_daemon.roles.trigger.role import SegmentChange, delivery_key, trigger_payload


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("triggers", help="try workflow triggers")
    actions = parser.add_subparsers(dest="triggers_command", required=True, metavar="ACTION")
    test = actions.add_parser(
        "test", help="send what a trigger would send for a profile entering (or leaving) "
                     "its segment, once, now")
    test.add_argument("trigger", metavar="TRIGGER", help="the workflow trigger's id")
    test.add_argument("--profile", required=True, metavar="ID", help="the profile's id")
    test.add_argument("--target", metavar="KIND:ADDRESS",
                      help="send here instead of the trigger's own target: "
                           "stream:NAME, webhook:URL, tracker:[URL] or flow:")
    add_config_option(test)
    test.set_defaults(handler=_test)


def _test(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        try:
            trigger = _stored_trigger(DefinitionStore(elastic, settings), args.trigger)
            target = _target(args.target or trigger.dispatch_target(), args.target)
            flows = configured_flow_runner(settings)
        except InvalidInput as exc:
            print(f"error: {mask_text(str(exc))}", file=sys.stderr)
            return int(ExitCode.USAGE)
        change = synthetic_change(trigger, args.profile)
        key = delivery_key(trigger, change)
        dispatcher = Dispatcher(redis, settings.tracardi.tenant,
                                tracker_api_url=settings.tracardi.api_url,
                                timeouts=Timeouts.from_settings(settings.dispatch),
                                outbound=OutboundPolicy(settings.outbound),
                                flow_runner=flows.run if flows else None)
        try:
            result = dispatcher.attempt(target, trigger_payload(trigger, change, str(target)),
                                        key)
        finally:
            dispatcher.close()
            if flows is not None:
                flows.close()
        if not trigger.enabled:
            print(f"note: trigger {trigger.id} is disabled; the trigger role does not fire it")
        print(printable(_outcome(trigger, target, key, result)),
              file=sys.stdout if result.ok else sys.stderr)
        return int(ExitCode.OK) if result.ok else int(ExitCode.FAILURE)

    return run_with_backends(args, env, action)


def _stored_trigger(store: DefinitionStore, trigger_id: str) -> WorkflowTrigger:
    trigger = store.get(WorkflowTrigger, trigger_id)
    if trigger is None:
        raise InvalidInput(f"no workflow trigger {trigger_id!r}")
    return trigger


def _target(spec: str, option: str | None) -> Target:
    try:
        return parse_target(spec)
    except InvalidInput as exc:
        raise InvalidInput(f"--target: {exc}" if option else f"the trigger's {exc}") from None


def synthetic_change(trigger: WorkflowTrigger, profile_id: str) -> SegmentChange:
    """The transition that fires ``trigger`` for ``profile_id``, now, with a new id."""
    return SegmentChange(
        id=f"test-{uuid.uuid4().hex}", profile_id=profile_id,
        segment=machine_name(trigger.segment.name) or trigger.segment.id,
        segment_id=trigger.segment.id,
        change="remove" if trigger.type == "segment-remove" else "add",
        at=datetime.now(UTC).isoformat(timespec="milliseconds"), cause="triggers test")


def _outcome(trigger: WorkflowTrigger, target: Target, key: str, result: Attempt) -> str:
    shown = mask_text(str(target))
    status = f" (HTTP {result.status})" if result.status is not None else ""
    if result.ok:
        return f"sent: trigger {trigger.id} to {shown}{status}, idempotency key {key}"
    return f"failed: trigger {trigger.id} to {shown}{status}: {result.error}"
