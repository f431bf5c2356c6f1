"""How a step changes each document of a batch: by its Tracardi 0.7.1 worker, its painless
script (interpreted) or its declarative transforms; a large batch on the CPU pool."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from elasticsearch import Elasticsearch

from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.scan import Hit
from tracardi_daemon.roles.upgrade.migration.lanes import WorkItem
from tracardi_daemon.roles.upgrade.migration.plan import Step
from tracardi_daemon.roles.upgrade.migration.scripted import ScriptJob, run_script_batch
from tracardi_daemon.roles.upgrade.migration.tracardi_workers import (
    USER_REINDEX,
    WorkerJob,
    run_worker_batch,
    target_tokens,
)
from tracardi_daemon.roles.upgrade.migration.transforms import (
    Document,
    TransformError,
    transform_batch,
)

_Shared = TypeVar("_Shared")
_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def _on_pool(pool: CpuPool | None, function: Callable[[_Shared, list[_Item]], list[_Result]],
             shared: _Shared, items: list[_Item]) -> list[_Result]:
    return pool.map_chunks(function, shared, items) if pool is not None else function(
        shared, items)


def changed_documents(step: Step, item: WorkItem, hits: list[Hit], *,
                      elastic: Elasticsearch, pool: CpuPool | None
                      ) -> Sequence[Document | TransformError | None]:
    """The batch's documents as they are written, in the order of ``hits``: a document,
    None (a script's ``ctx.op`` said noop or delete) or the TransformError failing it."""
    where = f"step {step.id!r}"
    if step.worker is not None:
        # the user worker keeps the target's tokens: one mget per batch, in this thread
        tokens = (target_tokens(elastic, item.target, [hit.id for hit in hits])
                  if step.worker == USER_REINDEX else {})
        return _on_pool(pool, run_worker_batch,
                        WorkerJob(step.worker, step.painless, where, item.target),
                        [(hit.id, hit.source, tokens.get(hit.id)) for hit in hits])
    if step.painless is not None:
        return _on_pool(pool, run_script_batch, ScriptJob(step.painless, where, item.source),
                        [(hit.id, hit.source) for hit in hits])
    # the hits are this batch's own: transformed without a copy inline (a third of the
    # transform time)
    documents: Sequence[Document | TransformError] = _on_pool(
        pool, transform_batch, step.transforms, [hit.source for hit in hits])
    return documents
