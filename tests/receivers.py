"""Real local HTTP receivers for the dispatch tests: one that answers with scripted
statuses (optionally after a delay), one that accepts and never answers, and one that
trickles its answer a byte at a time. All listen on 127.0.0.1 only."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tracardi_daemon.config.settings import OutboundSettings

# the receivers listen on loopback, which the outbound policy closes by default: the
# tests open it explicitly, as an operator would for a local receiver
LOOPBACK_ALLOWED = OutboundSettings(allow=("127.0.0.0/8", "::1"))


def free_port() -> int:
    """A port nobody listens on (a connection to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0  # time.time() of arrival

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedServer:
    """Answers each request with the next (status, body) of ``replies``, then 200,
    after ``delay_s``."""

    url: str
    replies: list[tuple[int, str]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, request: Received) -> tuple[int, str]:
        with self.lock:
            self.received.append(request)
            return self.replies.pop(0) if self.replies else (200, '{"ok": true}')

    def keys(self) -> list[str]:
        """The idempotency keys received, in order."""
        with self.lock:
            return [r.headers.get("idempotency-key", "") for r in self.received]


def start_scripted_server() -> tuple[ScriptedServer, ThreadingHTTPServer]:
    server_ref: list[ScriptedServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if len(body) < length:
                # the sender died mid-request (kill -9): a real server would not act on
                # a truncated body, and the sender never saw an answer
                self.close_connection = True
                return
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                               body, time.time())
            server = server_ref[0]
            if server.delay_s:
                time.sleep(server.delay_s)
            status, reply = server.next_reply(request)
            data = reply.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the sender gave up waiting

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    host, port = httpd.server_address[:2]
    server_ref.append(ScriptedServer(url=f"http://{host!s}:{port}"))
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    return server_ref[0], httpd


@pytest.fixture
def http_server() -> Iterator[ScriptedServer]:
    server, httpd = start_scripted_server()
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A URL whose connections complete (the kernel's backlog) but are never answered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture
def trickler() -> Iterator[str]:
    """A URL that answers 200 with headers, then one body byte every 0.2 s, for ever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not stop.wait(0.2):
                    conn.sendall(b"x")
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


class Receiver:
    """A webhook receiver for real daemon processes: records (idempotency key, arrival
    ms) of every POST and answers after ``delay_s``."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.received: list[tuple[str, float]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append((self.headers["Idempotency-Key"],
                                              time.time() * 1000))
                time.sleep(receiver.delay_s)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a killed daemon drops its connection mid-request

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def keys(self) -> list[str]:
        with self.lock:
            return [key for key, _ in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
