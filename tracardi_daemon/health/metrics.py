"""The health report in the Prometheus text format (0.0.4), served at ``/metrics``."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Literal

from tracardi_daemon.health.report import HealthReport, RoleState

Sample = tuple[dict[str, str], float]
_NumericRoleField = Literal["heartbeat_age_s", "step_age_s", "restarts", "processed",
                            "failed", "queue_lag", "lag_s"]


def render_metrics(report: HealthReport) -> str:
    roles = report["roles"]

    def per_role(field: _NumericRoleField) -> list[Sample]:
        return [({"role": name}, float(value)) for name, role in roles.items()
                if (value := role[field]) is not None]

    def in_state(state: RoleState) -> list[Sample]:
        return [({"role": name}, 1.0 if role["state"] == state else 0.0)
                for name, role in roles.items()]

    families: list[tuple[str, str, str, list[Sample]]] = [
        ("tracardi_daemon_up", "gauge", "1 while the daemon answers on its health socket.",
         [({}, 1.0)]),
        ("tracardi_daemon_role_up", "gauge", "1 if the role is running, else 0.",
         in_state("running")),
        ("tracardi_daemon_role_stalled", "gauge",
         "1 if a step of the role has run longer than supervisor.step_budget_s, else 0.",
         in_state("stalled")),
        ("tracardi_daemon_role_heartbeat_age_seconds", "gauge",
         "Seconds since the stalest heartbeat among the role's threads.",
         per_role("heartbeat_age_s")),
        ("tracardi_daemon_role_step_age_seconds", "gauge",
         "Seconds the oldest running step among the role's threads has run.",
         per_role("step_age_s")),
        ("tracardi_daemon_role_restarts_total", "counter",
         "Times the supervisor restarted the role after a failure.", per_role("restarts")),
        ("tracardi_daemon_role_processed_total", "counter",
         "Work items the role processed.", per_role("processed")),
        ("tracardi_daemon_role_failed_total", "counter",
         "Work items the role failed to process.", per_role("failed")),
        ("tracardi_daemon_queue_lag", "gauge",
         "Messages waiting in the role's queue, as the role last measured it.",
         per_role("queue_lag")),
        ("tracardi_daemon_role_lag_seconds", "gauge",
         "Seconds between now and the insert time of the newest item the role applied "
         "(the mapping role's tail of the event index).", per_role("lag_s")),
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
