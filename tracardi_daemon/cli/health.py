"""``tracardi-daemon status`` and ``check``: ask the running daemon's health socket and
show the answer to a person (a table) or to Docker's HEALTHCHECK (an exit code).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from tracardi_daemon.cli.common import add_config_option
from tracardi_daemon.config.env import env_value
from tracardi_daemon.config.load import Overrides, load_settings
from tracardi_daemon.config.settings import DaemonSettings
from tracardi_daemon.errors import ConfigError
from tracardi_daemon.health.report import HealthReport, RoleReport
from tracardi_daemon.health.server import HealthUnavailable, fetch


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser("status", help="show the running daemon's health as a table")
    _add_socket_options(status)
    status.add_argument("--json", action="store_true", help="print the raw JSON report")
    status.set_defaults(handler=lambda args, env: cmd_status(
        health_socket_path(args, env), args.json))
    check = sub.add_parser("check", help="exit 0 if the daemon is healthy, else 1")
    _add_socket_options(check)
    check.set_defaults(handler=lambda args, env: cmd_check(health_socket_path(args, env)))


def _add_socket_options(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--socket", help="health socket path (or TRACARDI_HEALTH_SOCKET)")


def health_socket_path(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """--socket, else TRACARDI_HEALTH_SOCKET, else the config file's, else the default."""
    if args.socket:
        return str(args.socket)
    try:
        return load_settings(env, Overrides(config=args.config)).daemon.health_socket
    except ConfigError:
        return env_value(env, "TRACARDI_HEALTH_SOCKET") or DaemonSettings().health_socket


def cmd_status(socket_path: str, as_json: bool) -> int:
    """Print the report (table or JSON); 0 if the daemon answered, whatever its status."""
    try:
        _, body = fetch(socket_path, "/health")
    except HealthUnavailable as exc:
        print(f"tracardi-daemon: {exc}", file=sys.stderr)
        return 1
    try:
        report = json.loads(body)
        text = json.dumps(report, indent=2) + "\n" if as_json else render_table(report)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"tracardi-daemon: unexpected health report ({exc!r}): {body[:200]}",
              file=sys.stderr)
        return 1
    print(text, end="")
    return 0


def cmd_check(socket_path: str) -> int:
    """For Docker HEALTHCHECK: 0 when /health answers 200, else 1, with one line why."""
    return check(socket_path)


def check(socket_path: str) -> int:
    """0 when /health answers 200, else 1; prints one line saying why."""
    try:
        status, body = fetch(socket_path)
    except HealthUnavailable as exc:
        print(f"unhealthy: {exc}")
        return 1
    if status == 200:
        print("healthy")
        return 0
    print(f"unhealthy: {_why_unhealthy(status, body)}")
    return 1


def _why_unhealthy(status: int, body: str) -> str:
    try:
        report = json.loads(body)
        reasons = [str(report["status"])]
        roles = [f"{name} {role['state']}" for name, role in report["roles"].items()
                 if role["state"] != "running"]
        down = [name for name, backend in report["backends"].items() if not backend["up"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"HTTP {status}"
    if roles:
        reasons.append("roles " + ", ".join(roles))
    if down:
        reasons.append("backends down: " + ", ".join(down))
    return "; ".join(reasons)


def render_table(report: HealthReport) -> str:
    """The report as text for a terminal: status line, roles, backends, licence."""
    lines = [f"tracardi-daemon {report['version']}  pid {report['pid']}  "
             f"up {_duration(report['uptime_s'])}  status: {report['status'].upper()}", ""]
    role_rows = [["ROLE", "STATE", "THREADS", "HEARTBEAT", "RESTARTS", "PROCESSED", "FAILED",
                  "LAG", "LAST ERROR"]]
    for name, role in report["roles"].items():
        role_rows.append([
            name, role["state"], str(role["threads"]), _duration(role["heartbeat_age_s"]),
            str(role["restarts"]), str(role["processed"]), str(role["failed"]),
            _lag(role),
            _truncate(role["last_error"] or role["detail"] or "-", 60),
        ])
    lines.extend(_columns(role_rows, right_aligned={2, 3, 4, 5, 6, 7}) if report["roles"]
                 else ["no roles"])
    lines.append("")
    backend_rows = [["BACKEND", "UP", "CHECKED", "DETAIL"]]
    for name, backend in report["backends"].items():
        backend_rows.append([name, "yes" if backend["up"] else "NO",
                             f"{_duration(backend['checked_age_s'])} ago",
                             _truncate(backend["detail"] or "-", 60)])
    lines.extend(_columns(backend_rows, right_aligned={2}))
    lines.extend(["", _license_line(report)])
    return "\n".join(lines) + "\n"


def _license_line(report: HealthReport) -> str:
    licence = report["license"]
    if licence["valid"]:
        roles = ", ".join(licence["roles"]) or "none"
        return (f"licence: valid, {licence['licensee']}, expires {licence['expires']}, "
                f"roles: {roles}")
    return f"licence: none ({licence['detail'] or 'no detail'})"


def _columns(rows: list[list[str]], right_aligned: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(widths[i]) if i in right_aligned else cell.ljust(widths[i])
                      for i, cell in enumerate(row)).rstrip() for row in rows]


def _lag(role: RoleReport) -> str:
    """Messages waiting for a queue consumer, or time behind for a follower."""
    if role["queue_lag"] is not None:
        return str(role["queue_lag"])
    return _duration(role["lag_s"])


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _truncate(text: str, limit: int) -> str:
    flat = " ".join(text.split())  # tracebacks and multi-line errors fit on one row
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
