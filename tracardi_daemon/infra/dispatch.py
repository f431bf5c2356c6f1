"""The one dispatcher of scheduler and trigger output: sends a payload to a tracker,
webhook or stream target with an idempotency key, retries, and dead-letters for good."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import redis

from tracardi_daemon.errors import BackendError, BackendUnavailable
from tracardi_daemon.infra.deadletters import add_dead_letter
from tracardi_daemon.infra.dispatch_targets import Target, TargetKind, parse_target
from tracardi_daemon.infra.queue_base import backoff_s, redis_errors

__all__ = ["DispatchResult", "Dispatcher", "Outcome", "Target", "parse_target"]

DEAD_LETTER_QUEUE = "dispatch"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_HEADER = "X-Tracardi-Signature"
# the client's fault, but worth another try: request timeout, rate limit
_RETRYABLE_4XX = frozenset({408, 429})
_BODY_EXCERPT_CHARS = 200


class Outcome(StrEnum):
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"  # failed for good; recorded in {tenant:q:dispatch}:dead
    INTERRUPTED = "interrupted"  # stopped while backing off: hand the job back, not done


@dataclass(frozen=True)
class DispatchResult:
    outcome: Outcome
    attempts: int
    status: int | None = None  # the last HTTP status, if any
    reason: str | None = None
    dead_letter_id: str | None = None

    @property
    def done(self) -> bool:
        """True if the job is finished (delivered or dead-lettered) and may be removed."""
        return self.outcome is not Outcome.INTERRUPTED


@dataclass(frozen=True)
class _Attempt:
    ok: bool
    retryable: bool = False
    error: str = ""
    status: int | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class _Request:
    target: Target
    payload: dict[str, Any]
    idempotency_key: str
    headers: Mapping[str, str]
    secret: str | None


class Dispatcher:
    """Thread-safe; one per daemon, sharing one pooled HTTP client between role threads.

    ``wait(seconds) -> stopped`` is how it sleeps between attempts: pass the role's
    ``stop.wait`` so a stop interrupts the backoff.
    """

    def __init__(self, client: redis.Redis[Any], tenant: str, *,
                 tracker_api_url: str | None = None, http: httpx.Client | None = None,
                 timeout_s: float = 10.0, max_attempts: int = 4,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 10.0,
                 max_total_s: float = 30.0,
                 wait: Callable[[float], bool] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self._redis = client
        self._tenant = tenant
        self._tracker_api_url = tracker_api_url
        self._owns_http = http is None
        # redirects are not followed: a POST moved elsewhere is a configuration error
        self._http = http or httpx.Client(timeout=timeout_s, follow_redirects=False,
                                          limits=httpx.Limits(max_connections=100))
        self._max_attempts = max(1, max_attempts)
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._max_total_s = max_total_s
        self._wait = wait or threading.Event().wait  # never set: plain sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._senders: dict[TargetKind, Callable[[_Request], _Attempt]] = {
            TargetKind.TRACKER: self._send_tracker,
            TargetKind.WEBHOOK: self._send_webhook,
            TargetKind.STREAM: self._send_stream,
        }

    def send(self, target: Target | str, payload: dict[str, Any], idempotency_key: str, *,
             headers: Mapping[str, str] | None = None,
             secret: str | None = None) -> DispatchResult:
        """Deliver ``payload`` at least once, or dead-letter it with the reason.

        ``idempotency_key`` (e.g. job id + due time) travels with every attempt so the
        receiver can drop duplicates. ``headers`` apply to HTTP targets; ``secret`` signs
        a webhook's body (HMAC-SHA256). A bad target string raises InvalidInput.
        """
        if isinstance(target, str):
            target = parse_target(target)
        request = _Request(target, payload, idempotency_key, headers or {}, secret)
        started = self._monotonic()
        first_error: str | None = None
        attempt = 0
        while True:
            attempt += 1
            result = self._senders[target.kind](request)
            if result.ok:
                return DispatchResult(Outcome.DELIVERED, attempt, result.status)
            first_error = first_error or result.error
            if not result.retryable:
                return self._dead_letter(request, result, attempt, first_error,
                                         reason=result.error)
            delay = self._delay(attempt, result.retry_after_s)
            if (attempt >= self._max_attempts
                    or self._monotonic() - started + delay > self._max_total_s):
                return self._dead_letter(request, result, attempt, first_error,
                                         reason=f"gave up after {attempt} attempt(s): "
                                                f"{result.error}")
            if self._wait(delay):
                return DispatchResult(Outcome.INTERRUPTED, attempt, result.status,
                                      result.error)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _delay(self, attempt: int, retry_after_s: float | None) -> float:
        delay = backoff_s(attempt, *self._backoff, self._rng)
        if retry_after_s is not None:
            # the receiver asked for a pause; honour it up to the backoff cap
            delay = max(delay, min(retry_after_s, self._backoff[1]))
        return delay

    def _send_tracker(self, request: _Request) -> _Attempt:
        base = request.target.address or self._tracker_api_url
        if not base:
            return _Attempt(ok=False, error="tracker target without URL and no Tracardi "
                                            "API URL configured")
        problem = _tracker_payload_problem(request.payload)
        if problem:
            return _Attempt(ok=False, error=f"invalid tracker payload: {problem}")
        return self._post(f"{base.rstrip('/')}/track", request, secret=None)

    def _send_webhook(self, request: _Request) -> _Attempt:
        return self._post(request.target.address, request, request.secret)

    def _post(self, url: str, request: _Request, secret: str | None) -> _Attempt:
        body = json.dumps(request.payload, separators=(",", ":")).encode()
        headers = {**request.headers, "Content-Type": "application/json",
                   IDEMPOTENCY_HEADER: request.idempotency_key}
        if secret:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        try:
            response = self._http.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return _Attempt(ok=False, retryable=True, error=f"timeout: {exc!r}")
        except httpx.TransportError as exc:
            return _Attempt(ok=False, retryable=True, error=f"connection failed: {exc!r}")
        except httpx.InvalidURL as exc:
            return _Attempt(ok=False, error=f"invalid URL: {exc}")
        return _judge(response)

    def _send_stream(self, request: _Request) -> _Attempt:
        key, fields = stream_entry(self._tenant, request.target.address,
                                   request.idempotency_key, request.payload)
        try:
            with redis_errors(f"dispatch to stream {key}"):
                self._redis.xadd(key, fields)
        except BackendUnavailable as exc:
            return _Attempt(ok=False, retryable=True, error=str(exc))
        except BackendError as exc:
            return _Attempt(ok=False, error=str(exc))  # e.g. the key is not a stream
        return _Attempt(ok=True)

    def _dead_letter(self, request: _Request, result: _Attempt, attempts: int,
                     first_error: str | None, *, reason: str) -> DispatchResult:
        target = str(request.target)
        letter_id = add_dead_letter(
            self._redis, self._tenant, DEAD_LETTER_QUEUE,
            # self-contained, so a requeued letter can be dispatched again (headers and
            # secrets are left out on purpose: they must not sit in Redis)
            payload={"target": target, "idempotency_key": request.idempotency_key,
                     "payload": request.payload},
            reason=reason, attempts=attempts, first_error=first_error,
            last_error=result.error,
            extra={"target": target, "idempotency_key": request.idempotency_key})
        return DispatchResult(Outcome.DEAD_LETTERED, attempts, result.status, reason,
                              letter_id)


def _judge(response: httpx.Response) -> _Attempt:
    status = response.status_code
    if 200 <= status < 300:
        return _Attempt(ok=True, status=status)
    excerpt = response.text[:_BODY_EXCERPT_CHARS]
    error = f"HTTP {status} {response.reason_phrase}: {excerpt}"
    retryable = status >= 500 or status in _RETRYABLE_4XX
    return _Attempt(ok=False, retryable=retryable, error=error, status=status,
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



def stream_entry(tenant: str, stream: str, idempotency_key: str,
                 payload: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The key and fields of a stream target's entry; every sender writes this shape."""
    fields = {"idempotency_key": idempotency_key,
              "payload": json.dumps(payload, separators=(",", ":"))}
    return f"{tenant}:{stream}", fields
