"""The health report: what the socket serves, systemd's STATUS= and the USR1 dump."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from tracardi_daemon import __version__
from tracardi_daemon.health.report import (
    BackendReport,
    HealthReport,
    LicenseReport,
    OverallStatus,
    RoleReport,
)

if TYPE_CHECKING:
    from tracardi_daemon.runtime.daemon import Daemon


# how long a health request waits for the new backend probes it asks for; a backend
# that has not answered by then is reported from its last probe (down once it counts
# as hung), so a hung Elasticsearch never makes /health slow
FRESH_PROBE_WAIT_S = 0.25


def build_report(daemon: Daemon, fresh: bool = False) -> HealthReport:
    if fresh and daemon.backends is not None:
        daemon.backends.refresh(FRESH_PROBE_WAIT_S)
    roles = _role_entries(daemon)
    backends = _backend_entries(daemon)
    return {
        "status": _overall(daemon, roles, backends),
        "version": __version__,
        "pid": os.getpid(),
        "uptime_s": round(time.monotonic() - daemon.started_at, 3),
        "roles": roles,
        "backends": backends,
        "license": _license_entry(daemon),
    }


def _role_entries(daemon: Daemon) -> dict[str, RoleReport]:
    roles = daemon.supervisor.views()
    for name, reason in daemon.unlicensed.items():
        roles[name] = {
            "state": "unlicensed", "threads": 0, "heartbeat_age_s": None,
            "step_age_s": None, "restarts": 0,
            "consecutive_failures": 0, "processed": 0, "failed": 0, "last_error": None,
            "queue_lag": None, "lag_s": None, "detail": reason,
        }
    return roles


def _backend_entries(daemon: Daemon) -> dict[str, BackendReport]:
    if daemon.backends is None:
        return {name: {"up": False, "detail": "not connected yet", "checked_age_s": 0.0}
                for name in ("redis", "elasticsearch")}
    now = time.monotonic()
    return {
        name: {"up": state.up, "detail": state.detail,
               "checked_age_s": round(now - state.checked_at, 3)}
        for name, state in daemon.backends.states().items()
    }


def _license_entry(daemon: Daemon) -> LicenseReport:
    licence = daemon.license.license
    return {
        "valid": licence is not None,
        "licensee": licence.licensee if licence else None,
        "expires": licence.expires.isoformat() if licence else None,
        "roles": list(licence.roles) if licence else [],
        "detail": daemon.license.detail,
    }


def _overall(daemon: Daemon, roles: dict[str, RoleReport],
             backends: dict[str, BackendReport]) -> OverallStatus:
    if daemon.stopping:
        return "stopping"
    if not daemon.roles_started:
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
