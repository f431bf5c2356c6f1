"""Tests beside a real Tracardi API, 0.8.2 and 0.9 (``scripts/services tracardi-up
[--version 0.9]``), driven only through its own HTTP API, as its GUI and its tracker drive it."""
