"""An import: one queued job with a task record, run batch by batch by the ``upgrade``
role — read a batch from the source, write the good rows to the target, record the bad
ones with their row number and reason, and save progress and the source's position in
one atomic write. A runner that takes the job over after ``kill -9`` opens the source
at the saved position; the batch in flight when the first runner died is written
again under the same deterministic ids, so nothing is imported twice.

The job carries only the definition's id: credentials are read from the definition, or
the Tracardi resource it names, at run time and never enter the queue, the task record
or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import BackendError, BackendUnavailable, InvalidInput
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.redis import RedisClient, redis_errors, text
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import ImportConfig
from tracardi_daemon.model.import_spec import MAX_BATCH, ImportSpec, read_spec
from tracardi_daemon.model.profiles import ProfileStore
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.redact import mask_text
from tracardi_daemon.roles.jobs import end_job
from tracardi_daemon.roles.upgrade.imports.elastic_source import open_elastic_source
from tracardi_daemon.roles.upgrade.imports.failures import FailureLog
from tracardi_daemon.roles.upgrade.imports.remote_access import RemoteAccess
from tracardi_daemon.roles.upgrade.imports.resources import with_resource
from tracardi_daemon.roles.upgrade.imports.rows import Source
from tracardi_daemon.roles.upgrade.imports.targets import EventsTarget, ProfilesTarget, Target
from tracardi_daemon.roles.upgrade.imports.tracker import TrackerTarget
from tracardi_daemon.roles.upgrade.keys import written_key

log = logging.getLogger(__name__)

IMPORT_TASK = "import"  # Tracardi's task type for imports


def import_params(definition_id: str, *, dry_run: bool = False,
                  max_failed_rows: int | None = None,
                  debug: bool | None = None) -> dict[str, Any]:
    """What an import task records: the definition's id and the run's options only.
    ``debug`` picks a Tracardi resource's test credentials (True) or production ones
    (False); None follows the context, as Tracardi does: production credentials in
    production mode (``tracardi.production``), test ones otherwise."""
    if max_failed_rows is not None and max_failed_rows < 0:
        raise InvalidInput("--max-failed-rows must be 0 or more")
    params: dict[str, Any] = {"definition": definition_id, "dry_run": dry_run,
                              "max_failed_rows": max_failed_rows}
    if debug is not None:
        params["debug"] = debug
    return params


def load_spec(definitions: DefinitionStore, definition_id: str) -> ImportSpec:
    """The enabled import definition ``definition_id``, checked; InvalidInput otherwise."""
    definition = definitions.get(ImportConfig, definition_id)
    if definition is None:
        raise InvalidInput(f"no import definition {definition_id!r} "
                           "(tracardi-daemon definitions list import)")
    if not definition.enabled:
        raise InvalidInput(f"import {definition_id!r} is disabled")
    return read_spec(definition.id, definition.name, definition.source, definition.config)


def with_default_batch(spec: ImportSpec, settings: Settings) -> ImportSpec:
    """The definition's ``batch``, else the daemon's ``upgrade.batch_size``."""
    if "batch" in spec.config:
        return spec
    return replace(spec, batch=min(MAX_BATCH, settings.upgrade.batch_size))


def open_source(spec: ImportSpec, position: Mapping[str, Any] | None, *,
                elastic: Elasticsearch, settings: Settings) -> Source:
    """The spec's source, within what the operator allows: files under
    ``upgrade.import_dirs``, hosts the ``[outbound]`` policy lets through."""
    if spec.source in ("csv", "jsonl"):
        from tracardi_daemon.roles.upgrade.imports.file_access import FileAccess
        from tracardi_daemon.roles.upgrade.imports.files import open_file_source
        return open_file_source(spec.source, spec.config, position,
                                FileAccess.from_settings(settings))
    access = RemoteAccess.from_settings(settings)
    if spec.source == "elasticsearch":
        return open_elastic_source(spec.config, position, local=elastic, batch=spec.batch,
                                   access=access)
    from tracardi_daemon.roles.upgrade.imports.mysql_source import open_mysql_source
    return open_mysql_source(spec.source, spec.config, position, access)


def _remote(spec: ImportSpec) -> bool:
    """Whether the source is a service of its own, not the daemon's Elasticsearch."""
    return spec.source.startswith("mysql") or spec.resource_id is not None or (
        spec.source == "elasticsearch" and spec.config.get("hosts") is not None)


class ImportJob:
    """One import, batch by batch (a TaskJob for the task runner)."""

    def __init__(self, settings: Settings, tasks: TaskStore, record: TaskRecord, *,
                 lease: Lease, elastic: Elasticsearch, redis: RedisClient,
                 writer: BulkWriter) -> None:
        self.id = record.id
        self.done = False
        self._settings = settings
        self._tasks = tasks
        self._record = record
        self._lease = lease
        self._elastic = elastic
        self._redis = redis
        self._writer = writer
        self._definition_id = str(record.params.get("definition", ""))
        self._dry_run = bool(record.params.get("dry_run"))
        debug = record.params.get("debug")
        self._debug = not settings.tracardi.production if debug is None else bool(debug)
        limit = record.params.get("max_failed_rows")
        self._max_failed: int | None = None if limit is None else int(limit)
        checkpoint = record.checkpoint or {}
        self._position: Mapping[str, Any] | None = checkpoint.get("position")
        self._insert_time = checkpoint.get("insert_time") or datetime.now(UTC).isoformat()
        self._look_up: bool | None = checkpoint.get("look_up")
        self._failed = record.failed
        self._done_rows = record.done
        self._failures = FailureLog(redis, settings.tracardi.tenant, record.id)
        self._spec: ImportSpec | None = None
        self._source: Source | None = None
        self._target: Target | None = None
        self._started = False

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        if self._target is not None:
            self._target.close()
            self._target = None

    # ------------------------------------------------------------ begin

    def _begin(self) -> bool:
        fence = self._lease.fenced()
        if not self._tasks.start(self.id, self._lease.owner, fence=fence):
            self.done = True
            return False
        self._started = True
        try:
            spec = with_default_batch(load_spec(DefinitionStore(self._elastic, self._settings),
                                                self._definition_id), self._settings)
            if self._max_failed is None:
                self._max_failed = spec.max_failed_rows
            with self._source_errors(spec):
                spec = with_resource(spec, self._settings, self._elastic, debug=self._debug)
                self._source = open_source(spec, self._position, elastic=self._elastic,
                                           settings=self._settings)
            self._target = self._open_target(spec)
        except InvalidInput as exc:
            self._finish("failed", str(exc))
            return False
        self._spec = spec
        if self._record.checkpoint is None:
            with self._source_errors(spec):
                total = self._source.total()
            self._save(total=total)
            log.info("import %s (%s, %s -> %s): %s row(s)%s", self.id, spec.id, spec.source,
                     spec.target, "unknown" if total is None else f"{total:,}",
                     ", dry run" if self._dry_run else "")
        return True

    def _open_target(self, spec: ImportSpec) -> Target:
        if spec.target == "events":
            if self._look_up is None:
                self._look_up = not self._dry_run and not self._first_writer(spec)
            return EventsTarget(spec, self._elastic, self._writer, self._settings,
                                insert_time=datetime.fromisoformat(self._insert_time),
                                dry_run=self._dry_run, look_up_earlier=self._look_up)
        if spec.target == "profiles":
            profiles = ProfileStore(self._elastic, self._redis, self._settings, self._writer)
            return ProfilesTarget(spec, self._elastic, self._writer, profiles, self._settings,
                                  dry_run=self._dry_run)
        self._check_collector(spec.api_url)
        return TrackerTarget(spec, dry_run=self._dry_run)

    def _check_collector(self, api_url: str) -> None:
        """The definition names the collector's address: the outbound policy decides,
        unless it is the operator's own ``tracardi.api_url``."""
        if api_url == self._settings.tracardi.api_url.rstrip("/"):
            return
        url = urlsplit(api_url)
        RemoteAccess.from_settings(self._settings).check(
            "HTTP", url.hostname or "", url.port or (443 if url.scheme == "https" else 80))

    def _first_writer(self, spec: ImportSpec) -> bool:
        """Whether this task is the first ever to write events of this definition (then
        no earlier run's events can exist to be overwritten in place)."""
        key = written_key(self._settings.tracardi.tenant, spec.id)
        with redis_errors("mark the import's definition as written"):
            if self._redis.set(key, self.id, nx=True):
                return True
            return text(self._redis.get(key) or b"") == self.id  # a takeover of the first

    @contextmanager
    def _source_errors(self, spec: ImportSpec) -> Iterator[None]:
        """A source of its own that cannot be reached fails the batch (retried, then the
        task fails), instead of making the daemon wait as for its own backends."""
        named = f"{spec.resource_label}: " if spec.resource_id is not None else ""
        already = f"resource {spec.resource_id!r}"  # a message that names it already
        try:
            yield
        except BackendUnavailable as exc:
            if not _remote(spec):
                raise
            raise BackendError(exc.backend, f"the import's source: {named}{exc.detail}"
                               ) from exc
        except BackendError as exc:
            if not named or already in exc.detail:
                raise
            raise BackendError(exc.backend, f"{named}{exc.detail}") from exc
        except InvalidInput as exc:
            if not named or already in str(exc):
                raise
            raise InvalidInput(f"{named}{exc}") from exc

    # ------------------------------------------------------------ batches

    def step(self) -> int | None:
        """One batch; returns the rows it read (None: no batch ran)."""
        if not self._started and not self._begin():
            return None
        assert self._spec is not None and self._source is not None
        assert self._target is not None
        with self._source_errors(self._spec):
            rows = self._source.read(self._spec.batch)
        if not rows:
            self._save(total=self._done_rows + self._failed)
            self._finish("finished")
            return None
        failed = [(row, row.failure) for row in rows if row.failure is not None]
        failed += self._target.write([row for row in rows if row.failure is None])
        self._failures.add(failed)
        done = len(rows) - len(failed)
        self._position = self._source.position
        if not self._save(done=done, failed=len(failed)):
            return None
        self._done_rows += done
        self._failed += len(failed)
        if self._max_failed is not None and self._failed > self._max_failed:
            self._finish("failed", f"{self._failed} rows failed, more than max_failed_rows "
                                   f"({self._max_failed}): tracardi-daemon import failures "
                                   f"{self.id}")
        return len(rows)

    def _save(self, *, done: int = 0, failed: int = 0, total: int | None = None) -> bool:
        checkpoint = {"position": self._position, "insert_time": self._insert_time,
                      "look_up": self._look_up}
        if not self._tasks.progress(self.id, done=done, failed=failed, total=total,
                                    checkpoint=checkpoint, fence=self._lease.fenced()):
            self.done = True  # the lease was lost: the new runner goes on from here
            return False
        return True

    def _finish(self, status: str, error: str | None = None) -> None:
        end_job(self._tasks, self._lease, self.id, status, error)
        self.done = True
        log.log(logging.WARNING if error else logging.INFO, "import %s %s: %d done, %d failed%s",
                self.id, status, self._done_rows, self._failed,
                f": {mask_text(error)}" if error else "")
