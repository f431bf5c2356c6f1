"""The daemon's logging set-up masks secrets in every line it writes: the message, its
arguments and a traceback, ours or a library's, in text and in JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from tracardi_daemon.config.settings import LogSettings
from tracardi_daemon.runtime.logs import setup_logging

URL = "http://elastic:hunter2@es1:9200"


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _log_secrets() -> None:
    log = logging.getLogger("tracardi_daemon.role.scheduler")
    log.warning("cannot reach %s", URL)
    log.warning("posting with Authorization: Bearer abc.def to webhook:%s", URL)
    try:
        raise ConnectionError(f"connection to {URL} refused")
    except ConnectionError:
        log.exception("probe failed")
    logging.getLogger("elastic_transport").error("node %s is dead, password=swordfish", URL)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_carry_no_secret(log_format: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogSettings(level="INFO", format=log_format))
    _log_secrets()
    err = capsys.readouterr().err
    for secret in ("hunter2", "abc.def", "swordfish"):
        assert secret not in err
    assert "es1:9200" in err and "probe failed" in err and "ConnectionError" in err
    if log_format == "json":
        entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert len(entries) == 4 and "exception" in entries[2]
