"""``schedule`` and ``scheduled list|cancel`` and the Python producer API, against
real Redis; bad input exits 2 with a message naming what is wrong."""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tracardi_daemon.cli import schedule as scheduler_commands
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.delayed import DelayedStore
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.scheduler import client as scheduler_client


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


def test_schedule_list_cancel(redis_client: RedisClient, prefix: str, payload_file: Path,
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
def test_bad_input_exits_2(argv: list[str], message: str, prefix: str, redis_client: RedisClient,
                           payload_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schedule", *argv, "--payload", str(payload_file)], prefix) == 2
    assert message in capsys.readouterr().err
    assert DelayedStore(redis_client, prefix).list(10) == []


def test_bad_payload_exits_2(tmp_path: Path, prefix: str, redis_client: RedisClient,
                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{")
    for name, message in [("list.json", "must hold a JSON object"),
                          ("broken.json", "not valid JSON"), ("missing.json", "cannot read")]:
        assert run(["schedule", "--in", "1s", "--target", "stream:s", "--payload",
                    str(tmp_path / name)], prefix) == 2
        assert message in capsys.readouterr().err


def test_python_client(redis_client: RedisClient, prefix: str) -> None:
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


# --- payload files: every bad one exits 2 naming --payload and the file

def schedule_payload(path: Path, prefix: str) -> int:
    return run(["schedule", "--in", "1m", "--target", "stream:s", "--payload", str(path)],
               prefix)


@pytest.mark.parametrize(("content", "message"), [
    (b'{"name": "\xff\xfe"}', "is not UTF-8 text"),
    (b"[" * 100_000 + b"]" * 100_000, "nests deeper than 64 levels"),  # RecursionError
    (b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}", "nested deeper than 64 levels"),
    (b'{"n": ' + b"9" * 5000 + b"}", "is not valid JSON"),  # int() digit limit
    (b'{"n": NaN}', "not serialisable"),
    (b"", "is not valid JSON"),
])
def test_bad_payload_file_exits_2(tmp_path: Path, prefix: str, redis_client: RedisClient,
                                  capsys: pytest.CaptureFixture[str], content: bytes,
                                  message: str) -> None:
    path = tmp_path / "payload.json"
    path.write_bytes(content)
    assert schedule_payload(path, prefix) == 2
    err = capsys.readouterr().err
    assert f"--payload: {path}" in err and message in err
    assert DelayedStore(redis_client, prefix).list(10) == []


def test_payload_over_max_bytes_is_refused_by_its_size(
        tmp_path: Path, prefix: str, redis_client: RedisClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as handle:  # 10 MB of valid JSON: refused before parsing
        handle.write(b'{"a": "' + b"x" * 10_000_000 + b'"}')
    assert schedule_payload(path, prefix) == 2
    err = capsys.readouterr().err
    assert "larger than 1048576 bytes (scheduler.max_payload_bytes)" in err
    small_but_long = tmp_path / "long.json"  # under the file limit, over it as stored
    small_but_long.write_text(json.dumps({"a": "\u00e9" * 200_000}, ensure_ascii=False))
    assert schedule_payload(small_but_long, prefix) == 2
    assert "(scheduler.max_payload_bytes)" in capsys.readouterr().err


def test_payload_that_is_no_file(tmp_path: Path, prefix: str, redis_client: RedisClient,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    for path in (tmp_path, "/dev/zero"):
        assert run(["schedule", "--in", "1m", "--target", "stream:s", "--payload",
                    str(path)], prefix) == 2
        assert "--payload" in capsys.readouterr().err


# --- --in, --at, --every

@pytest.mark.parametrize(("argv", "message"), [
    (["--in", "1" * 400], "--in: '1111111111111111111111111111111111111111...' is too long"),
    (["--in", "99999999d"], "more than 3650 days ahead (scheduler.max_delay_days)"),
    (["--in", "-5s"], "--in: '-5s' must be positive"),
    (["--in", "0s"], "--in: '0s' must be positive"),
    (["--in", "1e3"], "--in: '1e3' is not a duration"),
    (["--at", "2001-01-01T00:00:00+00:00"], "is in the past; add --now-if-past"),
    (["--at", "9999-12-31T23:59:59+00:00"], "more than 3650 days ahead"),
    (["--at", "9999-12-31T23:59:59-23:59"], "--at: '9999-12-31T23:59:59-23:59'"),
    (["--in", "1m", "--every", "1ms"], "--every: '1ms': 0.001s is shorter than 1s "
                                       "(scheduler.min_interval_s)"),
    (["--in", "1m", "--every", "-5s"], "--every: '-5s'"),
    (["--in", "1m", "--every", "99999999d"], "longer than 3650 days"),
])
def test_bad_time_exits_2(argv: list[str], message: str, prefix: str, redis_client: RedisClient,
                          payload_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schedule", *argv, "--target", "stream:s", "--payload", str(payload_file)],
               prefix) == 2
    assert message in capsys.readouterr().err
    assert DelayedStore(redis_client, prefix).list(10) == []


def test_at_in_the_past_with_now_if_past_fires_now(
        prefix: str, redis_client: RedisClient, payload_file: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = time.time() * 1000
    assert run(["schedule", "--at", "2001-01-01T00:00:00Z", "--now-if-past", "--target",
                "stream:s", "--payload", str(payload_file)], prefix) == 0
    job = DelayedStore(redis_client, prefix).get(capsys.readouterr().out.strip())
    assert job is not None and before - 1 <= job.due_ms <= time.time() * 1000


@pytest.mark.parametrize("target", ["webhook:http://[::1", "webhook:http://u:hunter2@[::1"])
def test_malformed_target_url_exits_2(target: str, prefix: str, redis_client: RedisClient,
                                      payload_file: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schedule", "--in", "1m", "--target", target, "--payload",
                str(payload_file)], prefix) == 2
    err = capsys.readouterr().err
    assert "--target" in err and "hunter2" not in err


def test_bad_limit_is_a_usage_error(prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    for limit in ("0", "-3", "many", "9" * 30):
        with pytest.raises(SystemExit) as info:
            run(["scheduled", "list", "--limit", limit], prefix)
        assert info.value.code == 2 and "--limit" in capsys.readouterr().err


# --- scheduled list: robust to any stored job, credentials masked

def store_raw(redis_client: RedisClient, prefix: str, job_id: str, due_ms: float,
              **fields: Any) -> None:
    """A job body as another producer (or an older version) may have written it."""
    store = DelayedStore(redis_client, prefix)
    body = {"id": job_id, "target": "stream:s", "payload": {}, "due_ms": due_ms,
            "interval_s": None, "attempts": 0, **fields}
    redis_client.hset(store.jobs_key, job_id, json.dumps(body))
    redis_client.zadd(store.due_key, {job_id: min(due_ms, 1e300)})


def test_scheduled_list_survives_any_stored_due_time(
        prefix: str, redis_client: RedisClient, capsys: pytest.CaptureFixture[str]) -> None:
    now_ms = int(time.time() * 1000)
    store_raw(redis_client, prefix, "far", now_ms + 99_999_999 * 86_400_000)  # year 275817
    store_raw(redis_client, prefix, "huge", 10 ** 30, interval_s=10 ** 30)
    store_raw(redis_client, prefix, "soon", now_ms + 60_000, interval_s=60)
    # the store may skip the others as unreadable, or return them: listing never fails
    assert run(["scheduled", "list"], prefix) == 0
    out = capsys.readouterr().out
    assert "soon" in out and "delayed job(s) shown" in out
    assert run(["scheduled", "list", "--json"], prefix) == 0
    assert all(json.loads(line) for line in capsys.readouterr().out.splitlines())


def test_scheduled_list_masks_webhook_credentials(
        prefix: str, redis_client: RedisClient, payload_file: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = "webhook:https://hook:hunter2@hooks.example/x?token=t0k3n"
    assert run(["schedule", "--in", "1m", "--target", target, "--payload",
                str(payload_file)], prefix) == 0
    job_id = capsys.readouterr().out.strip()
    for argv in (["scheduled", "list"], ["scheduled", "list", "--json"]):
        assert run(argv, prefix) == 0
        out = capsys.readouterr().out
        assert job_id in out and "hooks.example" in out
        assert "hunter2" not in out and "t0k3n" not in out
    stored = DelayedStore(redis_client, prefix).get(job_id)
    assert stored is not None and stored.target == target  # only the display is masked


def test_python_client_applies_limits(redis_client: RedisClient, prefix: str) -> None:
    from tracardi_daemon.config.settings import SchedulerSettings
    from tracardi_daemon.roles.scheduler.limits import JobLimits

    limits = JobLimits.from_settings(SchedulerSettings())
    with pytest.raises(InvalidInput, match="due_ms"):
        scheduler_client.schedule(redis_client, prefix, "stream:s", {}, delay_s=4000 * 86400,
                                  limits=limits)
    with pytest.raises(InvalidInput, match="interval_s"):
        scheduler_client.schedule(redis_client, prefix, "stream:s", {}, delay_s=1,
                                  every_s=0.001, limits=limits)
    with pytest.raises(InvalidInput, match="payload"):
        scheduler_client.schedule(redis_client, prefix, "stream:s", {"a": "x" * 2_000_000},
                                  delay_s=1, limits=limits)
    with pytest.raises(InvalidInput, match="delay_s"):
        scheduler_client.schedule(redis_client, prefix, "stream:s", {}, delay_s=math.inf)
    job_id = scheduler_client.schedule(redis_client, prefix, "stream:s", {"a": 1}, delay_s=1,
                                       every_s=60, limits=limits)
    assert scheduler_client.get(redis_client, prefix, job_id) is not None
