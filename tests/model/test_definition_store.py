"""Definitions in real Elasticsearch: apply/list/show/delete through the CLI handlers,
all-or-nothing files in TOML and JSON, and the cache with an injected clock."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import BackendUnavailable
from tracardi_daemon.model.definition_store import DefinitionCache, DefinitionStore
from tracardi_daemon.model.definitions import Definition, Segment
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.naming import base_index_name

from .conftest import CliRunner

TOML_FILE = """
[[segment]]
id = "vip"
name = "VIP customers"
event_type = ["purchase"]
condition = "profile@stats.visits > 10"

[[segment]]
id = "churn"
name = "Churn risk"
condition = "profile@metadata.time.visit.count < 2"
enabled = false

[[event_to_profile]]
id = "email"
name = "Copy e-mail"
event_type = { id = "identify", name = "Identify" }
items = [
  { event = "properties.email", op = "equals", profile = "data.contact.email.main" },
  { event = "properties.tags", op = "append", profile = "traits.tags" },
]

[[workflow-trigger]]
id = "welcome"
name = "Welcome VIPs"
type = "segment-add"
segment = { id = "vip", name = "VIP customers" }
workflow = { id = "wf-1", name = "Welcome" }
target = { type = "tracker", source_id = "segment-events" }

[[task]]
id = "task-1"
name = "First import"
type = "import"
created = 2024-03-01T10:00:00Z
"""

JSON_FILE = {
    "live_segment": [{"id": "live-vip", "name": "Live VIP", "type": "query",
                      "query": {"range": {"stats.visits": {"gt": 10}}},
                      "segment": {"id": "vip", "name": "VIP"}}],
    "import": [{"id": "csv-1", "name": "Customers", "source": "csv",
                "config": {"path": "/data/customers.csv", "delimiter": ";",
                           "event_type": "customer", "event_source": "crm"}}],
}


def ids(definitions: list[Segment] | list[Definition]) -> list[str]:
    return [definition.id for definition in definitions]


def write_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_apply_list_show_delete_round_trip(es: Elasticsearch, settings: Settings,
                                           run_cli: CliRunner, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("definitions", "apply", write_file(tmp_path, "defs.toml", TOML_FILE)) == 0
    assert "applied 5 definition(s)" in capsys.readouterr().out
    path = write_file(tmp_path, "defs.json", json.dumps(JSON_FILE))
    assert run_cli("definitions", "apply", path) == 0
    assert "applied 2 definition(s)" in capsys.readouterr().out

    store = DefinitionStore(es, settings)
    assert ids(store.list(Segment)) == ["churn", "vip"]
    assert ids(store.list("live-segment")) == ["live-vip"]

    assert run_cli("definitions", "list") == 0
    out = capsys.readouterr().out
    for kind, ident in [("segment", "vip"), ("event-to-profile", "email"),
                        ("workflow-trigger", "welcome"), ("import", "csv-1"),
                        ("task", "task-1"), ("live-segment", "live-vip")]:
        assert any(line.split()[:2] == [kind, ident] for line in out.splitlines()), ident
    assert run_cli("definitions", "list", "segment") == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()] == [
        "ID", "churn", "vip"]

    assert run_cli("definitions", "show", "event_to_profile", "email") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["items"][1] == {"event": "properties.tags", "op": "append",
                                 "profile": "traits.tags"}
    assert run_cli("definitions", "show", "import", "csv-1") == 0
    assert json.loads(capsys.readouterr().out)["config"]["delimiter"] == ";"

    assert run_cli("definitions", "delete", "segment", "churn") == 0
    assert run_cli("definitions", "delete", "segment", "churn") == 1
    assert run_cli("definitions", "show", "segment", "churn") == 1
    assert "no segment 'churn'" in capsys.readouterr().err
    assert ids(store.list(Segment)) == ["vip"]


def test_invalid_file_applies_nothing(es: Elasticsearch, settings: Settings,
                                      run_cli: CliRunner, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("definitions", "apply", write_file(tmp_path, "good.toml", TOML_FILE)) == 0
    store = DefinitionStore(es, settings)
    before = {kind: store.list(kind) for kind in ("segment", "event-to-profile", "task")}
    capsys.readouterr()

    bad = TOML_FILE.replace('name = "VIP customers"\nevent', 'name = "VIP renamed"\nevent') \
        + '\n[[segment]]\nid = "new-one"\nname = "New"\n\n[[segment]]\nid = "broken"\n' \
        + 'name = "Broken"\ncondition = ""\n'
    assert run_cli("definitions", "apply", write_file(tmp_path, "bad.toml", bad)) == 1
    err = capsys.readouterr().err
    assert "nothing applied" in err
    assert "segment 'new-one': field 'condition' must be a non-empty string" in err
    assert "segment 'broken': field 'condition' must be a non-empty string" in err
    assert {kind: store.list(kind) for kind in before} == before

    bad_json = json.dumps({"segment": [{"id": "x", "name": "X",
                                        "condition": "profile@traits.a == 1",
                                        "enabled": "yes"}]})
    assert run_cli("definitions", "apply", write_file(tmp_path, "bad.json", bad_json)) == 1
    assert "segment 'x': field 'enabled' must be true or false" in capsys.readouterr().err
    assert run_cli("definitions", "apply", write_file(tmp_path, "broken.json", "{")) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert store.get("segment", "x") is None


def test_store_without_indices(es: Elasticsearch, settings: Settings) -> None:
    store = DefinitionStore(es, settings)
    assert store.list(Segment) == []
    assert store.get(Segment, "vip") is None
    assert store.delete("segment", "vip") is False


def test_store_skips_invalid_stored_documents(es: Elasticsearch, settings: Settings,
                                              caplog: pytest.LogCaptureFixture) -> None:
    install(es, settings)
    store = DefinitionStore(es, settings)
    store.upsert_many([Segment.from_dict({"id": "ok", "name": "OK",
                                          "condition": "profile@traits.a == 1"})])
    es.index(index=base_index_name(settings.tracardi, "segment"), id="hand-made",
             document={"name": "no condition"}, refresh=True)
    with caplog.at_level(logging.WARNING):
        assert ids(store.list(Segment)) == ["ok"]
    assert "segment 'hand-made': field 'condition'" in caplog.text


def test_cache_refreshes_by_the_injected_clock(es: Elasticsearch, settings: Settings,
                                               caplog: pytest.LogCaptureFixture) -> None:
    install(es, settings)
    store = DefinitionStore(es, settings)
    now = [100.0]
    cache = DefinitionCache(store, Segment, refresh_s=10.0, clock=lambda: now[0])

    def segment(ident: str) -> Segment:
        return Segment.from_dict({"id": ident, "name": ident, "condition": "profile@traits.a == 1"})

    store.upsert_many([segment("a")])
    assert ids(cache.get_all()) == ["a"]
    store.upsert_many([segment("b")])
    now[0] = 109.9
    assert ids(cache.get_all()) == ["a"]  # still fresh
    now[0] = 110.0
    assert ids(cache.get_all()) == ["a", "b"]

    # a failing refresh keeps the previous list and waits refresh_s before trying again
    segment_index = base_index_name(settings.tracardi, "segment")
    es.indices.close(index=segment_index)
    now[0] = 125.0
    with caplog.at_level(logging.WARNING):
        assert ids(cache.get_all()) == ["a", "b"]
    assert "keeping 2 cached ones" in caplog.text
    es.indices.open(index=segment_index, wait_for_active_shards="1")
    store.upsert_many([segment("c")])
    now[0] = 130.0
    assert ids(cache.get_all()) == ["a", "b"]
    now[0] = 135.0
    assert ids(cache.get_all()) == ["a", "b", "c"]
    cache.invalidate()
    store.delete(Segment, "a")
    assert ids(cache.get_all()) == ["b", "c"]


def test_cache_first_load_failure_raises(settings: Settings) -> None:
    unreachable = Elasticsearch("http://127.0.0.1:1", max_retries=0, request_timeout=2)
    cache = DefinitionCache(DefinitionStore(unreachable, settings), "segment", 10.0)
    with pytest.raises(BackendUnavailable):
        cache.get_all()


def test_a_refresh_parses_only_what_changed(es: Elasticsearch, settings: Settings,
                                            caplog: pytest.LogCaptureFixture) -> None:
    install(es, settings)
    store = DefinitionStore(es, settings)
    now = [100.0]
    cache = DefinitionCache(store, Segment, refresh_s=5.0, clock=lambda: now[0])

    def segment(ident: str, visits: int = 1) -> Segment:
        return Segment.from_dict({"id": ident, "name": ident,
                                  "condition": f"profile@stats.visits > {visits}"})

    store.upsert_many([segment(f"s{number}") for number in range(30)])
    es.index(index=base_index_name(settings.tracardi, "segment"), id="hand-made",
             document={"name": "no condition"}, refresh=True)
    with caplog.at_level(logging.WARNING):
        first = cache.get_all()
    assert len(first) == 30 and store.parsed == 31
    compiled = first[0].compiled

    now[0] += 5.0  # nothing changed: no document is parsed, not even the invalid one
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = cache.get_all()
    assert store.parsed == 31 and caplog.text == ""
    assert all(old is new for old, new in zip(first, again, strict=True))
    assert again[0].compiled is compiled

    store.upsert_many([segment("s7", visits=9), segment("new")])
    store.delete(Segment, "s3")
    now[0] += 5.0
    changed = {item.id: item for item in cache.get_all()}
    assert store.parsed == 33
    assert changed["s7"].condition == "profile@stats.visits > 9"
    assert "new" in changed and "s3" not in changed and len(changed) == 30
    assert changed["s8"] is next(item for item in first if item.id == "s8")
