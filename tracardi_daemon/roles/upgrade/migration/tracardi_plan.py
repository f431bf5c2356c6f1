"""Tracardi's own plan files (``08x_to_0820.json``: a JSON list of schemas and comment
strings) read as the daemon's plans: each ``copy_index`` schema a step, its painless
script compiled by the daemon's interpreter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.definition_reader import Reader
from tracardi_daemon.model.tracardi_names import (
    LOGICAL_NAME,
    PARTITIONINGS,
    Layout,
    tracardi_tenant,
)
from tracardi_daemon.painless import ScriptRefused
from tracardi_daemon.roles.upgrade.migration.plan import Plan, Step, checked
from tracardi_daemon.roles.upgrade.migration.tracardi_workers import WORKERS

# Tracardi's workers that copy documents as they are; the 0.7.1 workers convert them
COPYING_WORKERS: tuple[str, ...] = ("reindex", "reindex_to_one_index")
TRACARDI_WORKERS: tuple[str, ...] = COPYING_WORKERS + WORKERS


def _tracardi_copy_index(reader: Reader) -> dict[str, Any]:
    copy = reader.table("copy_index")
    for key in ("from_index", "to_index"):
        if not isinstance(copy.get(key), str) or not LOGICAL_NAME.match(copy[key]):
            reader.fail(f"copy_index.{key}", "must be a logical index name such as "
                                             f"'tracardi-profile', got {copy.get(key)!r}")
    for key in ("multi", "static", "production"):
        if copy.get(key) is not None and not isinstance(copy[key], bool):
            reader.fail(f"copy_index.{key}", "must be true or false")
    if copy.get("script") is not None and not isinstance(copy["script"], str):
        reader.fail("copy_index.script", "must be a painless script (a string) or null")
    return copy


def _tracardi_collapse(reader: Reader, worker: str) -> str | None:
    if worker != "reindex_to_one_index":
        return None
    partitioning = reader.table("params").get("partitioning")
    if partitioning not in PARTITIONINGS:
        reader.fail("params.partitioning", f"must be one of {', '.join(PARTITIONINGS)} "
                                           f"for worker {worker}, got {partitioning!r}")
    return None if partitioning == "month" else str(partitioning)


def _tracardi_step(number: int, entry: object) -> Step:
    if not isinstance(entry, Mapping):
        raise InvalidInput(f"tracardi plan entry {number}: must be an object or a "
                           f"comment string, got {type(entry).__name__}")
    # not strict: Tracardi writes conflicts and wait_for_completion, meaningless here
    reader = Reader("tracardi step", entry)
    ident = reader.string("id")
    worker = reader.string("worker")
    if worker not in TRACARDI_WORKERS:
        reader.fail("worker", f"{worker!r} is not supported: the daemon copies between "
                              f"Elasticsearch indices only ({', '.join(TRACARDI_WORKERS)})")
    copy = _tracardi_copy_index(reader)
    production = copy.get("production")
    return Step(
        # 0.8.x plans list staging and production copies of an index under one id
        id=f"{ident}-prod" if production else ident,
        index=copy["from_index"],
        multi=copy.get("multi") is True,
        static=copy.get("static") is True,
        asynchronous=reader.boolean("asynchronous", False),
        collapse=_tracardi_collapse(reader, worker),
        target_index=None if copy["to_index"] == copy["from_index"] else copy["to_index"],
        production=production,
        painless=(copy.get("script") or "").strip() or None,
        worker=None if worker in COPYING_WORKERS else worker,
    )


def _staging_beside_production(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """A step whose production copy the plan lists too (080_to_08x lists every index
    twice, the production script not always the staging one) copies staging only, as
    Tracardi reads a missing ``production``; a step without one copies both modes."""
    listed = {step.id for step in steps if step.production}
    return tuple(replace(step, production=False)
                 if step.production is None and f"{step.id}-prod" in listed else step
                 for step in steps)


def read_tracardi_plan(data: object, from_version: str, to_version: str, *,
                       from_tenant: str | None = None, to_tenant: str | None = None) -> Plan:
    """A plan from Tracardi's JSON list (``08x_to_0820.json``); tenants default to
    Tracardi's ``md5(version)[:5]``. A step's painless script is compiled here (refused,
    naming the step, line, column and construct, if the interpreter does not support
    it) and run by the daemon on every document. Workers other than reindex,
    reindex_to_one_index and the two 0.7.1 workers (copy_to_mysql, ...) are refused."""
    if not isinstance(data, list):
        raise InvalidInput("tracardi plan: must be a JSON list of schemas and comments")
    try:
        steps = tuple(_tracardi_step(number, entry) for number, entry in enumerate(data)
                      if not isinstance(entry, str))
    except ScriptRefused as exc:
        raise InvalidInput(f"tracardi plan {from_version}_to_{to_version}: {exc}") from exc
    if not steps:
        raise InvalidInput("tracardi plan: holds no migration schema")
    steps = _staging_beside_production(steps)
    source = Layout(from_version, from_tenant or tracardi_tenant(from_version))
    target = Layout(to_version, to_tenant or tracardi_tenant(to_version))
    return checked(Plan(source, target, steps, target_tenant_named=to_tenant is not None))
