"""Tests beside a real Tracardi 0.8.2 API (``scripts/services tracardi-up``), driven only
through its own HTTP API, as its GUI and its tracker drive it."""
