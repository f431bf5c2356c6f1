"""Health over HTTP/1.1 on a Unix socket: the server the daemon runs (/health, /metrics)
and ``fetch``, the client that ``tracardi-daemon status`` and ``check`` use.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import os
import queue
import socket
import socketserver
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tracardi_daemon import __version__
from tracardi_daemon.errors import DaemonError
from tracardi_daemon.health.metrics import render_metrics
from tracardi_daemon.health.reader import (
    LISTEN_BACKLOG,
    MAX_READY_REQUESTS,
    MAX_REQUEST_HEAD,
    HeadReader,
    Request,
)
from tracardi_daemon.health.report import HealthReport

log = logging.getLogger(__name__)

DIRECTORY_MODE = 0o750
SOCKET_MODE = 0o660
WORKERS = 4  # threads that build and write answers; they never wait for a client to send
WRITE_TIMEOUT_S = 2.0  # a client that does not take its answer holds a worker this long
MAX_REQUEST_LINE = 8192
MAX_DISCARDED_BODY = 65536
STOP_TIMEOUT_S = 1.0
JSON_TYPE = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"

ReportSource = Callable[[], HealthReport]


class HealthUnavailable(DaemonError):
    """The health socket is missing, refused, timed out or answered nonsense."""


# -- server --------------------------------------------------------------------------------
# One thread (``HeadReader``) accepts connections and reads request heads without
# blocking; a worker sees a connection only once its whole head has arrived. Idle and
# trickling clients therefore cost a descriptor and a few bytes until their deadline,
# never a thread, and /health is answered while hundreds of them are connected. Both
# waiting rooms are bounded: a connection still sending its head when the
# MAX_PENDING_CONNECTIONS+1st arrives is closed, oldest first (a live client sends its head
# at once, so the oldest is the likeliest to be stuck); a complete request that finds
# MAX_READY_REQUESTS already waiting for a worker is closed, since it would be answered late.
@dataclass
class _Serving:
    server: _UnixHealthServer
    ready: queue.Queue[Request | None]
    reader: HeadReader
    reader_thread: threading.Thread
    workers: list[threading.Thread]


class HealthServer:
    """Serves the report on a Unix socket from a few background threads it owns."""

    def __init__(self, socket_path: str, report: ReportSource) -> None:
        self._path = socket_path
        self._report = report
        self._serving: _Serving | None = None

    @property
    def path(self) -> str:
        return self._path

    def start(self) -> None:
        if self._serving is not None:
            return
        _ensure_directory(os.path.dirname(self._path))
        _remove_stale_socket(self._path)
        try:
            server = _UnixHealthServer(self._path, self._report)
        except OSError as exc:
            raise DaemonError(f"cannot serve health on {self._path}: {exc}") from exc
        ready: queue.Queue[Request | None] = queue.Queue(MAX_READY_REQUESTS)
        reader = HeadReader(server.socket, ready)
        reader_thread = threading.Thread(target=reader.run, name="health-server", daemon=True)
        workers = [threading.Thread(target=_answer_ready_requests, args=(server, ready),
                                    name=f"health-worker-{n}", daemon=True)
                   for n in range(WORKERS)]
        for thread in (reader_thread, *workers):
            thread.start()
        self._serving = _Serving(server, ready, reader, reader_thread, workers)
        log.info("health socket listening on %s", self._path)

    def stop(self) -> None:
        """Close every connection and the socket; waits at most about STOP_TIMEOUT_S."""
        serving, self._serving = self._serving, None
        if serving is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        serving.reader.stop()
        serving.reader_thread.join(timeout=STOP_TIMEOUT_S)
        serving.server.server_close()
        serving.server.remove_socket_file()
        _close_waiting(serving.ready)
        for _ in serving.workers:
            serving.ready.put(None)
        for worker in serving.workers:  # each busy for milliseconds, WRITE_TIMEOUT_S at worst
            worker.join(timeout=max(0.0, deadline - time.monotonic()))


class _UnixHealthServer(socketserver.UnixStreamServer):
    """The listening socket, and the ``server`` its request handlers see."""

    request_queue_size = LISTEN_BACKLOG

    def __init__(self, path: str, report: ReportSource) -> None:
        self.path = path
        self.report = report
        self.identity: tuple[int, int] | None = None
        super().__init__(path, _HealthHandler)

    def server_bind(self) -> None:
        super().server_bind()
        # chmod before listen(): nobody can connect yet, so the umask never leaks access
        os.chmod(self.path, SOCKET_MODE)
        info = os.stat(self.path)
        self.identity = (info.st_dev, info.st_ino)

    def remove_socket_file(self) -> None:
        """Unlink the socket only if it is still ours (not replaced by another daemon)."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if (info.st_dev, info.st_ino) == self.identity:
            os.unlink(self.path)


def _answer_ready_requests(server: _UnixHealthServer,
                           ready: queue.Queue[Request | None]) -> None:
    """A worker: answers complete requests until it takes None."""
    while (request := ready.get()) is not None:
        connection = request[1]
        try:
            connection.settimeout(WRITE_TIMEOUT_S)
            _HealthHandler(request, "", server)
        except Exception:  # a bug in one answer must not end the worker
            log.warning("health request failed", exc_info=True)
        finally:
            connection.close()


def _close_waiting(ready: queue.Queue[Request | None]) -> None:
    while True:
        try:
            request = ready.get_nowait()
        except queue.Empty:
            return
        if request is not None:
            request[1].close()


def _ensure_directory(directory: str) -> None:
    """Create the socket's directory as 0750; an existing directory keeps its mode."""
    if not directory or os.path.isdir(directory):
        return
    try:
        parent = os.path.dirname(directory)
        if parent:
            os.makedirs(parent, exist_ok=True)
        os.mkdir(directory, DIRECTORY_MODE)
    except FileExistsError:
        return  # created by someone else meanwhile: theirs, so leave its mode
    except OSError as exc:
        raise DaemonError(f"cannot create health socket directory {directory}: {exc}") from exc
    os.chmod(directory, DIRECTORY_MODE)  # mkdir's mode was filtered by the umask


def _remove_stale_socket(path: str) -> None:
    """Remove a socket file nobody listens on; refuse anything else at the path."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise DaemonError(f"health socket path {path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            log.info("removing stale health socket %s", path)
            os.unlink(path)
            return
        except OSError as exc:
            raise DaemonError(f"cannot check existing health socket {path}: {exc}") from exc
    raise DaemonError(f"another daemon is already serving health on {path}")


class _HealthHandler(BaseHTTPRequestHandler):
    """One request per connection; every answer closes the connection.

    The request is ``(head, connection)``: the head was read by ``HeadReader``, so
    nothing here waits for the client to send.
    """

    protocol_version = "HTTP/1.1"
    server_version = f"tracardi-daemon/{__version__}"
    sys_version = ""
    server: _UnixHealthServer
    head_too_large: bool

    def setup(self) -> None:
        head, self.connection = self.request
        self.head_too_large = len(head) > MAX_REQUEST_HEAD
        self.rfile = io.BytesIO(head)
        self.wfile = self.connection.makefile("wb")

    def handle(self) -> None:
        try:
            self._handle_request()
        except TimeoutError:
            log.debug("health client did not take its answer within %gs", WRITE_TIMEOUT_S)
        except OSError as exc:  # the client went away mid-answer
            log.debug("health client connection failed: %s", exc)

    def finish(self) -> None:
        # _respond has flushed already; data is left only if the client went away, and
        # the stdlib's finish() would raise flushing it again
        with contextlib.suppress(OSError):
            self.wfile.close()
        _discard_unread_input(self.connection)

    def _handle_request(self) -> None:
        # handle() is overridden to serve exactly one request, so close_connection is moot
        if self.head_too_large:
            self._reject(431, "request head too large")
            return
        self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        if not self.raw_requestline:
            return
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self._reject(400, "request line too long")
            return
        if not self.parse_request():
            return  # parse_request has answered 400/431/505 already
        route = urlsplit(self.path).path
        if route not in _ROUTES:
            self.send_error(404, f"no such path: {route}; try /health or /metrics")
        elif self.command not in ("GET", "HEAD"):
            self._respond(405, b"method not allowed; use GET or HEAD\n", TEXT_TYPE,
                          extra_headers={"Allow": "GET, HEAD"})
        else:
            self._answer(route)

    def _reject(self, status: int, message: str) -> None:
        """Answer a request that did not parse far enough to have a command."""
        self.command, self.request_version, self.requestline = "", "HTTP/1.1", ""
        self.send_error(status, message)

    def _answer(self, route: str) -> None:
        try:
            report = self.server.report()
            status, body, content_type = _ROUTES[route](report)
        except Exception:  # a bug in the report must answer 500, not end the server
            log.exception("building the health report failed")
            self.send_error(500, "the daemon could not build its health report")
            return
        self._respond(status, body, content_type)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        text = message or http.client.responses.get(code, "error")
        self._respond(code, f"{text}\n".encode(), TEXT_TYPE)

    def _respond(self, status: int, body: bytes, content_type: str,
                 extra_headers: dict[str, str] | None = None) -> None:
        # the stdlib omits status line and headers for HTTP/0.9 (also its default before a
        # request line parses); every client of ours speaks 1.x and needs the status
        self.request_version = "HTTP/1.1"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        # the stdlib version prints the client address, which a Unix socket does not have
        log.debug("health: " + format, *args)


def _discard_unread_input(connection: socket.socket) -> None:
    """Read what the client sent beyond its head (a body, say) without waiting for more:
    closing a socket with unread input resets the connection under the client's answer."""
    connection.setblocking(False)
    discarded = 0
    try:
        while discarded < MAX_DISCARDED_BODY and (chunk := connection.recv(MAX_DISCARDED_BODY)):
            discarded += len(chunk)
    except OSError:
        return  # nothing more has arrived, or the client has gone


def _health_route(report: HealthReport) -> tuple[int, bytes, str]:
    status = 200 if report["status"] == "ok" else 503
    return status, json.dumps(report).encode(), JSON_TYPE


def _metrics_route(report: HealthReport) -> tuple[int, bytes, str]:
    return 200, render_metrics(report).encode(), METRICS_TYPE


_ROUTES: dict[str, Callable[[HealthReport], tuple[int, bytes, str]]] = {
    "/health": _health_route,
    "/metrics": _metrics_route,
}


# -- client ---------------------------------------------------------------------------------
class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def fetch(socket_path: str, path: str = "/health", timeout_s: float = 3.0) -> tuple[int, str]:
    """GET ``path`` from the daemon; (HTTP status, body). Raises HealthUnavailable."""
    connection = _UnixHTTPConnection(socket_path, timeout_s)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    except FileNotFoundError as exc:
        raise HealthUnavailable(
            f"no health socket at {socket_path}; is the daemon running?") from exc
    except ConnectionRefusedError as exc:
        raise HealthUnavailable(
            f"nothing listens on {socket_path}; the daemon is not running") from exc
    except PermissionError as exc:
        raise HealthUnavailable(
            f"permission denied on {socket_path}; run as the daemon's user or group") from exc
    except TimeoutError as exc:
        raise HealthUnavailable(f"no answer on {socket_path} within {timeout_s:g}s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise HealthUnavailable(f"bad answer on {socket_path}: {exc!r}") from exc
    finally:
        connection.close()
