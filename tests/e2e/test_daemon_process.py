"""The real daemon process: health socket, check, reload, signals, exit codes, licence,
and a Redis outage while running."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, DaemonProcess, write_config
from tracardi_daemon import license as lic

pytestmark = pytest.mark.e2e


def running(*names: str) -> Any:
    def check(status: int, report: dict[str, Any]) -> bool:
        return all(report["roles"].get(n, {}).get("state") == "running" for n in names)
    return check


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracardi_daemon.cli", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=30,
                          check=False)


def issue_licence(daemon: DaemonProcess, roles: tuple[str, ...]) -> str:
    key = lic.load_private_key(str(daemon.extra["private_key"]))
    return lic.issue(key, "e2e", roles, 1, datetime.now(UTC))


def test_health_check_and_clean_stop(daemon: DaemonProcess) -> None:
    daemon.env["TEST_ROLES"] = "upgrade=counting"
    daemon.start()
    report = daemon.wait_health(lambda s, r: s == 200 and r["status"] == "ok")
    role = report["roles"]["upgrade"]
    assert role["state"] == "running" and role["threads"] == 1
    assert role["heartbeat_age_s"] is not None and role["heartbeat_age_s"] < 5
    assert report["backends"]["redis"]["up"] and report["backends"]["elasticsearch"]["up"]
    assert cli("check", "--socket", daemon.socket, env=daemon.env).returncode == 0
    status = cli("status", "--socket", daemon.socket, env=daemon.env)
    assert status.returncode == 0 and "upgrade" in status.stdout
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout_s=10) == 0
    assert time.monotonic() - started < 10  # within shutdown.grace_s
    assert not Path(daemon.socket).exists()
    assert cli("check", "--socket", daemon.socket, env=daemon.env).returncode == 1
    assert "stopped cleanly" in daemon.output()


def test_sighup_starts_and_stops_roles(daemon: DaemonProcess, prefix: str) -> None:
    daemon.env["TEST_ROLES"] = "upgrade=counting,scheduler=counting,trigger=counting"
    daemon.env["LICENSE"] = issue_licence(daemon, ("scheduler", "trigger"))
    write_config(daemon.config, prefix, daemon.socket, ["upgrade", "scheduler"])
    daemon.start()
    daemon.wait_health(running("upgrade", "scheduler"))
    write_config(daemon.config, prefix, daemon.socket, ["upgrade", "trigger"],
                 extra="[role.upgrade]\nthreads = 2\n")
    daemon.signal(signal.SIGHUP)
    report = daemon.wait_health(lambda s, r: running("upgrade", "trigger")(s, r)
                                and "scheduler" not in r["roles"]
                                and r["roles"]["upgrade"]["threads"] == 2)
    assert set(report["roles"]) == {"upgrade", "trigger"}
    # a broken file on reload is refused and the running roles stay
    daemon.config.write_text("[daemon]\nrolez = 1\n")
    daemon.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload refused" not in daemon.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "'rolez'" in daemon.output()
    assert set(daemon.health()[1]["roles"]) == {"upgrade", "trigger"}
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(10) == 0


def test_second_term_stops_fast(daemon: DaemonProcess) -> None:
    daemon.env["TEST_ROLES"] = "upgrade=slow:30"
    daemon.start()
    daemon.wait_health(running("upgrade"))
    time.sleep(0.3)  # let the slow step begin
    daemon.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert daemon.proc is not None and daemon.proc.poll() is None  # draining
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout_s=5) == 0
    assert time.monotonic() - started < 3
    assert "fast stop" in daemon.output()


def wait_output(daemon: DaemonProcess, text: str, after: int = 0,
                timeout_s: float = 10.0) -> None:
    """Until ``text`` is in the daemon's log past its first ``after`` characters."""
    deadline = time.monotonic() + timeout_s
    while text not in daemon.log.read_text(errors="replace")[after:]:
        assert time.monotonic() < deadline, daemon.output()
        time.sleep(0.05)


def test_usr1_and_hup_while_stopping_are_answered(daemon: DaemonProcess) -> None:
    daemon.env["TEST_ROLES"] = "upgrade=slow:30"
    daemon.start()
    daemon.wait_health(lambda s, r: r["roles"].get("upgrade", {}).get("step_age_s")
                       is not None)  # the slow step has begun
    daemon.signal(signal.SIGTERM)
    wait_output(daemon, "stopping: draining roles")
    draining_from = len(daemon.log.read_text(errors="replace"))
    daemon.signal(signal.SIGUSR1)
    wait_output(daemon, "status: role upgrade: stopping", after=draining_from)
    daemon.signal(signal.SIGHUP)
    wait_output(daemon, "SIGHUP while stopping: not reloading", after=draining_from)
    assert daemon.proc is not None and daemon.proc.poll() is None  # still draining
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout_s=5) == 0
    assert "fast stop" in daemon.output()


def reload_while_upgrade_steps(daemon: DaemonProcess, prefix: str, upgrade: str) -> None:
    """Start upgrade (test role ``upgrade``) and scheduler, then reload without upgrade
    while its step runs: returns once health shows it stopping, the reload draining."""
    daemon.env["TEST_ROLES"] = f"upgrade={upgrade},scheduler=counting,trigger=counting"
    daemon.env["LICENSE"] = issue_licence(daemon, ("scheduler", "trigger"))
    write_config(daemon.config, prefix, daemon.socket, ["upgrade", "scheduler"])
    daemon.start()
    daemon.wait_health(lambda s, r: running("upgrade", "scheduler")(s, r)
                       and r["roles"]["upgrade"]["step_age_s"] is not None)
    write_config(daemon.config, prefix, daemon.socket, ["scheduler"])
    daemon.signal(signal.SIGHUP)
    daemon.wait_health(lambda s, r: r["roles"].get("upgrade", {}).get("state") == "stopping")


def test_hup_while_a_reload_drains_is_carried_out_after_it(daemon: DaemonProcess,
                                                           prefix: str) -> None:
    reload_while_upgrade_steps(daemon, prefix, "slow:3")  # its 3 s step runs on
    write_config(daemon.config, prefix, daemon.socket, ["scheduler", "trigger"])
    daemon.signal(signal.SIGHUP)
    wait_output(daemon, "reloading again once they have stopped")
    report = daemon.wait_health(running("scheduler", "trigger"))
    assert set(report["roles"]) == {"scheduler", "trigger"}
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(10) == 0


def test_term_while_a_reload_drains_stops_the_daemon(daemon: DaemonProcess,
                                                     prefix: str) -> None:
    reload_while_upgrade_steps(daemon, prefix, "slow:30")
    daemon.signal(signal.SIGTERM)  # the reload's drain is cut short; the stop begins
    wait_output(daemon, "reload cut short: the daemon is stopping")
    wait_output(daemon, "stopping: draining roles")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout_s=5) == 0
    assert "fast stop" in daemon.output()


def test_a_licence_that_stops_granting_a_role_stops_it(daemon: DaemonProcess,
                                                        prefix: str) -> None:
    daemon.env["TEST_ROLES"] = "upgrade=counting,scheduler=counting"
    licence = daemon.workdir / "licence.txt"
    licence.write_text(issue_licence(daemon, ("scheduler",)))
    write_config(daemon.config, prefix, daemon.socket, ["upgrade", "scheduler"],
                 extra=f'[license]\nfile = "{licence}"\ncheck_interval_s = 0.2\n')
    daemon.start()
    daemon.wait_health(running("upgrade", "scheduler"))
    licence.write_text(issue_licence(daemon, ("trigger",)))
    report = daemon.wait_health(
        lambda s, r: r["roles"]["scheduler"]["state"] == "unlicensed")
    assert report["roles"]["scheduler"]["detail"] == (
        "licence does not grant role 'scheduler' (it grants: trigger)")
    assert report["roles"]["upgrade"]["state"] == "running"  # needs no licence
    assert "licence no longer allows scheduler; stopping them" in daemon.output()
    # a licence that grants it again lets a reload start it
    licence.write_text(issue_licence(daemon, ("scheduler",)))
    daemon.signal(signal.SIGHUP)
    daemon.wait_health(running("upgrade", "scheduler"))
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(10) == 0


def test_usr1_dumps_status(daemon: DaemonProcess) -> None:
    daemon.env["TEST_ROLES"] = "upgrade=counting"
    daemon.start()
    daemon.wait_health(running("upgrade"))
    daemon.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while "status: role upgrade: running" not in daemon.output():
        assert time.monotonic() < deadline, daemon.output()
        time.sleep(0.1)


def test_bad_config_exits_2_naming_the_key(daemon: DaemonProcess) -> None:
    daemon.config.write_text("[redis]\nport = \"not a number\"\n")
    daemon.start()
    assert daemon.wait_exit(10) == 2
    assert "'redis.port'" in daemon.output()


def test_unknown_role_is_refused_with_exit_2(daemon: DaemonProcess) -> None:
    daemon.start("--roles", "reporting")  # not one of the five
    assert daemon.wait_exit(10) == 2
    assert "unknown role 'reporting'" in daemon.output()


def test_missing_licence_is_reported_in_health(daemon: DaemonProcess, prefix: str) -> None:
    daemon.env["TEST_ROLES"] = "upgrade=counting,scheduler=counting"
    write_config(daemon.config, prefix, daemon.socket, ["upgrade", "scheduler"])
    daemon.start()
    report = daemon.wait_health(running("upgrade"))
    scheduler = report["roles"]["scheduler"]
    assert scheduler["state"] == "unlicensed"
    assert "no licence" in scheduler["detail"]
    assert report["license"]["valid"] is False
    status, _ = daemon.health()
    assert status == 503 and report["status"] == "degraded"
    assert cli("check", "--socket", daemon.socket, env=daemon.env).returncode == 1


def test_backend_unreachable_at_start_exits_4(daemon: DaemonProcess, prefix: str) -> None:
    write_config(daemon.config, prefix, daemon.socket, ["upgrade"], redis_port=free_port(),
                 extra="")
    text = daemon.config.read_text().replace("wait_s = 15.0", "wait_s = 1.0")
    daemon.config.write_text(text)
    daemon.env["TEST_ROLES"] = "upgrade=counting"
    daemon.start()
    assert daemon.wait_exit(15) == 4
    assert "redis unavailable" in daemon.output()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def test_redis_outage_gives_503_then_recovers(daemon: DaemonProcess, prefix: str) -> None:
    port = free_port()
    redis_proc = start_redis(port, daemon.workdir)
    try:
        write_config(daemon.config, prefix, daemon.socket, ["upgrade"], redis_port=port)
        daemon.env["TEST_ROLES"] = "upgrade=counting"
        daemon.start()
        daemon.wait_health(lambda s, r: s == 200)
        redis_proc.terminate()
        redis_proc.wait(10)
        report = daemon.wait_health(lambda s, r: s == 503)
        assert report["backends"]["redis"]["up"] is False
        assert report["backends"]["redis"]["detail"]
        assert report["backends"]["elasticsearch"]["up"] is True
        assert daemon.proc is not None and daemon.proc.poll() is None  # still alive
        redis_proc = start_redis(port, daemon.workdir)
        report = daemon.wait_health(lambda s, r: s == 200 and r["status"] == "ok",
                                    timeout_s=30)
        assert report["roles"]["upgrade"]["state"] == "running"
    finally:
        redis_proc.kill()
        redis_proc.wait(10)
