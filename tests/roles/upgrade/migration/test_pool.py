"""A migration whose batches are transformed in the process pool writes the same
documents, and dead-letters the same documents with the same reasons, as one whose
batches are transformed in the calling thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.roles.upgrade.migration.conftest import run_to_end, submit
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.upgrade.migration.plan_files import load_plan
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["start_role"]

DOCUMENTS = 200  # 8 batches of 25; every 9th has a rank no integer conversion accepts


def _seed(es: Elasticsearch, prefix: str) -> None:
    source = f"100.{prefix}src.tracardi-segment"
    es.indices.create(index=source, mappings={"properties": {"id": {"type": "keyword"}}})
    operations: list[dict[str, Any]] = []
    for n in range(DOCUMENTS):
        rank = f"x{n}" if n % 9 == 0 else str(n)
        operations += [{"index": {"_index": source, "_id": f"s{n:03d}"}},
                       {"id": f"s{n:03d}", "rank": rank, "contact": {"email": f"u{n}@x.io"},
                        "mapping": {"old": n}}]
    es.bulk(operations=operations, refresh=True)


def _migrate(es: Elasticsearch, redis: RedisClient, settings: Settings, prefix: str,
             target: str, start_role: RoleStarter, tmp_path: Path,
             pool: CpuPool) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """The target's documents by id and the dead letters' (document, reason)."""
    path = tmp_path / f"{target}.toml"
    path.write_text(f'''
from = {{version = "100", tenant = "{prefix}src", style = "tracardi"}}
to = {{version = "101", tenant = "{prefix}{target}", style = "tracardi"}}
[[step]]
id = "segments"
index = "tracardi-segment"
transforms = [{{op = "move", from = "contact.email", to = "contact.email.main"}},
              {{op = "delete", path = "mapping"}},
              {{op = "convert", path = "rank", to = "integer"}}]
''')
    record = submit(redis, es, settings, load_plan(path))
    role, ctx = start_role(UpgradeRole, settings, cpu_pool=pool)
    done = run_to_end(role, ctx, TaskStore(redis, es, settings), record.id)
    failed = DOCUMENTS // 9 + 1
    assert (done.status, done.done, done.failed) == ("finished", DOCUMENTS - failed, failed)
    index = f"101.{prefix}{target}.tracardi-segment"
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=DOCUMENTS, query={"match_all": {}})["hits"]["hits"]
    dead = DeadLetters(redis, prefix, UPGRADE_QUEUE).oldest(DOCUMENTS)
    redis.delete(*redis.keys(f"*{prefix}:q:{UPGRADE_QUEUE}*"))  # the next run's own
    return ({hit["_id"]: hit["_source"] for hit in hits},
            {(letter.payload["document_id"], letter.reason.replace(target, "<target>"))
             for letter in dead})


def test_a_migration_through_the_pool_equals_the_inline_migration(
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
    assert documents["s001"] == {"id": "s001", "rank": 1,
                                 "contact": {"email": {"main": "u1@x.io"}}}
    assert ("s009", f"step 'segments', 100.{prefix}src.tracardi-segment, document 's009': "
            "rank: cannot convert 'x9' to integer: could not convert string to float: "
            "'x9'") in dead
