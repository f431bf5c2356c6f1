"""No traceback is reachable from a ``schedule`` argument or payload file: random
``--in``, ``--at``, ``--every``, ``--target`` and payload bytes either schedule a job
(exit 0) or exit 2 with a message. In-process through ``cli.main``, and a few cases in a
real process; real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tracardi_daemon.cli import main
from tracardi_daemon.infra.redis import RedisClient

# what a shell can pass: any text, and bytes that are no UTF-8 (surrogate-escaped)
_ARG = st.text(max_size=30) | st.binary(max_size=20).map(os.fsdecode)
# every field is valid about half the time, so that some whole commands succeed
_VALID_DURATION = st.from_regex(r"[1-9][0-9]{0,4}(s|m|h|d)?", fullmatch=True)
_DURATION = _VALID_DURATION | _ARG | st.from_regex(
    r"[+-]?[0-9]{1,14}(\.[0-9]{1,3})?(ms|s|m|h|d)?", fullmatch=True) | st.sampled_from(
    ["1" * 400, "99999999d", "-5s", "0", "1ms", "1e9", "nan", "inf", ".5s", "-.5s"])
# typed Any: hypothesis' stubs accept only the naive strategy for a naive min/max
_ZONES: Any = st.none() | st.just(UTC) | st.integers(-1439, 1439).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))
_FUTURE = st.integers(60, 3000 * 86400).map(
    lambda seconds: (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat())
_AT = _FUTURE | _ARG | st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
    timezones=_ZONES).map(lambda at: at.isoformat())
_VALID_TARGET = st.sampled_from(["stream:events", "webhook:https://hooks.example/x",
                                 "webhook:https://u:pw@hooks.example/x", "tracker:"])
_TARGET = _VALID_TARGET | _ARG | st.builds("{}:{}".format, st.sampled_from(
    ["stream", "webhook", "tracker", "STREAM", "ftp", ""]), _ARG) | st.sampled_from(
    ["webhook:http://[::1", "webhook:http://u:p@h:99999/x", "stream:a{b}"])
_JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                     max_leaves=20)
_OBJECT = st.dictionaries(st.text(max_size=5), _JSON, max_size=4).map(
    lambda value: json.dumps(value).encode())
_PAYLOAD = _OBJECT | st.binary(max_size=300) | _JSON.map(
    lambda value: json.dumps(value).encode()) | st.integers(1, 3000).map(
    lambda depth: b'{"a":' + b"[" * depth + b"]" * depth + b"}")


@st.composite
def _schedule_argv(draw: st.DrawFn, payload_path: str) -> list[str]:
    argv = ["schedule"]
    when = draw(st.sampled_from(["in", "at", "in", "at", "both", "neither"]))
    if when in ("in", "both"):
        argv += ["--in", draw(_DURATION)]
    if when in ("at", "both"):
        argv += ["--at", draw(_AT)]
        if draw(st.booleans()):
            argv.append("--now-if-past")
    if draw(st.booleans()):
        argv += ["--every", draw(_DURATION)]
    argv += ["--target", draw(_TARGET), "--payload", payload_path]
    return argv


def _run_cli(argv: list[str], env: dict[str, str]) -> int:
    try:
        return main(argv, environ=env)
    except SystemExit as exc:  # argparse's own usage errors (and --help)
        return exc.code if isinstance(exc.code, int) else 2


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), payload=_PAYLOAD)
def test_schedule_never_raises(data: st.DataObject, payload: bytes, tmp_path: Path,
                               prefix: str, redis_client: RedisClient,
                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "payload.json"
    path.write_bytes(payload)
    argv = data.draw(_schedule_argv(str(path)))
    code = _run_cli(argv, {"TENANT_NAME": prefix})
    out, err = capsys.readouterr()
    event(f"exit {code}")
    assert "Traceback" not in err
    if code == 0:
        assert out.strip() or "usage" in out  # a job id, or --help's usage
    else:
        assert code == 2 and err.strip(), (argv, code, err)


_CASES = [
    (["--in", "-5s"], b'{"a": 1}', "--in: '-5s' must be positive"),
    (["--in", "99999999d"], b'{"a": 1}', "scheduler.max_delay_days"),
    (["--in", "1" * 400], b'{"a": 1}', "--in"),
    (["--in", "1m", "--every", "1ms"], b'{"a": 1}', "scheduler.min_interval_s"),
    (["--in", "1m"], b'{"a": "\xff"}', "not UTF-8"),
    (["--in", "1m"], b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
]


@pytest.mark.parametrize(("argv", "payload", "message"), _CASES)
def test_real_process_exits_2_without_traceback(argv: list[str], payload: bytes,
                                                message: str, tmp_path: Path,
                                                prefix: str) -> None:
    path = tmp_path / "payload.json"
    path.write_bytes(payload)
    env = {"PATH": os.environ.get("PATH", ""), "TENANT_NAME": prefix}
    done = subprocess.run(
        [sys.executable, "-m", "tracardi_daemon.cli", "schedule", *argv, "--target",
         "stream:s", "--payload", str(path)],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
