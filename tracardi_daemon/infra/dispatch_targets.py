"""Dispatch targets as written in jobs and triggers (``stream:NAME``, ``webhook:URL``,
``tracker:URL``, ``flow:``), parsed and validated once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.redact import mask_text, mask_url


class TargetKind(StrEnum):
    TRACKER = "tracker"  # POST a tracker payload to <Tracardi API>/track
    WEBHOOK = "webhook"  # POST JSON to a URL
    STREAM = "stream"  # XADD to the tenant's Redis stream NAME
    # run a workflow for a profile in the installation's own workflow engine, through the
    # dispatcher's configured flow runner; no address
    FLOW = "flow"


# a stream name becomes part of a key: no braces (hash tags) and no whitespace
_STREAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")
_HOST = re.compile(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]+")  # a name, IPv4, or IPv6 (unbracketed)
_KINDS = ", ".join(kind.value for kind in TargetKind)


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    address: str  # URL, or stream name; empty for ``tracker:`` = the configured API

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.address}"


def parse_target(spec: str) -> Target:
    """``KIND:ADDRESS`` -> Target; InvalidInput names the part that is wrong."""
    kind_text, colon, address = spec.strip().partition(":")
    if not colon:
        raise InvalidInput(f"target {spec!r}: expected KIND:ADDRESS, KIND one of {_KINDS}")
    try:
        kind = TargetKind(kind_text.lower())
    except ValueError:
        raise InvalidInput(
            f"target {spec!r}: unknown kind {kind_text!r}, expected one of {_KINDS}") from None
    if kind is TargetKind.STREAM:
        if not _STREAM_NAME.fullmatch(address):
            raise InvalidInput(f"target {spec!r}: stream name {address!r} must be 1-200 "
                               "letters, digits, '.', '_', ':' or '-'")
    elif kind is TargetKind.FLOW:
        if address:
            raise InvalidInput(f"target {spec!r}: a flow target has no address, write 'flow:'")
    elif address or kind is TargetKind.WEBHOOK:
        _check_url(spec, address)
    return Target(kind, address)


def _check_url(spec: str, address: str) -> None:
    # errors are shown and stored: never with the URL's credentials
    spec, shown = mask_text(spec), mask_url(address)
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:  # an unclosed '[', a port that is not a number
        raise InvalidInput(f"target {spec!r}: URL {shown!r} is malformed ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"target {spec!r}: URL {shown!r} must start with http:// "
                           "or https://")
    if not parts.hostname or not _HOST.fullmatch(parts.hostname):
        raise InvalidInput(f"target {spec!r}: URL {shown!r} has no valid host")
    if any(char.isspace() for char in address):
        raise InvalidInput(f"target {spec!r}: URL {shown!r} contains whitespace")
