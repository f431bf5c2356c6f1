"""The trigger role against the real Redis, Elasticsearch and a real local receiver: one
workflow start per transition, through the dispatch role's senders, also when a change
is delivered again or taken over from a role that died before acking it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.roles.trigger.conftest import AT, World, change_message, run_for, run_until, trigger_doc
from tracardi_daemon.errors import BackendUnavailable
from tracardi_daemon.infra.dispatch import IDEMPOTENCY_HEADER, _tracker_payload_problem
from tracardi_daemon.model.definitions import WorkflowTrigger
from tracardi_daemon.roles.trigger.role import SegmentChange, delivery_key


def webhook(world: World) -> str:
    return f"webhook:{world.receiver.url}/hook"


def posts(world: World) -> list[Any]:
    with world.receiver.lock:
        return list(world.receiver.received)


def test_a_change_starts_webhook_and_stream_triggers_once(world: World) -> None:
    world.store_triggers(trigger_doc("t-hook", target=webhook(world)),
                         trigger_doc("t-stream", target="stream:started"))
    trigger, trigger_ctx = world.trigger_role()
    sender, _ = world.dispatch_role()
    world.send(change_message("change-1"))
    run_until([trigger, sender], lambda: len(posts(world)) == 1 and world.stream("started"))
    run_for([trigger, sender], 0.3)  # nothing more arrives

    [post] = posts(world)
    assert post.path == "/hook"
    assert len(post.headers[IDEMPOTENCY_HEADER.lower()]) == 64  # sha256, hex
    assert post.json() == {
        "trigger": {"id": "t-hook", "name": "Trigger t-hook"},
        "workflow": {"id": "wf-t-hook", "name": "Workflow t-hook"},
        "segment": {"id": "seg-vip", "name": "VIP customers", "machine_name": "vip-customers"},
        "profile": {"id": "p-1"},
        "change": {"id": "change-1", "type": "add", "at": AT, "cause": "test"},
    }
    [entry] = world.stream("started")
    assert json.loads(entry["payload"])["trigger"] == {"id": "t-stream",
                                                      "name": "Trigger t-stream"}
    assert entry["idempotency_key"] != post.headers[IDEMPOTENCY_HEADER.lower()]
    assert (trigger_ctx.counters.processed, trigger_ctx.counters.failed) == (1, 0)
    assert world.changes().stats().length == 0  # acked


def test_a_redelivered_change_starts_nothing_again(world: World) -> None:
    world.store_triggers(trigger_doc("t-hook", target=webhook(world)))
    trigger, _ = world.trigger_role()
    sender, _ = world.dispatch_role()
    world.send(change_message("change-1"))
    run_until([trigger, sender], lambda: len(posts(world)) == 1)
    world.send(change_message("change-1"))  # the producer announced it twice
    run_for([trigger, sender], 0.5)
    assert len(posts(world)) == 1

    world.send(change_message("change-2"))  # a later transition of the same profile
    run_until([trigger, sender], lambda: len(posts(world)) == 2)
    first, second = world.receiver.keys()
    assert first != second
    assert posts(world)[1].json()["change"]["id"] == "change-2"


def test_only_matching_enabled_triggers_fire(world: World) -> None:
    hook = webhook(world)
    world.store_triggers(
        trigger_doc("t-remove", target=hook, type="segment-remove"),
        trigger_doc("t-disabled", target=hook, enabled=False),
        trigger_doc("t-other", target=hook, segment=("seg-other", "Other")),
        # matched by machine name when the change names no definition
        trigger_doc("t-by-name", target=hook, segment=("seg-old-id", "VIP customers")))
    trigger, ctx = world.trigger_role()
    sender, _ = world.dispatch_role()
    world.send(change_message("change-1", segment_id=None))
    run_until([trigger, sender], lambda: len(posts(world)) >= 1)
    run_for([trigger, sender], 0.3)
    assert [p.json()["trigger"]["id"] for p in posts(world)] == ["t-by-name"]

    world.send(change_message("change-2", change="remove"))  # by segment_id
    run_until([trigger, sender], lambda: len(posts(world)) >= 2)
    run_for([trigger, sender], 0.3)
    removed = posts(world)[1].json()
    assert (removed["trigger"]["id"], removed["change"]["type"]) == ("t-remove", "remove")
    assert len(posts(world)) == 2 and ctx.counters.processed == 2


def test_a_disabled_trigger_fires_nothing(world: World) -> None:
    world.store_triggers(trigger_doc("t-off", target=webhook(world), enabled=False),
                         trigger_doc("t-off-stream", target="stream:started", enabled=False))
    trigger, ctx = world.trigger_role()
    sender, _ = world.dispatch_role()
    world.send(change_message())
    run_until([trigger], lambda: ctx.counters.processed == 1)
    run_for([trigger, sender], 0.3)
    assert posts(world) == [] and world.stream("started") == []


BROKEN = [  # (what is wrong, the field the dead letter names)
    ({"change": "maybe"}, "'change'"),
    ({"profile_id": ""}, "'profile_id'"),
    ({"id": None}, "'id'"),
    ({"at": "yesterday"}, "'at'"),
    ({"segment_id": 7}, "'segment_id'"),
]


def test_malformed_changes_are_dead_lettered_and_the_next_handled(world: World) -> None:
    world.store_triggers(trigger_doc("t-hook", target=webhook(world)))
    trigger, ctx = world.trigger_role()
    sender, _ = world.dispatch_role()
    world.send(*[{**change_message(f"bad-{n}"), **broken}
                 for n, (broken, _) in enumerate(BROKEN)], change_message("good"))
    run_until([trigger, sender], lambda: len(posts(world)) == 1)
    assert posts(world)[0].json()["change"]["id"] == "good"
    dead = world.changes().list_dead()
    assert [d.payload for d in dead] == [{**change_message(f"bad-{n}"), **broken}
                                         for n, (broken, _) in enumerate(BROKEN)]
    for letter, (_, field) in zip(dead, BROKEN, strict=True):
        assert letter.reason.startswith(f"invalid segment change: field {field}")
    assert (ctx.counters.processed, ctx.counters.failed) == (1, len(BROKEN))


def test_a_tracker_target_gets_a_tracardi_track_body(world: World) -> None:
    world.store_triggers(trigger_doc("t-track",
                                     target={"type": "tracker", "source_id": "src-1"}))
    trigger, _ = world.trigger_role()
    sender, _ = world.dispatch_role()
    world.send(change_message())
    run_until([trigger, sender], lambda: len(posts(world)) == 1)

    [post] = posts(world)
    body = post.json()
    assert post.path == "/track"  # the configured Tracardi API
    assert _tracker_payload_problem(body) is None
    assert body["source"] == {"id": "src-1"} and body["profile"] == {"id": "p-1"}
    [event] = body["events"]
    assert event["type"] == "segment-added"
    assert event["properties"] == {
        "segment": {"id": "seg-vip", "name": "VIP customers", "machine_name": "vip-customers"},
        "workflow": {"id": "wf-t-track", "name": "Workflow t-track"},
        "trigger": {"id": "t-track"},
        "change": {"id": "change-1", "at": AT},
    }


def test_a_change_left_by_a_dead_role_is_taken_over_and_fires_once(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.store_triggers(trigger_doc("t-hook", target=webhook(world)))
    dying, dying_ctx = world.trigger_role()
    sender, _ = world.dispatch_role()

    def lost(ids: Any) -> int:
        raise BackendUnavailable("redis", "connection lost")  # died before its ack

    monkeypatch.setattr(dying._changes, "ack", lost)
    world.send(change_message())
    with pytest.raises(BackendUnavailable):
        run_until([dying], lambda: False)
    run_until([sender], lambda: len(posts(world)) == 1)  # its delivery was queued

    taker, taker_ctx = world.trigger_role()  # the role on another thread or daemon
    run_until([taker, sender], lambda: taker_ctx.counters.processed == 1,
              timeout_s=world.settings.queue.visibility_timeout_s * 4)
    run_for([taker, sender], 0.5)
    assert len(posts(world)) == 1
    assert dying_ctx.counters.processed == 0
    assert world.changes().stats().length == 0


def test_the_key_is_stable_per_trigger_and_change() -> None:
    trigger = WorkflowTrigger.from_dict(trigger_doc("t", target="stream:s"))
    other = WorkflowTrigger.from_dict(trigger_doc("u", target="stream:s"))
    change = SegmentChange.from_payload(change_message("c"))
    assert delivery_key(trigger, change) == delivery_key(trigger, change)
    assert len({delivery_key(trigger, change), delivery_key(other, change),
                delivery_key(trigger, SegmentChange.from_payload(change_message("d")))}) == 3
