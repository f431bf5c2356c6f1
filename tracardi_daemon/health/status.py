"""The health report: what the socket serves, systemd's STATUS= and the USR1 dump."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from tracardi_daemon import __version__
from tracardi_daemon.health.report import (
    BackendReport,
    HealthReport,
    LicenseReport,
    OverallStatus,
    RoleReport,
)
from tracardi_daemon.license import LicenseStatus

NOT_CONNECTED: dict[str, BackendReport] = {
    name: {"up": False, "detail": "not connected yet", "checked_age_s": 0.0}
    for name in ("redis", "elasticsearch")}


@dataclass(frozen=True)
class DaemonSnapshot:
    """What a report is made of, taken by the daemon at one moment: copies, so that a
    health thread never reads what the main thread is changing."""

    started_at: float  # monotonic
    stopping: bool
    roles_started: bool
    roles: dict[str, RoleReport]  # the supervisor's views of its running roles
    unlicensed: Mapping[str, str]  # role -> why the licence refuses it
    backends: dict[str, BackendReport]
    license: LicenseStatus


def build_report(snapshot: DaemonSnapshot) -> HealthReport:
    roles = _role_entries(snapshot)
    return {
        "status": _overall(snapshot, roles, snapshot.backends),
        "version": __version__,
        "pid": os.getpid(),
        "uptime_s": round(time.monotonic() - snapshot.started_at, 3),
        "roles": roles,
        "backends": snapshot.backends,
        "license": _license_entry(snapshot),
    }


def _role_entries(snapshot: DaemonSnapshot) -> dict[str, RoleReport]:
    roles = dict(snapshot.roles)
    for name, reason in snapshot.unlicensed.items():
        roles[name] = {
            "state": "unlicensed", "threads": 0, "heartbeat_age_s": None,
            "step_age_s": None, "restarts": 0,
            "consecutive_failures": 0, "processed": 0, "failed": 0, "last_error": None,
            "queue_lag": None, "lag_s": None, "detail": reason,
        }
    return roles


def _license_entry(snapshot: DaemonSnapshot) -> LicenseReport:
    licence = snapshot.license.license
    return {
        "valid": licence is not None,
        "licensee": licence.licensee if licence else None,
        "expires": licence.expires.isoformat() if licence else None,
        "roles": list(licence.roles) if licence else [],
        "detail": snapshot.license.detail,
    }


def _overall(snapshot: DaemonSnapshot, roles: dict[str, RoleReport],
             backends: dict[str, BackendReport]) -> OverallStatus:
    if snapshot.stopping:
        return "stopping"
    if not snapshot.roles_started:
        return "starting"
    if any(role["state"] == "failed" for role in roles.values()):
        return "failing"
    if not all(b["up"] for b in backends.values()):
        return "degraded"
    if any(role["state"] != "running" for role in roles.values()):
        return "degraded"
    return "ok"


def one_line_summary(report: HealthReport) -> str:
    """For systemd's STATUS=: overall state, then each role's state."""
    roles = ", ".join(f"{name} {role['state']}" for name, role in report["roles"].items())
    down = [name for name, b in report["backends"].items() if not b["up"]]
    text = f"{report['status']}: {roles or 'no roles'}"
    if down:
        text += f"; unreachable: {', '.join(down)}"
    return text


def status_lines(report: HealthReport) -> list[str]:
    """For the USR1 dump: one line per role and backend."""
    lines = [f"overall {report['status']}, uptime {report['uptime_s']:.0f}s"]
    for name, role in report["roles"].items():
        lines.append(
            f"role {name}: {role['state']}, threads {role['threads']}, "
            f"heartbeat age {role['heartbeat_age_s']}s, step age {role['step_age_s']}s, "
            f"processed {role['processed']}, "
            f"failed {role['failed']}, restarts {role['restarts']}"
            + (f", last error: {role['last_error']}" if role["last_error"] else "")
            + (f" ({role['detail']})" if role["detail"] else "")
        )
    for name, backend in report["backends"].items():
        lines.append(f"backend {name}: {'up' if backend['up'] else 'DOWN'}"
                     + (f" ({backend['detail']})" if backend["detail"] else ""))
    return lines
