"""Tracardi 0.7.1's migration workers on the daemon, over hand-made 0.7.0 documents in the
real Elasticsearch: what each writes is what Tracardi 0.8.1's worker code gives
(``tracardi/worker/service/worker/migration_workers/v071`` and ``utils``, and
``tracardi/worker/misc/base_64.py``), a document it cannot convert is dead lettered, and
Tracardi's 070_to_071 plan migrates a small 0.7.0 installation."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.roles.upgrade.migration.conftest import install_cli_targets, run_to_end, submit
from tests.roles.upgrade.migration.test_tracardi_plans import plan_entries, plan_path
from tracardi_daemon.cli import main
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.upgrade.migration.plan import Plan
from tracardi_daemon.roles.upgrade.migration.plan_files import load_plan
from tracardi_daemon.roles.upgrade.migration.tracardi_plan import read_tracardi_plan
from tracardi_daemon.roles.upgrade.migration.tracardi_workers import (
    target_tokens,
    tracardi_b64_decode,
    tracardi_b64_encode,
)
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["start_role"]

VALIDATION_STEP = 1  # 070_to_071's event_management_migration
USER_STEP = 3  # 070_to_071's user step


def _b64_gzip(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode())).decode()


def _index(es: Elasticsearch, index: str, documents: dict[str, dict[str, Any]]) -> None:
    es.indices.create(index=index, mappings={"properties": {"id": {"type": "keyword"}}})
    operations: list[dict[str, Any]] = []
    for doc_id, document in documents.items():
        operations += [{"index": {"_index": index, "_id": doc_id}}, document]
    es.bulk(operations=operations, refresh=True)


def _migrate(es: Elasticsearch, redis: RedisClient, settings: Settings, plan: Plan,
             start: RoleStarter, **options: Any) -> TaskRecord:
    record = submit(redis, es, settings, plan, **options)
    role, ctx = start(UpgradeRole, settings)
    return run_to_end(role, ctx, TaskStore(redis, es, settings), record.id)


def _written(es: Elasticsearch, index: str) -> dict[str, dict[str, Any]]:
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=100)["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def _step_plan(number: int, prefix: str) -> tuple[Plan, dict[str, Any]]:
    entry = plan_entries("070_to_071")[number]
    return read_tracardi_plan([entry], "070", "071", from_tenant=f"{prefix}src",
                              to_tenant=f"{prefix}dst"), entry


def _decoded_validation(value: str) -> str:
    """Tracardi's ``b64_encoder``: standard base64 with padding (``b64encode``; validate
    refuses the url-safe alphabet) of gzip at level 9 (gzip.compress's default: the
    header's XFL byte 2) of the JSON text."""
    raw = base64.b64decode(value, validate=True)
    assert raw[:4] == b"\x1f\x8b\x08\x00" and raw[8:10] == b"\x02\xff"  # no name, level 9
    return gzip.decompress(raw).decode()


def test_validation_schemas_are_reencoded_as_tracardi_and_a_broken_one_dead_lettered(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    plan, entry = _step_plan(VALIDATION_STEP, prefix)
    source = f"070.{prefix}src.tracardi-validation-schema"
    _index(es, source, {
        "on": {"id": "on", "event_type": "page-view", "enabled": True,
               "validation": _b64_gzip('{"type": "object", "required": ["id"]}')},
        # b64_decoder: a gunzip failure (OSError) reads the base64's bytes as they are
        "off": {"id": "off", "event_type": "click", "enabled": False,
                "validation": base64.b64encode(b'{"type": "string"}').decode()},
        # no id field: Tracardi's pager sets id = _id on every record it writes
        "none": {"event_type": "x", "enabled": True, "validation": None},
        "padding": {"id": "padding", "enabled": True, "validation": "abc"},
        "text": {"id": "text", "enabled": True,
                 "validation": base64.b64encode(b"not json").decode()}})
    done = _migrate(es, redis_client, settings, plan, start_role)
    assert (done.status, done.total, done.done, done.failed) == ("finished", 5, 3, 2)
    written = _written(es, f"071.{prefix}dst.tracardi-event-management")
    assert sorted(written) == ["none", "off", "on"]
    # json.dumps' default separators; the plan's script then sets tags to []
    assert _decoded_validation(written["on"].pop("validation")) == (
        '{"json_schema": {"type": "object", "required": ["id"]}, "enabled": true}')
    assert _decoded_validation(written["off"].pop("validation")) == (
        '{"json_schema": {"type": "string"}, "enabled": false}')
    # b64_decoder(None) is None
    assert _decoded_validation(written["none"].pop("validation")) == (
        '{"json_schema": null, "enabled": true}')
    assert written == {
        "on": {"id": "on", "event_type": "page-view", "enabled": True, "tags": []},
        "off": {"id": "off", "event_type": "click", "enabled": False, "tags": []},
        "none": {"id": "none", "event_type": "x", "enabled": True, "tags": []}}
    dead = {letter.payload["document_id"]: letter
            for letter in DeadLetters(redis_client, prefix, UPGRADE_QUEUE).oldest(10)}
    assert sorted(dead) == ["padding", "text"]
    for doc_id, letter in dead.items():
        assert letter.payload["step"] == entry["id"] and letter.payload["index"] == source
        assert letter.reason.startswith(
            f"step {entry['id']!r}, {source}, document {doc_id!r}: worker "
            "validation_schema_reindex_071: field 'validation' ("), letter.reason
    assert "Incorrect padding" in dead["padding"].reason
    assert "JSONDecodeError" in dead["text"].reason


def test_users_lose_their_070_token_and_keep_the_one_in_the_target(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    plan, _ = _step_plan(USER_STEP, prefix)
    _index(es, f"070.{prefix}src.tracardi-user", {
        "u1": {"id": "u1", "email": "a@example.com", "token": "070-token-1",
               "expiration_timestamp": 1700000000},
        "u2": {"id": "u2", "email": "b@example.com", "token": "070-token-2"},
        "u3": {"id": "u3", "email": "c@example.com"}})
    done = _migrate(es, redis_client, settings, plan, start_role)
    assert (done.status, done.done, done.failed) == ("finished", 3, 0)
    target = f"071.{prefix}dst.tracardi-user"
    # no user in the target yet: token null; the plan's script nulls expiration_timestamp
    assert _written(es, target) == {
        doc_id: {"id": doc_id, "email": email, "token": None, "expiration_timestamp": None}
        for doc_id, email in (("u1", "a@example.com"), ("u2", "b@example.com"),
                              ("u3", "c@example.com"))}
    # 0.7.1 issues u2 a token; the migration repeated keeps it
    es.update(index=target, id="u2", doc={"token": "071-token"}, refresh=True)
    again = _migrate(es, redis_client, settings, plan, start_role, force=True)
    assert (again.status, again.done, again.failed) == ("finished", 3, 0)
    tokens = {doc_id: user["token"] for doc_id, user in _written(es, target).items()}
    assert tokens == {"u1": None, "u2": "071-token", "u3": None}


def test_target_tokens_come_from_one_read_of_the_target(
        es: Elasticsearch, prefix: str) -> None:
    target = f"071.{prefix}dst.tracardi-user"
    _index(es, target, {"u1": {"id": "u1", "token": "t1"}, "u2": {"id": "u2"},
                        "u4": {"id": "u4", "token": None}})
    assert target_tokens(es, target, ["u1", "u2", "u3", "u4"]) == {"u1": "t1", "u4": None}
    assert target_tokens(es, f"071.{prefix}dst.tracardi-none", ["u1"]) == {}


def _installation_070(es: Elasticsearch, tenant: str) -> dict[str, int]:
    """A few documents in each of a handful of the indices 070_to_071 names (staging,
    and production for users); index -> documents."""
    indices: dict[str, dict[str, dict[str, Any]]] = {
        f"070.{tenant}.tracardi-validation-schema": {
            "v1": {"id": "v1", "enabled": True, "validation": _b64_gzip('{"a": 1}')},
            "v2": {"id": "v2", "enabled": True, "validation": "abc"}},  # dead lettered
        f"070.{tenant}.tracardi-user": {"u1": {"id": "u1", "token": "old"},
                                        "u2": {"id": "u2"}},
        f"prod-070.{tenant}.tracardi-user": {"p1": {"id": "p1", "token": "old"}},
        f"070.{tenant}.tracardi-source": {"s1": {"id": "s1", "type": "web"}},
        f"070.{tenant}.tracardi-flow": {"f1": {"id": "f1", "enabled": True}},
        f"070.{tenant}.tracardi-event-2022-1": {
            "e1": {"id": "e1", "indexed": True, "traits": {"x": 1}},
            "e2": {"id": "e2", "traits": {}}},
        f"070.{tenant}.tracardi-profile-2022-1": {"pr1": {"id": "pr1"}}}
    for index, documents in indices.items():
        _index(es, index, documents)
    return {index: len(documents) for index, documents in indices.items()}


def test_070_to_071_migrates_a_small_070_installation(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter) -> None:
    plan = load_plan(plan_path("070_to_071"), from_tenant=f"{prefix}src",
                     to_tenant=f"{prefix}dst")
    counts = _installation_070(es, f"{prefix}src")
    done = _migrate(es, redis_client, settings, plan, start_role)
    assert (done.status, done.total, done.done, done.failed) == (
        "finished", sum(counts.values()), sum(counts.values()) - 1, 1)
    dst = f"071.{prefix}dst"
    assert sorted(_written(es, f"{dst}.tracardi-event-management")) == ["v1"]
    assert _written(es, f"prod-{dst}.tracardi-user") == {
        "p1": {"id": "p1", "token": None, "expiration_timestamp": None}}
    assert _written(es, f"{dst}.tracardi-source")["s1"] == {
        "id": "s1", "type": "rest", "locked": False, "manual": None, "tags": ["rest", "api"]}
    assert _written(es, f"{dst}.tracardi-flow") == {"f1": {"id": "f1"}}
    assert _written(es, f"{dst}.tracardi-event-2022-1") == {
        "e1": {"id": "e1", "traits": {}}, "e2": {"id": "e2", "traits": {}}}
    assert sorted(_written(es, f"{dst}.tracardi-profile-2022-1")) == ["pr1"]


def test_the_encoding_is_pythons_gzip_compress_as_tracardi_calls_it_but_for_the_time() -> None:
    """``b64_encoder`` is ``b64encode(gzip.compress(json.dumps(data, default=str)))``;
    the daemon's bytes differ only in the header's time (bytes 4-7), which it writes 0."""
    data = {"json_schema": {"é": [1, 2.5, None]}, "enabled": True}
    written = base64.b64decode(tracardi_b64_encode(data), validate=True)
    tracardis = bytearray(gzip.compress(json.dumps(data).encode(), mtime=1_700_000_000))
    tracardis[4:8] = b"\x00\x00\x00\x00"
    assert written == bytes(tracardis)
    assert tracardi_b64_decode(tracardi_b64_encode(data)) == data


def test_migrate_plan_names_the_worker_of_a_step(
        es: Elasticsearch, settings: Settings, prefix: str, elastic_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _installation_070(es, f"{prefix}src")
    install_cli_targets(es, plan_path("070_to_071"), f"{prefix}src", prefix)
    env = {"TENANT_NAME": prefix, "ELASTIC_HOST": elastic_url}
    code = main(["migrate", "plan", "--plan", str(plan_path("070_to_071")),
                 "--from-tenant", f"{prefix}src"], environ=env)
    shown = capsys.readouterr().out
    assert code == 0, shown
    assert "refused" not in shown
    user, validation = (plan_entries("070_to_071")[number]["id"]
                        for number in (USER_STEP, VALIDATION_STEP))
    assert (f"step {user} (tracardi-user): daemon copy (worker user_reindex_071, then "
            f"painless, interpreted)\n  070.{prefix}src.tracardi-user (2 docs) -> "
            f"071.{prefix}.tracardi-user\n  prod-070.{prefix}src.tracardi-user (1 docs) -> "
            f"prod-071.{prefix}.tracardi-user\n") in shown
    assert (f"step {validation} (tracardi-validation-schema): daemon copy (worker "
            "validation_schema_reindex_071, then painless, interpreted)\n") in shown
