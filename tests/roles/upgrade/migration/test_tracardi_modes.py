"""A Tracardi plan copies each production index once: a plan that lists its own
production steps (080_to_08x) keeps its other steps to staging, as Tracardi does; a plan
without any (08x_to_0820) copies staging and production with the same steps."""

from __future__ import annotations

from collections import Counter
from typing import Any

from elasticsearch import Elasticsearch

from tests.roles.upgrade.migration.test_tracardi_plans import plan_entries
from tracardi_daemon.roles.upgrade.migration.job import resolve_work
from tracardi_daemon.roles.upgrade.migration.tracardi_plan import read_tracardi_plan


def _indices(es: Elasticsearch, *names: str) -> None:
    for name in names:
        es.indices.create(index=name, mappings={"properties": {"id": {"type": "keyword"}}})


def _copies(es: Elasticsearch, entries: list[Any], versions: tuple[str, str],
            tenant: str) -> Counter[tuple[str, str]]:
    plan = read_tracardi_plan(entries, *versions, from_tenant=tenant, to_tenant=f"{tenant}x")
    assert plan.target is not None
    return Counter((item.step, item.source) for item in resolve_work(es, plan, plan.target))


def test_a_plan_with_production_steps_copies_production_by_them_alone(
        elastic_client: Elasticsearch, prefix: str) -> None:
    entries = plan_entries("080_to_08x")
    staging = next(entry for entry in entries if isinstance(entry, dict)
                   and entry["copy_index"]["from_index"] == "tracardi-session"
                   and not entry["copy_index"].get("production"))
    source = f"080.{prefix}.tracardi-session-2024-1"
    _indices(elastic_client, source, f"prod-{source}")
    copies = _copies(elastic_client, entries, ("080", "08x"), prefix)
    # the production step's script is not the staging one's: each index under its own
    assert copies == Counter({(staging["id"], source): 1,
                              (f"{staging['id']}-prod", f"prod-{source}"): 1})


def test_a_plan_without_production_steps_copies_both_modes(
        elastic_client: Elasticsearch, prefix: str) -> None:
    entries = plan_entries("08x_to_0820")
    step = next(entry["id"] for entry in entries if isinstance(entry, dict)
                and entry["copy_index"]["from_index"] == "tracardi-session")
    source = f"08x.{prefix}.tracardi-session-2024-1"
    _indices(elastic_client, source, f"prod-{source}")
    copies = _copies(elastic_client, entries, ("08x", "0820"), prefix)
    assert copies == Counter({(step, source): 1, (step, f"prod-{source}"): 1})
