"""The shipped systemd unit: every setting the daemon's contract relies on, checked by
parsing the file, and the whole file checked by ``systemd-analyze verify`` where it exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tracardi_daemon.config.settings import DaemonSettings, ShutdownSettings, StartupSettings
from tracardi_daemon.errors import ExitCode

UNIT_PATH = Path(__file__).resolve().parents[2] / "systemd" / "tracardi-daemon.service"

Unit = dict[str, dict[str, list[str]]]

_TIMESPAN_UNITS_S = {
    "": 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 0.001, "msec": 0.001,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
}


def parse_unit(text: str) -> Unit:
    """Sections -> key -> every value assigned, in order (systemd allows repeats)."""
    logical_lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical_lines.append(pending + line)
        pending = ""
    assert not pending, "the unit ends in a line continuation"
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for line in logical_lines:
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"assignment outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def parse_timespan_s(value: str) -> float:
    """systemd time spans: "45", "45s", "1min 30s", "500ms"."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value.strip())
    assert parts, f"not a time span: {value!r}"
    total = 0.0
    for number, unit in parts:
        assert unit in _TIMESPAN_UNITS_S, f"unknown time unit {unit!r} in {value!r}"
        total += float(number) * _TIMESPAN_UNITS_S[unit]
    return total


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT_PATH.read_text())


def one(unit: Unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key)
    assert values, f"[{section}] {key}= is missing"
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times: {values}"
    return values[0]


def test_parser_reads_repeats_continuations_and_comments() -> None:
    parsed = parse_unit(
        "# comment\n[Service]\n; other comment\nEnvironment=A=1\nEnvironment=B=2\n"
        "ExecStart=/bin/x \\\n  --flag\n"
    )
    assert parsed == {"Service": {"Environment": ["A=1", "B=2"], "ExecStart": ["/bin/x  --flag"]}}
    assert parse_timespan_s("1min 30s") == 90.0
    assert parse_timespan_s("45") == 45.0
    with pytest.raises(AssertionError):
        parse_unit("Type=notify\n")


def test_sections(unit: Unit) -> None:
    assert set(unit) == {"Unit", "Service", "Install"}
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_notify_service_with_watchdog(unit: Unit) -> None:
    assert one(unit, "Service", "Type") == "notify"
    # only the daemon's own process may send READY/WATCHDOG, not a pool worker
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert parse_timespan_s(one(unit, "Service", "WatchdogSec")) == 30.0


def test_commands(unit: Unit) -> None:
    assert one(unit, "Service", "ExecStart").split() == [
        "/usr/local/bin/tracardi-daemon", "run",
        "--config", "/etc/tracardi-daemon/tracardi-daemon.toml",
    ]
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    # "-": the environment file is optional
    assert one(unit, "Service", "EnvironmentFile") == "-/etc/tracardi-daemon/environment"


def test_stop_leaves_room_for_the_grace_period(unit: Unit) -> None:
    assert one(unit, "Service", "KillMode") == "mixed"
    assert one(unit, "Service", "KillSignal") == "SIGTERM"
    timeout_stop_s = parse_timespan_s(one(unit, "Service", "TimeoutStopSec"))
    assert timeout_stop_s == 45.0
    assert timeout_stop_s > ShutdownSettings().grace_s


def test_start_timeout_is_above_the_backend_wait(unit: Unit) -> None:
    # otherwise systemd kills a daemon still waiting for its backends instead of the
    # daemon exiting 4 by itself
    timeout_start_s = parse_timespan_s(one(unit, "Service", "TimeoutStartSec"))
    assert timeout_start_s > StartupSettings().wait_s


def test_restart_policy_follows_the_exit_codes(unit: Unit) -> None:
    assert one(unit, "Service", "Restart") == "on-failure"
    assert parse_timespan_s(one(unit, "Service", "RestartSec")) == 5.0
    prevented = {int(code) for code in one(unit, "Service", "RestartPreventExitStatus").split()}
    assert prevented == {ExitCode.CONFIG, ExitCode.LICENSE}
    assert (int(ExitCode.CONFIG), int(ExitCode.LICENSE)) == (2, 3)
    # a backend that was down at start may come back: exit 4 must restart, as must 1
    assert ExitCode.BACKEND_UNREACHABLE not in prevented
    assert ExitCode.FAILURE not in prevented


def test_start_limit_rides_out_a_backend_outage(unit: Unit) -> None:
    interval_s = parse_timespan_s(one(unit, "Unit", "StartLimitIntervalSec"))
    burst = int(one(unit, "Unit", "StartLimitBurst"))
    restart_s = parse_timespan_s(one(unit, "Service", "RestartSec"))
    assert burst > 1
    # each start against an unreachable backend lasts startup.wait_s; fewer such starts
    # fit in one interval than the burst allows, so systemd keeps trying ...
    attempt_s = StartupSettings().wait_s + restart_s
    assert interval_s / attempt_s < burst
    # ... while a daemon that crashes within a second of starting does hit the limit
    assert interval_s / (1.0 + restart_s) > burst


def test_user_and_runtime_directory(unit: Unit) -> None:
    assert one(unit, "Service", "User") == "tracardi-daemon"
    assert one(unit, "Service", "Group") == "tracardi-daemon"
    runtime_dir = one(unit, "Service", "RuntimeDirectory")
    assert runtime_dir == "tracardi-daemon"
    assert one(unit, "Service", "RuntimeDirectoryMode") == "0750"
    assert one(unit, "Service", "UMask") == "0027"
    # the daemon's default health socket lives in the directory systemd creates
    assert Path(DaemonSettings().health_socket).parent == Path("/run") / runtime_dir


def test_hardening(unit: Unit) -> None:
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
        "SystemCallArchitectures": "native",
    }
    actual = {key: one(unit, "Service", key) for key in expected}
    assert actual == expected
    families = set(one(unit, "Service", "RestrictAddressFamilies").split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6"}
    # an empty bounding set: no capabilities, even through a setuid binary
    assert one(unit, "Service", "CapabilityBoundingSet") == ""


# --- systemd's own check -----------------------------------------------------------


def _verify(path: Path) -> tuple[int, list[str]]:
    """Runs systemd-analyze verify; returns its exit code and its lines about ``path``."""
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    lines = (result.stdout + result.stderr).splitlines()
    return result.returncode, [line for line in lines if path.name in line]


@pytest.fixture(scope="module")
def verifiable_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unit with ExecStart pointing at an executable that exists here, because
    systemd-analyze rejects a missing binary; everything else is unchanged."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed; the parsing tests still ran")
    directory = tmp_path_factory.mktemp("unit")
    probe = directory / "probe-ok.service"
    probe.write_text(f"[Service]\nType=simple\nExecStart={sys.executable} -V\n")
    code, complaints = _verify(probe)
    if code != 0 or complaints:
        pytest.skip(f"systemd-analyze cannot verify units here (probe: {complaints})")
    executable = shutil.which("tracardi-daemon") or sys.executable
    text = UNIT_PATH.read_text()
    copied = text.replace(
        "ExecStart=/usr/local/bin/tracardi-daemon ", f"ExecStart={executable} ", 1
    )
    assert copied != text, "ExecStart line not found"
    copy = directory / UNIT_PATH.name
    copy.write_text(copied)
    return copy


def test_systemd_analyze_accepts_the_unit(verifiable_copy: Path) -> None:
    code, complaints = _verify(verifiable_copy)
    assert code == 0, complaints
    # unknown keys and bad values are only warnings (exit code 0): any line is a failure
    assert complaints == []


def test_systemd_analyze_check_catches_mistakes(verifiable_copy: Path) -> None:
    broken = verifiable_copy.with_name("broken-" + verifiable_copy.name)
    broken.write_text(
        verifiable_copy.read_text().replace("KillMode=mixed", "KillMode=mixed\nKilMode=mixed")
    )
    _, complaints = _verify(broken)
    assert any("KilMode" in line for line in complaints), complaints
