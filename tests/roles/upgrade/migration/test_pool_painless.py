"""A migration with a painless step transformed in the process pool writes the same
documents, skips the same ``ctx.op = 'noop'`` ones and dead-letters the same documents
with the same reasons (line:column from a worker's interpreter) as one transformed in
the calling thread; a compiled script pickled to a worker runs as the original does."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.roles.upgrade.migration.conftest import run_to_end, submit
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.painless import ScriptFailed, compile_script
from tracardi_daemon.roles.upgrade.migration.plan_files import load_plan
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["start_role"]

DOCUMENTS = 200  # 8 batches of 25; every 9th has a null contact, every 10th is skipped
# line 3 reads a field of contact: a NullPointerException where contact is null
SCRIPT = """Map row = new HashMap();
row.putAll(ctx._source);
row.email = ['main': ctx._source.contact.email];
if (ctx._source.rank % 10 == 5) { ctx.op = 'noop'; }
row.remove('contact');
ctx._source = row;"""
FAILED = {f"s{n:03d}" for n in range(DOCUMENTS) if n % 9 == 0}
SKIPPED = {f"s{n:03d}" for n in range(DOCUMENTS) if n % 10 == 5} - FAILED


def _seed(es: Elasticsearch, prefix: str) -> None:
    source = f"100.{prefix}src.tracardi-segment"
    es.indices.create(index=source, mappings={"properties": {"id": {"type": "keyword"}}})
    operations: list[dict[str, Any]] = []
    for n in range(DOCUMENTS):
        contact = None if n % 9 == 0 else {"email": f"u{n}@x.io"}
        operations += [{"index": {"_index": source, "_id": f"s{n:03d}"}},
                       {"id": f"s{n:03d}", "rank": n, "contact": contact}]
    es.bulk(operations=operations, refresh=True)


def _migrate(es: Elasticsearch, redis: RedisClient, settings: Settings, prefix: str,
             target: str, start_role: RoleStarter, tmp_path: Path,
             pool: CpuPool) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """The target's documents by id and the dead letters' (document, reason)."""
    path = tmp_path / f"{target}.toml"
    script = SCRIPT.replace("\n", "\\n")
    path.write_text(f'''
from = {{version = "100", tenant = "{prefix}src", style = "tracardi"}}
to = {{version = "101", tenant = "{prefix}{target}", style = "tracardi"}}
[[step]]
id = "segments"
index = "tracardi-segment"
painless = "{script}"
''')
    record = submit(redis, es, settings, load_plan(path))
    role, ctx = start_role(UpgradeRole, settings, cpu_pool=pool)
    done = run_to_end(role, ctx, TaskStore(redis, es, settings), record.id)
    assert (done.status, done.done, done.failed) == (
        "finished", DOCUMENTS - len(FAILED), len(FAILED)), done.last_error
    index = f"101.{prefix}{target}.tracardi-segment"
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=DOCUMENTS, query={"match_all": {}})["hits"]["hits"]
    dead = DeadLetters(redis, prefix, UPGRADE_QUEUE).oldest(DOCUMENTS)
    redis.delete(*redis.keys(f"*{prefix}:q:{UPGRADE_QUEUE}*"))  # the next run's own
    return ({hit["_id"]: hit["_source"] for hit in hits},
            {(letter.payload["document_id"], letter.reason) for letter in dead})


def test_a_painless_migration_through_the_pool_equals_the_inline_migration(
        es: Elasticsearch, redis_client: RedisClient, settings: Settings, prefix: str,
        start_role: RoleStarter, tmp_path: Path) -> None:
    _seed(es, prefix)
    pool = CpuPool(2, inline_below=1)  # every batch goes to the workers
    try:
        pooled = _migrate(es, redis_client, settings, prefix, "pooled", start_role,
                          tmp_path, pool)
        assert pool.pids(), "the migration never used the pool's workers"
    finally:
        pool.shutdown()
    inline = _migrate(es, redis_client, settings, prefix, "inline", start_role, tmp_path,
                      CpuPool(1))
    assert pooled == inline
    documents, dead = pooled
    assert set(documents) == {f"s{n:03d}" for n in range(DOCUMENTS)} - FAILED - SKIPPED
    assert documents["s001"] == {"id": "s001", "rank": 1, "email": {"main": "u1@x.io"}}
    reasons = dict(dead)
    assert set(reasons) == FAILED
    for doc_id, reason in reasons.items():
        assert reason.startswith(f"step 'segments', 100.{prefix}src.tracardi-segment, "
                                 f"document {doc_id!r}: painless line 3:"), reason
        assert "NullPointerException" in reason, reason


def _failure(run: Any) -> tuple[int, int, str]:
    with pytest.raises(ScriptFailed) as caught:
        run({"_source": {"rank": 1, "contact": None}, "_id": "1", "_index": "i",
             "op": "index"})
    return caught.value.line, caught.value.column, caught.value.exception


def test_a_compiled_script_pickles_by_compiling_again() -> None:
    script = compile_script(SCRIPT, "step 'segments'", params={"n": 1})
    again = pickle.loads(pickle.dumps(script))
    assert (again.source, again.where) == (script.source, script.where)
    ctx: dict[str, Any] = {"_source": {"rank": 1, "contact": {"email": "a@b"}}, "_id": "1",
                           "_index": "i", "op": "index"}
    again.run(ctx)
    assert ctx["_source"] == {"rank": 1, "email": {"main": "a@b"}}
    assert _failure(again.run) == _failure(script.run)
    assert _failure(again.run)[0] == 3
