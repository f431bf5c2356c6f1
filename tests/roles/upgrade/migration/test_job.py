"""Migrations run by the upgrade role against the real Elasticsearch and Redis: the
shipped 0.8.1 -> 0.8.2 plan on real documents (monthly partitions collapsed into
quarters), progress, re-runs, foreign targets, dead letters, cancel."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.roles.upgrade.migration.conftest import run_to_end, submit
from tracardi_daemon.cli import main
from tracardi_daemon.cli.migrate import choose_plan
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.upgrade.migration.plan import Plan
from tracardi_daemon.roles.upgrade.migration.plan_files import load_plan
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["start_role"]

MONTHS = (1, 2, 3, 4)  # 2024-1..3 collapse into 2024-q1, 2024-4 into 2024-q2
PER_MONTH = 30


def _profile(number: int) -> dict[str, Any]:
    return {"id": f"p{number}", "data": {"contact": {"email": f"u{number}@example.com",
                                                     "phone": "+48 600"},
                                         "pii": {"name": f"User {number}"}},
            "traits": {"n": number}}


def _seed(es: Elasticsearch, prefix: str) -> Plan:
    """0.8.1 profile partitions and a segment index of a tenant named after the test."""
    plan = choose_plan("08x", None, f"{prefix}src")
    plan = replace(plan, target=replace(plan.target, tenant=f"{prefix}dst"))  # type: ignore[arg-type]
    number = 0
    for month in MONTHS:
        index = f"08x.{prefix}src.tracardi-profile-2024-{month}"
        es.indices.create(index=index, settings={"number_of_shards": 2},
                          mappings={"properties": {"id": {"type": "keyword"}}})
        operations: list[dict[str, Any]] = []
        for _ in range(PER_MONTH):
            operations += [{"index": {"_index": index, "_id": f"p{number}"}}, _profile(number)]
            number += 1
        es.bulk(operations=operations, refresh=True)
    es.index(index=f"08x.{prefix}src.tracardi-segment", id="s1", refresh=True,
             document={"id": "s1", "name": "VIP", "condition": "profile@traits.n > 1"})
    return plan


def test_the_shipped_plan_migrates_real_documents_with_true_progress(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    plan = _seed(es, prefix)
    record = submit(redis_client, es, settings, plan)
    role, ctx = start_role(UpgradeRole, settings)
    tasks = TaskStore(redis_client, es, settings)
    seen: list[int] = []
    done = run_to_end(role, ctx, tasks, record.id, seen)
    total = len(MONTHS) * PER_MONTH + 1
    assert (done.status, done.total, done.done, done.failed) == ("finished", total, total, 0)
    # true progress, from the start: the first batch (of 25) is counted as soon as its
    # write returns, while most of the plan is still to do
    assert seen == sorted(seen) and next(done for done in seen if done) <= total // 4
    q1, q2 = (f"0820.{prefix}dst.tracardi-profile-2024-{q}" for q in ("q1", "q2"))
    es.indices.refresh(index=f"{q1},{q2}")
    assert es.count(index=q1)["count"] == 3 * PER_MONTH
    assert es.count(index=q2)["count"] == PER_MONTH
    migrated = es.get(index=q1, id="p7")["_source"]
    assert migrated["data"] == {"contact": {"email": {"main": "u7@example.com"},
                                            "phone": {"main": "+48 600"}},
                                "pii": {"display_name": "User 7"}}
    assert migrated["traits"] == {"n": 7}
    # aliases (0.8.x: without the version) point at the new indices, only now
    alias = es.indices.get_alias(name=f"{prefix}dst.tracardi-profile")
    assert sorted(alias) == sorted([q1, q2])
    assert es.get(index=f"0820.{prefix}dst.tracardi-segment", id="s1")["found"]
    # running it again does nothing without --force
    again = submit(redis_client, es, settings, plan)
    assert run_to_end(role, ctx, tasks, again.id).status == "failed"
    assert "already ran" in (tasks.get(again.id).last_error or "")  # type: ignore[union-attr]
    forced = submit(redis_client, es, settings, plan, force=True)
    assert run_to_end(role, ctx, tasks, forced.id).status == "finished"
    es.indices.refresh(index=f"{q1},{q2}")
    assert es.count(index=q1)["count"] == 3 * PER_MONTH  # overwritten, not duplicated


def test_staging_and_production_are_migrated_and_each_alias_moves_off_the_old_indices(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    """0.8.1 and 0.8.2 share alias names: the old indices leave the aliases the new
    ones join, or 0.8.2 reads both versions."""
    plan = replace(choose_plan("08x", None, prefix), target=replace(
        choose_plan("08x", None, prefix).target, tenant=prefix))  # type: ignore[arg-type]
    old = {mode: f"{mode}08x.{prefix}.tracardi-profile-2024-1" for mode in ("", "prod-")}
    for mode, index in old.items():
        es.indices.create(index=index, aliases={f"{mode}{prefix}.tracardi-profile": {}},
                          mappings={"properties": {"id": {"type": "keyword"}}})
        es.index(index=index, id=f"{mode}p1", document=_profile(1), refresh=True)
    keep = f"{prefix}-other"  # a member the migration did not read stays
    es.indices.create(index=keep, aliases={f"{prefix}.tracardi-profile": {}})
    before = {mode: set(es.indices.get_alias(name=f"{mode}{prefix}.tracardi-profile"))
              for mode in old}
    assert keep in before[""] and old[""] in before[""]
    record = submit(redis_client, es, settings, plan)
    role, ctx = start_role(UpgradeRole, settings)
    tasks = TaskStore(redis_client, es, settings)
    done = run_to_end(role, ctx, tasks, record.id)
    assert (done.status, done.total, done.done) == ("finished", 2, 2)
    for mode in ("", "prod-"):
        new = f"{mode}0820.{prefix}.tracardi-profile-2024-q1"
        members = set(es.indices.get_alias(name=f"{mode}{prefix}.tracardi-profile"))
        assert members == before[mode] - {old[mode]} | {new}
        migrated = es.get(index=new, id=f"{mode}p1")["_source"]
        assert migrated["data"]["contact"]["email"] == {"main": "u1@example.com"}


def test_a_target_holding_foreign_documents_stops_therun_to_end(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    plan = _seed(es, prefix)
    foreign = f"0820.{prefix}dst.tracardi-profile-2024-q1"
    es.index(index=foreign, id="someone-else", document={"id": "x"}, refresh=True)
    record = submit(redis_client, es, settings, plan)
    role, ctx = start_role(UpgradeRole, settings)
    done = run_to_end(role, ctx, TaskStore(redis_client, es, settings), record.id)
    assert done.status == "failed" and foreign in (done.last_error or "")
    assert es.count(index=foreign)["count"] == 1


def test_a_document_a_transform_cannot_handle_is_dead_lettered_and_the_rest_copied(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter, tmp_path: Path) -> None:
    source = f"100.{prefix}src.tracardi-segment"
    es.indices.create(index=source, mappings={"properties": {"id": {"type": "keyword"}}})
    for number, value in enumerate(["1", "2", "abc", "4"]):
        es.index(index=source, id=f"s{number}", document={"id": f"s{number}", "rank": value})
    es.indices.refresh(index=source)
    path = tmp_path / "plan.toml"
    path.write_text(f'''
from = {{version = "100", tenant = "{prefix}src", style = "tracardi"}}
to = {{version = "101", tenant = "{prefix}dst", style = "tracardi"}}
[[step]]
id = "segments"
index = "tracardi-segment"
transforms = [{{op = "convert", path = "rank", to = "integer"}}]
''')
    record = submit(redis_client, es, settings, load_plan(path))
    role, ctx = start_role(UpgradeRole, settings)
    done = run_to_end(role, ctx, TaskStore(redis_client, es, settings), record.id)
    assert (done.status, done.done, done.failed) == ("finished", 3, 1)
    [dead] = DeadLetters(redis_client, prefix, UPGRADE_QUEUE).oldest(10)
    assert dead.payload["document_id"] == "s2" and "abc" in dead.reason
    assert "segments" in dead.reason
    target = f"101.{prefix}dst.tracardi-segment"
    es.indices.refresh(index=target)
    assert es.get(index=target, id="s3")["_source"]["rank"] == 4


def test_asynchronous_steps_are_copied_at_the_same_time_and_the_next_waits(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter, tmp_path: Path) -> None:
    names = ("segment", "rule", "flow")
    for name in names:
        source = f"100.{prefix}src.tracardi-{name}"
        es.indices.create(index=source, mappings={"properties": {"id": {"type": "keyword"}}})
        es.bulk(operations=[line for n in range(60) for line in (
            {"index": {"_index": source, "_id": f"{name}{n}"}}, {"id": f"{name}{n}"})],
            refresh=True)
    path = tmp_path / "plan.toml"
    path.write_text(f'''
from = {{version = "100", tenant = "{prefix}src", style = "tracardi"}}
to = {{version = "101", tenant = "{prefix}dst", style = "tracardi"}}
[[step]]
id = "segment"
index = "tracardi-segment"
asynchronous = true
[[step]]
id = "rule"
index = "tracardi-rule"
asynchronous = true
[[step]]
id = "flow"
index = "tracardi-flow"
''')
    record = submit(redis_client, es, settings, load_plan(path))
    role, ctx = start_role(UpgradeRole, settings)
    tasks = TaskStore(redis_client, es, settings)
    lanes_seen: list[list[int]] = []
    for _ in range(500):
        role.step(ctx.clock())
        current = tasks.get(record.id)
        assert current is not None
        if current.checkpoint:
            lanes_seen.append([lane["item"] for lane in current.checkpoint["lanes"]])
        if current.terminal:
            break
    assert (current.status, current.done) == ("finished", 180)
    assert [0, 1] in lanes_seen  # both asynchronous steps at once
    # the step that is not asynchronous runs alone, after both
    assert all(lanes == [2] for lanes in lanes_seen if 2 in lanes)
    assert lanes_seen.index([2]) > max(n for n, lanes in enumerate(lanes_seen) if 1 in lanes)
    for name in names:
        target = f"101.{prefix}dst.tracardi-{name}"
        es.indices.refresh(index=target)
        assert es.count(index=target)["count"] == 60


def test_cancel_stops_between_batches(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    plan = _seed(es, prefix)
    record = submit(redis_client, es, settings, plan)
    role, ctx = start_role(UpgradeRole, settings)
    tasks = TaskStore(redis_client, es, settings)
    while (current := tasks.get(record.id)) is not None and current.done == 0:
        role.step(ctx.clock())
    tasks.request_cancel(record.id)
    done = run_to_end(role, ctx, tasks, record.id)
    assert done.status == "cancelled" and 0 < done.done < done.total  # type: ignore[operator]


def test_migrate_plan_shows_sources_targets_and_transforms(
        es: Elasticsearch, settings: Settings, prefix: str, elastic_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _seed(es, prefix)
    env = {"TENANT_NAME": prefix, "ELASTIC_HOST": elastic_url}
    assert main(["migrate", "plan", "--from", "08x", "--from-tenant", f"{prefix}src"],
                environ=env) == 0
    shown = capsys.readouterr().out
    # the target is the configured tenant (TENANT_NAME), as Tracardi's own migration's
    assert f"08x.{prefix}src.tracardi-profile-2024-3 ({PER_MONTH} docs) -> " \
           f"0820.{prefix}.tracardi-profile-2024-q1" in shown
    assert f"-> tracardi 0820/{prefix}" in shown
    assert '"to": "data.contact.email.main"' in shown
    assert f"{len(MONTHS) + 1} index(es), {len(MONTHS) * PER_MONTH + 1} document(s)" in shown
    assert main(["migrate", "plan", "--from", "07x"], environ=env) == 2


def test_the_target_tenant_is_the_one_given_else_configured_else_tracardis_default(
        es: Elasticsearch, settings: Settings, prefix: str, elastic_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _seed(es, prefix)
    source = ["migrate", "plan", "--from", "08x", "--from-tenant", f"{prefix}src"]
    configured = {"TENANT_NAME": prefix, "ELASTIC_HOST": elastic_url}
    assert main([*source, "--to-tenant", f"{prefix}new"], environ=configured) == 0
    assert f"-> 0820.{prefix}new.tracardi-profile-2024-q1" in capsys.readouterr().out
    # nothing configured: Tracardi's own default tenant of 0.8.2, md5("0820")[:5]
    assert main(source, environ={"ELASTIC_HOST": elastic_url}) == 0
    assert "-> 0820.ffe49.tracardi-profile-2024-q1" in capsys.readouterr().out
    assert main([*source, "--to-tenant", "Bad Name"], environ=configured) == 2
    assert "tenant" in capsys.readouterr().err
