"""``tracardi-daemon triggers test`` against the real Redis, Elasticsearch and a real
local receiver: one delivery now, exit 0 on success, 1 on failure, 2 on bad input."""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import pytest

from tests.receivers import ScriptedServer
from tests.roles.trigger.conftest import World, trigger_doc
from tracardi_daemon.cli import triggers as trigger_commands
from tracardi_daemon.infra.dispatch import IDEMPOTENCY_HEADER


def run(argv: list[str], world: World) -> int:
    parser = argparse.ArgumentParser()
    trigger_commands.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["triggers", "test", *argv])
    # the receiver listens on loopback, which only the config file can open
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as config:
        config.write('[outbound]\nallow = ["127.0.0.0/8"]\n')
    env = {"TENANT_NAME": world.settings.tracardi.tenant, "TRACARDI_CONFIG": config.name}
    try:
        result: int = args.handler(args, env)
    finally:
        os.unlink(config.name)
    return result


def test_sends_once_to_the_triggers_target(world: World, http_server: ScriptedServer,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    world.store_triggers(trigger_doc("t-hook", target=f"webhook:{http_server.url}/hook",
                                     type="segment-remove"))
    assert run(["t-hook", "--profile", "p-9"], world) == 0
    [post] = http_server.received
    body = post.json()
    assert post.path == "/hook" and post.headers[IDEMPOTENCY_HEADER.lower()]
    assert body["profile"] == {"id": "p-9"} and body["trigger"]["id"] == "t-hook"
    assert body["change"]["type"] == "remove" and body["change"]["cause"] == "triggers test"
    assert body["segment"]["machine_name"] == "vip-customers"
    out = capsys.readouterr().out
    assert out.startswith("sent: trigger t-hook to webhook:") and "(HTTP 200)" in out
    assert world.changes().stats().length == 0  # nothing queued: a direct attempt

    assert run(["t-hook", "--profile", "p-9"], world) == 0  # a new change id each time
    assert len(set(http_server.keys())) == 2


def test_target_option_overrides_and_shapes_the_payload(
        world: World, http_server: ScriptedServer) -> None:
    world.store_triggers(trigger_doc("t-stream", target="stream:started"))
    assert run(["t-stream", "--profile", "p-1", "--target", f"webhook:{http_server.url}/x"],
               world) == 0
    assert [r.path for r in http_server.received] == ["/x"]
    assert world.stream("started") == []
    assert run(["t-stream", "--profile", "p-1"], world) == 0
    [entry] = world.stream("started")
    assert json.loads(entry["payload"])["profile"] == {"id": "p-1"}


def test_a_failed_delivery_exits_1_with_the_masked_error(
        world: World, http_server: ScriptedServer, capsys: pytest.CaptureFixture[str]) -> None:
    world.store_triggers(trigger_doc("t-hook", target="webhook:http://127.0.0.1:9/x"))
    http_server.replies = [(500, "password=hunter2 broke")]
    assert run(["t-hook", "--profile", "p-1", "--target",
                f"webhook:{http_server.url.replace('://', '://me:secret@')}/x"], world) == 1
    err = capsys.readouterr().err
    assert err.startswith("failed: trigger t-hook") and "HTTP 500" in err
    assert "secret" not in err and "hunter2" not in err


@pytest.mark.parametrize(("argv", "message"), [
    (["nope", "--profile", "p-1"], "no workflow trigger 'nope'"),
    (["t-hook", "--profile", "p-1", "--target", "ftp:x"], "--target: target 'ftp:x'"),
])
def test_bad_input_exits_2(world: World, capsys: pytest.CaptureFixture[str],
                           http_server: ScriptedServer, argv: list[str], message: str) -> None:
    world.store_triggers(trigger_doc("t-hook", target=f"webhook:{http_server.url}/hook"))
    assert run(argv, world) == 2
    assert message in capsys.readouterr().err
    assert http_server.received == []
