"""Health over HTTP/1.1 on a Unix socket: the server the daemon runs (/health, /metrics)
and ``fetch``, the client that ``tracardi-daemon status`` and ``check`` use.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import socket
import socketserver
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import urlsplit

from tracardi_daemon import __version__
from tracardi_daemon.errors import DaemonError
from tracardi_daemon.health_report import HealthReport, RoleReport

log = logging.getLogger(__name__)

DIRECTORY_MODE = 0o750
SOCKET_MODE = 0o660
IDLE_TIMEOUT_S = 5.0
MAX_REQUEST_LINE = 8192
MAX_DISCARDED_BODY = 65536
JSON_TYPE = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"

ReportSource = Callable[[], HealthReport]


class HealthUnavailable(DaemonError):
    """The health socket is missing, refused, timed out or answered nonsense."""


# -- server --------------------------------------------------------------------------------
class HealthServer:
    """Serves the report on a Unix socket from one background thread it owns."""

    def __init__(self, socket_path: str, report: ReportSource) -> None:
        self._path = socket_path
        self._report = report
        self._server: _UnixHealthServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return self._path

    def start(self) -> None:
        if self._server is not None:
            return
        _ensure_directory(os.path.dirname(self._path))
        _remove_stale_socket(self._path)
        try:
            server = _UnixHealthServer(self._path, self._report)
        except OSError as exc:
            raise DaemonError(f"cannot serve health on {self._path}: {exc}") from exc
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={
            "poll_interval": 0.2}, name="health-server", daemon=True)
        self._thread.start()
        log.info("health socket listening on %s", self._path)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=IDLE_TIMEOUT_S)
            self._thread = None
        server.remove_socket_file()


class _UnixHealthServer(socketserver.ThreadingUnixStreamServer):
    # a slow client must not delay shutdown; request threads die with the process
    daemon_threads = True
    block_on_close = False

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

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("health request failed", exc_info=True)


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
    """One request per connection; every answer closes the connection."""

    protocol_version = "HTTP/1.1"
    server_version = f"tracardi-daemon/{__version__}"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    server: _UnixHealthServer

    def handle(self) -> None:
        try:
            self._handle_request()
        except TimeoutError:
            log.debug("health client idle for %.0fs; closed", IDLE_TIMEOUT_S)
        except OSError as exc:  # the client went away mid-answer
            log.debug("health client connection failed: %s", exc)

    def _handle_request(self) -> None:
        # handle() is overridden to serve exactly one request, so close_connection is moot
        self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        if not self.raw_requestline:
            return
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.command, self.request_version, self.requestline = "", "HTTP/1.1", ""
            self.send_error(400, "request line too long")
            return
        if not self.parse_request():
            return  # parse_request has answered 400/431/505 already
        route = urlsplit(self.path).path
        if route not in _ROUTES:
            self.send_error(404, f"no such path: {route}; try /health or /metrics")
        elif self.command not in ("GET", "HEAD"):
            self._discard_body()
            self._respond(405, b"method not allowed; use GET or HEAD\n", TEXT_TYPE,
                          extra_headers={"Allow": "GET, HEAD"})
        else:
            self._answer(route)

    def _answer(self, route: str) -> None:
        try:
            report = self.server.report()
            status, body, content_type = _ROUTES[route](report)
        except Exception:  # a bug in the report must answer 500, not end the server
            log.exception("building the health report failed")
            self.send_error(500, "the daemon could not build its health report")
            return
        self._respond(status, body, content_type)

    def _discard_body(self) -> None:
        """Read a small request body so that closing does not reset the connection."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return
        if 0 < length <= MAX_DISCARDED_BODY:
            self.rfile.read(length)

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


def _health_route(report: HealthReport) -> tuple[int, bytes, str]:
    status = 200 if report["status"] == "ok" else 503
    return status, json.dumps(report).encode(), JSON_TYPE


def _metrics_route(report: HealthReport) -> tuple[int, bytes, str]:
    return 200, render_metrics(report).encode(), METRICS_TYPE


_ROUTES: dict[str, Callable[[HealthReport], tuple[int, bytes, str]]] = {
    "/health": _health_route,
    "/metrics": _metrics_route,
}


# -- Prometheus text format 0.0.4 ----------------------------------------------------------
Sample = tuple[dict[str, str], float]
_NumericRoleField = Literal["heartbeat_age_s", "restarts", "processed", "failed", "queue_lag"]


def render_metrics(report: HealthReport) -> str:
    roles = report["roles"]

    def per_role(field: _NumericRoleField) -> list[Sample]:
        return [({"role": name}, float(value)) for name, role in roles.items()
                if (value := role[field]) is not None]

    families: list[tuple[str, str, str, list[Sample]]] = [
        ("tracardi_daemon_up", "gauge", "1 while the daemon answers on its health socket.",
         [({}, 1.0)]),
        ("tracardi_daemon_role_up", "gauge", "1 if the role is running, else 0.",
         [({"role": name}, _running(role)) for name, role in roles.items()]),
        ("tracardi_daemon_role_heartbeat_age_seconds", "gauge",
         "Seconds since the stalest heartbeat among the role's threads.",
         per_role("heartbeat_age_s")),
        ("tracardi_daemon_role_restarts_total", "counter",
         "Times the supervisor restarted the role after a failure.", per_role("restarts")),
        ("tracardi_daemon_role_processed_total", "counter",
         "Work items the role processed.", per_role("processed")),
        ("tracardi_daemon_role_failed_total", "counter",
         "Work items the role failed to process.", per_role("failed")),
        ("tracardi_daemon_queue_lag", "gauge",
         "Messages waiting in the role's queue, as the role last measured it.",
         per_role("queue_lag")),
        ("tracardi_daemon_backend_up", "gauge", "1 if the backend answered its last probe.",
         [({"backend": name}, 1.0 if backend["up"] else 0.0)
          for name, backend in report["backends"].items()]),
        ("tracardi_daemon_license_expiry_timestamp_seconds", "gauge",
         "Unix time at which the licence expires.", _license_expiry(report)),
    ]
    lines: list[str] = []
    for name, kind, help_text, samples in families:
        lines.extend(_family(name, kind, help_text, samples))
    return "\n".join(lines) + "\n"


def _running(role: RoleReport) -> float:
    return 1.0 if role["state"] == "running" else 0.0


def _license_expiry(report: HealthReport) -> list[Sample]:
    expires = report["license"]["expires"]
    if not expires:
        return []
    try:
        moment = datetime.fromisoformat(expires)
    except ValueError:
        return []
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return [({}, moment.timestamp())]


def _family(name: str, kind: str, help_text: str, samples: list[Sample]) -> list[str]:
    if not samples:
        return []
    help_escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    lines = [f"# HELP {name} {help_escaped}", f"# TYPE {name} {kind}"]
    lines.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples)
    return lines


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    pairs = ",".join(f'{key}="{_escape_label(value)}"' for key, value in labels.items())
    return "{" + pairs + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


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
