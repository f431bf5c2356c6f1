"""The licence gate: which roles the licence lets run, checked at start, on reload and
every ``license.check_interval_s``, and the roles it keeps from running, with why."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from tracardi_daemon.config.settings import LicenseSettings
from tracardi_daemon.license import LicenseStatus, load_status
from tracardi_daemon.roles.registry import Registry

log = logging.getLogger(__name__)


class LicenseGate:
    """The last licence read, and the refused roles. Only the main thread changes it;
    health threads read ``refused``, which is replaced, never changed in place."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.status = LicenseStatus(None, "not checked yet")
        self.refused: Mapping[str, str] = {}  # role -> why the licence refuses it
        self._checked_at: float | None = None

    def check(self, settings: LicenseSettings) -> None:
        """Read the licence again and say what it grants."""
        self.status = load_status(settings, datetime.now(UTC))
        self._checked_at = time.monotonic()
        licence = self.status.license
        if licence is not None:
            log.info("licence for %s valid until %s, grants: %s", licence.licensee,
                     licence.expires.isoformat(), ", ".join(licence.roles) or "none")
        else:
            log.warning("no valid licence: %s", self.status.detail)

    def due(self, interval_s: float) -> bool:
        return self._checked_at is None or time.monotonic() - self._checked_at >= interval_s

    def refusal(self, role: str) -> str | None:
        """Why the licence keeps ``role`` from running; roles that need none (upgrade,
        the internal senders) are never refused."""
        return self.status.refusal(role) if self.registry[role].licensed else None

    def allows(self, role: str) -> bool:
        return self.refusal(role) is None

    def admit(self, role: str) -> bool:
        """Record whether ``role`` may start now; False (and logged) if it is refused."""
        reason = self.refusal(role)
        if reason is None:
            self.refused = {name: why for name, why in self.refused.items() if name != role}
            return True
        self.refused = {**self.refused, role: reason}
        log.error("role %s not started: %s", role, reason)
        return False

    def stopped(self, roles: Iterable[str]) -> None:
        """Record roles stopped because the licence no longer allows them."""
        self.refused = {**self.refused,
                        **{role: self.refusal(role) or "unlicensed" for role in roles}}

    def keep_only(self, wanted: Iterable[str]) -> None:
        """Forget refusals of roles the configuration no longer asks for."""
        keep = set(wanted)
        self.refused = {name: why for name, why in self.refused.items() if name in keep}
