"""The rows an import could not import, for ``import failures``: a sorted set per task,
``<tenant>:import:failures:<task>``, scored by row number. Recording the same row again
(a batch replayed after a takeover) changes nothing; at most ``MAX_KEPT`` rows are kept
(the task's ``failed`` counter still counts every one), and the set expires with the
task's record."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracardi_daemon.infra.redis import RedisClient, redis_errors, text
from tracardi_daemon.model.tasks.record import FINISHED_TTL_MS
from tracardi_daemon.redact import mask_text
from tracardi_daemon.roles.upgrade.imports.rows import Row, RowFailure
from tracardi_daemon.roles.upgrade.keys import failures_key

MAX_KEPT = 100_000


@dataclass(frozen=True)
class FailedRow:
    row: int
    column: str | None
    reason: str
    raw: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "reason": self.reason, "raw": self.raw}


class FailureLog:
    def __init__(self, redis: RedisClient, tenant: str, task_id: str) -> None:
        self._redis = redis
        self._key = failures_key(tenant, task_id)

    def add(self, failed: Sequence[tuple[Row, RowFailure]]) -> None:
        if not failed:
            return
        members = {json.dumps(FailedRow(row.number, failure.column, mask_text(failure.reason),
                                        row.raw).to_dict(), sort_keys=True): row.number
                   for row, failure in failed}
        with redis_errors("record failed rows"):
            kept = int(self._redis.zcard(self._key))
            if kept >= MAX_KEPT:
                return
            pipe = self._redis.pipeline(transaction=False)
            pipe.zadd(self._key, dict(list(members.items())[:MAX_KEPT - kept]))
            pipe.pexpire(self._key, FINISHED_TTL_MS)
            pipe.execute()

    def count(self) -> int:
        with redis_errors("count failed rows"):
            return int(self._redis.zcard(self._key))

    def rows(self, offset: int = 0, limit: int = 100) -> list[FailedRow]:
        """Failed rows in row order."""
        with redis_errors("read failed rows"):
            members = self._redis.zrange(self._key, offset, offset + limit - 1)
        found = []
        for member in members:
            raw = json.loads(text(member))
            found.append(FailedRow(int(raw["row"]), raw.get("column"), str(raw["reason"]),
                                   str(raw.get("raw", ""))))
        return found
