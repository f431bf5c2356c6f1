"""The real supervisord runs the daemon from config/supervisord.conf and stops it
gracefully with ``supervisorctl stop``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time

import pytest

from tests.e2e.conftest import REPO, DaemonProcess

pytestmark = pytest.mark.e2e


def supervisorctl_status(ctl: list[str], env: dict[str, str]) -> str:
    result = subprocess.run([*ctl, "status"], env=env, capture_output=True, text=True,
                            timeout=20, check=False)
    return result.stdout + result.stderr


def test_supervisorctl_stop_is_graceful(daemon: DaemonProcess) -> None:
    # supervisor is installed beside pytest (scripts/bootstrap: .venv), which need not be
    # on PATH when the tests run as .venv/bin/python -m pytest
    search = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    supervisord = shutil.which("supervisord", path=search)
    supervisorctl = shutil.which("supervisorctl", path=search)
    assert supervisord and supervisorctl, "supervisor is a dev dependency: run scripts/bootstrap"
    conf_text = (REPO / "config" / "supervisord.conf").read_text()
    # the shipped program line runs `tracardi-daemon run`; here the same command line runs
    # through the test launcher, which adds roles whose work the test can observe
    assert "command=tracardi-daemon run\n" in conf_text
    conf_text = conf_text.replace(
        "command=tracardi-daemon run\n",
        f"command={sys.executable} -m tests.e2e.launcher run\ndirectory={REPO}\n")
    conf = daemon.workdir / "supervisord.conf"
    conf.write_text(conf_text)
    state = daemon.workdir / "supervisor"
    state.mkdir()
    env = {**daemon.env, "TRACARDI_SUPERVISOR_DIR": str(state),
           "TRACARDI_CONFIG": str(daemon.config), "TEST_ROLES": "upgrade=slow:0.5"}
    with daemon.log.open("ab") as log:
        proc = subprocess.Popen([supervisord, "-c", str(conf)], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    daemon.proc = proc  # wait_health watches supervisord staying up
    try:
        report = daemon.wait_health(lambda s, r: s == 200)
        daemon_pid = report["pid"]
        ctl = [supervisorctl, "-c", str(conf)]
        deadline = time.monotonic() + 15  # RUNNING once up for startsecs (5 s)
        while "RUNNING" not in (status := supervisorctl_status(ctl, env)):
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        started = time.monotonic()
        stop = subprocess.run([*ctl, "stop", "tracardi-daemon"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert "stopped" in stop.stdout, stop.stdout + stop.stderr
        assert time.monotonic() - started < 10  # drained, not killed after stopwaitsecs
        output = daemon.output()
        assert "stopped cleanly" in output
        assert f"pid {daemon_pid}" in output
        assert "STOPPED" in supervisorctl_status(ctl, env)
        assert "exit status 0" in (state / "supervisord.log").read_text() or \
            "stopped: tracardi-daemon (exit status 0)" in output
    finally:
        proc.terminate()
        proc.wait(30)
