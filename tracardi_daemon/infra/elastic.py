"""The Elasticsearch client built from settings, and a reachability probe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from elastic_transport import JsonSerializer
from elasticsearch import ApiError, Elasticsearch, TransportError

from tracardi_daemon.errors import BackendError, BackendUnavailable
from tracardi_daemon.redact import mask_text, mask_url
from tracardi_daemon.settings import ElasticSettings


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


def create_elastic(settings: ElasticSettings) -> Elasticsearch:
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
        raise BackendError("elasticsearch", f"{action}: {_text(exc)}") from exc
    except TransportError as exc:  # includes ConnectionError and timeouts
        raise BackendUnavailable("elasticsearch", f"{action}: {_text(exc)}") from exc


def _text(exc: Exception) -> str:
    """The client's exception as text, masked: it may quote a node URL with its user
    info or a request header."""
    return mask_text(str(exc))
