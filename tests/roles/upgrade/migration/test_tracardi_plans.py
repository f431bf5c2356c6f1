"""Tracardi's own upgrade plans on the daemon: every plan file loads with its painless
compiled (the only refusal is 0820_to_09x's copy_to_mysql worker), a painless step of
080_to_08x migrates real documents as the interpreter runs them, a document the script
throws on is dead lettered while the rest migrate, and ``migrate plan`` says how each
step runs."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.roles.upgrade.migration.conftest import install_cli_targets, run_to_end, submit
from tracardi_daemon.cli import main
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.painless import compile_script
from tracardi_daemon.roles.upgrade.migration.plan_files import load_plan
from tracardi_daemon.roles.upgrade.migration.tracardi_plan import read_tracardi_plan
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["start_role"]

PLANS_DIR = Path(os.environ.get(
    "TRACARDI_PLANS_DIR",
    Path(__file__).resolve().parents[5] / "shared" / "reference" / "tracardi-plans"))
PLAN_FILES = ("070_to_071", "071_to_072", "072_to_073", "073_to_074", "074_to_080",
              "080_to_08x", "08x_to_082x", "08x_to_0820", "082x_to_0820", "0820_to_09x")
# plan -> the workers the daemon does not run (yet), the only reasons a plan is refused
# (the first one the plan lists is named)
REFUSED_WORKERS = {"0820_to_09x": ("copy_to_mysql",)}
# plan -> the Tracardi 0.7.1 workers its steps run, as steps of the daemon
WORKER_STEPS = {"070_to_071": {"event_management_migration": "validation_schema_reindex_071",
                               "880ac2abe6092aa94881b4d46fda2dae875059ed": "user_reindex_071"},
                "071_to_072": {"880ac2abe6092aa94881b4d46fda2dae875059ed": "user_reindex_071"}}
ALL_REFUSED = {worker for workers in REFUSED_WORKERS.values() for worker in workers}
PROFILE_STEP = 17  # 080_to_08x's staging profile step: pii moves under data


def plan_path(name: str) -> Path:
    path = PLANS_DIR / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"Tracardi's upgrade plans are not in {PLANS_DIR.resolve()} "
                    "(set TRACARDI_PLANS_DIR)")
    return path


def plan_entries(name: str) -> list[Any]:
    entries = json.loads(plan_path(name).read_text(encoding="utf-8"))
    assert isinstance(entries, list)
    return entries


@pytest.mark.parametrize("name", PLAN_FILES)
def test_every_tracardi_plan_loads_but_for_copy_to_mysql(name: str) -> None:
    path = plan_path(name)
    source, target = name.split("_to_")
    if name not in REFUSED_WORKERS:
        plan = load_plan(path)
        assert all(step.script is not None for step in plan.steps if step.painless)
        workers = {step.id: step.worker for step in plan.steps if step.worker is not None}
        assert workers == WORKER_STEPS.get(name, {})
        return
    with pytest.raises(InvalidInput, match=f"'{REFUSED_WORKERS[name][0]}' is not supported"):
        load_plan(path)
    # nothing else in the plan is refused: each other entry loads on its own, its
    # painless compiled
    for entry in plan_entries(name):
        if isinstance(entry, str):
            continue
        if entry["worker"] in ALL_REFUSED:
            assert entry["worker"] in REFUSED_WORKERS[name]
            continue
        read_tracardi_plan([entry], source, target)


def _profiles_080(es: Elasticsearch, prefix: str) -> dict[str, dict[str, Any]]:
    """0.8.0 profiles in one monthly partition; p3 has a null pii, on which the script's
    ``ctx._source.pii.name`` throws."""
    documents = {f"p{number}": {"id": f"p{number}", "traits": {"n": number},
                                "pii": {"name": f"Ann{number}", "surname": "Lee",
                                        "email": f"u{number}@example.com",
                                        "twitter": None if number % 2 else f"@u{number}"}}
                 for number in range(1, 6)}
    documents["p3"]["pii"] = None
    index = f"080.{prefix}src.tracardi-profile-2024-1"
    es.indices.create(index=index, mappings={"properties": {"id": {"type": "keyword"}}})
    operations: list[dict[str, Any]] = []
    for doc_id, document in documents.items():
        operations += [{"index": {"_index": index, "_id": doc_id}}, document]
    es.bulk(operations=operations, refresh=True)
    return documents


def test_a_painless_step_of_080_to_08x_migrates_as_the_interpreter_runs_it(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    entry = plan_entries("080_to_08x")[PROFILE_STEP]
    script_text = entry["copy_index"]["script"]
    plan = read_tracardi_plan([entry], "080", "08x", from_tenant=f"{prefix}src",
                              to_tenant=f"{prefix}dst")
    documents = _profiles_080(es, prefix)
    record = submit(redis_client, es, settings, plan)
    role, ctx = start_role(UpgradeRole, settings)
    done = run_to_end(role, ctx, TaskStore(redis_client, es, settings), record.id)
    assert (done.status, done.total, done.done, done.failed) == ("finished", 5, 4, 1)
    target = f"08x.{prefix}dst.tracardi-profile-2024-1"
    es.indices.refresh(index=target)
    script = compile_script(script_text, "expected")
    for doc_id, document in documents.items():
        if doc_id == "p3":
            assert not es.exists(index=target, id=doc_id)
            continue
        run_on = {"_source": copy.deepcopy(document), "_id": doc_id,
                  "_index": "080", "op": "index"}
        script.run(run_on)
        migrated = es.get(index=target, id=doc_id)["_source"]
        assert migrated == run_on["_source"]
        assert "pii" not in migrated
        assert migrated["data"]["contact"]["email"] == f"u{doc_id[1:]}@example.com"
    [dead] = DeadLetters(redis_client, prefix, UPGRADE_QUEUE).oldest(10)
    assert dead.payload["document_id"] == "p3" and dead.payload["step"] == entry["id"]
    source = f"080.{prefix}src.tracardi-profile-2024-1"
    assert dead.payload["index"] == source
    assert dead.reason.startswith(f"step {entry['id']!r}, {source}, document 'p3': "
                                  "painless line 12:"), dead.reason
    assert "NullPointerException" in dead.reason


def test_a_script_that_sets_op_noop_or_delete_writes_nothing_for_that_document(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    script = ("if (ctx._source.id == 'p2') { ctx.op = 'noop'; }\n"
              "if (ctx._source.id == 'p4') { ctx.op = 'delete'; }\n"
              "ctx._source.traits.seen = ctx._index;\n"
              "ctx._source.remove('pii');")  # 0.8.1's profile mapping is strict
    entry = {"id": "ops", "worker": "reindex", "copy_index": {
        "from_index": "tracardi-profile", "to_index": "tracardi-profile", "multi": True,
        "script": script}}
    plan = read_tracardi_plan([entry], "080", "08x", from_tenant=f"{prefix}src",
                              to_tenant=f"{prefix}dst")
    _profiles_080(es, prefix)
    record = submit(redis_client, es, settings, plan)
    role, ctx = start_role(UpgradeRole, settings)
    done = run_to_end(role, ctx, TaskStore(redis_client, es, settings), record.id)
    assert (done.status, done.failed) == ("finished", 0)
    target = f"08x.{prefix}dst.tracardi-profile-2024-1"
    es.indices.refresh(index=target)
    written = {hit["_id"]: hit["_source"] for hit in es.search(index=target)["hits"]["hits"]}
    assert sorted(written) == ["p1", "p3", "p5"]
    assert written["p1"]["traits"]["seen"] == f"080.{prefix}src.tracardi-profile-2024-1"


def test_migrate_plan_says_which_steps_are_interpreted_painless(
        es: Elasticsearch, settings: Settings, prefix: str, elastic_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _profiles_080(es, prefix)
    install_cli_targets(es, plan_path("080_to_08x"), f"{prefix}src", prefix)
    env = {"TENANT_NAME": prefix, "ELASTIC_HOST": elastic_url}
    code = main(["migrate", "plan", "--plan", str(plan_path("080_to_08x")),
                 "--from-tenant", f"{prefix}src"], environ=env)
    shown = capsys.readouterr().out
    assert code == 0, shown
    assert "refused" not in shown
    profile = plan_entries("080_to_08x")[PROFILE_STEP]["id"]
    assert (f"step {profile} (tracardi-profile, every partition): daemon copy (painless, "
            f"interpreted)\n  080.{prefix}src.tracardi-profile-2024-1 (5 docs) -> "
            f"08x.{prefix}.tracardi-profile-2024-1") in shown
    # a step without a script is a plain copy
    entries = plan_entries("080_to_08x")
    plain = next(entry for entry in entries
                 if isinstance(entry, dict) and not entry["copy_index"].get("script")
                 and not entry["copy_index"].get("production"))
    multi = ", every partition" if plain["copy_index"].get("multi") else ""
    assert (f"step {plain['id']} ({plain['copy_index']['from_index']}{multi}): daemon copy\n"
            in shown)
