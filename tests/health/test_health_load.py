"""The health socket under idle, trickling and bursty clients, and its limits and shutdown."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import select
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest

from tests.health.test_health import Reports, raw_request, status_of
from tracardi_daemon.health import reader as health
from tracardi_daemon.health import server as health_module
from tracardi_daemon.health.report import HealthReport
from tracardi_daemon.health.server import HealthServer, fetch

PROMPT_S = 1.0  # what "answered promptly" means in these tests
REQUEST = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
UNFINISHED = REQUEST[:-4]  # trickled in a loop, it never ends a head


@pytest.fixture(autouse=True)
def enough_descriptors() -> Iterator[None]:
    """Room for 500+ client sockets and the server's ends of them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def socket_path() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="td-hl-", dir="/tmp")  # AF_UNIX paths are short
    yield os.path.join(directory, "run", "health.sock")
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def server(socket_path: str) -> Iterator[HealthServer]:
    health_server = HealthServer(socket_path, Reports())
    health_server.start()
    yield health_server
    health_server.stop()


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def connect_many(path: str, count: int) -> list[socket.socket]:
    opened = []
    for _ in range(count):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        opened.append(sock)
    return opened


def timed_fetch(path: str) -> float:
    started = time.monotonic()
    status, _ = fetch(path, "/health")
    elapsed = time.monotonic() - started
    assert status == 200
    return elapsed


def closed_by_server(socks: list[socket.socket], wait_s: float) -> list[bool]:
    """Which sockets turned readable (EOF or reset: they never get data) within ``wait_s``."""
    closed: set[int] = set()
    deadline = time.monotonic() + wait_s
    while len(closed) < len(socks) and (left := deadline - time.monotonic()) > 0:
        poller = select.poll()
        for sock in socks:
            if sock.fileno() not in closed:
                poller.register(sock, select.POLLIN)
        closed.update(fd for fd, _ in poller.poll(left * 1000))
    return [sock.fileno() in closed for sock in socks]


def received(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1024)
    except ConnectionResetError:  # closed by the server while a sent byte was unread
        return b""


def trickle(socks: list[socket.socket], interval_s: float, stop: threading.Event) -> None:
    """Send every socket one more byte of a request head every ``interval_s``."""
    alive = list(socks)
    position = 0
    while alive and not stop.is_set():
        byte = UNFINISHED[position % len(UNFINISHED):][:1]
        for sock in list(alive):
            try:
                sock.send(byte)
            except OSError:  # the server has closed it
                alive.remove(sock)
        position += 1
        stop.wait(interval_s)


def health_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("health-") and t.is_alive()}


# -- acceptance: /health stays prompt ----------------------------------------------------------
def test_prompt_with_500_idle_connections(server: HealthServer,
                                          clients: list[socket.socket]) -> None:
    threads = health_threads()
    clients.extend(connect_many(server.path, 500))
    timings = [timed_fetch(server.path) for _ in range(5)]
    assert max(timings) < PROMPT_S, timings
    assert health_threads() == threads  # no thread per connection
    # beyond MAX_PENDING_CONNECTIONS, the oldest connections were closed to make room
    evicted = 500 - health.MAX_PENDING_CONNECTIONS
    assert all(closed_by_server(clients[:evicted], wait_s=1.0))


def test_prompt_with_500_trickling_connections(server: HealthServer,
                                              clients: list[socket.socket]) -> None:
    threads = health_threads()
    clients.extend(connect_many(server.path, 500))
    stop = threading.Event()
    trickler = threading.Thread(target=trickle, args=(clients, 0.5, stop))
    trickler.start()
    timings = []
    try:
        until = time.monotonic() + health.REQUEST_HEAD_TIMEOUT_S + 0.5
        while time.monotonic() < until:
            timings.append(timed_fetch(server.path))
            time.sleep(0.2)
    finally:
        stop.set()
        trickler.join()
    assert max(timings) < PROMPT_S, timings
    assert health_threads() == threads
    # all past their deadline by now: every trickler has been cut off
    assert all(closed_by_server(clients, wait_s=1.0))


def test_prompt_during_a_burst_of_200_connects(server: HealthServer) -> None:
    assert health.LISTEN_BACKLOG >= 128
    start = threading.Barrier(201)
    statuses: list[int] = []

    def client() -> None:
        start.wait()
        statuses.append(fetch(server.path, "/health", timeout_s=10)[0])

    burst = [threading.Thread(target=client) for _ in range(200)]
    for thread in burst:
        thread.start()
    start.wait()
    timings = [timed_fetch(server.path) for _ in range(3)]
    for thread in burst:
        thread.join()
    assert max(timings) < PROMPT_S, timings
    assert statuses == [200] * 200  # nobody in the burst was turned away


# -- limits ------------------------------------------------------------------------------------
def test_trickling_client_is_cut_off_at_the_deadline(server: HealthServer) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(server.path)
        started = time.monotonic()
        closed_after = None
        for position in range(40):  # one byte every 0.25 s, for 10 s at most
            try:
                sock.send(UNFINISHED[position % len(UNFINISHED):][:1])
            except OSError:
                closed_after = time.monotonic() - started
                break
            if closed_by_server([sock], wait_s=0.25)[0]:
                closed_after = time.monotonic() - started
                assert received(sock) == b""  # closed without an answer
                break
    assert closed_after is not None
    deadline = health.REQUEST_HEAD_TIMEOUT_S
    assert deadline - 0.1 <= closed_after <= deadline + 0.75, closed_after


def test_oldest_unfinished_connections_make_room(server: HealthServer,
                                                 clients: list[socket.socket],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "MAX_PENDING_CONNECTIONS", 4)  # read at each accept
    clients.extend(connect_many(server.path, 6))
    assert fetch(server.path)[0] == 200  # its connection pushed out a third idle one
    assert closed_by_server(clients, wait_s=0.3) == [True] * 3 + [False] * 3


def test_evicting_and_hung_up_clients_cause_no_errors(
        server: HealthServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # evictions land in the same batch of events as reads from the evicted connections, and
    # clients hang up with half a request line sent, before their 400 can be written
    monkeypatch.setattr(health, "MAX_PENDING_CONNECTIONS", 8)
    for _ in range(10):  # the race is likely, not certain, in any one round
        for sock in connect_many(server.path, 300):
            with contextlib.suppress(BrokenPipeError):  # evicted already
                sock.send(UNFINISHED[:1])
            sock.close()
        assert fetch(server.path)[0] == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_request_head_is_capped(server: HealthServer) -> None:
    line = b"X-Pad: " + b"a" * 1000 + b"\r\n"
    within = b"GET /health HTTP/1.1\r\n" + line * 12 + b"\r\n"
    assert len(within) < health.MAX_REQUEST_HEAD
    assert status_of(raw_request(server.path, within, shut_write=False)) == 200
    too_large = b"GET /health HTTP/1.1\r\n" + line * 20
    assert len(too_large) > health.MAX_REQUEST_HEAD
    # answered at once, whether or not the head ever ends
    started = time.monotonic()
    assert status_of(raw_request(server.path, too_large, shut_write=False)) == 431
    assert status_of(raw_request(server.path, too_large + b"\r\n", shut_write=False)) == 431
    assert time.monotonic() - started < PROMPT_S


# -- stop ----------------------------------------------------------------------------------------
def test_stop_is_prompt_with_connections_open(socket_path: str,
                                              clients: list[socket.socket]) -> None:
    others = health_threads()
    health_server = HealthServer(socket_path, Reports())
    health_server.start()
    ours = health_threads() - others
    assert len(ours) == 1 + health_module.WORKERS  # the reader and the workers, fixed
    clients.extend(connect_many(socket_path, 200))
    for sock in clients[:100]:
        sock.sendall(UNFINISHED[:10])
    started = time.monotonic()
    health_server.stop()
    assert time.monotonic() - started < 0.5
    assert not os.path.exists(socket_path)
    assert all(closed_by_server(clients, wait_s=1.0))
    assert not any(thread.is_alive() for thread in ours)


class StuckReports(Reports):
    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> HealthReport:
        self.entered.set()
        self.release.wait(10)
        return self.current


def test_stop_is_bounded_while_a_report_hangs(socket_path: str,
                                              clients: list[socket.socket]) -> None:
    reports = StuckReports()
    health_server = HealthServer(socket_path, reports)
    health_server.start()
    clients.extend(connect_many(socket_path, 1))
    clients[0].sendall(REQUEST)
    try:
        assert reports.entered.wait(5)
        started = time.monotonic()
        health_server.stop()
        assert time.monotonic() - started < health_module.STOP_TIMEOUT_S + 0.5
        assert not os.path.exists(socket_path)
    finally:
        reports.release.set()
