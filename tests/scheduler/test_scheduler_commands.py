"""``schedule`` and ``scheduled list|cancel`` and the Python producer API, against
real Redis; bad input exits 2 with a message naming what is wrong."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis

from tracardi_daemon import scheduler_client
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.delayed import DelayedStore
from tracardi_daemon.roles import scheduler_commands


def run(argv: list[str], prefix: str) -> int:
    parser = argparse.ArgumentParser()
    scheduler_commands.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    result: int = args.handler(args, {"TENANT_NAME": prefix})
    return result


@pytest.fixture
def payload_file(tmp_path: Path) -> Path:
    path = tmp_path / "payload.json"
    path.write_text(json.dumps({"hello": "world"}))
    return path


def test_schedule_list_cancel(redis_client: Redis[bytes], prefix: str, payload_file: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    before = time.time() * 1000
    assert run(["schedule", "--in", "30s", "--target", "stream:out", "--payload",
                str(payload_file), "--every", "10m"], prefix) == 0
    job_id = capsys.readouterr().out.strip()
    job = DelayedStore(redis_client, prefix).get(job_id)
    assert job is not None and job.payload == {"hello": "world"} and job.interval_s == 600
    assert before + 30_000 <= job.due_ms <= time.time() * 1000 + 30_000
    assert run(["schedule", "--at", "2030-01-01T09:00:00+01:00", "--target",
                "webhook:http://127.0.0.1:9/x", "--payload", str(payload_file)], prefix) == 0
    at_id = capsys.readouterr().out.strip()
    assert DelayedStore(redis_client, prefix).get(at_id).due_ms == int(  # type: ignore[union-attr]
        datetime(2030, 1, 1, 8, tzinfo=UTC).timestamp() * 1000)
    assert run(["scheduled", "list"], prefix) == 0
    listing = capsys.readouterr().out
    assert listing.index(job_id) < listing.index(at_id) and "every=600s" in listing
    assert run(["scheduled", "cancel", job_id], prefix) == 0
    assert run(["scheduled", "cancel", job_id], prefix) == 1
    assert "no delayed job" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--in", "soon", "--target", "stream:s"], "--in: 'soon' is not a duration"),
    (["--in", "1s", "--target", "ftp:x"], "unknown kind 'ftp'"),
    (["--in", "1s", "--target", "stream:s", "--every", "0s"], "--every"),
    (["--at", "tomorrow", "--target", "stream:s"], "--at: 'tomorrow'"),
])
def test_bad_input_exits_2(argv: list[str], message: str, prefix: str, redis_client: Redis[bytes],
                           payload_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schedule", *argv, "--payload", str(payload_file)], prefix) == 2
    assert message in capsys.readouterr().err
    assert DelayedStore(redis_client, prefix).list(10) == []


def test_bad_payload_exits_2(tmp_path: Path, prefix: str, redis_client: Redis[bytes],
                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{")
    for name, message in [("list.json", "must hold a JSON object"),
                          ("broken.json", "not valid JSON"), ("missing.json", "cannot read")]:
        assert run(["schedule", "--in", "1s", "--target", "stream:s", "--payload",
                    str(tmp_path / name)], prefix) == 2
        assert message in capsys.readouterr().err


def test_python_client(redis_client: Redis[bytes], prefix: str) -> None:
    at = datetime.now(UTC) + timedelta(minutes=5)
    job_id = scheduler_client.schedule(redis_client, prefix, "stream:s", {"a": 1}, at=at)
    job = scheduler_client.get(redis_client, prefix, job_id)
    assert job is not None and job.due_ms == int(at.timestamp() * 1000)
    assert scheduler_client.cancel(redis_client, prefix, job_id)
    assert scheduler_client.get(redis_client, prefix, job_id) is None
    with pytest.raises(InvalidInput, match="timezone"):
        scheduler_client.schedule(redis_client, prefix, "stream:s", {},
                                  at=datetime(2030, 1, 1))
    with pytest.raises(InvalidInput, match="payload"):
        scheduler_client.schedule(redis_client, prefix, "stream:s", "x", delay_s=1)  # type: ignore[arg-type]
