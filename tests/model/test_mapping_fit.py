"""MappingFit: the daemon's own extras are left out of documents for an index whose
strict mapping lacks them (Tracardi 0.8.1's profiles), and kept everywhere else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.model.mapping_fit import DAEMON_EXTRAS, MappingFit, refused_paths

MAPPINGS = Path(__file__).parent.parent / "tracardi_layouts" / "mappings"


def _profile_mapping(version: str) -> dict[str, Any]:
    mapping: dict[str, Any] = json.loads((MAPPINGS / version / "profile.json").read_text())
    return mapping["mappings"]


def test_tracardi_081_profiles_refuse_both_extras_and_082_none() -> None:
    assert refused_paths(_profile_mapping("08x"), DAEMON_EXTRAS) == set(DAEMON_EXTRAS)
    assert refused_paths(_profile_mapping("0820"), DAEMON_EXTRAS) == frozenset()
    assert refused_paths(_profile_mapping("09x"), DAEMON_EXTRAS) == frozenset()


def test_dynamic_is_inherited_and_flattened_or_disabled_objects_take_anything() -> None:
    mapping = {"dynamic": "strict", "properties": {
        "open": {"type": "object", "dynamic": True, "properties": {}},
        "inner": {"properties": {}},
        "flat": {"type": "flattened"},
        "off": {"type": "object", "enabled": False}}}
    paths = ("open.a", "inner.a", "flat.a.b", "off.a", "absent")
    assert refused_paths(mapping, paths) == {"inner.a", "absent"}
    assert refused_paths({"properties": {}}, ("anything.at.all",)) == frozenset()


def test_fit_drops_only_what_the_real_index_refuses_and_leaves_the_original(
        elastic_client: Elasticsearch, prefix: str) -> None:
    strict, loose = f"{prefix}-strict", f"{prefix}-loose"
    elastic_client.indices.create(index=strict, mappings=_profile_mapping("08x"))
    elastic_client.indices.create(index=loose, mappings=_profile_mapping("0820"))
    document = {"id": "p1", "traits": {"a": 1}, "metadata": {
        "time": {"insert": "2024-03-05T10:00:00", "create": "2024-03-05T10:00:00"},
        "fields": {"traits.a": ["2024-03-05T10:00:00", "e1"]}}}
    fit = MappingFit(elastic_client)
    fitted = fit.fit(strict, document)
    assert fitted == {"id": "p1", "traits": {"a": 1},
                      "metadata": {"time": {"insert": "2024-03-05T10:00:00"}}}
    assert "fields" in document["metadata"] and "create" in document["metadata"]["time"]
    elastic_client.index(index=strict, id="p1", document=fitted)  # accepted as it is
    assert fit.fit(loose, document) is document
    assert fit.fit(f"{prefix}-not-yet", document) is document
