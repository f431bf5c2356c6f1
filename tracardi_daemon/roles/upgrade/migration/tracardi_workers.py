"""Tracardi 0.7.1's two migration workers (``user_reindex_071``,
``validation_schema_reindex_071``) as step kinds: each document converted as Tracardi's
worker converts it, then the step's painless script, a pool function like the others.

What Tracardi's workers do (``migration_workers/v071`` and ``utils``):
- every document they write gets ``id`` = its ``_id`` (their pager's records do), and the
  step's script runs after the conversion, in an upsert on the target index;
- ``validation_schema_reindex_071``: ``validation`` becomes Tracardi's base64 of
  ``{"json_schema": <old validation decoded>, "enabled": <enabled>}``;
- ``user_reindex_071``: the user without ``token``, then ``token`` of the user of the same id
  in the target, else null. (Tracardi's code looks the user up in ``from_index`` and
  cannot run as shipped: it asks a plain dict for its metadata. The daemon does what the
  worker is for: a 0.7.0 token is dropped, one the new version issued is kept.)
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.errors import BackendError
from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.roles.upgrade.migration.scripted import compiled, run_script
from tracardi_daemon.roles.upgrade.migration.transforms import Document, TransformError

USER_REINDEX = "user_reindex_071"
VALIDATION_SCHEMA_REINDEX = "validation_schema_reindex_071"
WORKERS: tuple[str, ...] = (USER_REINDEX, VALIDATION_SCHEMA_REINDEX)


@dataclass(frozen=True)
class WorkerJob:
    """What a pool worker needs for a batch of a worker step (text, not closures)."""

    worker: str
    painless: str | None
    where: str
    target: str  # the script's ctx._index: Tracardi runs it in an upsert on the target


def tracardi_b64_encode(data: Any) -> str:
    """Tracardi's ``b64_encoder``: JSON with the default separators (non-JSON values as
    ``str``), gzip at level 9, standard base64 with padding."""
    text = json.dumps(data, default=str).encode("utf-8")
    return base64.b64encode(_gzip_member(text)).decode("utf-8")


def _gzip_member(data: bytes) -> bytes:
    """``gzip.compress(data)`` as Tracardi's Python writes it (no name, XFL 2 for level 9,
    OS 255), but with time 0 where Tracardi's holds the clock's, so that a replayed batch
    writes the same bytes (Python's own ``mtime=0`` path writes another OS byte)."""
    header = struct.pack("<BBBBLBB", 0x1F, 0x8B, 8, 0, 0, 2, 255)
    trailer = struct.pack("<LL", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + zlib.compress(data, level=9, wbits=-15) + trailer


def tracardi_b64_decode(data: Any) -> Any:
    """Tracardi's ``b64_decoder``: None stays None; base64 (not validated: characters
    outside the alphabet are skipped), then gunzip if it is gzip, else the bytes as they
    are; empty is ``{}``. Raises ValueError or TypeError when that yields no JSON."""
    if data is None:
        return None
    decoded = base64.b64decode(data)
    # Tracardi returns from its ``finally``: any gunzip failure reads the raw bytes
    with contextlib.suppress(OSError, EOFError, zlib.error):
        decoded = gzip.decompress(decoded)
    return json.loads(decoded) if decoded else {}


def _validation_schema(document: Document) -> Document:
    for field in ("validation", "enabled"):
        if field not in document:
            raise TransformError(f"field {field!r} is missing")
    try:
        schema = tracardi_b64_decode(document["validation"])
    except (ValueError, TypeError) as exc:
        shown = repr(document["validation"])[:40]
        raise TransformError(f"field 'validation' ({shown}) is not Tracardi's base64 of "
                             f"JSON: {type(exc).__name__}: {str(exc)[:80]}") from exc
    document["validation"] = tracardi_b64_encode({"json_schema": schema,
                                                  "enabled": document["enabled"]})
    return document


def _user(document: Document, token: Any) -> Document:
    converted = {key: value for key, value in document.items() if key != "token"}
    converted["token"] = token
    return converted


def run_worker_batch(job: WorkerJob, rows: list[tuple[str, Document, Any]]
                     ) -> list[Document | TransformError | None]:
    """Each ``(id, document, target token)`` converted by the step's worker, then through
    the step's script: the document to write, None (the script said noop or delete), or
    the TransformError that fails that document alone."""
    script = compiled(job.painless, job.where) if job.painless is not None else None
    results: list[Document | TransformError | None] = []
    for doc_id, document, token in rows:
        try:
            converted = (_user(document, token) if job.worker == USER_REINDEX
                         else _validation_schema(document))
        except TransformError as exc:
            results.append(TransformError(f"worker {job.worker}: {exc.reason}"))
            continue
        converted["id"] = doc_id
        results.append(converted if script is None
                       else run_script(script, doc_id, converted, job.target))
    return results


def target_tokens(elastic: Elasticsearch, target: str, ids: list[str]) -> dict[str, Any]:
    """The ``token`` of each user of ``ids`` already in ``target`` (one mget): those
    absent, or holding no token, are left out."""
    if not ids:
        return {}
    with elastic_errors(f"read the users of {target}"):
        found = elastic.mget(index=target, ids=ids, source_includes=["token"]).body
    tokens: dict[str, Any] = {}
    for doc in found["docs"]:
        error = doc.get("error")
        if error is not None and error.get("type") != "index_not_found_exception":
            raise BackendError("elasticsearch", f"read user {doc.get('_id')!r} of {target}: "
                               f"{error.get('type')}: {str(error.get('reason'))[:80]}")
        if doc.get("found") and "token" in doc.get("_source", {}):
            tokens[doc["_id"]] = doc["_source"]["token"]
    return tokens
