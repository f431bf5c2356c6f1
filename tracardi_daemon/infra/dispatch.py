"""The one dispatcher of what the scheduler, the trigger and segmentation passes hand
off: one attempt at sending a payload to a tracker, webhook, stream or flow target with
an idempotency key, within connect, read and total timeouts. Retries, dead letters and
per-host limits are the dispatch queue's (``roles/dispatch/role.py``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from tracardi_daemon.config.settings import DispatchSettings, OutboundSettings
from tracardi_daemon.errors import BackendError, BackendUnavailable
from tracardi_daemon.infra.dispatch_targets import Target, TargetKind, parse_target
from tracardi_daemon.infra.outbound import OutboundPolicy, OutboundRefused
from tracardi_daemon.infra.redis import RedisClient, StreamFields, check_name, redis_errors
from tracardi_daemon.redact import mask_text

__all__ = ["Attempt", "Dispatcher", "FlowRunner", "Target", "Timeouts", "flow_done_key",
           "parse_target"]

# the durable queue of HTTP deliveries; its dead letters are the dispatcher's
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_HEADER = "X-Tracardi-Signature"
# the client's fault, but worth another try: request timeout, rate limit
_RETRYABLE_4XX = frozenset({408, 429})
_BODY_EXCERPT_CHARS = 200
# how long a flow target's key is remembered as run: a delivery sent again within this
# (a sender taken over after it finished) does not run the flow again
FLOW_DONE_TTL_S = 7 * 86400
FlowRunner = Callable[[dict[str, Any]], "Attempt"]


@dataclass(frozen=True)
class Attempt:
    """The result of one delivery attempt."""

    ok: bool
    retryable: bool = False
    error: str = ""  # secrets masked: this text is shown and stored
    status: int | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 3.0
    read_s: float = 10.0
    total_s: float = 15.0

    @classmethod
    def from_settings(cls, settings: DispatchSettings) -> Timeouts:
        return cls(settings.connect_timeout_s, settings.read_timeout_s,
                   settings.total_timeout_s)


class Dispatcher:
    """Makes one delivery attempt to a tracker, webhook or stream target, with the
    idempotency key; retries and dead letters belong to the caller (the dispatch queue).

    A URL of a target (not the configured Tracardi API) is sent to only where the
    ``outbound`` policy allows (by default: no loopback, link-local or private address).
    Thread-safe: its pooled HTTP client may be shared between threads.
    """

    def __init__(self, client: RedisClient, tenant: str, *,
                 tracker_api_url: str | None = None, timeouts: Timeouts = Timeouts(),
                 outbound: OutboundPolicy | None = None,
                 http: httpx.Client | None = None,
                 flow_runner: FlowRunner | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._redis = client
        self._tenant = tenant
        self._tracker_api_url = tracker_api_url
        self._outbound = outbound or OutboundPolicy(OutboundSettings())
        self._timeouts = timeouts
        self._monotonic = monotonic
        self._flow_runner = flow_runner
        self._owns_http = http is None
        # redirects are not followed: a POST moved elsewhere is a configuration error
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(connect=timeouts.connect_s, read=timeouts.read_s,
                                  write=timeouts.read_s, pool=timeouts.connect_s),
            follow_redirects=False, limits=httpx.Limits(max_connections=100))
        self._senders: dict[TargetKind, Callable[[_Request], Attempt]] = {
            TargetKind.TRACKER: self._send_tracker,
            TargetKind.WEBHOOK: self._send_webhook,
            TargetKind.STREAM: self._send_stream,
            TargetKind.FLOW: self._send_flow,
        }

    def attempt(self, target: Target | str, payload: dict[str, Any], idempotency_key: str,
                *, headers: Mapping[str, str] | None = None,
                secret: str | None = None) -> Attempt:
        """One try at delivering ``payload``. ``idempotency_key`` (e.g. job id + due
        time) travels with every try so the receiver can drop duplicates. ``headers``
        apply to HTTP targets; ``secret`` signs a webhook's body (HMAC-SHA256). A bad
        target string raises InvalidInput."""
        if isinstance(target, str):
            target = parse_target(target)
        request = _Request(target, payload, idempotency_key, headers or {}, secret)
        result = self._senders[target.kind](request)
        return replace(result, error=mask_text(result.error)) if result.error else result

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _send_tracker(self, request: _Request) -> Attempt:
        base = request.target.address or self._tracker_api_url
        if not base:
            return Attempt(ok=False, error="tracker target without URL and no Tracardi "
                                           "API URL configured")
        problem = _tracker_payload_problem(request.payload)
        if problem:
            return Attempt(ok=False, error=f"invalid tracker payload: {problem}")
        if request.target.address:  # the configured API is the operator's own choice
            refused = self._refused(request.target.address)
            if refused is not None:
                return refused
        return self._post(f"{base.rstrip('/')}/track", request, secret=None)

    def _send_webhook(self, request: _Request) -> Attempt:
        refused = self._refused(request.target.address)
        if refused is not None:
            return refused
        return self._post(request.target.address, request, request.secret)

    def _refused(self, url: str) -> Attempt | None:
        """None when the outbound policy lets the URL's host be sent to; a host that
        does not resolve is worth another try (DNS may be back), a refused one not."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            self._outbound.check(host, parts.port or (443 if parts.scheme == "https" else 80))
        except OutboundRefused as exc:
            return Attempt(ok=False, error=f"refused: {exc}")
        except (OSError, UnicodeError) as exc:
            return Attempt(ok=False, retryable=True,
                           error=f"connection failed: cannot resolve {host}: {exc}")
        return None

    def _post(self, url: str, request: _Request, secret: str | None) -> Attempt:
        body = json.dumps(request.payload, separators=(",", ":")).encode()
        headers = {**request.headers, "Content-Type": "application/json",
                   IDEMPOTENCY_HEADER: request.idempotency_key}
        if secret:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        deadline = self._monotonic() + self._timeouts.total_s
        try:
            with self._http.stream("POST", url, content=body, headers=headers) as response:
                excerpt = self._read_excerpt(response, deadline)
        except httpx.TimeoutException as exc:
            return Attempt(ok=False, retryable=True, error=f"timeout: {exc!r}")
        except _TotalTimeout:
            return Attempt(ok=False, retryable=True,
                           error=f"timeout: no complete answer within "
                                 f"{self._timeouts.total_s:g}s")
        except httpx.TransportError as exc:
            return Attempt(ok=False, retryable=True, error=f"connection failed: {exc!r}")
        except httpx.InvalidURL as exc:
            return Attempt(ok=False, error=f"invalid URL: {exc}")
        return _judge(response, excerpt)

    def _read_excerpt(self, response: httpx.Response, deadline: float) -> str:
        """The start of the body, reading on until its end or the total deadline (a
        receiver that trickles its answer must not hold a sender past it)."""
        kept = bytearray()
        for chunk in response.iter_raw():
            if len(kept) < _BODY_EXCERPT_CHARS:
                kept += chunk[:_BODY_EXCERPT_CHARS - len(kept)]
            if self._monotonic() > deadline:
                raise _TotalTimeout
        if self._monotonic() > deadline:
            raise _TotalTimeout
        return kept.decode("utf-8", errors="replace")

    def _send_stream(self, request: _Request) -> Attempt:
        key, fields = stream_entry(self._tenant, request.target.address,
                                   request.idempotency_key, request.payload)
        try:
            with redis_errors(f"dispatch to stream {key}"):
                self._redis.xadd(key, fields)
        except BackendUnavailable as exc:
            return Attempt(ok=False, retryable=True, error=str(exc))
        except BackendError as exc:
            return Attempt(ok=False, error=str(exc))  # e.g. the key is not a stream
        return Attempt(ok=True)


    def _send_flow(self, request: _Request) -> Attempt:
        """Runs the workflow through the flow runner, once per idempotency key: the key
        is kept after a run, so a delivery sent again after a takeover is only acked."""
        if self._flow_runner is None:
            return Attempt(ok=False, error="flow target, but no flow runner is configured "
                                           "(dispatch.flow_python)")
        done = flow_done_key(self._tenant, request.idempotency_key)
        try:
            with redis_errors(f"dispatch to a flow, key {done}"):
                if self._redis.exists(done):
                    return Attempt(ok=True)
                result = self._flow_runner(request.payload)
                if result.ok:
                    self._redis.set(done, "1", ex=FLOW_DONE_TTL_S)
        except BackendUnavailable as exc:
            return Attempt(ok=False, retryable=True, error=str(exc))
        return result


class _TotalTimeout(Exception):
    """The whole attempt ran past its total timeout."""


@dataclass(frozen=True)
class _Request:
    target: Target
    payload: dict[str, Any]
    idempotency_key: str
    headers: Mapping[str, str]
    secret: str | None


def _judge(response: httpx.Response, excerpt: str) -> Attempt:
    status = response.status_code
    if 200 <= status < 300:
        return Attempt(ok=True, status=status)
    error = f"HTTP {status} {response.reason_phrase}: {excerpt}"
    retryable = status >= 500 or status in _RETRYABLE_4XX
    return Attempt(ok=False, retryable=retryable, error=error, status=status,
                    retry_after_s=_retry_after_s(response))


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # absent, or an HTTP date: the backoff decides


def _tracker_payload_problem(payload: dict[str, Any]) -> str | None:
    """What Tracardi's /track would reject outright, so it is dead-lettered, not retried."""
    source = payload.get("source")
    if not isinstance(source, dict) or not source.get("id"):
        return "source.id is missing"
    events = payload.get("events")
    if not isinstance(events, list) or not events:
        return "events must be a non-empty list"
    if not all(isinstance(event, dict) and event.get("type") for event in events):
        return "every event needs a type"
    return None


def flow_done_key(tenant: str, idempotency_key: str) -> str:
    """A string: the flow delivery with this key ran (``FLOW_DONE_TTL_S``)."""
    return f"{check_name('tenant', tenant)}:flow-done:{idempotency_key}"


def stream_entry(tenant: str, stream: str, idempotency_key: str,
                 payload: Mapping[str, Any]) -> tuple[str, StreamFields]:
    """The key and fields of a stream target's entry; every sender writes this shape."""
    fields: StreamFields = {"idempotency_key": idempotency_key,
                            "payload": json.dumps(payload, separators=(",", ":"))}
    return f"{tenant}:{stream}", fields
