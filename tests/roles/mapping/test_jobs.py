"""Batch mapping jobs against the real Elasticsearch and Redis: exact counters, dry runs,
cancelling, a crash between a batch's writes and its checkpoint, and the commands."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import RoleStarter
from tests.roles.mapping.conftest import World, ago, run_until_idle, settings_with
from tracardi_daemon.cli import main
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import MAPPING_QUEUE
from tracardi_daemon.infra.scan import Hit
from tracardi_daemon.model.profiles import LoadedProfile, ProfileStore, Rewrite
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.mapping import batch as mapping_batch
from tracardi_daemon.roles.mapping.batch import BatchOutcome
from tracardi_daemon.roles.mapping.jobs import JobSpec, submit
from tracardi_daemon.roles.mapping.role import MappingRole
from tracardi_daemon.roles.mapping.rules import MappingRules

COUNT = {"id": "count", "name": "Count", "event_type": {"id": "page-view"},
         "items": [{"op": "increment", "profile": "stats.views"},
                   {"event": "properties.page", "op": "append", "profile": "traits.pages"}]}


def _seed(world: World, profiles: int, events_each: int) -> None:
    for number in range(profiles):
        world.add_profile(f"p{number}")
    world.add_events([{"type": "page-view", "profile": f"p{number % profiles}",
                       "insert": ago(600 - number), "properties": {"page": f"/{number}"}}
                      for number in range(profiles * events_each)])


def _job(world: World, dry_run: bool = False, **spec: Any) -> TaskRecord:
    [definition] = world.define(event_to_profile=[COUNT])
    tasks = TaskStore(world.redis, world.es, world.settings)
    queue = WorkQueue(world.redis, world.settings.tracardi.tenant, MAPPING_QUEUE)
    return submit(tasks, queue, JobSpec((definition,), dry_run=dry_run, **spec), "test job")


def _task(world: World, task_id: str) -> TaskRecord:
    record = TaskStore(world.redis, world.es, world.settings).get(task_id)
    assert record is not None
    return record


def _assert_counted(world: World, profiles: int, events_each: int) -> None:
    for number in range(profiles):
        profile = world.profile(f"p{number}")
        assert profile["stats"]["views"] == events_each, profile
        assert len(profile["traits"]["pages"]) == events_each


@pytest.fixture
def jobs_only(world: World) -> World:
    world.settings = settings_with(world.settings, live=False)
    return world


def test_a_job_applies_every_event_once_and_finishes_with_exact_counts(
        jobs_only: World, start_role: RoleStarter) -> None:
    world = jobs_only
    _seed(world, profiles=7, events_each=9)
    record = _job(world)
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    _assert_counted(world, 7, 9)
    done = _task(world, record.id)
    assert (done.status, done.total, done.done, done.failed) == ("finished", 63, 63, 0)
    assert ctx.counters.processed == 63
    # the job is acknowledged: nothing runs again
    assert run_until_idle(role, ctx) == 0
    _assert_counted(world, 7, 9)


def test_a_dry_run_counts_and_samples_but_writes_nothing(
        jobs_only: World, start_role: RoleStarter) -> None:
    world = jobs_only
    _seed(world, profiles=3, events_each=2)
    record = _job(world, dry_run=True)
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    done = _task(world, record.id)
    assert (done.status, done.done) == ("finished", 6)
    assert done.checkpoint is not None
    samples = done.checkpoint["samples"]
    assert {s["profile_id"] for s in samples} == {"p0", "p1", "p2"}
    assert samples[0]["changes"]["stats.views"] == {"before": None, "after": 2}
    for number in range(3):
        assert "stats" not in world.profile(f"p{number}")


def test_a_cancelled_job_stops_between_batches(
        jobs_only: World, start_role: RoleStarter) -> None:
    world = jobs_only
    _seed(world, profiles=4, events_each=50)  # 200 events, batches of 50
    record = _job(world)
    role, ctx = start_role(MappingRole, world.settings)
    role.step(ctx.clock())  # takes the job and applies its first batch
    TaskStore(world.redis, world.es, world.settings).request_cancel(record.id)
    run_until_idle(role, ctx)
    done = _task(world, record.id)
    assert done.status == "cancelled" and 0 < done.done < 200


class _Crash(Exception):
    pass


def test_a_job_taken_over_after_a_crash_resumes_without_applying_anything_twice(
        jobs_only: World, start_role: RoleStarter, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first runner dies after writing the profiles of its third batch and before
    checkpointing it; a new runner finishes that batch and the rest."""
    world = jobs_only
    _seed(world, profiles=6, events_each=40)  # 240 events, batches of 50
    record = _job(world)
    original = mapping_batch.BatchApplier.apply
    calls = {"n": 0}

    def crash_on_third(self: Any, hits: Sequence[Hit], rules: MappingRules, batch_id: str,
                       *, dry_run: bool = False) -> BatchOutcome:
        outcome = original(self, hits, rules, batch_id, dry_run=dry_run)
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Crash("killed between the writes and the checkpoint")
        return outcome

    monkeypatch.setattr(mapping_batch.BatchApplier, "apply", crash_on_third)
    first, first_ctx = start_role(MappingRole, world.settings)
    with pytest.raises(_Crash):
        run_until_idle(first, first_ctx)
    monkeypatch.setattr(mapping_batch.BatchApplier, "apply", original)
    # the dead runner's lease and message must lapse before another takes over
    world.redis.delete(f"{world.settings.tracardi.tenant}:lease:mapping-job:{record.id}")
    crashed = _task(world, record.id)
    assert crashed.checkpoint and crashed.checkpoint["intent"] is not None
    second, second_ctx = start_role(MappingRole, settings_with(
        world.settings, lease_s=5.0))
    # the message returns after queue.visibility_timeout_s (5 s)
    deadline = time.monotonic() + 30
    while _task(world, record.id).status != "finished" and time.monotonic() < deadline:
        second.step(second_ctx.clock())
    done = _task(world, record.id)
    _assert_counted(world, 6, 40)
    assert (done.status, done.done, done.failed) == ("finished", 240, 0)


def test_a_concurrent_writer_loses_nothing(world: World) -> None:
    """Another writer changes the profile between our read and our write: the write
    conflicts, the profile is reloaded and the change applied again on top."""
    world.add_profile("p1", traits={"visits": 1})
    store = ProfileStore(world.es, world.redis, world.settings, BulkWriter(world.es))
    rounds = {"n": 0}

    def change(loaded: LoadedProfile) -> Rewrite[int]:
        rounds["n"] += 1
        if rounds["n"] == 1:  # the collector writes meanwhile
            world.es.index(index=loaded.location.index, id="p1",
                           document={**loaded.source, "data": {"pii": {"firstname": "Ann"}}})
        document = dict(loaded.source)
        document["traits"] = {"visits": loaded.source["traits"]["visits"] + 1}
        return Rewrite(document, rounds["n"])

    [saved] = store.update_many(["p1"], change, max_attempts=3)
    assert (saved.status, saved.result, rounds["n"]) == ("written", 2, 2)
    profile = world.profile("p1")
    assert profile["traits"] == {"visits": 2}
    assert profile["data"]["pii"]["firstname"] == "Ann"


def test_mapping_commands_queue_follow_and_cancel(
        jobs_only: World, start_role: RoleStarter, capsys: pytest.CaptureFixture[str],
        elastic_url: str) -> None:
    world = jobs_only
    _seed(world, profiles=2, events_each=3)
    world.define(event_to_profile=[COUNT])
    env = {"TENANT_NAME": world.settings.tracardi.tenant, "ELASTIC_HOST": elastic_url}
    assert main(["mapping", "run", "--definition", "count", "--where",
                 'event@properties.page == "/1"'], environ=env) == 0
    queued = capsys.readouterr().out
    assert queued.startswith("1 event(s) selected")
    task_id = queued.split("queued mapping job ")[1].split(";")[0]
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    assert main(["mapping", "status", task_id], environ=env) == 0
    shown = capsys.readouterr().out
    assert "finished" in shown and "1/1" in shown
    assert world.profile("p1")["stats"]["views"] == 1
    assert "stats" not in world.profile("p0")
    assert main(["mapping", "cancel", task_id], environ=env) == 1  # already finished
    assert main(["mapping", "run", "--definition", "nope"], environ=env) == 2
    assert "no event-to-profile or event-type definition" in capsys.readouterr().err
    assert main(["mapping", "run", "--definition", "count", "--where", "event@x >"],
                environ=env) == 2
    assert main(["mapping", "run", "--definition", "count", "--query", "page:(unclosed"],
                environ=env) == 2
    assert "the query is refused" in capsys.readouterr().err


def test_a_job_whose_query_elasticsearch_refuses_fails_with_the_error(
        jobs_only: World, start_role: RoleStarter) -> None:
    world = jobs_only
    _seed(world, profiles=1, events_each=1)
    record = _job(world, query="properties.page:(unclosed")
    settings = settings_with(world.settings)
    role, ctx = start_role(MappingRole, replace(settings, queue=replace(
        settings.queue, max_attempts=2, retry_backoff_initial_s=0.01,
        retry_backoff_max_s=0.01)))
    deadline = time.monotonic() + 20
    while not _task(world, record.id).terminal and time.monotonic() < deadline:
        role.step(ctx.clock())
    done = _task(world, record.id)
    assert done.status == "failed"
    assert done.last_error is not None and "parse" in done.last_error.lower()
