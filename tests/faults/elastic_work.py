"""The work of each Elasticsearch-bound role for the fault trials, on the private node:
a mapping batch job and the live mapping tail (every profile counts its events with
``increment`` and ``append``, so a lost or repeated event shows), a segmentation pass
with webhook triggers posting to a local receiver, a migration and a CSV import (ids
compared). Each says how far it got, whether it ended, and what it lost or doubled."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan
from redis import Redis

from tests.faults.elastic_node import PrivateElastic
from tests.receivers import ScriptedServer, start_scripted_server
from tests.roles.mapping.conftest import World, ago
from tests.tracardi_layouts.plan_targets import create_plan_targets
from tracardi_daemon.cli.migrate import choose_plan
from tracardi_daemon.config.settings import ElasticSettings, Settings, TracardiSettings
from tracardi_daemon.infra.lease import lease_key
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import MAPPING_QUEUE, SEGMENTATION_QUEUE, UPGRADE_QUEUE
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import EventToProfile, ImportConfig, Segment
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.mapping.jobs import JobSpec, submit
from tracardi_daemon.roles.segmentation.passes import pass_spec, submit_pass
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params
from tracardi_daemon.roles.upgrade.imports.targets import imported_id
from tracardi_daemon.roles.upgrade.migration.job import MIGRATION_TASK, migration_params

LEASE_S = 2.0  # of every role in SETTINGS
SETTINGS = """
[queue]
visibility_timeout_s = 1.0
[mapping]
live = {live}
live_start = "earliest"
batch_size = 100
lease_s = 2.0
poll_interval_s = 0.1
recheck_every_s = 0.5
[segmentation]
batch_size = 50
lease_s = 2.0
poll_interval_s = 0.05
intent_stale_s = 2.0
[upgrade]
batch_size = 100
lease_s = 2.0
poll_interval_s = 0.05
# each trial's import file is in a directory of its own under the temporary directory
import_dirs = [IMPORT_DIR]
[definitions]
refresh_s = 0.5
[elastic]
hosts = ["{elastic}"]
""".replace("IMPORT_DIR", json.dumps(tempfile.gettempdir()))
PROFILES, EVENTS_EACH = 20, 100  # mapping: 2,000 events
SEGMENTED = 600  # profiles of the segmentation pass
PER_MONTH = 1000  # migration: two monthly source indices
ROWS = 3000  # import
COUNT = {"id": "count", "name": "Count", "event_type": {"id": "page-view"},
         "items": [{"op": "increment", "profile": "stats.views"},
                   {"event": "properties.n", "op": "append", "profile": "traits.seen"}]}


@dataclass
class Work:
    roles: list[str]
    total: int
    progress: Callable[[], int]
    finished: Callable[[], bool]
    tally: Callable[[], tuple[int, int]]  # (lost, doubled), once it finished
    unowned: Callable[[], bool]
    close: Callable[[], None]
    # why its task is not 'finished' with done == total and failed == 0 ('' if it is)
    inexact: Callable[[], str] = lambda: ""
    live: str = "false"


def _tenant_settings(tenant: str) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=tenant))


def _settings(node: PrivateElastic, tenant: str) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=tenant),
                    elastic=ElasticSettings(hosts=(node.url,)))


def _task_work(roles: list[str], total: int, client: Redis, tenant: str, task_id: str,
               tally: Callable[[], tuple[int, int]], es: Elasticsearch,
               close: Callable[[], None] | None = None) -> Work:
    """The work of a task job: its record says how far it got and whether it ended."""
    tasks = TaskStore(client, None, _tenant_settings(tenant))

    def progress() -> int:
        record = tasks.get(task_id)
        return 0 if record is None else record.done

    def finished() -> bool:
        record = tasks.get(task_id)
        return record is not None and record.terminal

    def unowned() -> bool:
        record = tasks.get(task_id)
        leases = [lease_key(tenant, task_id), lease_key(tenant, f"upgrade-job:{task_id}")]
        return record is not None and not record.terminal and not client.exists(*leases)

    def inexact() -> str:
        record = tasks.get(task_id)
        if record is None:
            return f"task {task_id} is gone"
        if (record.status, record.done, record.failed) == ("finished", total, 0):
            return ""
        return (f"task {task_id}: {record.status}, done {record.done} of {total} "
                f"(its total {record.total}), failed {record.failed}")

    def closing() -> None:
        if close is not None:
            close()
        es.close()

    return Work(roles, total, progress, finished, tally, unowned, closing, inexact=inexact)


def _ids_tally(es: Elasticsearch, index: str, expected: set[str]) -> tuple[int, int]:
    es.options(ignore_status=404).indices.refresh(index=index)
    ids = [hit["_id"] for hit in scan(es, index=index, query={"_source": False},
                                      ignore_unavailable=True)]
    found = set(ids)
    return len(expected - found), len(ids) - len(found) + len(found - expected)


def _counting_world(node: PrivateElastic, client: Redis, tenant: str) -> World:
    settings = _settings(node, tenant)
    es = node.client()
    install(es, settings)
    world = World(es, client, settings)
    world.add_profiles([{"id": f"p{number}"} for number in range(PROFILES)])
    world.add_events([{"type": "page-view", "profile": f"p{n % PROFILES}",
                       "insert": ago(3600 - n * 0.5), "properties": {"n": n}}
                      for n in range(PROFILES * EVENTS_EACH)])
    return world


def _counts(world: World) -> tuple[int, int]:
    """(events applied once, events applied more than once) over every profile."""
    index = alias_name(world.settings.tracardi, "profile")
    world.es.indices.refresh(index=index)
    hits = world.es.search(index=index, size=PROFILES + 10, source_includes=["stats", "traits"],
                           query={"match_all": {}})["hits"]["hits"]
    once = again = 0
    for hit in hits:
        views = (hit["_source"].get("stats") or {}).get("views", 0)
        seen = (hit["_source"].get("traits") or {}).get("seen", [])
        distinct = len(set(seen))
        once, again = once + distinct, again + max(views, len(seen)) - distinct
    return once, again


def mapping_job(node: PrivateElastic, client: Redis, tenant: str, _workdir: Path) -> Work:
    world = _counting_world(node, client, tenant)
    [definition] = world.define(event_to_profile=[COUNT])
    assert isinstance(definition, EventToProfile)
    tasks = TaskStore(client, None, world.settings)
    record = submit(tasks, WorkQueue(client, tenant, MAPPING_QUEUE), JobSpec((definition,)),
                    "elastic fault trial")
    total = PROFILES * EVENTS_EACH

    def tally() -> tuple[int, int]:
        once, again = _counts(world)
        return total - once, again

    return _task_work(["mapping"], total, client, tenant, record.id, tally, world.es)


def live_tail(node: PrivateElastic, client: Redis, tenant: str, _workdir: Path) -> Work:
    world = _counting_world(node, client, tenant)
    world.define(event_to_profile=[COUNT])
    total = PROFILES * EVENTS_EACH

    def tally() -> tuple[int, int]:
        once, again = _counts(world)
        return total - once, again

    return Work(["mapping"], total, progress=lambda: _counts(world)[0],
                finished=lambda: _counts(world)[0] >= total, tally=tally,
                unowned=lambda: False, close=world.es.close, live="true")


def _vip(number: int) -> bool:
    return number % 10 >= 4  # orders 4-9 are VIPs


def _segmented(world: World, url: str) -> Segment:
    """The VIP segment, two webhook triggers and the profiles, a third of them in the
    segment at the start: some stay, some leave, the rest may join."""
    segment = Segment.from_dict({"id": "vip", "name": "VIP",
                                 "condition": "profile@traits.orders > 3"})
    DefinitionStore(world.es, world.settings).upsert_many([segment])
    world.define(workflow_trigger=[
        {"id": "welcome", "name": "Welcome", "type": "segment-add",
         "segment": {"id": "vip", "name": "VIP"}, "workflow": {"id": "wf-1", "name": "W"},
         "target": f"webhook:{url}"},
        {"id": "goodbye", "name": "Goodbye", "type": "segment-remove",
         "segment": {"id": "vip", "name": "VIP"}, "workflow": {"id": "wf-2", "name": "G"},
         "target": f"webhook:{url}"}])
    world.add_profiles([{"id": f"p{number}", "traits": {"orders": number % 10},
                         "segments": ["vip"] if number % 3 == 0 else []}
                        for number in range(SEGMENTED)])
    return segment


def _starts(server: ScriptedServer) -> dict[tuple[str, str], set[str]]:
    """The idempotency keys received per (profile, change): a start repeated with the
    same key (a sender that lost its answer in the outage) is one start to the receiver."""
    keys: dict[tuple[str, str], set[str]] = {}
    with server.lock:
        received = list(server.received)
    for request in received:
        body = json.loads(request.body)
        keys.setdefault((body["profile"]["id"], body["change"]["type"]), set()).add(
            request.headers.get("idempotency-key", ""))
    return keys


def _segment_tally(world: World, server: ScriptedServer) -> tuple[int, int]:
    """Profiles in the wrong segments and starts never sent are lost; a transition
    started under two keys, or one that should not have happened, is doubled."""
    index = alias_name(world.settings.tracardi, "profile")
    world.es.indices.refresh(index=index)
    hits = world.es.search(index=index, size=SEGMENTED + 10, source_includes=["segments"],
                           query={"match_all": {}})["hits"]["hits"]
    wrong = sum(("vip" in (hit["_source"].get("segments") or [])) != _vip(int(hit["_id"][1:]))
                for hit in hits) + SEGMENTED - len(hits)
    expected = {(f"p{n}", "add" if _vip(n) else "remove") for n in range(SEGMENTED)
                if (n % 3 == 0) != _vip(n)}
    starts = _starts(server)
    doubled = sum(len(keys) - 1 for keys in starts.values()) + len(set(starts) - expected)
    return wrong + len(expected - set(starts)), doubled


def segmentation_pass(node: PrivateElastic, client: Redis, tenant: str,
                      _workdir: Path) -> Work:
    settings = _settings(node, tenant)
    es = node.client()
    install(es, settings)
    world = World(es, client, settings)
    server, httpd = start_scripted_server()
    segment = _segmented(world, server.url)
    tasks = TaskStore(client, es, settings)
    record = submit_pass(tasks, WorkQueue(client, tenant, SEGMENTATION_QUEUE), pass_spec(
        segment, [segment], now_iso=datetime.now(UTC).isoformat()), "elastic fault trial")
    transitions = sum((n % 3 == 0) != _vip(n) for n in range(SEGMENTED))

    def close() -> None:
        httpd.shutdown()
        httpd.server_close()

    # a pass visits only the profiles whose segments must change
    work = _task_work(["segmentation", "trigger"], transitions, client, tenant, record.id,
                      lambda: _segment_tally(world, server), es, close)
    ended = work.finished
    # the pass ends before the trigger role has sent every start
    return replace(work, finished=lambda: ended() and len(_starts(server)) >= transitions)


def migration(node: PrivateElastic, client: Redis, tenant: str, _workdir: Path) -> Work:
    es = node.client()
    plan = choose_plan("08x", None, f"{tenant}src")
    for month in (1, 2):
        index = f"08x.{tenant}src.tracardi-profile-2024-{month}"
        es.indices.create(index=index, mappings={"properties": {"id": {"type": "keyword"}}})
        operations: list[dict[str, Any]] = []
        for number in range(PER_MONTH):
            doc_id = f"m{month}-{number}"
            operations += [{"index": {"_index": index, "_id": doc_id}},
                           {"id": doc_id, "data": {"contact": {"email": f"{doc_id}@x.io"}}}]
        es.bulk(operations=operations, refresh=True)
    assert plan.target is not None
    plan = replace(plan, target=replace(plan.target, tenant=f"{tenant}dst"))
    settings = _settings(node, tenant)
    install(es, settings)  # the task index; a daemon would install it at its start
    create_plan_targets(es, plan, plan.target)  # as Tracardi 0.8.2's /install would
    tasks = TaskStore(client, es, settings)
    record = queue_task(tasks, WorkQueue(client, tenant, UPGRADE_QUEUE), MIGRATION_TASK,
                        "elastic fault trial", migration_params(plan))
    expected = {f"m{m}-{n}" for m in (1, 2) for n in range(PER_MONTH)}
    target = f"0820.{tenant}dst.tracardi-profile-2024-q1"
    return _task_work(["upgrade"], 2 * PER_MONTH, client, tenant, record.id,
                      lambda: _ids_tally(es, target, expected), es)


def csv_import(node: PrivateElastic, client: Redis, tenant: str, workdir: Path) -> Work:
    settings = _settings(node, tenant)
    es = node.client()
    install(es, settings)
    path = workdir / "rows.csv"
    path.write_text("customer,n\n" + "".join(f"c{n},{n}\n" for n in range(ROWS)),
                    encoding="utf-8")
    DefinitionStore(es, settings).upsert_many([ImportConfig.from_dict({
        "id": "rows", "name": "Rows", "source": "csv",
        "config": {"path": str(path), "target": "events", "event_type": "row",
                   "event_source": "file", "key": "customer", "batch": 100}})])
    tasks = TaskStore(client, es, settings)
    record = queue_task(tasks, WorkQueue(client, tenant, UPGRADE_QUEUE), IMPORT_TASK,
                        "elastic fault trial", import_params("rows"))
    expected = {imported_id("rows", f"c{n}") for n in range(ROWS)}
    alias = alias_name(settings.tracardi, "event")
    return _task_work(["upgrade"], ROWS, client, tenant, record.id,
                      lambda: _ids_tally(es, alias, expected), es)


WORKS: dict[str, Callable[[PrivateElastic, Redis, str, Path], Work]] = {
    "mapping-job": mapping_job,
    "live-tail": live_tail,
    "segmentation": segmentation_pass,
    "migration": migration,
    "import": csv_import,
}
