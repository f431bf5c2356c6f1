"""Imports run by the upgrade role against the real Elasticsearch and Redis: CSV and JSON
lines into events and profiles, bad rows recorded with their row numbers while the good
ones land, re-runs that duplicate nothing, dry runs, limits and cancel."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tests.roles.upgrade.imports.conftest import ImportWorld
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import PROFILE_CHANGED_QUEUE
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.naming import alias_name, index_name
from tracardi_daemon.model.profiles import cache_key
from tracardi_daemon.roles.upgrade.imports.targets import imported_id
from tracardi_daemon.roles.upgrade.keys import written_key
from tracardi_daemon.roles.upgrade.role import UpgradeRole

# line 1 is the header; lines 3, 5, 6 and 8 are bad in four different ways
BAD_CSV = (
    b"email,name,age,joined\n"
    b"ann@example.com,Ann,31,2024-01-05\n"
    b'bob@example.com,"Bob" the builder,40,2024-02-01\n'
    b"cid@example.com,Cid,22,2024-03-09\n"
    b"dan@example.com,Dan\xe9,50,2024-03-10\n"
    b"eve@example.com,Eve,28\n"
    b"fay@example.com,Fay,33,2024-04-01\n"
    b"gus@example.com,Gus,45,2024-13-45\n"
    b"hal@example.com,Hal,60,2024-05-20\n"
)
GOOD_LINES = (2, 4, 7, 9)


def _csv(tmp_path: Path, content: bytes, name: str = "people.csv") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def _events_config(path: str, **extra: object) -> dict[str, object]:
    return {"path": path, "target": "events", "event_type": "customer-imported",
            "event_source": "crm", "columns": {"joined": "date", "age": "int"},
            "batch": 3, **extra}


def test_bad_rows_are_recorded_with_their_line_while_the_good_rows_land(
        world: ImportWorld, tmp_path: Path) -> None:
    world.define("people", "csv", **_events_config(_csv(tmp_path, BAD_CSV)))
    record = world.run("people")
    assert (record.status, record.done, record.failed) == ("finished", 4, 4)
    assert record.total == 8
    failures = {failed.row: failed for failed in world.failures(record.id)}
    assert sorted(failures) == [3, 5, 6, 8]
    assert failures[3].reason.startswith("bad quoting")
    assert "utf-8" in failures[5].reason and failures[5].raw.startswith("dan@example.com")
    assert failures[6].reason == "3 fields, the header has 4"
    assert failures[8].column == "joined" and "2024-13-45" in failures[8].reason
    events = world.documents("event")
    assert set(events) == {imported_id("people", str(line)) for line in GOOD_LINES}
    ann = events[imported_id("people", "2")]
    assert ann["type"] == "customer-imported" and ann["source"] == {"id": "crm"}
    assert ann["properties"] == {"email": "ann@example.com", "name": "Ann", "age": 31,
                                 "joined": "2024-01-05"}
    assert ann["metadata"]["profile_less"] is True and "profile" not in ann
    assert ann["context"]["import"] == {"id": "people", "row": 2}


def test_a_rerun_overwrites_instead_of_duplicating(world: ImportWorld, tmp_path: Path) -> None:
    rows = "".join(f"c{n},{n}\n" for n in range(250))
    path = _csv(tmp_path, f"customer,score\n{rows}".encode())
    world.define("scores", "csv", path=path, target="events", event_type="score",
                 event_source="crm", key="customer", profile_id="customer")
    first = world.run("scores")
    assert (first.status, first.done, first.failed) == ("finished", 250, 0)
    second = world.run("scores")
    assert (second.status, second.done) == ("finished", 250)
    events = world.documents("event")  # fails on any id stored twice
    assert len(events) == 250
    event = events[imported_id("scores", "c7")]
    assert event["profile"] == {"id": "c7"} and event["metadata"]["profile_less"] is False


def test_csv_rows_are_merged_into_profiles_matched_by_a_key_field(
        world: ImportWorld, tmp_path: Path) -> None:
    tracardi = world.settings.tracardi
    existing = "p-ann"
    index = _profile_index(world, datetime(2023, 5, 1, tzinfo=UTC))
    world.es.index(index=index, id=existing, refresh=True, document={
        "id": existing, "data": {"contact": {"email": {"main": "ann@example.com"}}},
        "traits": {"vip": True}})
    cached = cache_key(tracardi.tenant, tracardi.production, existing)
    world.redis.set(cached, "stale")
    path = _csv(tmp_path, b"email,first,city\nann@example.com,Ann,Oslo\n"
                          b"bob@example.com,Bob,\nann@example.com,Anne,\n")
    world.define("contacts", "csv", path=path, target="profiles", key="email",
                 match="data.contact.email.main",
                 fields={"email": "data.contact.email.main", "first": "data.pii.firstname",
                         "city": "data.contact.address.town"})
    record = world.run("contacts")
    assert (record.status, record.done, record.failed) == ("finished", 3, 0)
    profiles = world.documents("profile")
    assert set(profiles) == {existing, imported_id("contacts", "bob@example.com")}
    ann = profiles[existing]
    assert ann["data"]["pii"] == {"firstname": "Anne"}  # the later row wins
    assert ann["data"]["contact"]["address"] == {"town": "Oslo"}  # an empty cell keeps it
    assert ann["traits"] == {"vip": True}
    assert world.es.get(index=index, id=existing)["found"]  # merged in its own partition
    bob = profiles[imported_id("contacts", "bob@example.com")]
    assert bob["data"]["contact"]["email"] == {"main": "bob@example.com"}
    assert world.redis.get(cached) is None
    changed = WorkQueue(world.redis, tracardi.tenant, PROFILE_CHANGED_QUEUE)
    announced = {m.payload["profile_id"]: m.payload for m in changed.consume("t", count=10)}
    assert set(announced) == set(profiles)
    assert announced[existing]["source"] == "import"
    assert "data.pii.firstname" in announced[existing]["fields"]
    # once more: nothing changes, nothing is announced again
    assert world.run("contacts").status == "finished"
    assert not changed.consume("t", count=10)
    assert len(world.documents("profile")) == 2


def test_a_profile_path_that_conflicts_fails_that_row_only(
        world: ImportWorld, tmp_path: Path) -> None:
    world.es.index(index=_profile_index(world, datetime.now(UTC)), id="p1",
                   refresh=True, document={"id": "p1", "traits": {"level": "gold"}})
    path = _csv(tmp_path, b"id,first,tier\np1,Ann,3\np2,Bob,\n")
    world.define("ids", "csv", path=path, target="profiles", key="id",
                 fields={"first": "data.pii.firstname", "tier": "traits.level.tier"})
    record = world.run("ids")
    assert (record.done, record.failed) == (1, 1)
    [failed] = world.failures(record.id)
    assert (failed.row, failed.column) == (2, "tier")
    assert "traits.level.tier" in failed.reason
    assert world.documents("profile")["p1"] == {"id": "p1", "traits": {"level": "gold"}}
    assert world.documents("profile")["p2"]["data"]["pii"] == {"firstname": "Bob"}


def _profile_index(world: ImportWorld, when: datetime) -> str:
    return index_name(world.settings.tracardi, "profile", when)


def test_json_lines_with_a_profile_column(world: ImportWorld, tmp_path: Path) -> None:
    lines = [json.dumps({"user": "u1", "amount": 10.5, "items": ["a", "b"]}), "",
             "{not json", json.dumps(["a list"]), json.dumps({"amount": 3})]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    world.define("orders", "jsonl", path=str(path), target="events", event_type="order",
                 event_source="shop", profile_id="user")
    record = world.run("orders")
    assert (record.done, record.failed) == (1, 3)
    reasons = {failed.row: (failed.column, failed.reason) for failed in world.failures(record.id)}
    assert reasons[3][1].startswith("invalid JSON")
    assert reasons[4][1].startswith("not a JSON object")
    assert reasons[5] == ("user", "the profile id column is empty")
    [event] = world.documents("event").values()
    assert event["profile"] == {"id": "u1"}
    assert event["properties"] == {"user": "u1", "amount": 10.5, "items": ["a", "b"]}


def test_a_dry_run_checks_every_row_and_writes_nothing(
        world: ImportWorld, tmp_path: Path) -> None:
    world.define("people", "csv", **_events_config(_csv(tmp_path, BAD_CSV)))
    record = world.run("people", dry_run=True)
    assert (record.status, record.done, record.failed) == ("finished", 4, 4)
    assert sorted(failed.row for failed in world.failures(record.id)) == [3, 5, 6, 8]
    assert world.documents("event") == {}


def test_more_failures_than_allowed_fail_the_import(world: ImportWorld, tmp_path: Path) -> None:
    world.define("people", "csv", **_events_config(_csv(tmp_path, BAD_CSV)))
    record = world.run("people", max_failed_rows=1)
    assert record.status == "failed"
    assert "more than max_failed_rows (1)" in (record.last_error or "")
    # the definition's own limit is used when the run gives none
    world.define("strict", "csv", **_events_config(_csv(tmp_path, BAD_CSV),
                                                   max_failed_rows=2))
    assert world.run("strict").status == "failed"


def test_a_missing_definition_or_file_fails_the_task_with_the_reason(
        world: ImportWorld, tmp_path: Path) -> None:
    missing = world.run("nobody")
    assert missing.status == "failed" and "no import definition 'nobody'" in (
        missing.last_error or "")
    world.define("gone", "csv", **_events_config(str(tmp_path / "gone.csv")))
    gone = world.run("gone")
    assert gone.status == "failed" and "gone.csv" in (gone.last_error or "")


def test_cancel_stops_after_the_current_batch(world: ImportWorld, tmp_path: Path) -> None:
    rows = "".join(f"{n}\n" for n in range(1000))
    world.define("many", "csv", path=_csv(tmp_path, f"n\n{rows}".encode()), target="events",
                 event_type="n", event_source="s", batch=100)
    record = world.submit("many")
    role, ctx = world.start_role(UpgradeRole, world.settings)
    while (current := world.tasks.get(record.id)) is not None and current.done < 200:
        role.step(ctx.clock())
    assert world.tasks.request_cancel(record.id)
    ended = world.finish(role, ctx, record.id)
    assert ended.status == "cancelled" and 200 <= ended.done < 1000


def test_a_rerun_overwrites_events_in_the_partition_an_earlier_run_wrote(
        world: ImportWorld, tmp_path: Path) -> None:
    path = _csv(tmp_path, b"customer,score\nc1,1\nc2,2\n")
    world.define("moved", "csv", path=path, target="events", event_type="score",
                 event_source="crm", key="customer")
    first = world.run("moved")
    assert world.redis.get(written_key(world.settings.tracardi.tenant, "moved")) == \
        first.id.encode()
    # the first run's events, as if written in an older partition
    old = index_name(world.settings.tracardi, "event", datetime(2023, 2, 1, tzinfo=UTC))
    install(world.es, world.settings, now=datetime(2023, 2, 1, tzinfo=UTC))
    for event_id, event in world.documents("event").items():
        world.es.index(index=old, id=event_id, document=event)
        world.es.delete(index=_event_index(world), id=event_id)
    world.es.indices.refresh(index=old)
    assert world.run("moved").done == 2
    events = world.documents("event")  # fails on an id stored twice
    assert len(events) == 2
    located = world.es.search(index=alias_name(world.settings.tracardi, "event"),
                              query={"match_all": {}})["hits"]["hits"]
    assert {hit["_index"] for hit in located} == {old}


def _event_index(world: ImportWorld) -> str:
    return index_name(world.settings.tracardi, "event", datetime.now(UTC))


def test_two_keys_that_name_one_profile_both_land_in_it(
        world: ImportWorld, tmp_path: Path) -> None:
    world.es.index(index=_profile_index(world, datetime.now(UTC)), id="p-m", refresh=True,
                   document={"id": "p-m", "traits": {"emails": ["a@x.io", "b@x.io"]}})
    path = _csv(tmp_path, b"email,first,town\na@x.io,Ann,\nb@x.io,,Oslo\n")
    world.define("many", "csv", path=path, target="profiles", key="email",
                 match="traits.emails",
                 fields={"first": "data.pii.firstname", "town": "data.contact.address.town"})
    record = world.run("many")
    assert (record.done, record.failed) == (2, 0)
    profiles = world.documents("profile")
    assert list(profiles) == ["p-m"]
    assert profiles["p-m"]["data"] == {"pii": {"firstname": "Ann"},
                                       "contact": {"address": {"town": "Oslo"}}}
