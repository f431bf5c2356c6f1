"""The mapping role's Redis keys: the live mapping's state and the events it applied."""

from __future__ import annotations

from tracardi_daemon.infra.redis import check_name


def live_state_key(tenant: str) -> str:
    """A hash: the live mapping's epoch, position and the intent of its running batch."""
    return f"{check_name('tenant', tenant)}:mapping:live"


def live_applied_key(tenant: str) -> str:
    """A sorted set: the events the live mapping applied, scored by when, so that one
    seen again (a look-back) is not applied twice."""
    return f"{live_state_key(tenant)}:applied"
