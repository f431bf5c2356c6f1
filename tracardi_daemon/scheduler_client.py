"""The scheduler's Python entry point under its earlier name: the README documented
``tracardi_daemon.scheduler_client.schedule``; the code is in ``roles.scheduler.client``."""

from tracardi_daemon.roles.scheduler.client import cancel, due_ms_for, get, schedule

__all__ = ["cancel", "due_ms_for", "get", "schedule"]
