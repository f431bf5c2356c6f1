"""``tracardi-daemon dead list|requeue|purge QUEUE``: look at and act on dead letters.

A listing masks credentials (a webhook target's user info, a token in an error); the
stored dead letter keeps them, so that a requeued one is delivered as it was."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from tracardi_daemon.cli.common import (
    add_config_option,
    positive_int,
    printable,
    run_with_redis,
)
from tracardi_daemon.errors import DaemonError, ExitCode
from tracardi_daemon.infra.deadletters import DeadLetter, DeadLetters
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.redact import mask_json, mask_text

QueueCommand = Callable[[RedisClient, str, argparse.Namespace], int]
_EXCERPT_CHARS = 80
_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}", re.ASCII)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("dead", help="list, requeue or purge a queue's dead letters")
    actions = parser.add_subparsers(dest="dead_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="show the oldest dead letters")
    listing.add_argument("--limit", type=positive_int, default=20,
                         help="how many (default 20)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(queue_command=dead_list)

    requeue = actions.add_parser("requeue", help="put dead letters back on their queue")
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead letter of the queue")
    which.add_argument("--id", dest="ids", action="append", metavar="ID", type=_entry_id,
                       help="a dead letter's id (repeatable)")
    requeue.set_defaults(queue_command=dead_requeue)

    purge = actions.add_parser("purge", help="delete every dead letter of the queue")
    purge.add_argument("--yes", action="store_true", help="really delete them")
    purge.set_defaults(queue_command=dead_purge)

    for action in (listing, requeue, purge):
        action.add_argument("queue", help="queue name, e.g. upgrade or dispatch")
        add_config_option(action)
        action.set_defaults(handler=run_queue_command)


def run_queue_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Build the Redis client and tenant from the settings and run the chosen command."""
    command: QueueCommand = args.queue_command
    return run_with_redis(args, env,
                          lambda client, settings: command(client, settings.tracardi.tenant,
                                                           args))


def dead_list(client: RedisClient, tenant: str, args: argparse.Namespace) -> int:
    try:
        dead = DeadLetters(client, tenant, args.queue)
        letters, total = dead.oldest(args.limit), dead.count()
    except DaemonError as exc:
        return _fail(exc)
    for letter in letters:
        print(json.dumps(_as_dict(letter)) if args.json else printable(_one_line(letter)))
    if not args.json:
        print(f"{len(letters)} of {total} dead letter(s) in queue {args.queue}")
    return int(ExitCode.OK)


def dead_requeue(client: RedisClient, tenant: str, args: argparse.Namespace) -> int:
    try:
        requeued = DeadLetters(client, tenant, args.queue).requeue(
            "all" if args.all else list(args.ids or []))
    except DaemonError as exc:
        return _fail(exc)
    print(f"requeued {requeued} dead letter(s) to queue {args.queue}")
    return int(ExitCode.OK)


def dead_purge(client: RedisClient, tenant: str, args: argparse.Namespace) -> int:
    try:
        dead = DeadLetters(client, tenant, args.queue)
        if not args.yes:
            print(f"queue {args.queue} has {dead.count()} dead letter(s); "
                  "add --yes to delete them", file=sys.stderr)
            return int(ExitCode.FAILURE)
        purged = dead.purge()
    except DaemonError as exc:
        return _fail(exc)
    print(f"purged {purged} dead letter(s) of queue {args.queue}")
    return int(ExitCode.OK)


def _fail(exc: DaemonError) -> int:
    print(f"error: {mask_text(str(exc))}", file=sys.stderr)
    return int(exc.exit_code)


def _entry_id(text: str) -> str:
    """An argparse type: a stream entry id such as 1700000000000-0."""
    if not _ENTRY_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a dead letter id like "
                                         "1700000000000-0")
    return text


def _as_dict(letter: DeadLetter) -> dict[str, Any]:
    """The dead letter as shown: every string (target, reason, errors, payload) masked."""
    shown: dict[str, Any] = mask_json(
        {"id": letter.id, "message_id": letter.message_id, "reason": letter.reason,
         "attempts": letter.attempts, "first_error": letter.first_error,
         "last_error": letter.last_error, "dead_at_ms": letter.dead_at_ms,
         "payload": letter.payload, **letter.extra})
    return shown


def _one_line(letter: DeadLetter) -> str:
    shown = _as_dict(letter)
    payload = json.dumps(shown["payload"])
    if len(payload) > _EXCERPT_CHARS:
        payload = payload[:_EXCERPT_CHARS - 3] + "..."
    extra = "".join(f"  {key}={shown[key]!r}" for key in letter.extra if key in shown)
    return (f"{letter.id}  attempts={letter.attempts}  reason={shown['reason']!r}  "
            f"last_error={shown['last_error']!r}{extra}  payload={payload}")
