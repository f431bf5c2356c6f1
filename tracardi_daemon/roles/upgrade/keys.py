"""The upgrade role's Redis keys: migrations done, imports that wrote, rows that failed."""

from __future__ import annotations

from tracardi_daemon.infra.redis import check_name


def done_key(tenant: str, plan_key: str) -> str:
    """A string: the record of the migration plan ``plan_key`` that finished."""
    return f"{check_name('tenant', tenant)}:migration:done:{plan_key}"


def written_key(tenant: str, definition_id: str) -> str:
    """A string, set (to the task's id) before the first events of an import
    definition are written."""
    return f"{check_name('tenant', tenant)}:import:written:{definition_id}"


def failures_key(tenant: str, task_id: str) -> str:
    """A sorted set: the rows an import task could not write, by row number."""
    return f"{check_name('tenant', tenant)}:import:failures:{check_name('task id', task_id)}"


def detached_key(tenant: str, plan_key: str) -> str:
    """A string: the (alias, index) pairs ``migrate detach`` took off the old version's
    indices for the plan ``plan_key``, as JSON (what ``--restore`` puts back)."""
    return f"{check_name('tenant', tenant)}:migration:detached:{plan_key}"
