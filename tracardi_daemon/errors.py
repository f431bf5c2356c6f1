"""The daemon's own exception types and exit codes.

Library exceptions (redis, elasticsearch, httpx, cryptography) are converted to these at
the adapter that calls the library, so role loops catch only what is defined here.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; a contract with systemd's RestartPreventExitStatus= and
    supervisord's exitcodes=."""

    OK = 0
    FAILURE = 1
    CONFIG = 2
    # a command's input is wrong (a bad payload, target or id): argparse's own code
    USAGE = 2
    LICENSE = 3
    BACKEND_UNREACHABLE = 4


class DaemonError(Exception):
    """Base of every error the daemon raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILURE


class ConfigError(DaemonError):
    """The configuration (file, environment or command line) is invalid."""

    exit_code = ExitCode.CONFIG


class LicenseError(DaemonError):
    """A licence is missing, malformed, tampered with, expired or signed by another key."""

    exit_code = ExitCode.LICENSE


class BackendUnavailable(DaemonError):
    """Redis or Elasticsearch cannot be reached or answered with a transport error."""

    exit_code = ExitCode.BACKEND_UNREACHABLE

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend} unavailable: {detail}")
        self.backend = backend
        self.detail = detail


class BackendError(DaemonError):
    """A backend answered, but refused the request (bad query, mapping conflict, ...)."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend} error: {detail}")
        self.backend = backend
        self.detail = detail


class RoleError(DaemonError):
    """A configured role cannot be started (unknown or not implemented in this version)."""

    exit_code = ExitCode.CONFIG


class InvalidInput(DaemonError):
    """Input from a user or a producer is invalid; the message names the bad field."""
