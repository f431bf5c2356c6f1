"""Tracardi's 0.8.0 upgrade chain end to end: a 0.8.0-shaped installation (staging and
production, a few documents per index ``080_to_08x`` copies) migrated by the daemon with
``080_to_08x`` and then ``08x_to_0820`` into target indices made first as Tracardi's
install makes them, compared document by document with the same steps' scripts applied
one after the other by the real painless node; the documents a script throws on are the
daemon's dead letters (step, index, id, line) and ones the node throws on too."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from tests.conftest import RoleStarter
from tests.painless.differential import exception_word, tagged
from tests.painless.oracle import Failure, PainlessNode
from tests.painless.plans import PLANS_DIR
from tests.roles.upgrade.migration.conftest import run_to_end, submit
from tests.tracardi_layouts.documents_080 import Document, installation
from tests.tracardi_layouts.plan_targets import create_plan_targets
from tracardi_daemon.config.settings import Settings, TracardiSettings, UpgradeSettings
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.model.tracardi_names import Layout
from tracardi_daemon.roles.upgrade.migration.job import resolve_work
from tracardi_daemon.roles.upgrade.migration.plan import Plan
from tracardi_daemon.roles.upgrade.migration.tracardi_plan import read_tracardi_plan
from tracardi_daemon.roles.upgrade.role import UpgradeRole

REASON = re.compile(r"^step '(?P<step>[^']+)', (?P<index>\S+), document '(?P<id>[^']+)': "
                    r"painless line (?P<line>\d+):(?P<column>\d+): (?P<exception>\w+)")
# the source indices map nothing but the id the daemon reads them in order of: a 0.8.0
# document of any shape fits
SOURCE_MAPPINGS = {"dynamic": False, "properties": {"id": {"type": "keyword"}}}

# the indices seeded in production too: every one a script of either plan reads (the
# production session script of 080_to_08x is not the staging one), one partitioned and
# one single index copied as they are (the other 25 cost time and show nothing new)
PRODUCTION = frozenset({"tracardi-profile", "tracardi-event", "tracardi-session",
                        "tracardi-rule", "tracardi-event_to_profile",
                        "tracardi-event-management", "tracardi-entity",
                        "tracardi-event-reshaping", "tracardi-log", "tracardi-source"})
# (step id, source index, document id, painless line, exception as the node names it);
# the column is not compared: the interpreter places some throws elsewhere on the line
DeadLetter = tuple[str, str, str, int, str]


@pytest.fixture
def settings(prefix: str) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=prefix),
                    upgrade=UpgradeSettings(batch_size=25, poll_interval_s=0.01, lease_s=5.0))


@pytest.fixture
def es(elastic_client: Elasticsearch, settings: Settings) -> Iterator[Elasticsearch]:
    install(elastic_client, settings)
    yield elastic_client


def _plan_entries(name: str) -> list[Any]:
    path = PLANS_DIR / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"Tracardi's upgrade plans are not in {PLANS_DIR} (set TRACARDI_PLANS_DIR)")
    entries: list[Any] = json.loads(path.read_text(encoding="utf-8"))
    return entries


def _scripts(entries: list[Any]) -> dict[str, str]:
    """Step id (as the daemon names a production step: ``<id>-prod``) -> its script; a
    plan's staging and production steps of an index may differ (080_to_08x's session)."""
    return {entry["id"] + ("-prod" if entry["copy_index"].get("production") else ""):
            entry["copy_index"]["script"] for entry in entries
            if isinstance(entry, dict) and entry["copy_index"].get("script")}


@dataclass
class Expected:
    """What one migration must leave: each target index's documents by id, and its dead
    letters."""

    documents: dict[str, dict[str, Document]] = field(default_factory=dict)
    dead: set[DeadLetter] = field(default_factory=set)


def _seed(es: Elasticsearch, tenant: str, indices: list[tuple[str, bool]]) -> None:
    """The 0.8.0 installation: every index in staging, those of PRODUCTION in production
    too, with the same records."""
    actions = []
    for production in (False, True):
        layout = Layout("080", tenant, production)
        for logical, pairs in installation(indices).items():
            if production and logical not in PRODUCTION:
                continue
            for suffix, document in pairs:
                index = layout.index(logical) + (f"-{suffix}" if suffix else "")
                actions.append({"_index": index, "_id": document["id"], "_source": document})
    names = sorted({action["_index"] for action in actions})
    for name in names:
        es.indices.create(index=name, mappings=SOURCE_MAPPINGS,
                          settings={"number_of_shards": 1, "number_of_replicas": 0})
    helpers.bulk(es, actions, refresh=True)


def _expected(es: Elasticsearch, node: PainlessNode, plan: Plan,
              scripts: dict[str, str]) -> Expected:
    """Each source document of ``plan`` through its step's script on the painless node
    (copied as it is without one), in the target index the daemon resolves it to."""
    assert plan.target is not None
    expected = Expected()
    for item in resolve_work(es, plan, plan.target):
        expected.documents.setdefault(item.target, {})
        hits = list(helpers.scan(es, index=item.source, query={"query": {"match_all": {}}}))
        if not hits:
            continue
        script = scripts.get(item.step)
        documents = [hit["_source"] for hit in hits]
        results = node.apply_all(script, documents) if script else documents
        for hit, result in zip(hits, results, strict=True):
            if isinstance(result, Failure):
                assert result.line is not None, f"{hit['_id']}: {result}"
                expected.dead.add((item.step, item.source, hit["_id"], result.line,
                                   result.exception))
            else:
                expected.documents[item.target][hit["_id"]] = result
    return expected


def _migrate(es: Elasticsearch, redis: RedisClient, settings: Settings,
             start_role: RoleStarter, plan: Plan) -> TaskRecord:
    assert plan.target is not None
    made = create_plan_targets(es, plan, plan.target)
    assert made, "the plan resolved to no target index"
    record = submit(redis, es, settings, plan)
    role, ctx = start_role(UpgradeRole, settings)
    return run_to_end(role, ctx, TaskStore(redis, es, settings), record.id)


def _written(es: Elasticsearch, target: Layout) -> dict[str, dict[str, Document]]:
    """Every document of the target tenant's indices, staging and production."""
    pattern = f"{target.version}.{target.tenant}.*,prod-{target.version}.{target.tenant}.*"
    es.indices.refresh(index=pattern)
    found: dict[str, dict[str, Document]] = {
        name: {} for name in es.indices.get(index=pattern, expand_wildcards="all")}
    for hit in helpers.scan(es, index=pattern, query={"query": {"match_all": {}}}):
        found[hit["_index"]][hit["_id"]] = hit["_source"]
    return found


def _dead_letters(redis: RedisClient, tenant: str) -> list[DeadLetter]:
    """The upgrade dead letters, each checked to name its step, index, id and
    line:column as the payload does; then removed, so the next migration's are its own."""
    found = []
    letters = DeadLetters(redis, tenant, UPGRADE_QUEUE).oldest(1000)
    for letter in letters:
        match = REASON.match(letter.reason)
        assert match is not None, letter.reason
        payload = letter.payload
        assert (payload["step"], payload["index"], payload["document_id"]) == (
            match["step"], match["index"], match["id"]), letter.reason
        found.append((match["step"], match["index"], match["id"], int(match["line"]),
                      exception_word(match["exception"])))
    keys = list(redis.scan_iter(match=f"*{tenant}:q:{UPGRADE_QUEUE}*"))
    if keys:
        redis.delete(*keys)
    return found


def _check(es: Elasticsearch, redis: RedisClient, settings: Settings, plan: Plan,
           done: TaskRecord, expected: Expected) -> None:
    assert plan.target is not None
    dead = _dead_letters(redis, settings.tracardi.tenant)
    assert sorted(dead) == sorted(expected.dead), "the daemon's dead letters are not the " \
                                                  "documents the painless node throws on"
    written = sum(len(documents) for documents in expected.documents.values())
    assert (done.status, done.done, done.failed, done.total) == (
        "finished", written, len(dead), written + len(dead)), done.last_error
    got = _written(es, plan.target)
    assert sorted(got) == sorted(expected.documents)
    for index, documents in expected.documents.items():
        for doc_id in sorted(set(documents) | set(got[index])):
            assert tagged(got[index].get(doc_id)) == tagged(documents.get(doc_id)), (
                f"{index} {doc_id}\n  daemon:   {json.dumps(got[index].get(doc_id))}\n"
                f"  painless: {json.dumps(documents.get(doc_id))}")


def test_the_080_chain_migrates_as_the_painless_node_runs_it(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter, painless_node: PainlessNode) -> None:
    first_entries, second_entries = _plan_entries("080_to_08x"), _plan_entries("08x_to_0820")
    first = read_tracardi_plan(first_entries, "080", "08x", from_tenant=f"{prefix}a",
                               to_tenant=f"{prefix}b")
    second = read_tracardi_plan(second_entries, "08x", "0820", from_tenant=f"{prefix}b",
                                to_tenant=f"{prefix}c")
    _seed(es, f"{prefix}a", sorted({(step.index, step.multi) for step in first.steps}))

    expected = _expected(es, painless_node, first, _scripts(first_entries))
    done = _migrate(es, redis_client, settings, start_role, first)
    _check(es, redis_client, settings, first, done, expected)

    expected_next = _expected(es, painless_node, second, _scripts(second_entries))
    done = _migrate(es, redis_client, settings, start_role, second)
    _check(es, redis_client, settings, second, done, expected_next)

    # the chain's shape, beside the comparison: both plans threw on documents, pii moved
    # under data and then the e-mail under main, the months collapsed into the quarter
    assert {doc_id for _, _, doc_id, *_ in expected.dead} == {
        "p-null-pii", "p-no-pii", "r-no-event"}
    assert {doc_id for _, _, doc_id, *_ in expected_next.dead} == {
        "p-two-emails", "ev-two-emails"}
    quarter = expected_next.documents[f"0820.{prefix}c.tracardi-profile-2024-q1"]
    assert sorted(quarter) == ["p-empty", "p-full", "p-some"]
    assert quarter["p-full"]["data"]["contact"]["email"] == {"main": "ada@example.com"}
    entity = expected_next.documents[f"prod-0820.{prefix}c.tracardi-entity"]["en-1"]
    assert "timestamp" not in entity and entity["properties"] == {"color": "red"}
    assert quarter["p-full"]["data"]["pii"] == {"firstname": "Ada", "lastname": "Lovelace",
                                                "display_name": "Lovelace"}
