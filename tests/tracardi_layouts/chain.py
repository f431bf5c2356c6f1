"""What the end-to-end tests of the roles beside Tracardi share: the roles of the chain
stepped in turn, Tracardi-style writes, and the checks that nothing was refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import helpers

from tests.conftest import RoleStarter
from tests.receivers import ScriptedServer
from tests.tracardi_layouts import documents as docs
from tests.tracardi_layouts.install import TracardiInstall
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import (
    DISPATCH_QUEUE,
    MAPPING_QUEUE,
    PROFILE_CHANGED_QUEUE,
    SEGMENT_CHANGES_QUEUE,
)
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import EventToProfile
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.dispatch.role import DispatchRole
from tracardi_daemon.roles.mapping.jobs import JobSpec, submit
from tracardi_daemon.roles.mapping.role import MappingRole
from tracardi_daemon.roles.segmentation.role import SegmentationRole
from tracardi_daemon.roles.trigger.role import TriggerRole

PROFILE_ID = "p-older"
MACHINE_NAME = "gold-customers"  # the segment the chain's purchase puts the profile in
ROLES = (MappingRole, SegmentationRole, TriggerRole, DispatchRole)
QUEUES = (MAPPING_QUEUE, PROFILE_CHANGED_QUEUE, SEGMENT_CHANGES_QUEUE, DISPATCH_QUEUE)


def put(install: TracardiInstall, name: str, *documents: dict[str, Any],
        index: str | None = None) -> None:
    """Index documents as Tracardi does (into ``index``, by default its write index),
    visible on return (refreshed now: Tracardi's event index refreshes every 10 s)."""
    target = index or install.indices[name].write_index
    helpers.bulk(install.elastic, ({"_index": target, "_id": document["id"],
                                    "_source": document} for document in documents),
                 refresh=True)


def add_event(install: TracardiInstall, event_id: str, **properties: Any) -> str:
    """A purchase of the profile, in the event partition of now; returns that index."""
    index = install.indices["event"].write_index
    put(install, "event", docs.event_document(
        install.version, event_id, profile_id=PROFILE_ID, session_id="s-1",
        event_type="purchase", properties=properties, when=datetime.now(UTC)), index=index)
    return index


class Roles:
    """The four roles of the chain, stepped in turn on the test's thread."""

    def __init__(self, start: RoleStarter, settings: Settings) -> None:
        self.started = [start(kind, settings) for kind in ROLES]

    def run_until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> float:
        """Step until ``predicate`` holds; returns the seconds it took."""
        began = time.monotonic()
        while not predicate():
            assert time.monotonic() - began < timeout_s, "condition not met in time"
            for role, ctx in self.started:
                role.step(ctx.clock())
        return time.monotonic() - began

    def failed(self) -> dict[str, int]:
        return {ctx.name: ctx.counters.failed for _, ctx in self.started
                if ctx.counters.failed}


@pytest.fixture
def roles(start_role: RoleStarter, settings: Settings) -> Roles:
    return Roles(start_role, settings)


def stored(install: TracardiInstall, index: str, document_id: str) -> dict[str, Any]:
    source: dict[str, Any] = install.elastic.get(index=index, id=document_id)["_source"]
    return source


def assert_accepted_as_it_is(install: TracardiInstall, index: str, document_id: str) -> None:
    """Index the stored document again, verbatim: a strict mapping refuses (400,
    strict_dynamic_mapping_exception) any field it does not declare."""
    install.elastic.index(index=index, id=document_id,
                          document=stored(install, index, document_id), refresh=True)


def assert_nothing_failed(settings: Settings, roles: Roles, receiver: ScriptedServer) -> None:
    redis, tenant = roles.started[0][1].redis, settings.tracardi.tenant
    dead = {queue: [letter.reason for letter in DeadLetters(redis, tenant, queue).oldest(10)]
            for queue in QUEUES}
    assert dead == {queue: [] for queue in QUEUES}
    assert roles.failed() == {}
    with receiver.lock:
        assert all(post.path == "/track" for post in receiver.received)


def posts(receiver: ScriptedServer) -> list[Any]:
    with receiver.lock:
        return [post.json() for post in receiver.received]


def put_batch_profiles(install: TracardiInstall, older: str, current: str) -> None:
    """Profiles for the batch paths: three in the older partition, one in the current."""
    version = install.version
    put(install, "profile", *[{**docs.profile_document(version, profile_id),
                               "stats": {"visits": visits, "views": 1, "counters": {}}}
                              for profile_id, visits in ((PROFILE_ID, 5), ("p-few", 1))],
        docs.profile_document(version, "p-top", traits={"level": "Top Tier"}), index=older)
    put(install, "profile", {**docs.profile_document(version, "p-current"),
                             "stats": {"visits": 7, "views": 1, "counters": {}}},
        index=current)


def run_batch_paths(start: RoleStarter, settings: Settings, install: TracardiInstall,
                    receiver: ScriptedServer) -> tuple[Roles, list[str]]:
    """A mapping job of ``etp-purchase`` and passes of the live segments ``ls-returning``
    and ``ls-top``, with the live mapping off, run until each task is finished and the
    rule fired; the roles and the task ids."""
    roles = Roles(start, replace(settings, mapping=replace(settings.mapping, live=False)))
    redis, tenant = roles.started[0][1].redis, settings.tracardi.tenant
    tasks = TaskStore(redis, install.elastic, settings)
    store = DefinitionStore(install.elastic, settings)
    try:
        definition = store.get(EventToProfile, "etp-purchase")
    finally:
        store.close()
    assert definition is not None
    job = submit(tasks, WorkQueue(redis, tenant, MAPPING_QUEUE), JobSpec((definition,)),
                 "Purchases to profiles")
    segmentation = roles.started[1][0]
    passes = [segmentation.queue_pass(f"live-segment:{key}") for key in ("ls-returning",
                                                                        "ls-top")]
    assert None not in passes

    def finished(task_id: str) -> bool:
        record = tasks.get(task_id)
        return record is not None and record.status == "finished"

    task_ids = [job.id, *passes]
    roles.run_until(lambda: all(finished(task_id) for task_id in task_ids))
    roles.run_until(lambda: len(posts(receiver)) == 1)  # gold: the rule fired
    return roles, task_ids


def assert_batch_results(install: TracardiInstall, older: str, current: str,
                         event_index: str) -> None:
    """What the batch paths wrote, each profile in its own partition and accepted by the
    strict mapping as it is."""
    assert stored(install, older, PROFILE_ID)["traits"] == {"plan": "gold", "tags": ["b"]}
    assert sorted(stored(install, older, PROFILE_ID)["segments"]) == [
        MACHINE_NAME, "returning"]
    assert stored(install, older, "p-few")["segments"] == []
    assert stored(install, older, "p-top")["segments"] == ["top-tier"]
    assert stored(install, current, "p-current")["segments"] == ["returning"]
    assert not install.elastic.exists(index=current, id=PROFILE_ID)
    for index, document_id in ((older, PROFILE_ID), (older, "p-few"), (older, "p-top"),
                               (current, "p-current"), (event_index, "ev-1")):
        assert_accepted_as_it_is(install, index, document_id)
