"""Beside Tracardi 0.8.2's own API: a workflow (Start -> Increment stats.views -> Update
profile) and a segment-add rule made as its GUI makes them, with no event source (its
rule engine could never route a /track to it). When the daemon announces that the
profile entered the segment, the trigger and dispatch roles run the flow in Tracardi's
own engine (the flow runner under Tracardi's Python): the flow's effect appears in the
profile Tracardi serves, exactly once per entry, also when a change is delivered twice."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.tracardi_api.api import ApiClient, ApiService, unique, wait_for
from tests.tracardi_api.flows import make_flow, make_segment_rule
from tracardi_daemon.cli import triggers as trigger_commands
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    DispatchSettings,
    QueueSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.dispatch import Dispatcher
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import DISPATCH_QUEUE, SEGMENT_CHANGES_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import WorkflowTrigger
from tracardi_daemon.model.tracardi_flow import TracardiFlowRunner, flow_runner_environ
from tracardi_daemon.roles.dispatch.role import DispatchRole
from tracardi_daemon.roles.trigger.role import TriggerRole

__all__ = ["start_role"]
pytestmark = [pytest.mark.tracardi_api, pytest.mark.timeout(600)]



@pytest.fixture
def settings(tracardi_service: ApiService) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tracardi_service.tenant, db_version="0820",
                                  layout="tracardi-0.8", api_url=tracardi_service.url),
        queue=QueueSettings(poll_interval_s=0.05, batch_size=10),
        dispatch=DispatchSettings(flow_python=str(tracardi_service.python),
                                  flow_env_file=str(tracardi_service.env_file),
                                  max_attempts=5, retry_backoff_initial_s=0.5,
                                  retry_backoff_max_s=1.0),
        definitions=DefinitionsSettings(refresh_s=0.0))


@pytest.fixture
def made(tracardi: ApiClient) -> Iterator[dict[str, list[str]]]:
    """What the test made through the API, deleted at its end."""
    things: dict[str, list[str]] = {"rule": [], "flow": [], "event-source": [], "profile": []}
    yield things
    delete_made(tracardi, things)


def delete_made(tracardi: ApiClient, things: dict[str, list[str]]) -> None:
    """Each id deleted through ``DELETE /<kind>/<id>``, kinds in the dict's order (what
    uses a thing before the thing)."""
    for kind, ids in things.items():
        for ident in ids:
            tracardi.delete(f"/{kind}/{ident}")


def views(tracardi: ApiClient, profile_id: str) -> int | None:
    answer = tracardi.profile(profile_id)
    if answer.status_code != 200:
        return None
    stats: dict[str, Any] = answer.json().get("stats") or {}
    return int(stats.get("views") or 0)


def change(change_id: str, profile_id: str, segment: str) -> dict[str, Any]:
    """A segment change as the segmentation role announces it."""
    return {"id": change_id, "profile_id": profile_id, "segment": segment,
            "segment_id": None, "change": "add", "at": "2026-12-07T12:00:00+00:00",
            "cause": "test"}


def run_until_settled(roles: list[Any], settings: Settings, redis: RedisClient,
                      what: str) -> None:
    """Steps the roles until neither queue holds work (Tracardi has then saved)."""
    tenant = settings.tracardi.tenant
    queues = [WorkQueue(redis, tenant, name) for name in (SEGMENT_CHANGES_QUEUE,
                                                          DISPATCH_QUEUE)]

    def settled() -> bool | None:
        for role in roles:
            role.step(0.0)
        stats = [queue.stats() for queue in queues]
        return True if all(s.lag + s.retrying + s.pending == 0 for s in stats) else None

    wait_for(settled, what, timeout_s=120)


def tracked_profile_and_flow(tracardi: ApiClient, made: dict[str, list[str]],
                             source_id: str, flow_id: str, flow_name: str) -> str:
    """A profile tracked through a new source, seen with no views yet, and a production
    flow that adds one; returns the profile's id (all recorded in ``made``)."""
    tracardi.add_rest_source(source_id)
    made["event-source"].append(source_id)
    profile_id = tracardi.track(source_id, unique("session"), [{"type": "page-view",
                                                                  "properties": {}}])
    made["profile"].append(profile_id)
    assert wait_for(lambda: views(tracardi, profile_id), "the tracked profile") == 0
    make_flow(tracardi, flow_id, flow_name)
    made["flow"].append(flow_id)
    return profile_id


def test_a_gui_made_segment_add_rule_runs_its_flow_once_per_entry(
        tracardi: ApiClient, settings: Settings, made: dict[str, list[str]],
        start_role: RoleStarter, redis_client: RedisClient,
        elastic_client: Elasticsearch) -> None:
    source_id, flow_id, rule_id = unique("src"), unique("flow"), unique("rule")
    segment = unique("segment").replace("-", "_")  # a machine name, as profile.segments has
    profile_id = tracked_profile_and_flow(tracardi, made, source_id, flow_id, f"Welcome {flow_id}")
    make_segment_rule(tracardi, rule_id, segment, flow_id, f"Welcome {flow_id}")
    made["rule"].append(rule_id)

    # the rule as Tracardi stored it reads as a flow target
    store = DefinitionStore(elastic_client, settings)
    try:
        trigger = store.get(WorkflowTrigger, rule_id)
    finally:
        store.close()
    assert trigger is not None and trigger.dispatch_target() == "flow:"

    trigger_role, _ = start_role(TriggerRole, settings)
    dispatch_role, _ = start_role(DispatchRole, settings)
    roles = [trigger_role, dispatch_role]
    changes = WorkQueue(redis_client, settings.tracardi.tenant, SEGMENT_CHANGES_QUEUE)
    first = unique("change")
    # the same entry announced twice (a redelivery after a crash)
    changes.enqueue_many([change(first, profile_id, segment), change(first, profile_id, segment)])
    run_until_settled(roles, settings, redis_client, "the first entry's deliveries")
    assert wait_for(lambda: views(tracardi, profile_id) or None, "the flow's effect") == 1

    # a second entry (after the profile left the segment) runs the flow again, once
    changes.enqueue(change(unique("change"), profile_id, segment))
    run_until_settled(roles, settings, redis_client, "the second entry's delivery")
    assert wait_for(lambda: (views(tracardi, profile_id) or 0) >= 2 or None,
                    "the second run's effect")
    assert views(tracardi, profile_id) == 2


@pytest.fixture
def runner(tracardi_service: ApiService) -> Iterator[TracardiFlowRunner]:
    flows = TracardiFlowRunner(str(tracardi_service.python),
                               flow_runner_environ(str(tracardi_service.env_file)),
                               production=False, timeout_s=60, start_timeout_s=60)
    yield flows
    flows.close()


def test_a_delivery_sent_again_runs_the_flow_once(
        tracardi: ApiClient, made: dict[str, list[str]], runner: TracardiFlowRunner,
        redis_client: RedisClient, settings: Settings) -> None:
    """A sender taken over after its run finished sends the delivery again with the same
    key: the flow does not run a second time; another key runs it again."""
    source_id, flow_id = unique("src"), unique("flow")
    profile_id = tracked_profile_and_flow(tracardi, made, source_id, flow_id, flow_id)
    dispatcher = Dispatcher(redis_client, settings.tracardi.tenant, flow_runner=runner.run)
    payload = {"flow_id": flow_id, "profile_id": profile_id, "event_type": "segment-added",
               "properties": {}}
    key = unique("key")
    try:
        assert dispatcher.attempt("flow:", payload, key).ok
        assert dispatcher.attempt("flow:", payload, key).ok
        assert wait_for(lambda: views(tracardi, profile_id) or None, "the run's effect") == 1
        assert dispatcher.attempt("flow:", payload, unique("key")).ok
        assert wait_for(lambda: (views(tracardi, profile_id) or 0) >= 2 or None,
                        "the second key's run")
        assert views(tracardi, profile_id) == 2
    finally:
        dispatcher.close()


def test_the_flow_runner_names_what_is_wrong(
        tracardi: ApiClient, made: dict[str, list[str]], runner: TracardiFlowRunner,
        tracardi_service: ApiService) -> None:
    flow_id = unique("flow")
    missing = runner.run({"flow_id": flow_id, "profile_id": "p", "event_type": "x"})
    assert (missing.ok, missing.retryable) == (False, False)
    assert f"flow {flow_id!r} does not exist" in missing.error
    make_flow(tracardi, flow_id, flow_id)
    made["flow"].append(flow_id)
    # a profile Tracardi cannot load yet (or no more): tried again, never made up
    profile_id = unique("nobody")
    absent = runner.run({"flow_id": flow_id, "profile_id": profile_id, "event_type": "x"})
    assert (absent.ok, absent.retryable) == (False, True)
    assert f"profile {profile_id!r} not found" in absent.error
    assert tracardi.profile(profile_id).status_code == 404
    bad = runner.run({"flow_id": "", "profile_id": profile_id, "event_type": "x"})
    assert not bad.ok and "field 'flow_id' must be a non-empty string" in bad.error
    gone = TracardiFlowRunner(str(tracardi_service.home / "no-python"), {}, production=False,
                              timeout_s=5, start_timeout_s=5)
    answer = gone.run({"flow_id": flow_id, "profile_id": profile_id, "event_type": "x"})
    assert (answer.ok, answer.retryable) == (False, True)
    assert "cannot start" in answer.error and "no-python" in answer.error


def test_a_helper_that_cannot_start_says_why(tracardi_service: ApiService) -> None:
    """A Tracardi that dies at import (here: a LICENSE that is not its own, which makes
    it load its commercial packages): the failure quotes Tracardi's last words."""
    environ = {**flow_runner_environ(str(tracardi_service.env_file)),
               "LICENSE": "not-a-tracardi-licence"}
    runner = TracardiFlowRunner(str(tracardi_service.python), environ, production=False,
                                timeout_s=30, start_timeout_s=60)
    try:
        answer = runner.run({"flow_id": "f", "profile_id": "p", "event_type": "x"})
    finally:
        runner.close()
    assert (answer.ok, answer.retryable) == (False, True)
    assert "helper exited (starting" in answer.error
    assert "; its last output: " in answer.error
    assert "Error" in answer.error.partition("; its last output: ")[2], answer.error


def test_triggers_test_runs_a_gui_made_rules_flow(
        tracardi: ApiClient, tracardi_service: ApiService, made: dict[str, list[str]],
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``tracardi-daemon triggers test RULE --profile ID`` runs the flow once, now."""
    source_id, flow_id, rule_id = unique("src"), unique("flow"), unique("rule")
    profile_id = tracked_profile_and_flow(tracardi, made, source_id, flow_id, flow_id)
    make_segment_rule(tracardi, rule_id, unique("segment"), flow_id, flow_id)
    made["rule"].append(rule_id)
    config = tmp_path / "daemon.toml"
    config.write_text(
        f'[tracardi]\nlayout = "tracardi-0.8"\ndb_version = "0820"\n'
        f'api_url = "{tracardi_service.url}"\n[dispatch]\n'
        f'flow_python = "{tracardi_service.python}"\n'
        f'flow_env_file = "{tracardi_service.env_file}"\n', encoding="utf-8")
    parser = argparse.ArgumentParser()
    trigger_commands.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["triggers", "test", rule_id, "--profile", profile_id])
    env = {"TENANT_NAME": tracardi_service.tenant, "TRACARDI_CONFIG": str(config)}
    assert args.handler(args, env) == 0, capsys.readouterr()
    assert wait_for(lambda: views(tracardi, profile_id) or None, "the run's effect") == 1
