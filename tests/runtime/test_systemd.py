"""sd_notify over a real datagram socket: the exact messages, abstract sockets, no-op cases."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracardi_daemon.runtime.systemd import Notifier


@pytest.fixture
def receiver() -> Iterator[tuple[socket.socket, str]]:
    directory = Path(tempfile.mkdtemp(prefix="td-n-", dir="/tmp"))
    path = str(directory / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    yield sock, path
    sock.close()
    shutil.rmtree(directory, ignore_errors=True)


def test_messages_arrive_exactly(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready()
    assert sock.recv(4096) == b"READY=1"
    notifier.status("ok: upgrade running")
    assert sock.recv(4096) == b"STATUS=ok: upgrade running"
    notifier.status("line one\nline two\r\n")
    assert sock.recv(4096) == b"STATUS=line one line two"
    notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    reloading, monotonic = sock.recv(4096).decode().split("\n")
    assert reloading == "RELOADING=1" and monotonic.startswith("MONOTONIC_USEC=")
    assert 0 <= int(monotonic.split("=")[1]) - before < 5_000_000
    notifier.close()


def test_abstract_socket() -> None:
    name = f"td-notify-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"
        notifier.close()


def test_watchdog_interval_honours_watchdog_pid(receiver: tuple[socket.socket, str]) -> None:
    _, path = receiver
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2500000"}
    assert Notifier.from_environ(env).watchdog_interval_s() == 2.5
    ours = Notifier.from_environ({**env, "WATCHDOG_PID": str(os.getpid())})
    assert ours.watchdog_interval_s() == 2.5
    theirs = Notifier.from_environ({**env, "WATCHDOG_PID": str(os.getpid() + 1)})
    assert theirs.watchdog_interval_s() is None
    assert Notifier.from_environ({**env, "WATCHDOG_USEC": "soon"}).watchdog_interval_s() is None
    assert Notifier.from_environ({"WATCHDOG_USEC": "2500000"}).watchdog_interval_s() is None


def test_without_notify_socket_everything_is_a_no_op() -> None:
    for env in ({}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "relative/path"}):
        notifier = Notifier.from_environ(env)
        assert not notifier.enabled
        assert not notifier.ready()
        assert not notifier.status("x")
        assert not notifier.watchdog()
        assert not notifier.stopping()
        assert not notifier.reloading()
        assert notifier.watchdog_interval_s() is None


def test_vanished_socket_does_not_raise(receiver: tuple[socket.socket, str],
                                        caplog: pytest.LogCaptureFixture) -> None:
    sock, path = receiver
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier.ready()
    sock.close()
    os.unlink(path)
    with caplog.at_level("DEBUG", logger="tracardi_daemon.runtime.systemd"):
        assert not notifier.status("still here")
        assert not notifier.watchdog()
        assert not notifier.stopping()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # warned once, then only at debug
    notifier.close()
