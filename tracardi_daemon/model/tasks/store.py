"""Long jobs' records: live progress and checkpoint in the Redis hash
``<tenant>:task:<id>``, mirrored to the Elasticsearch ``task`` index for history.

Redis is the source of truth. A job reports deltas: the counters grow with HINCRBY in
the same atomic write as the new checkpoint (through the job's lease when fenced), so
after a crash the checkpoint and the counters agree. Status guards (no progress on a
finished task) are read just before the write; the counters and the checkpoint are
exact, the status guard and the smoothed rate are best effort under concurrent writers.
"""

from __future__ import annotations

import builtins
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from elasticsearch import Elasticsearch
from redis.client import Pipeline

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import BackendError, BackendUnavailable, InvalidInput
from tracardi_daemon.infra.lease import Command, Fenced
from tracardi_daemon.infra.queue_base import decode_fields, flatten
from tracardi_daemon.infra.redis import RedisClient, check_name, redis_errors, text
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.tasks.record import (
    FINISHED_TTL_MS,
    TERMINAL_STATUSES,
    TaskRecord,
    active_indexed_key,
    active_key,
    json_text,
    number_text,
    rate_changes,
    task_key,
    to_definition,
)
from tracardi_daemon.redact import mask_text

__all__ = ["FINISHED_TTL_MS", "TERMINAL_STATUSES", "TaskRecord", "TaskStore", "task_key"]

logger = logging.getLogger(__name__)
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class TaskStore:
    """One tenant's task records; safe to share between threads and daemons.

    Writes given a ``fence`` go through it as one atomic script and write nothing once
    the lease is lost. The ``task`` index is updated after the Redis write, at most
    once per ``mirror_every_s`` per task and always on a status change; a failed
    update is logged and retried with the next one, except in ``create``.
    """

    def __init__(
        self,
        redis: RedisClient,
        elastic: Elasticsearch | None,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        mirror_every_s: float = 2.0,
    ) -> None:
        self._redis = redis
        self._tenant = settings.tracardi.tenant
        self._definitions = None if elastic is None else DefinitionStore(elastic, settings)
        self._clock = clock
        self._mirror_every_s = mirror_every_s
        self._mirrored_at: dict[str, float] = {}
        self._mirror_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _key(self, task_id: str) -> str:
        return task_key(self._tenant, task_id)

    @property
    def _active_key(self) -> str:
        return active_key(self._tenant)

    def create(
        self,
        type: str,
        name: str,
        params: Mapping[str, Any],
        *,
        task_id: str | None = None,
        total: int | None = None,
    ) -> TaskRecord:
        """A new pending task; InvalidInput if ``task_id`` exists. Raises if the
        ``task`` index cannot be written (the Redis record is then removed again)."""
        for field, value in (("type", type), ("name", name)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(f"task {field}: must be a non-empty string")
        _check_total(total)
        task_id = task_id or uuid.uuid4().hex
        key = self._key(task_id)
        now = self._clock()
        fields = {
            "id": task_id,
            "type": type,
            "name": name,
            "status": "pending",
            "total": "" if total is None else str(total),
            "done": "0",
            "failed": "0",
            "created_at": number_text(now),
            "updated_at": number_text(now),
            "params": json_text("params", params),
        }

        def put(pipe: Pipeline) -> None:
            if pipe.exists(key):
                raise InvalidInput(f"task {task_id!r} already exists")
            pipe.multi()
            pipe.hset(key, items=flatten(fields))
            pipe.sadd(self._active_key, task_id)

        with redis_errors(f"create task {key}"):
            self._redis.transaction(put, key)
        record = TaskRecord.from_fields(fields)
        if self._mirror_due(task_id, force=True) is not None:
            try:
                self._mirror(record)
            except (BackendError, BackendUnavailable):
                with redis_errors(f"remove unmirrored task {key}"):
                    self._redis.delete(key)
                raise
        return record

    def get(self, task_id: str) -> TaskRecord | None:
        fields = self._read(task_id)
        return None if fields is None else TaskRecord.from_fields(fields)

    def start(self, task_id: str, owner: str, fence: Fenced | None = None) -> bool:
        """Mark a pending task running for ``owner``; a running one is taken over (its
        start time kept, its rate sample restarted). False if unknown, terminal or the
        fence is lost."""
        fields = self._read_active(task_id)
        if fields is None:
            return False
        now = self._clock()
        record = TaskRecord.from_fields(fields)
        changes = {
            "status": "running",
            "owner": owner,
            "owned_since": number_text(now),
            "updated_at": number_text(now),
            "sample_at": number_text(now),
            "sample_processed": str(record.done + record.failed),
        }
        if record.started_at is None:
            changes["started_at"] = number_text(now)
        return self._change(task_id, [_hset(self._key(task_id), changes)], fence, force_mirror=True)

    def progress(
        self,
        task_id: str,
        *,
        done: int = 0,
        failed: int = 0,
        total: int | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        last_error: str | None = None,
        fence: Fenced | None = None,
    ) -> bool:
        """Add ``done`` and ``failed`` (deltas) and store the new checkpoint in one
        atomic write; recompute rate and ETA. False if unknown, terminal or the fence
        is lost."""
        if done < 0 or failed < 0:
            raise InvalidInput(f"task progress: deltas must not be negative ({done}, {failed})")
        _check_total(total)
        fields = self._read_active(task_id)
        if fields is None:
            return False
        key, now = self._key(task_id), self._clock()
        record = TaskRecord.from_fields(fields)
        processed = record.done + done + record.failed + failed
        known_total = record.total if total is None else total
        if known_total is not None and processed > known_total:
            # more than were counted at the start (written to the source meanwhile): the
            # total grows with them, so progress never reads past it
            known_total = total = processed
        changes = {
            "updated_at": number_text(now),
            **rate_changes(fields, now, processed, known_total),
        }
        if total is not None:
            changes["total"] = str(total)
        if checkpoint is not None:
            changes["checkpoint"] = json_text("checkpoint", checkpoint)
        if last_error is not None:
            changes["last_error"] = mask_text(last_error)
        commands: builtins.list[Command] = [
            ("HINCRBY", key, field, str(delta))
            for field, delta in (("done", done), ("failed", failed))
            if delta
        ]
        commands.append(_hset(key, changes))
        return self._change(task_id, commands, fence, force_mirror=False)

    def finish(
        self, task_id: str, status: str, *, error: str | None = None, fence: Fenced | None = None
    ) -> bool:
        """End a task as finished, failed or cancelled; its Redis record expires after
        7 days. False if unknown, already terminal or the fence is lost."""
        if status not in TERMINAL_STATUSES:
            raise InvalidInput(
                f"task status: must be one of {', '.join(TERMINAL_STATUSES)}, not {status!r}"
            )
        fields = self._read_active(task_id)
        if fields is None:
            return False
        key, now = self._key(task_id), self._clock()
        changes = {
            "status": status,
            "finished_at": number_text(now),
            "updated_at": number_text(now),
            "eta_s": "",
        }
        if error is not None:
            changes["last_error"] = mask_text(error)
        commands = [_hset(key, changes), ("PEXPIRE", key, str(FINISHED_TTL_MS))]
        written = self._change(task_id, commands, fence, force_mirror=True)
        with self._lock:
            self._mirrored_at.pop(task_id, None)
            self._mirror_locks.pop(task_id, None)
        return written

    def request_cancel(self, task_id: str) -> bool:
        """Ask the job to stop at its next check; False if unknown or terminal."""
        key = self._key(task_id)

        marked: builtins.list[bool] = []

        def mark(pipe: Pipeline) -> None:
            marked.clear()  # a retry after a concurrent change starts afresh
            status = pipe.hget(key, "status")
            if status is not None and text(status) not in TERMINAL_STATUSES:
                pipe.multi()
                pipe.hset(key, "cancel", "1")
                marked.append(True)

        with redis_errors(f"request cancel of {key}"):
            self._redis.transaction(mark, key)
        return bool(marked)

    def cancel_requested(self, task_id: str) -> bool:
        key = self._key(task_id)
        with redis_errors(f"read cancel flag of {key}"):
            return self._redis.hget(key, "cancel") == b"1"

    def list(self, type: str | None = None) -> builtins.list[TaskRecord]:
        """The tenant's tasks still in Redis, newest first."""
        pattern = _GLOB_SPECIAL.sub(r"\\\1", f"{check_name('tenant', self._tenant)}:task:") + "*"
        records: builtins.list[TaskRecord] = []
        with redis_errors(f"list tasks {pattern}"):
            keys = builtins.list(self._redis.scan_iter(match=pattern, count=500))
            for start in range(0, len(keys), 500):
                pipe = self._redis.pipeline(transaction=False)
                for key in keys[start : start + 500]:
                    pipe.hgetall(key)
                for raw in pipe.execute():
                    fields = decode_fields(raw)
                    if fields.get("status") and fields.get("id"):
                        records.append(TaskRecord.from_fields(fields))
        if type is not None:
            records = [record for record in records if record.type == type]
        return sorted(records, key=lambda r: (r.created_at or 0.0, r.id), reverse=True)

    def active_ids(self) -> builtins.list[str]:
        """Ids of the tasks that may not have ended: every task created since the set
        ``<tenant>:tasks:active`` exists, and once, the tasks found by a scan (records
        of an earlier version). Ended ones stay until ``forget_active``."""
        marker = active_indexed_key(self._tenant)
        with redis_errors(f"read {self._active_key}"):
            if not self._redis.exists(marker):
                ids = [record.id for record in self.list() if not record.terminal]
                pipe = self._redis.pipeline(transaction=True)
                if ids:
                    pipe.sadd(self._active_key, *ids)
                pipe.set(marker, "1")
                pipe.execute()
            members = self._redis.smembers(self._active_key)
        return sorted(text(member) for member in members)

    def forget_active(self, task_ids: Sequence[str]) -> None:
        """Drop ended or vanished tasks from the active set."""
        if task_ids:
            with redis_errors(f"write {self._active_key}"):
                self._redis.srem(self._active_key, *task_ids)

    # ------------------------------------------------------------------ internals

    def _read_active(self, task_id: str) -> dict[str, str] | None:
        fields = self._read(task_id)
        return None if fields is None or fields.get("status") in TERMINAL_STATUSES else fields

    def _read(self, task_id: str) -> dict[str, str] | None:
        """The raw fields, or None for no task (or a hash without a status)."""
        key = self._key(task_id)
        with redis_errors(f"read task {key}"):
            fields = decode_fields(self._redis.hgetall(key))
        return fields if fields.get("status") else None

    def _change(
        self, task_id: str, commands: Sequence[Command], fence: Fenced | None, *, force_mirror: bool
    ) -> bool:
        """Write atomically (through the fence if any), then mirror: always after a
        status change, else when the last mirror is old enough."""
        with redis_errors(f"write task {self._key(task_id)}"):
            if fence is not None:
                if not fence.execute(commands):
                    return False
            else:
                pipe = self._redis.pipeline(transaction=True)
                for command in commands:
                    # redis-py leaves execute_command untyped
                    pipe.execute_command(*command)  # type: ignore[no-untyped-call]
                pipe.execute()
        self._mirror_latest(task_id, force=force_mirror)
        return True

    def _mirror_due(self, task_id: str, *, force: bool) -> threading.Lock | None:
        """The task's mirror lock when a mirror is due (and stamped), else None."""
        if self._definitions is None:
            return None
        now = self._clock()
        with self._lock:
            last = self._mirrored_at.get(task_id)
            if not force and last is not None and now - last < self._mirror_every_s:
                return None
            self._mirrored_at[task_id] = now
            return self._mirror_locks.setdefault(task_id, threading.Lock())

    def _mirror_latest(self, task_id: str, *, force: bool) -> None:
        """Mirror what Redis holds now. Reading and writing under the task's lock keeps
        a slow mirror of an older state from overwriting a newer one."""
        lock = self._mirror_due(task_id, force=force)
        if lock is None:
            return
        with lock:
            record = self.get(task_id)
            try:
                if record is not None:
                    self._mirror(record)
            except (BackendError, BackendUnavailable) as exc:
                with self._lock:  # so that the next change tries again
                    self._mirrored_at.pop(task_id, None)
                logger.warning("task %s not mirrored to the task index: %s", task_id, exc)

    def _mirror(self, record: TaskRecord) -> None:
        if self._definitions is not None:
            self._definitions.upsert_many([to_definition(record)], wait_for_refresh=False)


def _hset(key: str, fields: Mapping[str, str]) -> Command:
    return ("HSET", key, *flatten(fields))


def _check_total(total: int | None) -> None:
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise InvalidInput(f"task total: must be a non-negative integer, not {total!r}")
