"""Licence tokens: Ed25519 signatures over a small JSON payload.

A token is ``tdl1.<payload>.<signature>``, both parts base64url without padding. The
payload names the licensee, issue and expiry instants, the roles granted, and the id of
the signing key, so a token signed by another key is told apart from a tampered one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tracardi_daemon.config.settings import ROLE_NAMES, LicenseSettings
from tracardi_daemon.errors import LicenseError

TOKEN_PREFIX = "tdl1"  # noqa: S105 - a format tag, not a secret
FREE_ROLES = frozenset({"upgrade"})


@dataclass(frozen=True)
class License:
    licensee: str
    issued: datetime
    expires: datetime
    roles: tuple[str, ...]
    key_id: str

    def grants(self, role: str) -> bool:
        return role in FREE_ROLES or role in self.roles


@dataclass(frozen=True)
class LicenseStatus:
    """What the daemon knows about its licence; ``detail`` says why it is not valid."""

    license: License | None
    detail: str | None

    @property
    def valid(self) -> bool:
        return self.license is not None

    def refusal(self, role: str) -> str | None:
        """Why ``role`` may not run, or None if it may."""
        if role in FREE_ROLES:
            return None
        if self.license is None:
            return self.detail or "no licence"
        if role not in self.license.roles:
            granted = ", ".join(self.license.roles) or "none"
            return f"licence does not grant role '{role}' (it grants: {granted})"
        return None


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(out_dir: str) -> tuple[Path, Path]:
    """Write ``license-private.pem`` (mode 0600) and ``license-public.pem`` into out_dir."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    private_key = Ed25519PrivateKey.generate()
    private_path = directory / "license-private.pem"
    public_path = directory / "license-public.pem"
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def load_private_key(path: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise LicenseError(f"cannot read licence private key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LicenseError(f"licence private key {path} is not an Ed25519 key")
    return key


def load_public_key(path: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise LicenseError(f"cannot read licence public key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise LicenseError(f"licence public key {path} is not an Ed25519 key")
    return key


def issue(
    private_key: Ed25519PrivateKey, licensee: str, roles: tuple[str, ...], days: float,
    now: datetime,
) -> str:
    """Sign a licence for ``roles`` valid ``days`` from ``now``."""
    unknown = [r for r in roles if r not in ROLE_NAMES]
    if unknown:
        raise LicenseError(f"cannot issue a licence for unknown role(s): {', '.join(unknown)}")
    payload = {
        "licensee": licensee,
        "issued": now.astimezone(UTC).isoformat(timespec="seconds"),
        "expires": (now + timedelta(days=days)).astimezone(UTC).isoformat(timespec="seconds"),
        "roles": list(roles),
        "kid": key_id(private_key.public_key()),
    }
    body = _b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64encode(private_key.sign(f"{TOKEN_PREFIX}.{body}".encode()))
    return f"{TOKEN_PREFIX}.{body}.{signature}"


def decode_unverified(token: str) -> License:
    """Read a token's payload without checking its signature (for ``license show``)."""
    _, body, _ = _split(token)
    return _parse_payload(body)


def verify(token: str, public_key: Ed25519PublicKey, now: datetime) -> License:
    """Check signature, signing key and expiry; each failure has its own message."""
    prefix, body, signature = _split(token)
    licence = _parse_payload(body)
    expected_kid = key_id(public_key)
    if licence.key_id != expected_kid:
        raise LicenseError(
            f"licence was signed by another key (key id {licence.key_id}, this daemon "
            f"trusts {expected_kid}); check license.public_key_file"
        )
    try:
        public_key.verify(_b64decode(signature, "signature"), f"{prefix}.{body}".encode())
    except InvalidSignature as exc:
        raise LicenseError(
            "licence signature does not match its content: the token was altered"
        ) from exc
    if now >= licence.expires:
        raise LicenseError(f"licence expired on {licence.expires.isoformat()}")
    return licence


def load_status(settings: LicenseSettings, now: datetime) -> LicenseStatus:
    """The licence the settings point at, verified; never raises for a licence problem."""
    try:
        token = configured_token(settings)
        if token is None:
            return LicenseStatus(None, "no licence: set TRACARDI_DAEMON_LICENSE or license.file")
        if not settings.public_key_file:
            return LicenseStatus(None, "no licence public key: set license.public_key_file "
                                       "or TRACARDI_LICENSE_PUBLIC_KEY_FILE")
        licence = verify(token, load_public_key(settings.public_key_file), now)
        return LicenseStatus(licence, None)
    except LicenseError as exc:
        return LicenseStatus(None, str(exc))


def configured_token(settings: LicenseSettings) -> str | None:
    if settings.token:
        return settings.token.strip()
    if settings.file:
        try:
            text = Path(settings.file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise LicenseError(f"cannot read licence file {settings.file}: {exc}") from exc
        return text or None
    return None


def _split(token: str) -> tuple[str, str, str]:
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise LicenseError(
            f"licence is malformed: expected '{TOKEN_PREFIX}.<payload>.<signature>'"
        )
    return parts[0], parts[1], parts[2]


def _parse_payload(body: str) -> License:
    try:
        payload = json.loads(_b64decode(body, "payload"))
        return License(
            licensee=str(payload["licensee"]),
            issued=datetime.fromisoformat(payload["issued"]),
            expires=datetime.fromisoformat(payload["expires"]),
            roles=tuple(str(r) for r in payload["roles"]),
            key_id=str(payload["kid"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise LicenseError(f"licence is malformed: bad payload ({exc})") from exc


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str, part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise LicenseError(f"licence is malformed: {part} is not base64url") from exc
