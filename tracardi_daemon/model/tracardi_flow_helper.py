"""Runs inside Tracardi's own Python environment (not the daemon's; 0.8 or 0.9): starts a
given workflow for a given profile through Tracardi's own tracker, which loads the profile,
runs the flow from its start node and saves what the flow changed, as its collector does.

Tracardi's HTTP API has no such path: its rule engine picks rules by event type and
source only, and the one option that routes an event to a named flow (a scheduled
event's flow and node) is refused by its public /track. This helper gives Tracardi's
tracker that option with Tracardi's internal event source, in Tracardi's own process.

Protocol: one JSON request a line on stdin, one JSON answer a line on stdout, in order.
A request is ``{"flow_id", "profile_id", "event_type", "properties", "production"}``;
an answer ``{"ok": bool, "retryable": bool, "error": str}``. The first line written is
``{"ready": true}`` once Tracardi is imported. Everything else Tracardi prints goes to
stderr, so stdout carries answers only.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any, TextIO

READY = {"ready": True}


def _answer(out: TextIO, ok: bool, error: str = "", retryable: bool = False) -> None:
    out.write(json.dumps({"ok": ok, "retryable": retryable, "error": error[:500]}) + "\n")
    out.flush()


class FlowProblem(Exception):
    """The request names no runnable flow: another try cannot help."""


def _start_node_id(flow: Any, flow_id: str) -> str:
    graph = flow.flowGraph
    starts = [node.id for node in (graph.nodes if graph is not None else [])
              if node.data.start]
    if not starts:
        raise FlowProblem(f"flow {flow_id!r} has no start node in its production version")
    # a flow the GUI makes has one start node; Tracardi's scheduled route starts one
    return str(starts[0])


def _request(line: str) -> dict[str, Any]:
    try:
        request = json.loads(line)
    except ValueError as exc:
        raise FlowProblem(f"invalid request: not JSON ({exc})") from None
    if not isinstance(request, dict):
        raise FlowProblem("invalid request: not a JSON object")
    for field in ("flow_id", "profile_id", "event_type"):
        if not isinstance(request.get(field), str) or not request[field]:
            raise FlowProblem(f"invalid request: field {field!r} must be a non-empty string")
    if not isinstance(request.get("properties", {}), dict):
        raise FlowProblem("invalid request: field 'properties' must be an object")
    return request


def _is_09() -> bool:
    """Tracardi 0.9 keeps its workflows in MySQL (a package 0.8 has not)."""
    import importlib.util

    return importlib.util.find_spec("tracardi.service.storage.mysql") is not None


async def _production_flow(flow_id: str) -> Any:
    """The flow Tracardi runs for ``flow_id`` in the current context, or None: 0.8's
    production version from its flow index, 0.9's row in its ``workflow`` table (a
    context has one version there; deployment copies a test row to production)."""
    if _is_09():
        from tracardi.domain.flow import Flow
        from tracardi.service.storage.mysql.mapping.workflow_mapping import (
            map_to_workflow_record,
        )
        from tracardi.service.storage.mysql.service.workflow_service import WorkflowService

        row = (await WorkflowService().load_by_id(flow_id)).map_to_object(map_to_workflow_record)
        return None if row is None else Flow.from_workflow_record(row)
    from tracardi.service.storage.driver.elastic import flow as flow_db

    record = await flow_db.load_record(flow_id)
    return None if record is None else record.get_production_workflow()


def _tracker() -> tuple[Any, Any]:
    """Tracardi's tracker entry and its REST bridge, which moved in 0.9."""
    if _is_09():
        from tracardi.service.storage.mysql.bootstrap.bridge import open_rest_source_bridge
        from tracardi.service.track_event import track_event
    else:
        from tracardi.service.setup.data.defaults import open_rest_source_bridge
        from tracardi.service.tracker import track_event
    return track_event, open_rest_source_bridge


async def _run(request: dict[str, Any]) -> None:
    # imported here: Tracardi reads its environment at import time
    from tracardi.config import tracardi
    from tracardi.context import Context, ServerContext
    from tracardi.domain.event_source import EventSource
    from tracardi.domain.named_entity import NamedEntity
    from tracardi.domain.payload.tracker_payload import TrackerPayload
    from tracardi.service.tracking.storage.profile_storage import load_profile
    from tracardi.service.utils.date import now_in_utc

    track_event, bridge = _tracker()
    flow_id, profile_id = str(request["flow_id"]), str(request["profile_id"])
    with ServerContext(Context(production=bool(request.get("production", False)))):
        flow = await _production_flow(flow_id)
        if flow is None:
            raise FlowProblem(f"flow {flow_id!r} does not exist")
        node_id = _start_node_id(flow, flow_id)
        if await load_profile(profile_id) is None:
            # Tracardi would make a new profile; a profile just written may not be
            # searchable yet (its index refreshes every second): another try
            raise LookupError(f"profile {profile_id!r} not found in Tracardi")
        source = EventSource(
            id=tracardi.internal_source, timestamp=now_in_utc(), type=["internal"],
            bridge=NamedEntity(id=bridge.id, name=bridge.name),
            name="Internal event source", channel="Internal", transitional=False,
            tags=["internal"])
        payload = TrackerPayload(
            source={"id": tracardi.internal_source}, profile={"id": profile_id},
            session=None, context={}, properties={}, request={},
            events=[{"type": str(request["event_type"]),
                     "properties": request.get("properties") or {}}],
            options={"scheduledFlowId": flow_id, "scheduledNodeId": node_id,
                     "saveSession": False})
        result = await track_event(payload, "127.0.0.1", allowed_bridges=["internal"],
                                   internal_source=source)
        errors = (result or {}).get("errors") if isinstance(result, dict) else None
        if errors:
            raise RuntimeError(f"Tracardi's tracker reported: {errors!r}"[:500])


async def serve(lines: TextIO, out: TextIO) -> None:
    import tracardi.service.tracker  # noqa: F401 - fail before ready, not on a request

    _answer_ready(out)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, lines.readline)
        if not line:
            return
        try:
            await _run(_request(line))
        except FlowProblem as exc:
            _answer(out, False, str(exc))
        except Exception as exc:  # noqa: BLE001 - Tracardi's storage: try again later
            _answer(out, False, f"{type(exc).__name__}: {exc}", retryable=True)
        else:
            _answer(out, True)


def _answer_ready(out: TextIO) -> None:
    out.write(json.dumps(READY) + "\n")
    out.flush()


def main() -> None:
    # answers go to a private copy of stdout; whatever Tracardi prints (even below
    # Python, to file descriptor 1) goes to stderr
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    asyncio.run(serve(sys.stdin, out))


if __name__ == "__main__":
    main()
