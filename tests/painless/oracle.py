"""A real painless as a test oracle: a script applied to a document by the painless node
(``scripts/services painless-up``) exactly as ``_reindex`` would see ``ctx._source``.

The node is OpenSearch with its lang-painless module; it is spoken to over plain HTTP
(the elasticsearch client refuses OpenSearch).
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

PAINLESS_URL = os.environ.get("TEST_PAINLESS_URL", "http://127.0.0.1:9260")
REQUEST_TIMEOUT_S = 30.0


class OracleError(RuntimeError):
    """The node answered something that is neither a result nor a script failure."""


@dataclass(frozen=True)
class Failure:
    """A script that painless refused or that raised: ``kind`` is painless's own word
    (``compile error`` or ``runtime error``), ``exception`` the exception's type as the
    node names it (``null_pointer_exception``), ``line``/``column`` (1-based) where in
    the script, ``stack`` painless's excerpt of the script with its ``^---- HERE``."""

    kind: str
    exception: str
    reason: str | None
    line: int | None
    column: int | None
    stack: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f" at {self.line}:{self.column}" if self.line is not None else ""
        return f"painless {self.kind}: {self.exception}{where} ({self.reason})"


def line_column(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset into ``source``."""
    before = source[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _innermost(cause: dict[str, Any]) -> dict[str, Any]:
    """The exception under a script_exception: painless's own, not its wrappers (a
    compile error's no_viable_alt under its illegal_argument is left as the reason)."""
    inner = cause.get("caused_by")
    return inner if isinstance(inner, dict) else cause


def _failure(source: str, error: dict[str, Any]) -> Failure | None:
    """The Failure in an update's error body, or None when it is not a script's."""
    cause = error.get("caused_by")
    if not isinstance(cause, dict) or cause.get("type") != "script_exception":
        return None
    inner = _innermost(cause)
    offset = (cause.get("position") or {}).get("offset")
    line, column = line_column(source, offset) if isinstance(offset, int) else (None, None)
    return Failure(kind=str(cause.get("reason")), exception=str(inner.get("type")),
                   reason=inner.get("reason"), line=line, column=column,
                   stack=tuple(cause.get("script_stack") or ()))


class PainlessNode:
    """The oracle: each ``apply`` stores the document in a scratch index of its own (its
    mapping indexes nothing, so documents of any shape fit) and runs the script on it."""

    def __init__(self, url: str = PAINLESS_URL) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S)
        self._index = f"painless-oracle-{uuid.uuid4().hex[:10]}"
        self._ids = itertools.count(1)
        self._index_made = False

    def runs_painless(self) -> str | None:
        """None when the node answers and runs a painless script, else why not."""
        try:
            reply = self._http.post("/_scripts/painless/_execute",
                                    json={"script": {"lang": "painless", "source": "1 + 1"}})
        except httpx.HTTPError as exc:
            return f"no painless node answers on {self.url} ({exc})"
        if reply.status_code != 200 or reply.json().get("result") != "2":
            return (f"the node on {self.url} does not run painless "
                    f"(HTTP {reply.status_code}: {reply.text[:120]})")
        return None

    def _ensure_index(self) -> None:
        if self._index_made:
            return
        # painless compiles at most 75 new update scripts per 5 minutes by default; the
        # differential tests send hundreds of distinct small ones
        reply = self._http.put("/_cluster/settings", json={"persistent": {
            "script.context.update.max_compilations_rate": "100000/1m",
            "script.context.update.cache_max_size": 2000}})
        if reply.status_code != 200:
            raise OracleError(f"cannot lift the script compilation limit: HTTP "
                              f"{reply.status_code} {reply.text[:200]}")
        # enabled: false at the root keeps the source whole and maps no field, so a field
        # that is a string in one document and an object in the next is no conflict
        reply = self._http.put(f"/{self._index}", json={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"enabled": False}})
        if reply.status_code != 200:
            raise OracleError(f"cannot make {self._index}: HTTP {reply.status_code} "
                              f"{reply.text[:200]}")
        self._index_made = True

    def apply(self, script: str, document: dict[str, Any],
              params: dict[str, Any] | None = None) -> dict[str, Any] | Failure:
        """``document`` as the script leaves ``ctx._source``, or the Failure it raised."""
        self._ensure_index()
        doc_id = str(next(self._ids))
        stored = self._http.put(f"/{self._index}/_doc/{doc_id}", json=document)
        if stored.status_code not in (200, 201):
            raise OracleError(f"cannot store document {doc_id}: HTTP {stored.status_code} "
                              f"{stored.text[:200]}")
        body: dict[str, Any] = {"lang": "painless", "source": script}
        if params is not None:
            body["params"] = params
        reply = self._http.post(f"/{self._index}/_update/{doc_id}", json={"script": body})
        if reply.status_code == 200:
            return self._read(doc_id)
        failure = _failure(script, reply.json().get("error") or {})
        if failure is None:
            raise OracleError(f"update of document {doc_id} failed: HTTP {reply.status_code} "
                              f"{reply.text[:300]}")
        return failure

    def apply_all(self, script: str, documents: list[dict[str, Any]],
                  params: dict[str, Any] | None = None) -> list[dict[str, Any] | Failure]:
        """``apply`` for many documents in two round trips: one _bulk storing each and
        running the script on it, one _mget reading back those it left."""
        self._ensure_index()
        ids = [str(next(self._ids)) for _ in documents]
        body: dict[str, Any] = {"lang": "painless", "source": script}
        if params is not None:
            body["params"] = params
        lines = []
        for doc_id, document in zip(ids, documents, strict=True):
            lines += [{"index": {"_id": doc_id}}, document, {"update": {"_id": doc_id}},
                      {"script": body}]
        reply = self._http.post(f"/{self._index}/_bulk", headers={
            "content-type": "application/x-ndjson"},
            content="".join(json.dumps(line) + "\n" for line in lines))
        if reply.status_code != 200:
            raise OracleError(f"bulk failed: HTTP {reply.status_code} {reply.text[:300]}")
        results: dict[str, dict[str, Any] | Failure] = {}
        for item in reply.json()["items"]:
            action, outcome = next(iter(item.items()))
            if action == "update" and outcome.get("status") != 200:
                failure = _failure(script, outcome.get("error") or {})
                if failure is None:
                    raise OracleError(f"update of document {outcome.get('_id')} failed: "
                                      f"{json.dumps(outcome)[:300]}")
                results[outcome["_id"]] = failure
            elif action == "index" and outcome.get("status") not in (200, 201):
                raise OracleError(f"cannot store document {outcome.get('_id')}: "
                                  f"{json.dumps(outcome)[:300]}")
        left = [doc_id for doc_id in ids if doc_id not in results]
        if left:
            results.update(self._read_all(left))
        return [results[doc_id] for doc_id in ids]

    def _read_all(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        reply = self._http.post(f"/{self._index}/_mget", json={"ids": ids})
        if reply.status_code != 200:
            raise OracleError(f"cannot read documents back: HTTP {reply.status_code} "
                              f"{reply.text[:200]}")
        found = {doc["_id"]: doc["_source"] for doc in reply.json()["docs"] if doc.get("found")}
        if len(found) != len(ids):
            raise OracleError(f"documents {sorted(set(ids) - set(found))[:5]} are gone")
        return found

    def _read(self, doc_id: str) -> dict[str, Any]:
        reply = self._http.get(f"/{self._index}/_source/{doc_id}")
        if reply.status_code != 200:
            raise OracleError(f"cannot read document {doc_id} back: HTTP {reply.status_code} "
                              f"{reply.text[:200]}")
        source: dict[str, Any] = reply.json()
        return source

    def close(self) -> None:
        """Drops the scratch index and the connection."""
        if self._index_made:
            self._http.delete(f"/{self._index}")
        self._http.close()
