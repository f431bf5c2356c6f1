"""Migrations into a Tracardi installation write into the indices Tracardi's /install made:
a missing one is refused naming the command, what the install wrote there is accepted and
overwritten by id, other documents stop the run, Tracardi's _meta stays; ``migrate detach``
takes the old version's shared aliases off, and ``--restore`` puts them back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.roles.upgrade.migration.conftest import run_to_end, submit
from tests.tracardi_layouts.plan_targets import create_plan_targets
from tracardi_daemon.cli import main
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.upgrade.migration.plan import Plan
from tracardi_daemon.roles.upgrade.migration.targets import META_KEY
from tracardi_daemon.roles.upgrade.migration.tracardi_plan import read_tracardi_plan
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["start_role"]  # a fixture


def _entry(name: str, multi: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": name, "worker": "reindex_to_one_index" if multi else "reindex",
        "copy_index": {"from_index": f"tracardi-{name}", "to_index": f"tracardi-{name}",
                       "multi": multi, "script": None}}
    if multi:  # as 08x_to_0820's profile step: the months into their quarter
        entry["params"] = {"partitioning": "quarter", "replace": "(\\d{4}-\\d+)$"}
    return entry


def _installation_08x(es: Elasticsearch, tenant: str) -> None:
    """0.8.1 indices of one tenant, each in the alias 0.8.2 uses too (a tenant other than
    the daemon's own indices', whose layout would share the alias names)."""
    for index, alias, docs in (
            (f"08x.{tenant}.tracardi-user", f"{tenant}.tracardi-user",
             [("u1", {"id": "u1", "email": "old-admin@example.com"})]),
            (f"08x.{tenant}.tracardi-rule", f"{tenant}.tracardi-rule",
             [("r1", {"id": "r1", "name": "old rule"})]),
            (f"08x.{tenant}.tracardi-profile-2024-3", f"{tenant}.tracardi-profile",
             [("p1", {"id": "p1"}), ("p2", {"id": "p2"})])):
        es.indices.create(index=index, aliases={alias: {}},
                          mappings={"properties": {"id": {"type": "keyword"}}})
        for doc_id, document in docs:
            es.index(index=index, id=doc_id, document=document)
    es.indices.refresh(index=f"08x.{tenant}.*")


def _plan(tenant: str) -> Plan:
    return read_tracardi_plan([_entry("user"), _entry("rule"), _entry("profile", multi=True)],
                              "08x", "0820", from_tenant=tenant, to_tenant=tenant)


def _run(redis: RedisClient, es: Elasticsearch, settings: Settings, plan: Plan,
         start: RoleStarter, **options: Any) -> Any:
    record = submit(redis, es, settings, plan, install_targets=False, **options)
    role, ctx = start(UpgradeRole, settings)
    return run_to_end(role, ctx, TaskStore(redis, es, settings), record.id)


def _aliases(es: Elasticsearch, alias: str) -> set[str]:
    found = es.options(ignore_status=404).indices.get_alias(name=alias).body
    return set() if "error" in found else set(found)


def test_a_target_tracardi_has_not_installed_is_refused_naming_the_command(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    tenant = f"{prefix}x"
    _installation_08x(es, tenant)
    done = _run(redis_client, es, settings, _plan(tenant), start_role)
    assert done.status == "failed" and done.done == 0
    assert done.last_error.startswith(f"target index 0820.{tenant}.tracardi-profile-2024-q1 "
                                      "and 2 more does not exist: Tracardi 0.8.2 makes"), (
        done.last_error)
    assert f"install it for tenant {tenant!r} (its POST /install)" in done.last_error
    # the old version holds the aliases 0.8.2 uses: the refusal says what to run first
    assert "run `tracardi-daemon migrate detach` with the same options" in done.last_error
    assert not es.indices.exists(index=f"0820.{tenant}.tracardi-user")  # nothing made


def test_install_documents_are_overwritten_by_id_and_tracardis_meta_kept(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    tenant = f"{prefix}x"
    _installation_08x(es, tenant)
    plan = _plan(tenant)
    assert plan.target is not None
    made = create_plan_targets(es, plan, plan.target)
    user = f"0820.{tenant}.tracardi-user"
    assert user in made
    # what 0.8.2's /install writes: an admin (here under the old one's id)
    es.index(index=user, id="u1", document={"id": "u1", "email": "new-admin@example.com"},
             refresh=True)
    done = _run(redis_client, es, settings, plan, start_role)
    assert (done.status, done.done, done.failed) == ("finished", 4, 0), done.last_error
    assert es.get(index=user, id="u1")["_source"]["email"] == "old-admin@example.com"
    meta = es.indices.get_mapping(index=user)[user]["mappings"]["_meta"]
    assert meta["version"] == "0820" and meta["name"] == tenant and META_KEY in meta
    # each alias on the new index alone
    assert _aliases(es, f"{tenant}.tracardi-user") == {user}
    assert _aliases(es, f"{tenant}.tracardi-profile") == {
        f"0820.{tenant}.tracardi-profile-2024-q1"}


def test_documents_the_install_does_not_write_stop_the_run(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    tenant = f"{prefix}x"
    _installation_08x(es, tenant)
    plan = _plan(tenant)
    assert plan.target is not None
    create_plan_targets(es, plan, plan.target)
    rule = f"0820.{tenant}.tracardi-rule"
    es.index(index=rule, id="made-in-0820", document={"id": "made-in-0820"}, refresh=True)
    done = _run(redis_client, es, settings, plan, start_role)
    assert done.status == "failed" and done.done == 0
    assert done.last_error == (f"target index {rule} already holds 1 document(s) this plan "
                               "did not write; delete it or choose another target")


def test_a_missing_partition_an_index_template_covers_is_made_from_it(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    tenant = f"{prefix}x"
    _installation_08x(es, tenant)
    plan = _plan(tenant)
    assert plan.target is not None
    made = create_plan_targets(es, plan, plan.target)
    partition = f"0820.{tenant}.tracardi-profile-2024-q1"
    es.indices.delete(index=partition)
    # Tracardi installs a template per partitioned index; the partition comes on first write
    es.indices.put_index_template(
        name=f"template.0820.{tenant}.tracardi-profile",
        index_patterns=[f"0820.{tenant}.tracardi-profile-*"],
        template={"mappings": {"dynamic": "strict", "properties": {"id": {"type": "keyword"}},
                               "_meta": {"version": "0820", "name": tenant}},
                  "aliases": {f"{tenant}.tracardi-profile": {}}})
    try:
        done = _run(redis_client, es, settings, plan, start_role)
        assert (done.status, done.done) == ("finished", 4), done.last_error
        mapping = es.indices.get_mapping(index=partition)[partition]["mappings"]
        assert mapping["dynamic"] == "strict" and mapping["_meta"]["version"] == "0820"
        assert partition in made
    finally:
        es.options(ignore_status=404).indices.delete_index_template(
            name=f"template.0820.{tenant}.tracardi-profile")


def test_detach_takes_the_shared_aliases_off_and_restore_puts_them_back(
        es: Elasticsearch, redis_client: RedisClient, prefix: str, elastic_url: str,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tenant = f"{prefix}x"
    _installation_08x(es, tenant)
    plan_file = tmp_path / "08x_to_0820.json"  # Tracardi's name gives the versions
    plan_file.write_text(json.dumps([_entry("user"), _entry("rule"),
                                     _entry("profile", multi=True)]))
    env = {"TENANT_NAME": tenant, "ELASTIC_HOST": elastic_url}
    options = ["--plan", str(plan_file), "--from-tenant", tenant]
    assert main(["migrate", "detach", *options], environ=env) == 0
    shown = capsys.readouterr().out
    assert f"detached {tenant}.tracardi-user from 08x.{tenant}.tracardi-user" in shown
    assert "3 alias(es) detached: install Tracardi 0.8.2 now" in shown
    for name in ("user", "rule", "profile"):
        assert _aliases(es, f"{tenant}.tracardi-{name}") == set()
    # Tracardi 0.8.2's install can now give the alias to its own new index
    new_user = f"0820.{tenant}.tracardi-user"
    es.indices.create(index=new_user, aliases={f"{tenant}.tracardi-user": {}})
    assert main(["migrate", "detach", *options, "--restore"], environ=env) == 0
    shown = capsys.readouterr().out
    assert f"took {tenant}.tracardi-user off {new_user}" in shown
    assert _aliases(es, f"{tenant}.tracardi-user") == {f"08x.{tenant}.tracardi-user"}
    assert _aliases(es, f"{tenant}.tracardi-profile") == {f"08x.{tenant}.tracardi-profile-2024-3"}
    assert main(["migrate", "detach", *options, "--restore"], environ=env) == 0
    assert "nothing to restore" in capsys.readouterr().out
