"""Documents as Tracardi stores them (its models' dumps, only fields its mappings declare),
for tests that put an existing installation's data in front of the daemon.

Dates are strings as the Elasticsearch client writes Tracardi's datetimes: naive in 0.8.1
(``datetime.utcnow()``), with ``+00:00`` from 0.8.2 on. FACTS.md lists each shape's source.
"""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from typing import Any

from tests.tracardi_layouts import check_version

WHEN = datetime(2024, 3, 5, 10, 0, 0, tzinfo=UTC)


def timestamp(version: str, when: datetime = WHEN) -> str:
    """``when`` as Tracardi ``version`` stores a datetime."""
    check_version(version)
    moment = when.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat() if version == "08x" else moment.isoformat()


def profile_document(version: str, profile_id: str, *, segments: tuple[str, ...] = (),
                     traits: dict[str, Any] | None = None, email: str = "ada@example.com",
                     when: datetime = WHEN) -> dict[str, Any]:
    at = timestamp(version, when)
    time: dict[str, Any] = {"insert": at, "update": at, "segmentation": None,
                            "visit": {"last": None, "current": at, "count": 1, "tz": "UTC"}}
    metadata: dict[str, Any] = {"time": time, "aux": {}, "status": None}
    # 0.8.2 made contact.email an object (main, private, business)
    contact: dict[str, Any] = {"email": email} if version == "08x" else {"email": {"main": email}}
    if version != "08x":
        time["create"] = at
        metadata.update(fields={}, system={"integrations": {}, "aux": {}})
    document: dict[str, Any] = {
        "id": profile_id,
        "ids": [profile_id],
        "metadata": metadata,
        "stats": {"visits": 1, "views": 1, "counters": {}},
        "traits": dict(traits or {}),
        "segments": list(segments),
        "interests": {},
        "consents": {},
        "active": True,
        "aux": {},
        "data": {"pii": {"firstname": "Ada", "lastname": "Lovelace"}, "contact": contact},
    }
    if version == "09x":
        document["primary_id"] = profile_id
    return document


def event_document(version: str, event_id: str, *, profile_id: str, session_id: str,
                   event_type: str = "page-view", properties: dict[str, Any] | None = None,
                   source_id: str = "web-source", when: datetime = WHEN) -> dict[str, Any]:
    at = timestamp(version, when)
    time: dict[str, Any] = {"insert": at, "create": at, "process_time": 0.01}
    metadata: dict[str, Any] = {
        "aux": {}, "time": time, "ip": "127.0.0.1", "status": "collected", "channel": "web",
        "processed_by": {"rules": [], "flows": [], "third_party": []},
        "profile_less": False, "debug": False, "valid": True, "error": False, "warning": False,
    }
    if version != "08x":
        time.update(update=None, total_time=0.02)
        metadata["merge"] = False
    return {
        "id": event_id,
        "type": event_type,
        "name": event_type.replace("-", " ").capitalize(),
        "metadata": metadata,
        "source": {"id": source_id},
        "session": {"id": session_id, "start": at, "duration": 0.0, "tz": "UTC"},
        "profile": {"id": profile_id},
        "context": {},
        "properties": dict(properties or {}),
        "traits": {},
        "tags": {"values": [event_type], "count": 1},
        "journey": {"state": None},
        "aux": {},
        "config": {},
    }


def session_document(version: str, session_id: str, *, profile_id: str,
                     when: datetime = WHEN) -> dict[str, Any]:
    at = timestamp(version, when)
    time: dict[str, Any] = {"insert": at, "update": None, "timestamp": int(when.timestamp()),
                            "duration": 0.0, "weekday": when.weekday()}
    profile: dict[str, Any] = {"id": profile_id}
    document: dict[str, Any] = {
        "id": session_id,
        "metadata": {"time": time, "channel": "web", "status": None, "aux": {}},
        "profile": profile,
        "device": {"name": "Other", "type": "desktop", "touch": False},
        "os": {"name": "Linux", "version": None},
        "app": {"type": "browser", "bot": False, "name": "Firefox", "language": "en"},
        "context": {},
        "properties": {},
        "traits": {},
        "aux": {},
    }
    if version != "08x":
        time["create"] = at
    if version == "09x":
        document["primary_id"] = session_id
        profile["primary_id"] = profile_id
    return document


# --- 0.8.x definitions: what the 0.8.1/0.8.2 models dump (0.8.2 lower-cases every id) ---

def segment_document(name: str, condition: str, *, event_types: tuple[str, ...] = (),
                     enabled: bool = True) -> dict[str, Any]:
    """``id`` is a uuid in the GUI; the id written to profiles is ``machine_name``."""
    machine_name = name.replace(" ", "-").lower()
    return {"id": f"segment-{machine_name}", "name": name, "description": "",
            "eventType": list(event_types), "condition": condition, "enabled": enabled,
            "machine_name": machine_name}


def live_segment_document(segment_id: str, *, workflow_id: str, workflow_name: str,
                          condition: str | None = None, segment: str | None = None,
                          version: str = "08x") -> dict[str, Any]:
    """``type`` is ``workflow`` (run a segmentation workflow) or ``condition`` (add
    ``segment`` to profiles matching the filter ``condition``)."""
    return {"id": segment_id, "name": f"Live {segment_id}", "timestamp": timestamp(version),
            "description": "", "enabled": True,
            "workflow": {"id": workflow_id, "name": workflow_name},
            "type": "workflow" if condition is None else "condition",
            "operation": None, "condition": condition, "segment": segment, "code": None}


def event_to_profile_document(mapping_id: str, event_type: str,
                              pairs: list[tuple[str, int, str]]) -> dict[str, Any]:
    """``pairs``: (event path, operation, profile path). ``event_to_profile`` and ``config``
    are stored as objects (the list of pairs) in ``flattened`` fields, not as JSON text."""
    return {
        "id": mapping_id, "name": f"{event_type} to profile",
        "description": "No description provided",
        "event_type": {"id": event_type, "name": event_type},
        "enabled": True, "config": {}, "tags": [],
        "event_to_profile": [
            {"event": {"value": event_path, "ref": True}, "op": operation,
             "profile": {"value": profile_path, "ref": True}}
            for event_path, operation, profile_path in pairs],
    }


def event_management_document(event_type: str, *,
                              index_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Event type metadata: the id is the event type."""
    return {"id": event_type, "name": event_type, "event_type": event_type,
            "description": "No description provided", "enabled": True,
            "index_schema": dict(index_schema or {}), "journey": None, "tags": []}


def segment_add_rule_document(rule_id: str, *, segment_id: str, segment_name: str,
                              flow_id: str, flow_name: str,
                              version: str = "08x") -> dict[str, Any]:
    """A workflow trigger on "segment added" (as the GUI posts it). 0.8.1's mapping lacks
    ``metadata.time.create``/``update``, so they are left out there (see FACTS.md)."""
    at = timestamp(version)
    time: dict[str, Any] = {"insert": at}
    if version != "08x":
        time.update(create=None, update=None)
    return {
        "id": rule_id, "name": f"On {segment_name}", "description": "No description provided",
        "type": "segment-add",
        "event_type": {"id": "", "name": ""}, "source": {"id": "", "name": ""},
        "segment": {"id": segment_id, "name": segment_name},
        "flow": {"id": flow_id, "name": flow_name},
        "enabled": True, "properties": None, "metadata": {"time": time}, "tags": ["General"],
    }


def import_document(import_id: str, *, config: dict[str, Any], module: str,
                    event_type: str = "imported") -> dict[str, Any]:
    """``config`` is stored as base64 of gzipped JSON in a keyword that is not indexed."""
    encoded = base64.b64encode(gzip.compress(json.dumps(config).encode("utf-8"))).decode("ascii")
    return {"id": import_id, "name": f"Import {import_id}", "description": "",
            "api_url": "http://localhost:8686",
            "event_source": {"id": "import-source", "name": "Import source"},
            "event_type": event_type, "module": module, "config": encoded, "enabled": True}


def resource_document(resource_id: str, *, name: str, resource_type: str,
                      test: dict[str, Any], production: dict[str, Any],
                      enabled: bool = True, version: str = "08x") -> dict[str, Any]:
    """A resource as the API stores it (``ResourceRecord``): ``credentials`` is base64 of
    gzipped JSON of both sets, in a keyword that is not indexed."""
    credentials = json.dumps({"test": test, "production": production}).encode("utf-8")
    return {"id": resource_id, "name": name, "description": "", "type": resource_type,
            "timestamp": timestamp(version), "tags": [resource_type], "groups": [],
            "icon": None, "destination": None, "enabled": enabled,
            "credentials": base64.b64encode(gzip.compress(credentials)).decode("ascii")}


def decode_import_config(encoded: str) -> Any:
    return json.loads(gzip.decompress(base64.b64decode(encoded)))


def task_document(task_id: str, *, name: str, task_type: str = "import",
                  status: str = "pending", progress: float = 0.0,
                  params: dict[str, Any] | None = None, version: str = "08x") -> dict[str, Any]:
    """A task as the API stores it (``Task`` model; no ``event_type``)."""
    return {"id": task_id, "name": name, "task_id": task_id, "timestamp": timestamp(version),
            "status": status, "progress": progress, "type": task_type,
            "params": dict(params or {})}


def worker_task_document(job_id: str, *, name: str,
                         params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A task as the 0.8.x migration worker writes it: status ``PROGRESS`` (outside the
    model's list), ``event_type`` ``missing``, a second-precision naive timestamp."""
    return {"id": job_id, "name": name, "timestamp": WHEN.strftime("%Y-%m-%dT%H:%M:%S"),
            "status": "PROGRESS", "type": "upgrade", "progress": 0.0, "event_type": "missing",
            "params": dict(params or {}), "task_id": job_id}
