"""The user info (user and password) of a delivery's URL, kept out of its dead letter: the
dead letter holds the URL masked and a reference, the credentials wait in one hash of
the dispatch queue, and a requeued delivery gets them back before it is sent."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.redis import RedisClient, check_name, redis_errors, text
from tracardi_daemon.redact import MASK

# the payload key of a dead letter whose URL's credentials were taken out
CREDENTIALS_REF = "credentials_ref"


def credentials_key(tenant: str, queue: str) -> str:
    """The hash of credentials by reference (beside the queue's dead letters)."""
    return f"{{{check_name('tenant', tenant)}:q:{queue}}}:credentials"


def _split(target: str) -> tuple[str, str, str] | None:
    """(kind, userinfo, URL with the user info masked) of a target whose URL has user
    info, else None."""
    kind, colon, address = target.partition(":")
    try:
        parts = urlsplit(address)
    except ValueError:
        return None
    if not colon or "@" not in parts.netloc:
        return None
    userinfo, _, host = parts.netloc.rpartition("@")
    if userinfo == MASK:
        return None
    return kind, userinfo, urlunsplit(parts._replace(netloc=f"{MASK}@{host}"))


def stored_without_credentials(client: RedisClient, tenant: str, queue: str,
                               payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` fit for a dead letter: a target URL's user info replaced by the mask
    and stored under a reference (the same credentials, the same reference)."""
    target = payload.get("target")
    split = _split(target) if isinstance(target, str) else None
    if split is None:
        return payload
    kind, userinfo, masked = split
    ref = hashlib.sha256(f"{kind}\0{userinfo}\0{masked}".encode()).hexdigest()[:32]
    with redis_errors("keep a dead delivery's credentials"):
        client.hset(credentials_key(tenant, queue), ref, userinfo)
    return {**payload, "target": f"{kind}:{masked}", CREDENTIALS_REF: ref}


def restored_credentials(client: RedisClient, tenant: str, queue: str,
                         payload: dict[str, Any]) -> dict[str, Any]:
    """A requeued ``payload`` with its target's credentials back; InvalidInput when
    they are no longer kept (the hash was cleared)."""
    ref = payload.get(CREDENTIALS_REF)
    target = payload.get("target")
    if ref is None or not isinstance(target, str):
        return payload
    with redis_errors("read a requeued delivery's credentials"):
        userinfo = client.hget(credentials_key(tenant, queue), str(ref))
    if userinfo is None:
        raise InvalidInput(f"credentials_ref {str(ref)[:40]!r}: the credentials of this "
                           "delivery's URL are no longer kept")
    restored = {key: value for key, value in payload.items() if key != CREDENTIALS_REF}
    restored["target"] = target.replace(f"{MASK}@", f"{text(userinfo)}@", 1)
    return restored
