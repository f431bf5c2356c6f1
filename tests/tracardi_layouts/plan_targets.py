"""The target indices of a migration plan, made before it runs as Tracardi's own install
would make them: each index the plan resolves to, with its alias, and with the target
version's mapping where this folder has one (mappings/), else empty (dynamic)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from elasticsearch import Elasticsearch

from tests.tracardi_layouts import INDICES, VERSIONS, index_body
from tracardi_daemon.model.tracardi_names import PRODUCTION_PREFIX, Layout
from tracardi_daemon.roles.upgrade.migration.job import resolve_work
from tracardi_daemon.roles.upgrade.migration.plan import Plan


def _body(version: str, logical: str, tenant: str) -> dict[str, Any]:
    name = logical.removeprefix("tracardi-")
    if version not in VERSIONS or name not in INDICES[version]:
        body: dict[str, Any] = {"settings": {}, "mappings": {}}
    else:
        body = index_body(version, name)
    # Tracardi's _meta: the db version and the installation's name (the tenant)
    body["mappings"]["_meta"] = {"version": version, "name": tenant}
    body["settings"] = {"number_of_shards": 1, "number_of_replicas": 0, **body["settings"]}
    return body


def create_plan_targets(elastic: Elasticsearch, plan: Plan, target: Layout) -> list[str]:
    """Create every target index ``plan`` resolves to in ``target`` (the indices its
    source holds now decide which), each in its alias, leaving alone those that exist;
    returns their names, sorted."""
    steps = {step.id: step for step in plan.steps}
    made: dict[str, str] = {}  # target index: its logical name
    for item in resolve_work(elastic, plan, target):
        made.setdefault(item.target, steps[item.step].target_name)
    for index, logical in sorted(made.items()):
        if elastic.indices.exists(index=index):
            continue
        alias = replace(target, production=index.startswith(PRODUCTION_PREFIX)).alias(logical)
        body = _body(target.version, logical, target.tenant)
        # 0.9 names a single index as its alias would be: it has none of its own
        elastic.indices.create(index=index, aliases={alias: {}} if alias != index else None,
                               **body)
    return sorted(made)
