"""The health socket over real Unix sockets: endpoints, metrics format, socket hygiene, client."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tracardi_daemon.cli.health import check, cmd_check, cmd_status, render_table
from tracardi_daemon.errors import DaemonError
from tracardi_daemon.health.metrics import render_metrics
from tracardi_daemon.health.report import HealthReport, OverallStatus, RoleReport, RoleState
from tracardi_daemon.health.server import HealthServer, HealthUnavailable, fetch


def role(state: RoleState = "running", **changes: Any) -> RoleReport:
    entry: dict[str, Any] = {"state": state, "threads": 2, "heartbeat_age_s": 0.25,
                             "step_age_s": 0.5, "restarts": 1, "consecutive_failures": 0,
                             "processed": 120, "failed": 3, "last_error": None, "queue_lag": 7,
                             "lag_s": None, "detail": None}
    entry.update(changes)
    return cast(RoleReport, entry)


def make_report(status: OverallStatus = "ok") -> HealthReport:
    return {
        "status": status, "version": "0.1.0", "pid": os.getpid(), "uptime_s": 3725.5,
        "roles": {
            "upgrade": role(lag_s=1.5),
            "segmentation": role("unlicensed", threads=0, heartbeat_age_s=None,
                                 step_age_s=None, restarts=0, processed=0, failed=0,
                                 queue_lag=None,
                                 detail="licence does not grant segmentation"),
        },
        "backends": {
            "redis": {"up": True, "detail": None, "checked_age_s": 0.4},
            "elasticsearch": {"up": status == "ok", "detail": "connection refused",
                              "checked_age_s": 1.2},
        },
        "license": {"valid": True, "licensee": "Example Ltd",
                    "expires": "2030-01-01T00:00:00+00:00", "roles": ["segmentation"],
                    "detail": None},
    }


class Reports:
    """The report callable the tests control."""

    def __init__(self) -> None:
        self.current = make_report()

    def __call__(self) -> HealthReport:
        return self.current


@pytest.fixture
def workdir() -> Iterator[Path]:
    # short path: AF_UNIX paths are limited to 108 bytes
    path = Path(tempfile.mkdtemp(prefix="td-h-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def server(workdir: Path, reports: Reports) -> Iterator[HealthServer]:
    health = HealthServer(str(workdir / "run" / "health.sock"), reports)
    health.start()
    yield health
    health.stop()


def raw_request(path: str, data: bytes, shut_write: bool = True) -> bytes:
    """Send raw bytes and read the whole answer (the server closes every connection)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert match, answer[:200]
    return int(match.group(1))


# -- endpoints -------------------------------------------------------------------------------
def test_health_is_200_when_ok_and_503_otherwise(server: HealthServer, reports: Reports) -> None:
    status, body = fetch(server.path)
    assert status == 200 and json.loads(body) == reports.current
    overalls: tuple[OverallStatus, ...] = ("degraded", "failing", "stopping")
    for overall in overalls:
        reports.current = make_report(overall)
        status, body = fetch(server.path, "/health")
        assert status == 503 and json.loads(body)["status"] == overall


def test_health_headers_and_head(server: HealthServer) -> None:
    answer = raw_request(server.path, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert status_of(answer) == 200
    assert b"Content-Type: application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    answer = raw_request(server.path, b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert status_of(answer) == 200 and body == b"" and b"Content-Length: " in head


def test_unknown_path_wrong_method_and_garbage(server: HealthServer) -> None:
    assert fetch(server.path, "/nope")[0] == 404
    answer = raw_request(server.path, b"POST /health HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 2\r\n\r\n{}")
    assert status_of(answer) == 405 and b"Allow: GET, HEAD" in answer
    assert status_of(raw_request(server.path, b"BREW /metrics HTTP/1.1\r\n\r\n")) == 405
    for garbage in (b"hello\r\n\r\n", b"GET /health HTTP/x.y\r\n\r\n",
                    b"\x00\xff\xfe nonsense\r\n\r\n", b"GET " + b"a" * 9000 + b" HTTP/1.1\r\n"):
        assert status_of(raw_request(server.path, garbage)) == 400, garbage[:30]
    # still serving after all that
    assert fetch(server.path)[0] == 200


def test_report_failure_answers_500(server: HealthServer, reports: Reports) -> None:
    reports.current = {"status": "ok", "bad": object()}  # type: ignore[typeddict-item]
    assert fetch(server.path)[0] == 500
    reports.current = make_report()
    assert fetch(server.path)[0] == 200


def test_idle_connection_is_closed(server: HealthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracardi_daemon.health import reader as health

    # the deadline is read per connection; shortened so the test stays fast
    monkeypatch.setattr(health, "REQUEST_HEAD_TIMEOUT_S", 0.3)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        idle.settimeout(5)
        idle.connect(server.path)
        assert idle.recv(1024) == b""  # closed by the server without a request
    assert fetch(server.path)[0] == 200


# -- metrics ---------------------------------------------------------------------------------
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({METRIC_NAME})(\{{(?:{LABEL})(?:,{LABEL})*,?\}})? (\S+)( -?\d+)?$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_exposition(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A small checker for text format 0.0.4: HELP/TYPE before samples, valid labels."""
    assert text.endswith("\n")
    helped: set[str] = set()
    typed: dict[str, str] = {}
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(METRIC_NAME, name) and name not in helped, line
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in TYPES and name not in typed and name not in samples, line
            typed[name] = kind
        elif line.startswith("#") or not line:
            continue
        else:
            match = SAMPLE.match(line)
            assert match, f"bad sample line: {line!r}"
            name, labels, value = match.group(1), match.group(2) or "", match.group(3)
            assert name in helped and name in typed, f"{name} lacks HELP/TYPE"
            parsed = {key: unescape(raw) for key, raw in
                      re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels)}
            samples.setdefault(name, []).append((parsed, float(value)))
    return samples


def unescape(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), raw)


def value_of(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
             **labels: str) -> float:
    return next(v for got, v in samples[name] if got == labels)


def test_metrics_endpoint_is_valid_exposition(server: HealthServer) -> None:
    answer = raw_request(server.path, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in answer
    status, text = fetch(server.path, "/metrics")
    assert status == 200
    samples = parse_exposition(text)
    assert value_of(samples, "tracardi_daemon_up") == 1
    assert value_of(samples, "tracardi_daemon_role_up", role="upgrade") == 1
    assert value_of(samples, "tracardi_daemon_role_up", role="segmentation") == 0
    assert value_of(samples, "tracardi_daemon_role_heartbeat_age_seconds", role="upgrade") == 0.25
    assert value_of(samples, "tracardi_daemon_role_restarts_total", role="upgrade") == 1
    assert value_of(samples, "tracardi_daemon_role_processed_total", role="upgrade") == 120
    assert value_of(samples, "tracardi_daemon_role_failed_total", role="upgrade") == 3
    assert value_of(samples, "tracardi_daemon_queue_lag", role="upgrade") == 7
    assert value_of(samples, "tracardi_daemon_role_lag_seconds", role="upgrade") == 1.5
    assert value_of(samples, "tracardi_daemon_role_step_age_seconds", role="upgrade") == 0.5
    assert [labels for labels, _ in samples["tracardi_daemon_role_step_age_seconds"]] == [
        {"role": "upgrade"}]  # omitted where unknown
    assert value_of(samples, "tracardi_daemon_role_stalled", role="upgrade") == 0
    assert value_of(samples, "tracardi_daemon_role_stalled", role="segmentation") == 0
    assert [labels for labels, _ in samples["tracardi_daemon_queue_lag"]] == [{"role": "upgrade"}]
    assert value_of(samples, "tracardi_daemon_backend_up", backend="redis") == 1
    assert value_of(samples, "tracardi_daemon_backend_up", backend="elasticsearch") == 1
    assert value_of(samples, "tracardi_daemon_license_expiry_timestamp_seconds") == 1893456000


def test_metrics_escape_label_values_and_omit_unknowns() -> None:
    report = make_report("degraded")
    odd = 'we"ird\\name\nx'
    report["roles"] = {odd: role(heartbeat_age_s=1.5e-3)}
    report["license"] = {"valid": False, "licensee": None, "expires": None, "roles": [],
                         "detail": "no licence"}
    samples = parse_exposition(render_metrics(report))
    assert value_of(samples, "tracardi_daemon_role_up", role=odd) == 1
    assert value_of(samples, "tracardi_daemon_role_heartbeat_age_seconds", role=odd) == 0.0015
    assert value_of(samples, "tracardi_daemon_backend_up", backend="elasticsearch") == 0
    assert "tracardi_daemon_license_expiry_timestamp_seconds" not in samples


def test_stalled_role_is_exported() -> None:
    report = make_report("degraded")
    report["roles"]["upgrade"] = role("stalled", step_age_s=95.25)
    samples = parse_exposition(render_metrics(report))
    assert value_of(samples, "tracardi_daemon_role_stalled", role="upgrade") == 1
    assert value_of(samples, "tracardi_daemon_role_up", role="upgrade") == 0
    assert value_of(samples, "tracardi_daemon_role_step_age_seconds", role="upgrade") == 95.25
    assert value_of(samples, "tracardi_daemon_role_stalled", role="segmentation") == 0


# -- socket hygiene --------------------------------------------------------------------------
def test_created_directory_is_0750_and_socket_0660(server: HealthServer) -> None:
    path = Path(server.path)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o660


def test_existing_directory_keeps_its_mode(workdir: Path, reports: Reports) -> None:
    workdir.chmod(0o755)
    health = HealthServer(str(workdir / "h.sock"), reports)
    health.start()
    try:
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o755
    finally:
        health.stop()


def test_stale_socket_is_replaced(workdir: Path, reports: Reports) -> None:
    path = str(workdir / "h.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nothing listens: what a killed daemon leaves behind
    health = HealthServer(path, reports)
    health.start()
    try:
        assert fetch(path)[0] == 200
    finally:
        health.stop()


def test_second_server_on_a_live_socket_refuses(server: HealthServer, reports: Reports) -> None:
    with pytest.raises(DaemonError, match="another daemon is already serving health on"):
        HealthServer(server.path, reports).start()
    assert fetch(server.path)[0] == 200


def test_path_that_is_not_a_socket_is_refused(workdir: Path, reports: Reports) -> None:
    path = workdir / "h.sock"
    path.write_text("not a socket")
    with pytest.raises(DaemonError, match=re.escape(str(path))):
        HealthServer(str(path), reports).start()
    assert path.read_text() == "not a socket"


def test_stop_removes_socket_and_check_turns_to_1(
        workdir: Path, reports: Reports, capsys: pytest.CaptureFixture[str]) -> None:
    health = HealthServer(str(workdir / "h.sock"), reports)
    health.start()
    assert check(health.path) == 0
    health.stop()
    health.stop()  # idempotent
    assert not os.path.exists(health.path)
    assert check(health.path) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "healthy" and out[1].startswith("unhealthy: no health socket at")
    with pytest.raises(HealthUnavailable, match="no health socket"):
        fetch(health.path)


# -- client ----------------------------------------------------------------------------------
def test_check_names_the_reason(server: HealthServer, reports: Reports,
                                capsys: pytest.CaptureFixture[str]) -> None:
    reports.current = make_report("degraded")
    assert cmd_check(server.path) == 1
    line = capsys.readouterr().out.strip()
    assert line == ("unhealthy: degraded; roles segmentation unlicensed; "
                    "backends down: elasticsearch")


def test_refused_socket_is_a_clear_error(workdir: Path) -> None:
    path = str(workdir / "dead.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()
    with pytest.raises(HealthUnavailable, match="nothing listens"):
        fetch(path)


def test_silent_server_times_out(workdir: Path) -> None:
    path = str(workdir / "mute.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(path)
        mute.listen()
        with pytest.raises(HealthUnavailable, match="no answer"):
            fetch(path, timeout_s=0.2)


def test_render_table_and_status_command(server: HealthServer, reports: Reports,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    reports.current = make_report("degraded")
    reports.current["roles"]["upgrade"]["last_error"] = "boom\n" + "x" * 200
    table = render_table(reports.current)
    assert "status: DEGRADED" in table and "up 1h02m" in table
    assert re.search(r"^upgrade\s+running\s+2\s+0\.2s\s+1\s+120\s+3\s+7\s+boom x+…$",
                     table, re.M), table
    assert re.search(r"^segmentation\s+unlicensed\s.*licence does not grant", table, re.M)
    assert re.search(r"^elasticsearch\s+NO\s+1\.2s ago\s+connection refused$", table, re.M)
    assert "licence: valid, Example Ltd" in table
    assert cmd_status(server.path, as_json=False) == 0  # answered, though degraded
    assert capsys.readouterr().out == table
    assert cmd_status(server.path, as_json=True) == 0
    assert json.loads(capsys.readouterr().out) == reports.current
    server.stop()
    assert cmd_status(server.path, as_json=False) == 1
    assert "no health socket" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_over_the_unix_socket(server: HealthServer) -> None:
    for path, expected in (("/health", "200"), ("/metrics", "200"), ("/x", "404")):
        result = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
             "--unix-socket", server.path, f"http://localhost{path}"],
            capture_output=True, text=True, check=False)
        assert result.stdout == expected, result.stderr
    result = subprocess.run(["curl", "-sS", "--unix-socket", server.path,
                             "http://localhost/health"], capture_output=True, text=True,
                            check=True)
    assert json.loads(result.stdout)["status"] == "ok"
    result = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X",
                             "POST", "-d", "x=1", "--unix-socket", server.path,
                             "http://localhost/health"], capture_output=True, text=True,
                            check=False)
    assert result.stdout == "405", result.stderr
