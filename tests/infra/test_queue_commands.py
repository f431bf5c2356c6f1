"""``dead list|requeue|purge QUEUE`` as functions on the real Redis, parsed by the real
argument parser."""

from __future__ import annotations

import argparse
import json

import pytest
from redis import Redis

from tests.infra.conftest import QueueFactory
from tracardi_daemon.cli import dead as queue_commands


def run(redis_client: Redis, prefix: str, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    queue_commands.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dead", *argv])
    result: int = args.queue_command(redis_client, prefix, args)
    return result


@pytest.fixture
def three_dead(make_queue: QueueFactory) -> list[str]:
    work = make_queue("upgrade", max_attempts=1)
    work.enqueue_many([{"n": n} for n in range(3)])
    for message in work.consume("c1", count=3):
        work.retry(message, f"error {message.payload['n']}")
    return [letter.id for letter in work.list_dead()]


def test_dead_list(redis_client: Redis, prefix: str, three_dead: list[str],
                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(redis_client, prefix, "list", "upgrade", "--limit", "2") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(three_dead[0]) and "error 0" in out[0]
    assert out[-1] == "2 of 3 dead letter(s) in queue upgrade"
    assert run(redis_client, prefix, "list", "upgrade", "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["payload"] for row in rows] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert rows[0]["attempts"] == 1 and "max_attempts 1" in rows[0]["reason"]


def test_dead_requeue_by_id_and_all(redis_client: Redis, prefix: str, three_dead: list[str],
                                    make_queue: QueueFactory,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run(redis_client, prefix, "requeue", "upgrade", "--id", three_dead[1]) == 0
    assert "requeued 1 dead letter(s)" in capsys.readouterr().out
    assert run(redis_client, prefix, "requeue", "upgrade", "--all") == 0
    assert "requeued 2 dead letter(s)" in capsys.readouterr().out
    payloads = [m.payload for m in make_queue("upgrade").consume("c2", count=10)]
    assert payloads == [{"n": 1}, {"n": 0}, {"n": 2}]


def test_dead_requeue_needs_ids_or_all(redis_client: Redis, prefix: str) -> None:
    with pytest.raises(SystemExit):
        run(redis_client, prefix, "requeue", "upgrade")


def test_dead_purge_asks_for_yes(redis_client: Redis, prefix: str, three_dead: list[str],
                                 make_queue: QueueFactory,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run(redis_client, prefix, "purge", "upgrade") == 1
    assert "has 3 dead letter(s); add --yes" in capsys.readouterr().err
    assert run(redis_client, prefix, "purge", "upgrade", "--yes") == 0
    assert "purged 3" in capsys.readouterr().out
    assert make_queue("upgrade").stats().dead == 0


def test_bad_queue_name_is_an_error(redis_client: Redis, prefix: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run(redis_client, prefix, "list", "bad{queue}") == 1
    assert "queue 'bad{queue}'" in capsys.readouterr().err
