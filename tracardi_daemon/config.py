"""Load settings: built-in defaults < TOML file < environment < command line.

Every value is checked against the type of its dataclass field; an error names the key
and where it came from (file, environment variable or option).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tracardi_daemon.config_env import ENV_OVERRIDES, RawValue, parse_redis_host
from tracardi_daemon.errors import ConfigError
from tracardi_daemon.settings import ROLE_ALIASES, ROLE_NAMES, RoleSettings, Settings

if sys.version_info >= (3, 11):  # noqa: UP036 - tomli serves older Pythons
    import tomllib
else:  # pragma: no cover - the package requires 3.11, kept for the tomli fallback
    import tomli as tomllib

DEFAULT_CONFIG_PATH = "/etc/tracardi-daemon/tracardi-daemon.toml"

# section name -> dataclass, from the Settings fields themselves (one source of truth)
SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings)
    if f.name not in ("role", "source")
}


@dataclass(frozen=True)
class Overrides:
    """Values given on the command line; None means not given."""

    config: str | None = None
    roles: str | None = None
    health_socket: str | None = None
    log_level: str | None = None


def load_settings(
    environ: Mapping[str, str], overrides: Overrides = Overrides()
) -> Settings:
    """Build the effective settings; raises ConfigError naming the bad key and source."""
    path = overrides.config or environ.get("TRACARDI_CONFIG")
    raw: dict[str, dict[str, RawValue]] = {}
    source = None
    if path is not None or Path(DEFAULT_CONFIG_PATH).is_file():
        source = path or DEFAULT_CONFIG_PATH
        raw = read_toml(source)
    for env_name, (section, key) in ENV_OVERRIDES.items():
        if env_name in environ:
            raw.setdefault(section, {})[key] = RawValue(environ[env_name], env_name, True)
    _apply_redis_url(raw)
    cli = {("daemon", "roles"): overrides.roles, ("daemon", "health_socket"):
           overrides.health_socket, ("log", "level"): overrides.log_level}
    for (section, key), value in cli.items():
        if value is not None:
            option = "--" + key.replace("_", "-")
            raw.setdefault(section, {})[key] = RawValue(value, option, True)
    return build_settings(raw, source)


def read_toml(path: str) -> dict[str, dict[str, RawValue]]:
    """Read a TOML file into section -> key -> RawValue, rejecting unknown sections."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"configuration file {path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    raw: dict[str, dict[str, RawValue]] = {}
    for section, table in document.items():
        if section == "role":
            _read_role_tables(table, path, raw)
            continue
        if section not in SECTIONS:
            known = ", ".join(sorted([*SECTIONS, "role"]))
            raise ConfigError(f"unknown section [{section}] in {path} (known: {known})")
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] in {path} must be a table")
        raw[section] = {k: RawValue(v, f"{path} [{section}]", False) for k, v in table.items()}
    return raw


def _read_role_tables(table: Any, path: str, raw: dict[str, dict[str, RawValue]]) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"[role] in {path} must hold tables like [role.upgrade]")
    for name, role_table in table.items():
        if name not in ROLE_NAMES:
            raise ConfigError(
                f"unknown role [role.{name}] in {path} (known: {', '.join(ROLE_NAMES)})"
            )
        if not isinstance(role_table, dict):
            raise ConfigError(f"[role.{name}] in {path} must be a table")
        raw[f"role.{name}"] = {
            k: RawValue(v, f"{path} [role.{name}]", False) for k, v in role_table.items()
        }


def _apply_redis_url(raw: dict[str, dict[str, RawValue]]) -> None:
    """REDIS_HOST (or redis.host) may be a redis:// or rediss:// URL; split it into keys."""
    host = raw.get("redis", {}).get("host")
    if host is None or not isinstance(host.value, str) or "://" not in host.value:
        return
    parts = parse_redis_host(host.value, host.source)
    section = raw["redis"]
    for key, value in parts.items():
        # an explicit key of the same or a higher layer (REDIS_PORT over REDIS_HOST's
        # port) wins over the URL's part; a TOML key loses to a URL from the environment
        existing = section.get(key)
        if key == "host" or existing is None or (host.from_text and not existing.from_text):
            section[key] = RawValue(value, host.source, False)


def build_settings(raw: Mapping[str, Mapping[str, RawValue]], source: str | None) -> Settings:
    sections: dict[str, Any] = {}
    roles: dict[str, RoleSettings] = {}
    for section, values in raw.items():
        if section.startswith("role."):
            roles[section.removeprefix("role.")] = _build_section(RoleSettings, section, values)
        else:
            sections[section] = _build_section(SECTIONS[section], section, values)
    settings = Settings(**sections, role=roles, source=source)
    _validate(settings)
    return settings


def _build_section(cls: type[Any], section: str, values: Mapping[str, RawValue]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in hints:
            known = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ConfigError(f"unknown key '{key}' in {raw.source} (known: {known})")
        kwargs[key] = _coerce(raw, hints[key], f"{section}.{key}")
    if section == "daemon" and "roles" in kwargs:
        kwargs["roles"] = normalise_roles(kwargs["roles"], values["roles"].source)
    return cls(**kwargs)


def _coerce(raw: RawValue, hint: Any, key: str) -> Any:
    """Convert one value to the field's type; strings from the environment are parsed."""
    value = raw.value
    optional = type(None) in typing.get_args(hint) and typing.get_origin(hint) in (
        types.UnionType, typing.Union)
    if optional:
        if value in ("", None):
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    where = f"'{key}' (from {raw.source})"
    if typing.get_origin(hint) is tuple:
        return _coerce_list(raw, where)
    converter = _CONVERTERS[hint]
    return converter(value, raw.from_text, where)


def _coerce_list(raw: RawValue, where: str) -> tuple[str, ...]:
    value = raw.value
    if isinstance(value, str) and raw.from_text:
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    return tuple(items)


def _to_bool(value: Any, from_text: bool, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if from_text and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    raise ConfigError(f"{where} must be a boolean (true/false), got {value!r}")


def _number(kind: type[int] | type[float], name: str) -> Any:
    """A converter to int or float; text (from the environment) is parsed."""

    def convert(value: Any, from_text: bool, where: str) -> int | float:
        accepted = (int,) if kind is int else (int, float)
        if isinstance(value, accepted) and not isinstance(value, bool):
            return kind(value)
        if from_text and isinstance(value, str):
            try:
                return kind(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{where} must be {name}, got {value!r}")

    return convert


def _to_str(value: Any, from_text: bool, where: str) -> str:
    if isinstance(value, str):
        return value
    raise ConfigError(f"{where} must be a string, got {value!r}")


_CONVERTERS: dict[Any, Any] = {bool: _to_bool, int: _number(int, "an integer"),
                                float: _number(float, "a number"), str: _to_str}


def normalise_roles(names: tuple[str, ...], source: str) -> tuple[str, ...]:
    """Resolve aliases; reject unknown names. Order follows ROLE_NAMES.

    ``all`` is kept as it is: which roles it means depends on the licence and on what
    this version implements, both known only when the daemon starts.
    """
    wanted: set[str] = set()
    for name in (n.strip().lower() for n in names):
        if name in ROLE_NAMES or name == "all":
            wanted.add(name)
        elif name in ROLE_ALIASES:
            wanted.add(ROLE_ALIASES[name])
        else:
            valid = ", ".join([*ROLE_NAMES, *ROLE_ALIASES, "all"])
            raise ConfigError(f"unknown role '{name}' in {source} (valid: {valid})")
    return tuple(n for n in (*ROLE_NAMES, "all") if n in wanted)


def _validate(settings: Settings) -> None:
    """Cross-field and range checks that a type alone cannot express."""
    positive = {
        "shutdown.grace_s": settings.shutdown.grace_s,
        "startup.wait_s": settings.startup.wait_s + 1,  # zero means "do not wait"
        "queue.visibility_timeout_s": settings.queue.visibility_timeout_s,
        "queue.max_attempts": settings.queue.max_attempts,
        "scheduler.horizon_s": settings.scheduler.horizon_s,
        "supervisor.max_consecutive_failures": settings.supervisor.max_consecutive_failures,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"'{key}' must be greater than zero, got {value}")
    if settings.scheduler.lease_s <= settings.scheduler.horizon_s:
        raise ConfigError("'scheduler.lease_s' must be greater than 'scheduler.horizon_s'")
    for name, role in settings.role.items():
        if role.threads < 1:
            raise ConfigError(f"'role.{name}.threads' must be at least 1, got {role.threads}")
    if settings.tracardi.partitioning not in ("month", "quarter", "year"):
        raise ConfigError("'tracardi.partitioning' must be \"month\", \"quarter\" or "
                          f"\"year\", got {settings.tracardi.partitioning!r}")
    if settings.log.format not in ("text", "json"):
        raise ConfigError(f"'log.format' must be \"text\" or \"json\", got {settings.log.format!r}")
    if settings.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"'log.level' is not a logging level: {settings.log.level!r}")
    _validate_elastic_hosts(settings.elastic.hosts)
    if not settings.tracardi.tenant or not settings.tracardi.tenant.replace("-", "").isalnum():
        raise ConfigError(
            f"'tracardi.tenant' must be letters, digits and '-', got {settings.tracardi.tenant!r}"
        )


def _validate_elastic_hosts(hosts: tuple[str, ...]) -> None:
    if not hosts:
        raise ConfigError("'elastic.hosts' must name at least one host")
    for host in hosts:
        parts = urlsplit(host)
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ConfigError(f"'elastic.hosts' entry {host!r} has a bad port") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"'elastic.hosts' entry {host!r} must be a URL with scheme, "
                "like http://127.0.0.1:9200"
            )

