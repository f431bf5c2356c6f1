"""The shape of the health report that the supervisor builds and the health socket serves.

Kept apart from the server so that building a report never imports socket code.
"""

from __future__ import annotations

from typing import Literal, TypedDict

OverallStatus = Literal["starting", "ok", "degraded", "failing", "stopping"]
# "stalled": a step has run longer than supervisor.step_budget_s (the role is alive but
# stuck; health answers 503 and the systemd watchdog is withheld)
RoleState = Literal["starting", "running", "backoff", "failed", "stopped", "unlicensed",
                    "stopping", "stalled"]


class RoleReport(TypedDict):
    state: RoleState
    threads: int
    heartbeat_age_s: float | None
    step_age_s: float | None  # how long the oldest running step of its threads has run
    restarts: int
    consecutive_failures: int
    processed: int
    failed: int
    last_error: str | None
    queue_lag: int | None
    lag_s: float | None  # now - insert time of the newest item applied (followers)
    detail: str | None


class BackendReport(TypedDict):
    up: bool
    detail: str | None
    checked_age_s: float


class LicenseReport(TypedDict):
    valid: bool
    licensee: str | None
    expires: str | None  # ISO 8601
    roles: list[str]
    detail: str | None


class HealthReport(TypedDict):
    status: OverallStatus
    version: str
    pid: int
    uptime_s: float
    roles: dict[str, RoleReport]
    backends: dict[str, BackendReport]  # "redis", "elasticsearch"
    license: LicenseReport
