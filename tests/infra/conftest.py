"""Fixtures for the queue and dispatcher tests: queues on the real Redis, and a real
local HTTP server that answers with scripted statuses."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from redis import Redis

from tracardi_daemon.infra.queue import WorkQueue

QueueFactory = Callable[..., WorkQueue]


@pytest.fixture
def make_queue(redis_client: Redis, prefix: str) -> QueueFactory:
    def make(name: str = "work", **options: Any) -> WorkQueue:
        options.setdefault("rng", random.Random(7))
        return WorkQueue(redis_client, prefix, name, **options)
    return make


def wait_until(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 0.02) -> Any:
    """Poll until ``predicate`` returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedServer:
    """Answers each request with the next (status, body) of ``replies``, then 200."""

    url: str
    replies: list[tuple[int, str]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, request: Received) -> tuple[int, str]:
        with self.lock:
            self.received.append(request)
            return self.replies.pop(0) if self.replies else (200, '{"ok": true}')


@pytest.fixture
def http_server() -> Iterator[ScriptedServer]:
    server_ref: list[ScriptedServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            status, reply = server_ref[0].next_reply(request)
            data = reply.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    host, port = httpd.server_address[:2]
    server_ref.append(ScriptedServer(url=f"http://{host!s}:{port}"))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server_ref[0]
    httpd.shutdown()
    httpd.server_close()
