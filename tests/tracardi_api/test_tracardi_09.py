"""Beside Tracardi 0.9's own API (its definitions in MySQL, the daemon in layout
``tracardi-0.9``): the mapping, trigger and import scenarios of the 0.8.2 tests, driven
through 0.9's endpoints. 0.9 has no segment endpoints, so the trigger's segment is the
daemon's own definition; its ``segment-add`` rule is the one 0.9's ``POST /rule`` stores
in ``workflow_trigger``, and its flow runs in 0.9's own engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from tests.conftest import RoleStarter, start_role
from tests.receivers import LOOPBACK_ALLOWED, ScriptedServer, free_port, http_server
from tests.tracardi_api.api import ApiClient, ApiService, unique, wait_for
from tests.tracardi_api.flows import make_segment_rule
from tests.tracardi_api.test_batch_mapping import (
    Created,
    events_stored,
    plan_mapping,
    profile_with,
    remove_created,
    run_job,
)
from tests.tracardi_api.test_import_resources import (
    Made,
    es_form,
    remove_made,
    run_import,
)
from tests.tracardi_api.test_segment_triggers import (
    delete_made,
    tracked_profile_and_flow,
    views,
)
from tests.tracardi_layouts.documents import segment_document
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    DispatchSettings,
    MappingSettings,
    MysqlSettings,
    QueueSettings,
    SegmentationSettings,
    Settings,
    TracardiSettings,
    UpgradeSettings,
)
from tracardi_daemon.infra.queues import (
    DISPATCH_QUEUE,
    PROFILE_CHANGED_QUEUE,
    SEGMENT_CHANGES_QUEUE,
    work_queue,
)
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import WorkflowTrigger
from tracardi_daemon.model.segment_definitions import Segment
from tracardi_daemon.roles.dispatch.role import DispatchRole
from tracardi_daemon.roles.segmentation.client import profile_changed
from tracardi_daemon.roles.segmentation.role import SegmentationRole
from tracardi_daemon.roles.trigger.role import TriggerRole

__all__ = ["http_server", "start_role"]
pytestmark = [pytest.mark.tracardi_api, pytest.mark.timeout(900)]

DB_VERSION = "09x"
ROWS = 7
# 0.9 moved its importers (tracardi/service/setup/setup_import_types.py names this one)
ELASTIC_IMPORTER_09 = "tracardi.process_engine.importing.elastic_importer.ElasticIndexImporter"



def settings_09(service: ApiService, **sections: Any) -> Settings:
    """The daemon beside the 0.9 API: its tenant and layout, its MySQL database."""
    mysql = service.mysql
    return Settings(
        tracardi=TracardiSettings(tenant=service.tenant, db_version=DB_VERSION,
                                  layout="tracardi-0.9", api_url=service.url),
        mysql=MysqlSettings(host=mysql["host"], port=int(mysql["port"]),
                            username=mysql["user"], password=mysql["password"],
                            database=mysql["database"]),
        **sections)


@pytest.fixture
def created(tracardi09: ApiClient, tracardi09_service: ApiService,
            elastic_client: Elasticsearch) -> Iterator[Created]:
    made = Created()
    yield made
    remove_created(tracardi09, settings_09(tracardi09_service), elastic_client, made)


def test_batch_mapping_over_events_tracardi_09_stored(
        tracardi09: ApiClient, tracardi09_service: ApiService, created: Created,
        start_role: RoleStarter, redis_client: RedisClient,
        elastic_client: Elasticsearch) -> None:
    settings = settings_09(tracardi09_service,
                           mapping=MappingSettings(live=False, poll_interval_s=0.05))
    source_id, event_type = unique("src"), unique("purchase")
    tracardi09.add_rest_source(source_id)
    created.sources.append(source_id)
    session_id = unique("session")
    profile_id = tracardi09.track(source_id, session_id, [
        {"type": event_type, "properties": {"plan": "gold", "amount": 10}}])
    created.profiles.append(profile_id)
    wait_for(lambda: True if tracardi09.profile(profile_id).status_code == 200 else None,
             f"GET /profile/{profile_id} answering 200")
    assert "plan" not in tracardi09.profile(profile_id).json().get("traits", {})

    # made after the events, as 0.9's GUI saves it (in MySQL)
    definition = plan_mapping(tracardi09, elastic_client, settings, event_type, created)
    wait_for(lambda: events_stored(elastic_client, settings, profile_id, 1),
             "the tracked event searchable")

    ended = run_job(start_role, settings, redis_client, elastic_client, definition, profile_id)
    assert (ended.status, ended.failed) == ("finished", 0), ended
    profile = wait_for(lambda: profile_with(tracardi09, profile_id, ("traits", "plan"), "gold"),
                       f"GET /profile/{profile_id} with traits.plan = gold")
    assert profile["id"] == profile_id


@pytest.fixture
def made_09(tracardi09: ApiClient, tracardi09_service: ApiService,
            elastic_client: Elasticsearch) -> Iterator[Made]:
    things = Made()
    yield things
    remove_made(tracardi09, settings_09(tracardi09_service), elastic_client, things)


def test_an_elastic_index_importer_made_through_tracardi_09s_api_uses_its_resource(
        tracardi09: ApiClient, tracardi09_service: ApiService, made_09: Made,
        elastic_client: Elasticsearch, redis_client: RedisClient, start_role: RoleStarter,
        http_server: ScriptedServer) -> None:
    """The resource's test credentials in a debug run; the production ones (a closed
    port) fail the import naming the resource."""
    settings = settings_09(
        tracardi09_service, queue=QueueSettings(max_attempts=1), outbound=LOOPBACK_ALLOWED,
        upgrade=UpgradeSettings(poll_interval_s=0.01, lease_s=5.0, source_connect_timeout_s=2.0))
    index = unique("src")
    made_09.indices.append(index)
    helpers.bulk(elastic_client, ({"_index": index, "_id": f"r{n}",
                                   "_source": {"id": f"r{n}", "n": n}} for n in range(ROWS)),
                 refresh=True)
    resource_id, import_id, closed = unique("res"), unique("imp"), free_port()
    tracardi09.save("/resource", {
        "id": resource_id, "type": "elasticsearch", "name": "CRM cluster",
        "tags": ["elasticsearch"],
        "credentials": {"test": es_form("localhost", 9200),
                        "production": es_form("127.0.0.1", closed)}})
    made_09.resources.append(resource_id)
    tracardi09.save("/import", {
        "id": import_id, "name": "CRM rows", "module": ELASTIC_IMPORTER_09,
        "config": {"source": {"id": resource_id, "name": "CRM cluster"},
                   "index": {"id": index, "name": index}, "batch": 3},
        "api_url": http_server.url, "event_source": {"id": "crm", "name": "CRM"},
        "event_type": "crm-row"})
    made_09.imports.append(import_id)

    ended = run_import(start_role, settings, redis_client, elastic_client, import_id, made_09,
                       debug=True)
    assert (ended.status, ended.done, ended.failed) == ("finished", ROWS, 0), ended.last_error
    assert sorted(request.json()["n"] for request in http_server.received) == list(range(ROWS))

    ended = run_import(start_role, settings, redis_client, elastic_client, import_id, made_09,
                       debug=False)
    error = ended.last_error or ""
    assert (ended.status, ended.done) == ("failed", 0), error
    assert f"resource {resource_id!r} (CRM cluster)" in error
    assert f"127.0.0.1:{closed}" in error
    assert len(http_server.received) == ROWS


@pytest.fixture
def things_09(tracardi09: ApiClient) -> Iterator[dict[str, list[str]]]:
    things: dict[str, list[str]] = {"rule": [], "flow": [], "event-source": [], "profile": []}
    yield things
    delete_made(tracardi09, things)


def trigger_settings(service: ApiService) -> Settings:
    return settings_09(
        service,
        # the follower stays off: the tenant is shared by this file's tests; the entry
        # is announced by the profile-changed messages the test sends
        segmentation=SegmentationSettings(poll_interval_s=0.05, follow_tracardi=False),
        queue=QueueSettings(poll_interval_s=0.05, batch_size=10),
        dispatch=DispatchSettings(flow_python=str(service.python),
                                  flow_env_file=str(service.env_file), max_attempts=5,
                                  retry_backoff_initial_s=0.5, retry_backoff_max_s=1.0),
        definitions=DefinitionsSettings(refresh_s=0.0))


def settle(roles: list[tuple[Any, Any]], settings: Settings, redis: RedisClient,
           what: str) -> None:
    """Steps the roles until none of the chain's queues holds work."""
    queues = [work_queue(redis, settings.tracardi.tenant, name)
              for name in (PROFILE_CHANGED_QUEUE, SEGMENT_CHANGES_QUEUE, DISPATCH_QUEUE)]

    def settled() -> bool | None:
        for role, ctx in roles:
            role.step(ctx.clock())
        stats = [queue.stats() for queue in queues]
        return True if all(s.lag + s.retrying + s.pending == 0 for s in stats) else None

    wait_for(settled, what, timeout_s=120)


def test_a_gui_made_segment_add_rule_in_0_9_runs_its_flow_once_per_entry(
        tracardi09: ApiClient, tracardi09_service: ApiService,
        things_09: dict[str, list[str]], start_role: RoleStarter, redis_client: RedisClient,
        elastic_client: Elasticsearch) -> None:
    settings = trigger_settings(tracardi09_service)
    source_id, flow_id, rule_id = unique("src"), unique("flow"), unique("rule")
    profile_id = tracked_profile_and_flow(tracardi09, things_09, source_id, flow_id, flow_id)
    name = unique("segment")
    make_segment_rule(tracardi09, rule_id, name, flow_id, flow_id)
    things_09["rule"].append(rule_id)
    # no segment endpoints in 0.9: the daemon's own definition, for this profile only
    matching = Segment.from_dict(segment_document(name, f'profile@id == "{profile_id}"'))
    assert matching.machine_name == name
    store = DefinitionStore(elastic_client, settings)
    try:
        trigger = store.get(WorkflowTrigger, rule_id)  # from 0.9's workflow_trigger table
        assert trigger is not None and trigger.dispatch_target() == "flow:"
        store.upsert_many([matching])
        roles = [start_role(kind, settings) for kind in (SegmentationRole, TriggerRole,
                                                         DispatchRole)]
        tenant = settings.tracardi.tenant

        def evaluate(what: str) -> None:
            profile_changed(redis_client, tenant, [profile_id], source="test")
            settle(roles, settings, redis_client, what)

        evaluate("the entry's segmentation, trigger and flow")
        assert wait_for(lambda: views(tracardi09, profile_id) or None, "the flow's effect") == 1
        evaluate("a second evaluation, still in the segment")
        assert views(tracardi09, profile_id) == 1
        # out of the segment and in again: a second entry runs the flow once more
        store.upsert_many([Segment.from_dict(segment_document(name, 'profile@id == "none"'))])
        evaluate("leaving the segment")
        store.upsert_many([matching])
        evaluate("the second entry")
        assert wait_for(lambda: (views(tracardi09, profile_id) or 0) >= 2 or None,
                        "the second entry's run")
        evaluate("a last evaluation")
        assert views(tracardi09, profile_id) == 2
    finally:
        store.delete(Segment, matching.id)
        store.close()
