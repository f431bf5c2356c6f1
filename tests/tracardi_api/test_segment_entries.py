"""Beside Tracardi 0.8.2's own API, the whole chain: a segment made through /segment, a
flow (Start -> Increase views -> Update profile) and a GUI-shaped segment-add rule; the
daemon's segmentation (following Tracardi's saves), trigger and dispatch roles. The
flow runs in Tracardi's engine right after the daemon's write, and saves the profile
it loaded: it must load the daemon's write (else it saves the segment away and the next
evaluation enters it again), and an entry is announced once however often Tracardi's
saves race the daemon's. A segment Tracardi's collector adds itself starts the flow too,
once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.tracardi_api.api import ApiClient, ApiService, unique, wait_for
from tests.tracardi_api.flows import make_flow, make_segment_rule
from tests.tracardi_api.state import follower_keys, fresh
from tests.tracardi_api.test_segment_triggers import delete_made
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    DispatchSettings,
    QueueSettings,
    SegmentationSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import (
    DISPATCH_QUEUE,
    PROFILE_CHANGED_QUEUE,
    SEGMENT_CHANGES_QUEUE,
    SEGMENTATION_QUEUE,
)
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Segment
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.dispatch.role import DispatchRole
from tracardi_daemon.roles.segmentation.passes import pass_spec, submit_pass
from tracardi_daemon.roles.segmentation.role import SegmentationRole
from tracardi_daemon.roles.trigger.role import TriggerRole

__all__ = ["start_role"]
pytestmark = [pytest.mark.tracardi_api, pytest.mark.timeout(900)]

TRAIT = "follow_tier"  # the follow test's trait: one name for every run



@pytest.fixture
def settings(tracardi_service: ApiService) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tracardi_service.tenant, db_version="0820",
                                  layout="tracardi-0.8", api_url=tracardi_service.url),
        segmentation=SegmentationSettings(poll_interval_s=0.05, follow_late_arrival_s=30.0,
                                          follow_recheck_every_s=1.0),
        queue=QueueSettings(poll_interval_s=0.05, batch_size=10),
        dispatch=DispatchSettings(flow_python=str(tracardi_service.python),
                                  flow_env_file=str(tracardi_service.env_file),
                                  max_attempts=5, retry_backoff_initial_s=0.5,
                                  retry_backoff_max_s=1.0),
        definitions=DefinitionsSettings(refresh_s=0.5))


@pytest.fixture
def made(tracardi: ApiClient, settings: Settings,
         redis_client: RedisClient) -> Iterator[dict[str, list[str]]]:
    things: dict[str, list[str]] = {"rule": [], "flow": [], "segment": [],
                                    "event-to-profile": [], "event-source": [], "profile": []}
    with fresh(redis_client, follower_keys(settings.tracardi.tenant)):
        yield things
    delete_made(tracardi, things)


def state(tracardi: ApiClient, profile_id: str) -> tuple[int, list[str]] | None:
    """(stats.views, segments) as GET /profile gives them; None before it answers."""
    answer = tracardi.profile(profile_id)
    if answer.status_code != 200:
        return None
    body: dict[str, Any] = answer.json()
    return int((body.get("stats") or {}).get("views") or 0), list(body.get("segments") or [])


class Daemon:
    """The three roles, stepped in turn, beside Tracardi."""

    def __init__(self, settings: Settings, starter: RoleStarter, redis: RedisClient) -> None:
        self.settings = settings
        self.roles = [starter(cls, settings) for cls in (SegmentationRole, TriggerRole,
                                                         DispatchRole)]
        tenant = settings.tracardi.tenant
        self._queues = [WorkQueue(redis, tenant, name) for name in (
            PROFILE_CHANGED_QUEUE, SEGMENTATION_QUEUE, SEGMENT_CHANGES_QUEUE, DISPATCH_QUEUE)]
        self._redis = redis

    def step(self) -> None:
        for role, ctx in self.roles:
            role.step(ctx.clock())

    def idle(self) -> bool:
        stats = [queue.stats() for queue in self._queues]
        return all(s.lag + s.retrying + s.pending == 0 for s in stats)

    def settle(self, tracardi: ApiClient, profile_id: str,
               until: tuple[int, list[str]]) -> None:
        """Step until the profile shows ``until`` and the queues are empty, and then on
        past the follower's next look at Tracardi's saves (a save of the flow's seen and
        evaluated again), which must change nothing."""
        def reached() -> bool | None:
            self.step()
            return True if self.idle() and state(tracardi, profile_id) == until else None

        wait_for(reached, f"{profile_id} at {until}", timeout_s=120)
        for _ in range(3):  # three follower looks, past Tracardi's 1 s profile refresh
            wait_for(lambda: (self.step(), None)[1] if not self.idle() else True,
                     "the queues to drain", timeout_s=60)
            deadline = self.roles[0][1].clock() + 1.5
            while self.roles[0][1].clock() < deadline:
                self.step()

    def run_pass(self, elastic: Elasticsearch, redis: RedisClient, segment: Segment) -> None:
        tasks = TaskStore(redis, elastic, self.settings)
        queue = WorkQueue(redis, self.settings.tracardi.tenant, SEGMENTATION_QUEUE)
        clock = self.roles[0][1].clock()
        spec = pass_spec(segment, [], now_iso=_iso(clock))
        submit_pass(tasks, queue, spec, "test pass")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def gui_made(tracardi: ApiClient, made: dict[str, list[str]], *, collector_adds: bool
             ) -> tuple[str, str, str, str]:
    """A source, a tier mapping, a segment on the tier (evaluated by Tracardi's collector
    only if ``collector_adds``), a flow and a segment-add rule on the segment; returns
    (source, tier event type, segment id, machine name)."""
    source_id, event_type = unique("src"), unique("tier")
    tracardi.add_rest_source(source_id)
    made["event-source"].append(source_id)
    mapping_id = unique("etp")
    tracardi.post("/event-to-profile", {
        "id": mapping_id, "name": f"Tier from {event_type}",
        "event_type": {"id": event_type, "name": event_type}, "enabled": True, "config": {},
        "event_to_profile": [{"event": {"value": "properties.tier", "ref": True}, "op": 0,
                              "profile": {"value": f"traits.{TRAIT}", "ref": True}}]})
    made["event-to-profile"].append(mapping_id)
    segment_id, name = str(uuid.uuid4()), unique("gold")
    # an event type nobody tracks keeps Tracardi's collector from evaluating it
    evaluated_on = event_type if collector_adds else unique("never")
    tracardi.post("/segment", {"id": segment_id, "name": name, "description": "",
                               "eventType": [evaluated_on], "enabled": True,
                               "condition": f'profile@traits.{TRAIT} == "gold"'})
    made["segment"].append(segment_id)
    flow_id, rule_id = unique("flow"), unique("rule")
    make_flow(tracardi, flow_id, f"Welcome {flow_id}")
    made["flow"].append(flow_id)
    # the rule names the segment as Tracardi's rule form does: id and name
    make_segment_rule(tracardi, rule_id, name.lower(), flow_id, f"Welcome {flow_id}")
    made["rule"].append(rule_id)
    return source_id, event_type, segment_id, name.lower()


def test_the_daemons_entry_runs_the_flow_once_and_the_flow_keeps_the_segment(
        tracardi: ApiClient, settings: Settings, made: dict[str, list[str]],
        start_role: RoleStarter, redis_client: RedisClient,
        elastic_client: Elasticsearch) -> None:
    source_id, event_type, segment_id, segment = gui_made(tracardi, made,
                                                          collector_adds=False)
    session_id = unique("session")
    profile_id = tracardi.track(source_id, session_id,
                                [{"type": event_type, "properties": {"tier": "gold"}}])
    made["profile"].append(profile_id)
    wait_for(lambda: True if state(tracardi, profile_id) == (0, []) else None,
             f"{profile_id} tracked, in no segment")
    daemon = Daemon(settings, start_role, redis_client)
    # the follower sees Tracardi's save, the daemon adds the segment, the flow runs
    daemon.settle(tracardi, profile_id, until=(1, [segment]))

    # Tracardi's saves racing the daemon's: page views tracked while passes run again
    stop = threading.Event()

    def visits() -> None:
        while not stop.is_set():
            tracardi.track(source_id, session_id, [{"type": "page-view", "properties": {}}],
                           profile_id=profile_id)

    visitor = threading.Thread(target=visits, daemon=True)
    visitor.start()
    try:
        store = DefinitionStore(elastic_client, settings)
        try:
            definition = store.get(Segment, segment_id)
        finally:
            store.close()
        assert definition is not None and definition.machine_name == segment
        for _ in range(2):
            daemon.run_pass(elastic_client, redis_client, definition)
            wait_for(lambda: (daemon.step(), None)[1] if not daemon.idle() else True,
                     "the pass", timeout_s=60)
    finally:
        stop.set()
        visitor.join(timeout=30)
    daemon.settle(tracardi, profile_id, until=(1, [segment]))
    assert state(tracardi, profile_id) == (1, [segment])


def test_a_segment_tracardis_collector_adds_runs_the_flow_once(
        tracardi: ApiClient, settings: Settings, made: dict[str, list[str]],
        start_role: RoleStarter, redis_client: RedisClient) -> None:
    source_id, event_type, _, segment = gui_made(tracardi, made, collector_adds=True)
    daemon = Daemon(settings, start_role, redis_client)
    daemon.step()  # the follower starts before Tracardi saves the profile
    session_id = unique("session")
    profile_id = tracardi.track(source_id, session_id,
                                [{"type": event_type, "properties": {"tier": "gold"}}])
    made["profile"].append(profile_id)
    daemon.settle(tracardi, profile_id, until=(1, [segment]))
    # more events for the profile: Tracardi keeps it in the segment, no second run
    tracardi.track(source_id, session_id, [{"type": event_type, "properties": {"tier": "gold"}}],
                   profile_id=profile_id)
    daemon.settle(tracardi, profile_id, until=(1, [segment]))

