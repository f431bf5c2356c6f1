"""Environment variable names the daemon honours, how their values are read, and the
Redis URL parser.

Tracardi's own names are used where Tracardi has one, so an existing installation's
environment configures the daemon unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from tracardi_daemon.errors import ConfigError
from tracardi_daemon.redact import mask_url

# environment variable -> (section, key); later entries win over earlier ones
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "ELASTIC_HOST": ("elastic", "hosts"),
    "ELASTIC_HTTP_AUTH_USERNAME": ("elastic", "username"),
    "ELASTIC_HTTP_AUTH_PASSWORD": ("elastic", "password"),
    "ELASTIC_API_KEY": ("elastic", "api_key"),
    "ELASTIC_CA_FILE": ("elastic", "ca_file"),
    "ELASTIC_VERIFY_CERTS": ("elastic", "verify_certs"),
    "REDIS_HOST": ("redis", "host"),
    "REDIS_PORT": ("redis", "port"),
    "REDIS_PASSWORD": ("redis", "password"),
    "MYSQL_HOST": ("mysql", "host"),
    "MYSQL_PORT": ("mysql", "port"),
    "MYSQL_USERNAME": ("mysql", "username"),
    "MYSQL_PASSWORD": ("mysql", "password"),
    "MYSQL_DATABASE": ("mysql", "database"),
    "TENANT_NAME": ("tracardi", "tenant"),
    "PROFILE_PARTITIONING": ("tracardi", "profile_partitioning"),
    "EVENT_PARTITIONING": ("tracardi", "event_partitioning"),
    "SESSION_PARTITIONING": ("tracardi", "session_partitioning"),
    "TRACARDI_API_URL": ("tracardi", "api_url"),
    "LOGGING_LEVEL": ("log", "level"),
    "TRACARDI_LICENSE_PUBLIC_KEY_FILE": ("license", "public_key_file"),
    "TRACARDI_ROLES": ("daemon", "roles"),
    "TRACARDI_HEALTH_SOCKET": ("daemon", "health_socket"),
}


# where license.token comes from, first found wins: the daemon's own name, which Tracardi
# does not read, then Tracardi's two, which one env file for Tracardi's API and the daemon
# may fill with Tracardi's own licence (Tracardi 0.8.2 dies on any other LICENSE)
LICENSE_ENV: tuple[str, ...] = ("TRACARDI_DAEMON_LICENSE", "LICENSE", "API_LICENSE")
_DAEMON_LICENSE_ENV = LICENSE_ENV[0]

_QUOTES = ("\"", "'")
log = logging.getLogger(__name__)


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value without one pair of surrounding quotes, None if unset.

    Tracardi's guide writes ``API_LICENSE="..."`` into a file that is either sourced by
    a shell (which removes the quotes) or given to ``docker run --env-file`` (which keeps
    them), so both must mean the same. Only a matching pair at both ends is removed, once.
    """
    value = environ.get(name)
    if value is not None and len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
        return value[1:-1]
    return value


def license_from_env(environ: Mapping[str, str], token_prefix: str) -> tuple[str, str] | None:
    """(token, variable) from the first licence variable that holds one, None if none.

    LICENSE and API_LICENSE count only when their value starts with ``token_prefix.``;
    another value (Tracardi's own licence) is skipped with a warning naming the variable.
    """
    for name in LICENSE_ENV:
        value = env_value(environ, name)
        if value is None:
            continue
        if name == _DAEMON_LICENSE_ENV or value.strip().startswith(f"{token_prefix}."):
            return value, name
        # the value is a licence, a secret: the warning names the variable only
        log.warning("%s does not hold a daemon licence (no '%s.' prefix); ignored, it is "
                    "left to Tracardi: put the daemon's licence in %s", name, token_prefix,
                    _DAEMON_LICENSE_ENV)
    return None


@dataclass(frozen=True)
class RawValue:
    """A value before type checking, with where it came from for error messages.

    ``from_text`` is true for environment variables and options, whose values are
    strings that may be parsed as numbers or booleans; TOML values must have the type.
    """

    value: Any
    source: str
    from_text: bool


def parse_redis_host(url: str, source: str) -> dict[str, Any]:
    """Split ``redis://[user:password@]host[:port][/db]`` (or ``rediss://``) into keys."""
    shown = mask_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is no number or out of range, an unclosed "["
        raise ConfigError(f"{source}: Redis URL {shown!r} has a bad port or host") from None
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(f"{source}: Redis URL {shown!r} must start with redis:// or rediss://")
    if not parts.hostname:
        raise ConfigError(f"{source}: Redis URL {shown!r} has no host")
    result: dict[str, Any] = {"host": parts.hostname, "ssl": parts.scheme == "rediss"}
    if port is not None:
        result["port"] = port
    if parts.username:
        result["username"] = unquote(parts.username)
    if parts.password:
        result["password"] = unquote(parts.password)
    db_text = parts.path.strip("/")
    if db_text:
        # ASCII digits only: "²".isdigit() is true, but int() refuses it
        if not (db_text.isascii() and db_text.isdigit()):
            raise ConfigError(
                f"{source}: Redis URL {shown!r} database must be a number, got {db_text!r}"
            )
        result["db"] = int(db_text)
    return result
