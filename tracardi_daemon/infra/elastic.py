"""The Elasticsearch client built from settings, a reachability probe, and the one
conversion of the client's exceptions into the daemon's: a cluster that cannot answer
now (no connection, a timeout, a 429 or a 5xx such as unallocated shards after a
restart) is *unavailable*, and is waited for; a refusal of the request itself is an
*error*. Per-document errors of a multi-get are errors too, never "not found"."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from elastic_transport import JsonSerializer, ObjectApiResponse, Transport, TransportApiResponse
from elasticsearch import ApiError, Elasticsearch, TransportError

from tracardi_daemon.config.settings import ElasticSettings
from tracardi_daemon.errors import BackendError, BackendUnavailable
from tracardi_daemon.infra.queue_base import backoff_s
from tracardi_daemon.redact import mask_text, mask_url

# answers that say "not now" rather than "not this request": too many requests, and the
# 5xx a cluster gives while it starts or recovers (search_phase_execution_exception with
# every shard unallocated, no master, a proxy in front of a node that is down)
UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
# per-document error types of a multi-get that mean "cannot read it now"
_UNREADABLE_NOW = frozenset({
    "no_shard_available_action_exception", "unavailable_shards_exception",
    "shard_not_found_exception", "node_not_connected_exception",
    "node_disconnected_exception", "cluster_block_exception",
})
_INDEX_MISSING = "index_not_found_exception"
_JITTER = random.Random()  # noqa: S311 - jitter, not secrets

log = logging.getLogger(__name__)


class FastJsonSerializer(JsonSerializer):
    """Request bodies encoded by orjson: encoding the documents of bulk requests was the
    largest share of a copy job's own CPU time, and orjson does it about twenty times
    faster. Values orjson refuses (integers beyond 64 bits, keys that are not strings,
    lone surrogates) fall back to the standard encoder, so what is written is what the
    standard serializer writes, except that a NaN or infinity becomes null instead of a
    token Elasticsearch refuses. Responses are decoded by the standard library: orjson
    reads an integer beyond 64 bits as a float, and is not much faster at building the
    objects of a response."""

    def json_dumps(self, data: Any) -> bytes:
        try:
            return orjson.dumps(data, default=self.default)
        except TypeError:
            return super().json_dumps(data)


class PatientTransport(Transport):
    """A transport that waits and tries again when the cluster answers 429 or a 5xx
    of UNAVAILABLE_STATUSES, with exponential back-off and jitter: for the commands,
    whose one request has no batch loop around it to retry (``definitions apply``
    against a node whose write queue is full). The roles use the plain transport: their
    loops retry a whole batch after BackendUnavailable."""

    attempts = 8
    backoff_initial_s = 0.25
    backoff_max_s = 8.0

    def perform_request(self, method: str, target: str,
                        **kwargs: Any) -> TransportApiResponse:
        for attempt in range(1, self.attempts + 1):
            response = super().perform_request(method, target, **kwargs)
            if response.meta.status not in UNAVAILABLE_STATUSES or attempt == self.attempts:
                return response
            delay_s = backoff_s(attempt, self.backoff_initial_s, self.backoff_max_s, _JITTER)
            log.info("%s %s: Elasticsearch answered %d; trying again in %.2f s "
                     "(attempt %d of %d)", method, target.split("?", maxsplit=1)[0],
                     response.meta.status, delay_s, attempt, self.attempts)
            time.sleep(delay_s)
        raise AssertionError("unreachable")  # the loop returns on its last attempt


def create_elastic(settings: ElasticSettings, *, patient: bool = False) -> Elasticsearch:
    """The client of the daemon (``patient``: of a command, see PatientTransport)."""
    options: dict[str, Any] = {
        "serializer": FastJsonSerializer(),
        "request_timeout": settings.request_timeout_s,
        "max_retries": settings.max_retries,
        "retry_on_timeout": True,
        "verify_certs": settings.verify_certs,
    }
    if settings.ca_file:
        options["ca_certs"] = settings.ca_file
    if settings.api_key:
        options["api_key"] = settings.api_key
    elif settings.username:
        options["basic_auth"] = (settings.username, settings.password or "")
    if not settings.verify_certs:
        options["ssl_show_warn"] = False
    if patient:
        options["transport_class"] = PatientTransport
    return Elasticsearch(list(settings.hosts), **options)


def describe(settings: ElasticSettings) -> str:
    """The hosts for health details and log lines, user info masked."""
    return ", ".join(mask_url(host) for host in settings.hosts)


def probe_elastic(client: Elasticsearch, settings: ElasticSettings) -> None:
    """Raise BackendUnavailable unless the cluster answers with status yellow or green."""
    try:
        health = client.options(request_timeout=5, max_retries=0).cluster.health()
    except ApiError as exc:
        if exc.meta.status in (401, 403):
            raise BackendUnavailable(
                "elasticsearch", f"{describe(settings)}: authentication failed ({exc.meta.status})"
            ) from exc
        if exc.meta.status in UNAVAILABLE_STATUSES:
            raise BackendUnavailable("elasticsearch", f"{describe(settings)}: {_text(exc)}") \
                from exc
        raise BackendError("elasticsearch", f"{describe(settings)}: {_text(exc)}") from exc
    except TransportError as exc:
        raise BackendUnavailable("elasticsearch", f"{describe(settings)}: {_text(exc)}") from exc
    status = health.get("status")
    if status not in ("yellow", "green"):
        raise BackendUnavailable("elasticsearch", f"{describe(settings)}: cluster is {status}")


@contextmanager
def elastic_errors(action: str) -> Iterator[None]:
    """Convert the client library's exceptions into the daemon's, naming the action."""
    try:
        yield
    except ApiError as exc:
        if exc.meta.status in UNAVAILABLE_STATUSES:
            raise BackendUnavailable("elasticsearch", f"{action}: {_text(exc)}") from exc
        raise BackendError("elasticsearch", f"{action}: {_text(exc)}") from exc
    except TransportError as exc:  # includes ConnectionError and timeouts
        raise BackendUnavailable("elasticsearch", f"{action}: {_text(exc)}") from exc


def _text(exc: Exception) -> str:
    """The client's exception as text, masked: it may quote a node URL with its user
    info or a request header."""
    return mask_text(str(exc))


def search_whole(client: Elasticsearch, action: str, **request: Any) -> ObjectApiResponse[Any]:
    """A search whose answer covers every shard it asks, or none. By default a search
    of several indices (an alias over partitions) answers 200 with the hits of the
    shards it could read and ``_shards.failed`` for the rest, as it does while a
    restarted node recovers its partitions one by one: a reader would take the missing
    hits for absent documents. Here such a search raises BackendUnavailable instead
    (with ``allow_partial_search_results`` off, Elasticsearch answers 503)."""
    with elastic_errors(action):
        return client.search(allow_partial_search_results=False, **request)


def mget_documents(client: Elasticsearch, refs: Sequence[Mapping[str, str]],
                   action: str) -> list[dict[str, Any]]:
    """The multi-get answer for ``refs`` (``{"_index", "_id"}`` each), in their order.

    A document the cluster could not read (a shard recovering after a restart, a closed
    index) raises: BackendUnavailable when it is a "not now", BackendError otherwise.
    Only ``found: false`` or an index that does not exist means the document is absent
    (``found`` is then False), so a caller never takes an unreadable document for a
    missing one and skips or recreates it."""
    if not refs:
        return []
    with elastic_errors(action):
        docs: list[dict[str, Any]] = client.mget(docs=list(refs))["docs"]
    for doc in docs:
        error = doc.get("error")
        if error is None:
            continue
        kind = error.get("type") if isinstance(error, Mapping) else None
        if kind == _INDEX_MISSING:
            doc["found"] = False
            continue
        detail = f"{action}: {doc.get('_index')}/{doc.get('_id')}: {kind}: " \
                 f"{mask_text(str(error.get('reason') if isinstance(error, Mapping) else error))}"
        if kind in _UNREADABLE_NOW:
            raise BackendUnavailable("elasticsearch", detail)
        raise BackendError("elasticsearch", detail)
    return docs

