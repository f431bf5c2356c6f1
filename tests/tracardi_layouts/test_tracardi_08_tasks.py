"""Layout tracardi-0.8: the daemon's task records go into Tracardi's own strict
``tracardi-task`` index in the shape Tracardi's GUI reads, and read back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch
from redis import Redis

from tests.tracardi_layouts import documents as docs
from tests.tracardi_layouts.install import TracardiInstall, install_tracardi_elastic
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Task
from tracardi_daemon.model.tasks.store import TaskStore


@pytest.fixture(params=("08x", "0820"))
def tracardi(request: pytest.FixtureRequest, elastic_client: Elasticsearch,
             prefix: str) -> Iterator[TracardiInstall]:
    install = install_tracardi_elastic(elastic_client, request.param, prefix)
    yield install
    install.drop()


def test_a_jobs_progress_lands_in_tracardis_task_index_in_its_shape(
        tracardi: TracardiInstall, redis_client: Redis) -> None:
    settings = Settings(tracardi=TracardiSettings(
        tenant=tracardi.tenant, db_version=tracardi.version, layout="tracardi-0.8"))
    tasks = TaskStore(redis_client, tracardi.elastic, settings)
    record = tasks.create("import", "customers from the shop", {"definition": "shop"})
    assert tasks.start(record.id, "me")
    assert tasks.progress(record.id, done=40, total=100)
    assert tasks.finish(record.id, "finished")
    index = tracardi.indices["task"]
    tracardi.elastic.indices.refresh(index=index.alias)
    stored = tracardi.elastic.get(index=index.alias, id=record.id)
    # written into Tracardi's own index (strict: any other field would have been refused)
    assert stored["_index"] == index.write_index
    document = stored["_source"]
    assert set(document) == {"id", "task_id", "name", "type", "status", "progress", "params",
                             "timestamp"}
    assert (document["task_id"], document["type"], document["status"],
            document["progress"]) == (record.id, "import", "done", 100.0)
    assert document["params"]["definition"] == "shop"
    # read back as a task, beside one that Tracardi's own migration worker wrote
    tracardi.elastic.index(index=index.write_index, id="celery-1", refresh=True,
                           document=docs.worker_task_document("celery-1", name="upgrade"))
    found = {task.id: task for task in DefinitionStore(tracardi.elastic, settings).list(Task)}
    assert (found[record.id].status, found[record.id].progress) == ("finished", 100.0)
    assert found["celery-1"].status == "running"
