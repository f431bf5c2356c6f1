"""Workflows and their triggers made through Tracardi's API as its GUI makes them: the
flow's metadata, a draft of nodes taken from its plugin registry, the production
version, and a ``segment-add`` rule as its rule form posts it."""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

from tests.tracardi_api.api import ApiClient

# Start -> Increment (profile@stats.views by 1) -> Update profile: one run adds exactly 1
# to stats.views. Tracardi 0.8.2's /install does not register "Increase views"; its
# "Increment" node, configured as its form configures it, has the same effect.
VIEWS_FLOW: tuple[tuple[str, dict[str, Any] | None], ...] = (
    ("StartAction", None),
    ("IncrementAction", {"field": "profile@stats.views", "increment": 1}),
    ("UpdateProfileAction", None))


def _plugins(tree: Any) -> Iterator[dict[str, Any]]:
    """Every registered plugin in /flow/action/plugins' grouped answer."""
    if isinstance(tree, dict):
        plugin = tree.get("plugin")
        if isinstance(plugin, dict) and "spec" in plugin:
            yield plugin
            return
        for value in tree.values():
            yield from _plugins(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _plugins(value)


def plugin_nodes(tracardi: ApiClient, steps: tuple[tuple[str, dict[str, Any] | None], ...]
                 ) -> list[dict[str, Any]]:
    """The nodes the GUI drops on its canvas for these plugins, in this order, each
    with the configuration its form saves (None: the plugin's default)."""
    answer = tracardi.http.get("/flow/action/plugins")
    assert answer.status_code == 200, f"/flow/action/plugins: {answer.status_code}"
    by_class = {plugin["spec"]["className"]: plugin for plugin in _plugins(answer.json())}
    missing = [name for name, _ in steps if name not in by_class]
    assert not missing, f"plugins not registered in Tracardi: {missing}"
    nodes = []
    for index, (name, init) in enumerate(steps):
        data = copy.deepcopy(by_class[name])
        if init is not None:
            data["spec"]["init"] = init
        nodes.append({"id": str(uuid.uuid4()), "type": "flowNode",
                      "position": {"x": 0, "y": 150 * index}, "data": data})
    return nodes


def make_flow(tracardi: ApiClient, flow_id: str, name: str,
              steps: tuple[tuple[str, dict[str, Any] | None], ...] = VIEWS_FLOW) -> None:
    """A collection workflow of ``steps`` chained payload to payload, deployed (0.8.2)."""
    tracardi.post("/flow/metadata", {"id": flow_id, "name": name, "description": "",
                                     "type": "collection", "projects": ["General"]})
    nodes = plugin_nodes(tracardi, steps)
    edges = [{"id": str(uuid.uuid4()), "type": "default", "source": left["id"],
              "sourceHandle": "payload", "target": right["id"], "targetHandle": "payload",
              "data": {"name": ""}}
             for left, right in itertools.pairwise(nodes)]
    flow = {"id": flow_id, "name": name, "description": "", "type": "collection",
            "projects": ["General"], "flowGraph": {"nodes": nodes, "edges": edges},
            "response": {}}
    tracardi.post("/flow/draft", flow)
    if tracardi.version != "0.9":  # 0.9 runs the context's one version (no /flow/production)
        tracardi.post("/flow/production", flow)


def make_segment_rule(tracardi: ApiClient, rule_id: str, segment: str, flow_id: str,
                      flow_name: str, kind: str = "segment-add") -> None:
    """The rule Tracardi's rule form posts for "Added Segment": no event type, no source."""
    tracardi.post("/rule", {
        "id": rule_id, "name": "", "description": "", "type": kind, "tags": ["General"],
        "segment": {"id": segment, "name": segment}, "flow": {"id": flow_id, "name": flow_name},
        "event_type": {"id": "", "name": ""}, "source": {"id": "", "name": ""},
        "properties": {}, "enabled": True})
