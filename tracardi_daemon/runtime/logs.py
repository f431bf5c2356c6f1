"""Logging set-up: plain text with the thread name, or JSON lines; one logger per role.

Every line passes through ``mask_text``, so no record (ours or a library's, message or
traceback) can carry URL credentials, tokens or passwords."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from tracardi_daemon.config.settings import LogSettings
from tracardi_daemon.redact import mask_text

TEXT_FORMAT = "%(asctime)s %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"


class MaskingFormatter(logging.Formatter):
    """Plain text lines, secrets masked in the message and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers; secrets masked in each field before
    encoding (masking the encoded line could break its JSON escapes)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": mask_text(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = mask_text(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = mask_text(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(settings: LogSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(MaskingFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    # client libraries log every request at INFO; keep them for warnings and errors
    for noisy in ("elasticsearch", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # the Elasticsearch transport warns of every retried request and every node it
    # marks dead: during an outage a line per request per thread. The supervisor logs
    # the outage itself, once when it starts, every so often while it lasts, and when
    # it ends
    logging.getLogger("elastic_transport").setLevel(logging.ERROR)
