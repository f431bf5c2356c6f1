"""``dead list`` masks credentials in targets, reasons, errors and payloads, in text and
JSON; the stored dead letter keeps them, so a requeue delivers what was meant. Real Redis."""

from __future__ import annotations

import json

import pytest

from tests.infra.test_queue_commands import run
from tracardi_daemon.infra.deadletters import add_dead_letter
from tracardi_daemon.infra.queue_base import queue_key, stream_entries
from tracardi_daemon.infra.redis import RedisClient

TARGET = "webhook:https://hook:hunter2@hooks.example/in?token=t0k3n"
SECRETS = ("hunter2", "t0k3n", "abc.def")


@pytest.fixture
def dead_dispatch(redis_client: RedisClient, prefix: str) -> str:
    return add_dead_letter(
        redis_client, prefix, "dispatch",
        payload={"target": TARGET, "payload": {"password": "p", "n": 1}},
        reason=f"HTTP 401 from {TARGET}", attempts=5,
        first_error=f"POST {TARGET}: connection refused",
        last_error="rejected Authorization: Bearer abc.def", extra={"target": TARGET})


def test_dead_list_text_masks_credentials(redis_client: RedisClient, prefix: str,
                                          dead_dispatch: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(redis_client, prefix, "list", "dispatch") == 0
    out = capsys.readouterr().out
    assert dead_dispatch in out and "hooks.example" in out and "HTTP 401" in out
    for secret in SECRETS:
        assert secret not in out


def test_dead_list_json_masks_credentials_and_stays_json(
        redis_client: RedisClient, prefix: str, dead_dispatch: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run(redis_client, prefix, "list", "dispatch", "--json") == 0
    out = capsys.readouterr().out
    for secret in (*SECRETS, '"p"'):
        assert secret not in out
    row = json.loads(out)
    assert row["id"] == dead_dispatch and row["payload"]["payload"]["n"] == 1
    assert row["target"] == "webhook:https://********@hooks.example/in?token=********"


def test_requeue_keeps_the_real_target(redis_client: RedisClient, prefix: str,
                                       dead_dispatch: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert run(redis_client, prefix, "requeue", "dispatch", "--id", dead_dispatch) == 0
    [(_, fields)] = stream_entries(redis_client.xrange(queue_key(prefix, "dispatch")))
    assert json.loads(fields["payload"])["target"] == TARGET


def test_bad_id_and_limit_are_usage_errors(redis_client: RedisClient, prefix: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("requeue", "dispatch", "--id", "not-an-id"),
                 ("list", "dispatch", "--limit", "0")):
        with pytest.raises(SystemExit) as info:
            run(redis_client, prefix, *argv)
        assert info.value.code == 2 and capsys.readouterr().err
