"""``tracardi-daemon migrate detach [--restore]``: before Tracardi's new version is
installed, take the old version's aliases off its indices where the new version uses the
same names (0.8.1 and 0.8.2 do), so that Tracardi's ``/install`` can make the new
indices; ``--restore`` puts them back, and the old version works again."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from elasticsearch import Elasticsearch

from tracardi_daemon.cli.common import run_with_backends
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ExitCode
from tracardi_daemon.infra.redis import RedisClient, redis_errors, text
from tracardi_daemon.roles.upgrade.keys import detached_key
from tracardi_daemon.roles.upgrade.migration.aliases import (
    attach,
    detach,
    pairs_from,
    pairs_text,
    shared_aliases,
)
from tracardi_daemon.roles.upgrade.migration.job import plan_key
from tracardi_daemon.roles.upgrade.migration.plan import Plan
from tracardi_daemon.roles.upgrade.migration.targets import RELEASES


def detach_command(args: argparse.Namespace, env: Mapping[str, str], chosen: Plan) -> int:
    """``chosen``: the plan of ``--from``/``--plan``, before ``--to-tenant`` applies."""

    def action(redis: RedisClient, elastic: Elasticsearch, settings: Settings) -> int:
        plan = chosen.for_target_tenant(args.to_tenant, settings)
        key = detached_key(settings.tracardi.tenant, plan_key(plan))
        if args.restore:
            return _restore(redis, elastic, key)
        target = plan.target_layout(settings.tracardi)
        pairs = shared_aliases(elastic, plan.source, target)
        if not pairs:
            print("nothing to detach: no index of the old version holds an alias the new "
                  "version uses")
            return int(ExitCode.OK)
        with redis_errors("record the detached aliases"):
            earlier = redis.get(key)
            recorded = pairs_from(text(earlier)) if earlier is not None else []
            # recorded before the change: a crash between the two leaves a restorable record
            redis.set(key, pairs_text(sorted(set(recorded) | set(pairs))))
        detach(elastic, pairs)
        for alias, index in pairs:
            print(f"detached {alias} from {index}")
        print(f"{len(pairs)} alias(es) detached: install Tracardi "
              f"{RELEASES.get(target.version, target.version)} now "
              "(POST /install), then run `tracardi-daemon migrate run` with the same options; "
              "`migrate detach --restore` puts them back")
        return int(ExitCode.OK)

    return run_with_backends(args, env, action)


def _restore(redis: RedisClient, elastic: Elasticsearch, key: str) -> int:
    with redis_errors("read the detached aliases"):
        raw = redis.get(key)
    if raw is None:
        print("nothing to restore: no aliases were detached for this plan")
        return int(ExitCode.OK)
    pairs = pairs_from(text(raw))
    for alias, index in attach(elastic, pairs):
        print(f"took {alias} off {index}")
    with redis_errors("forget the detached aliases"):
        redis.delete(key)
    for alias, index in pairs:
        print(f"restored {alias} on {index}")
    return int(ExitCode.OK)
