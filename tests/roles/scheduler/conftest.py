"""Fixtures for the scheduler and dispatch tests: the real local receivers."""

from __future__ import annotations

from tests.receivers import black_hole, http_server, trickler

__all__ = ["black_hole", "http_server", "trickler"]

