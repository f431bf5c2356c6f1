"""Load settings: built-in defaults < TOML file < environment < command line.

Every value is checked against the type of its dataclass field; an error names the key
and where it came from (file, environment variable or option).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tracardi_daemon.config.env import (
    ENV_OVERRIDES,
    RawValue,
    env_value,
    license_from_env,
    parse_redis_host,
)
from tracardi_daemon.config.settings import (
    LAYOUTS,
    NOT_SECTIONS,
    ROLE_ALIASES,
    ROLE_NAMES,
    RoleSettings,
    Settings,
)
from tracardi_daemon.errors import ConfigError, InvalidInput
from tracardi_daemon.license import TOKEN_PREFIX
from tracardi_daemon.model.tracardi_names import Layout, tracardi_tenant
from tracardi_daemon.redact import MASK, mask_text, mask_url

if sys.version_info >= (3, 11):  # noqa: UP036 - tomli serves older Pythons
    import tomllib
else:  # pragma: no cover - the package requires 3.11, kept for the tomli fallback
    import tomli as tomllib

DEFAULT_CONFIG_PATH = "/etc/tracardi-daemon/tracardi-daemon.toml"
_MAX_CONFIG_BYTES = 1 << 20  # a configuration file is a few kB; refuse to slurp /dev/zero

# Range rules by (section, key); a [role.NAME] table is section "role". Every number not
# listed must be greater than zero: durations (*_s), days, counts and sizes, where zero
# means a busy loop or nothing at all. Listed here: where zero has a meaning, and ports.
_MINIMUM: dict[tuple[str, str], float] = {
    ("startup", "wait_s"): 0,  # 0 = do not wait for the backends
    ("daemon", "pool_processes"): 0,  # 0 = one per CPU
    ("redis", "db"): 0,
    ("elastic", "max_retries"): 0,
    ("mapping", "late_arrival_s"): 0,  # 0 = no look-back for late events
    ("mapping", "max_conflict_retries"): 0,
    ("segmentation", "max_conflict_retries"): 0,
}
_MAXIMUM: dict[tuple[str, str], float] = {("redis", "port"): 65535}
# (smaller, larger): the second key must be greater than the first
_ORDERED: tuple[tuple[str, str], ...] = (
    ("scheduler.horizon_s", "scheduler.lease_s"),
    # a stuck dispatch attempt must not make its role look stalled
    ("dispatch.total_timeout_s", "supervisor.step_budget_s"),
    # the leader renews from its steps: a step must be able to fit in the lease
    ("mapping.poll_interval_s", "mapping.lease_s"),
    ("segmentation.poll_interval_s", "segmentation.lease_s"),
    ("upgrade.poll_interval_s", "upgrade.lease_s"),
)

# section name -> dataclass, from the Settings fields themselves (one source of truth)
SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings)
    if f.name not in NOT_SECTIONS
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
    path = overrides.config or env_value(environ, "TRACARDI_CONFIG")
    raw: dict[str, dict[str, RawValue]] = {}
    source = None
    if path is not None or Path(DEFAULT_CONFIG_PATH).is_file():
        source = path or DEFAULT_CONFIG_PATH
        raw = read_toml(source)
    for env_name, (section, key) in ENV_OVERRIDES.items():
        value = env_value(environ, env_name)
        if value is not None:
            raw.setdefault(section, {})[key] = RawValue(value, env_name, True)
    licence = license_from_env(environ, TOKEN_PREFIX)
    if licence is not None:
        raw.setdefault("license", {})["token"] = RawValue(licence[0], licence[1], True)
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
    document = _parse_toml(path, _read_text(path))
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


def _read_text(path: str) -> str:
    """The file's text; ConfigError naming the file if it cannot be read as UTF-8."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ConfigError(f"configuration file {path!r} cannot be read: {exc}") from exc
    if len(data) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"configuration file {path} is larger than "
                          f"{_MAX_CONFIG_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not UTF-8 text "
                          f"(bad byte at offset {exc.start})") from None


def _parse_toml(path: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    except (RecursionError, ValueError) as exc:  # nested too deep, a 5000-digit integer
        raise ConfigError(f"configuration file {path} cannot be used: "
                          f"{type(exc).__name__}: {exc}") from None


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
    given = frozenset(f"{section}.{key}" for section, values in raw.items()
                      for key in values)
    settings = Settings(**sections, role=roles, source=source, given=given)
    _validate(settings)
    return _beside_tracardi(settings, "tenant" in raw.get("tracardi", {}))


def _beside_tracardi(settings: Settings, tenant_given: bool) -> Settings:
    """In a Tracardi layout: the db_version must be one of the layout, and a tenant
    neither configured nor in TENANT_NAME is Tracardi's own default, md5(version)[:5]."""
    tracardi = settings.tracardi
    if tracardi.layout == "daemon":
        return settings
    try:
        Layout.configured(tracardi)
    except InvalidInput as exc:
        raise ConfigError(str(exc)) from None
    if tenant_given:
        return settings
    return dataclasses.replace(settings, tracardi=dataclasses.replace(
        tracardi, tenant=tracardi_tenant(tracardi.db_version)))


def _build_section(cls: type[Any], section: str, values: Mapping[str, RawValue]) -> Any:
    hints = typing.get_type_hints(cls)
    secrets = {f.name for f in dataclasses.fields(cls) if f.metadata.get("secret")}
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in hints:
            known = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ConfigError(f"unknown key '{key}' in {raw.source} (known: {known})")
        kwargs[key] = _coerce(raw, hints[key], (section, key), key in secrets)
    if section == "daemon" and "roles" in kwargs:
        kwargs["roles"] = normalise_roles(kwargs["roles"], values["roles"].source)
    return cls(**kwargs)


def _coerce(raw: RawValue, hint: Any, name: tuple[str, str], secret: bool) -> Any:
    """Convert one value to the field's type; strings from the environment are parsed.
    Numbers are range-checked; a secret's value never appears in an error."""
    value = raw.value
    optional = type(None) in typing.get_args(hint) and typing.get_origin(hint) in (
        types.UnionType, typing.Union)
    if optional:
        if value in ("", None):
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    where = f"'{'.'.join(name)}' (from {raw.source})"
    if typing.get_origin(hint) is tuple:
        return _coerce_list(raw, where)
    converter, expected = _CONVERTERS[hint]
    converted = converter(value, raw.from_text)
    if converted is None:
        shown = MASK if secret else repr(value)
        raise ConfigError(f"{where} must be {expected}, got {shown}")
    if hint in (int, float):
        _check_range(converted, name, where)
    return converted


def _coerce_list(raw: RawValue, where: str) -> tuple[str, ...]:
    value = raw.value
    if isinstance(value, str) and raw.from_text:
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    return tuple(items)


def _check_range(value: float, name: tuple[str, str], where: str) -> None:
    """The rules of ``_MINIMUM``/``_MAXIMUM``; otherwise a number must exceed zero."""
    section, key = name
    rule = ("role" if section.startswith("role.") else section, key)
    minimum = _MINIMUM.get(rule)
    if minimum is None and value <= 0:
        raise ConfigError(f"{where} must be greater than zero, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where} must be at least {minimum:g}, got {value!r}")
    maximum = _MAXIMUM.get(rule)
    if maximum is not None and value > maximum:
        raise ConfigError(f"{where} must be at most {maximum:g}, got {value!r}")


# converters return None when the value does not fit the type
def _to_bool(value: Any, from_text: bool) -> bool | None:
    if isinstance(value, bool):
        return value
    if from_text and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    return None


def _to_int(value: Any, from_text: bool) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if from_text and isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:  # not a number, or more digits than int() accepts
            return None
    return None


def _to_float(value: Any, from_text: bool) -> float | None:
    """A finite float: nan and infinities (TOML has them, so does float()) are refused."""
    if isinstance(value, str) and from_text:
        value = value.strip()
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):  # not a number, or an int beyond float's range
        return None
    return number if math.isfinite(number) else None


def _to_str(value: Any, from_text: bool) -> str | None:
    return value if isinstance(value, str) else None


_CONVERTERS: dict[Any, tuple[Any, str]] = {
    bool: (_to_bool, "a boolean (true/false)"), int: (_to_int, "an integer"),
    float: (_to_float, "a finite number"), str: (_to_str, "a string")}


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
    """Cross-field and value checks that a type and range alone cannot express."""
    for smaller, larger in _ORDERED:
        low, high = _setting(settings, smaller), _setting(settings, larger)
        if high <= low:
            raise ConfigError(f"'{larger}' ({high:g}) must be greater than "
                              f"'{smaller}' ({low:g})")
    if settings.tracardi.partitioning not in ("month", "quarter", "year"):
        raise ConfigError("'tracardi.partitioning' must be \"month\", \"quarter\" or "
                          f"\"year\", got {settings.tracardi.partitioning!r}")
    for kind in ("profile", "event", "session"):
        value = getattr(settings.tracardi, f"{kind}_partitioning")
        if value is not None and value not in ("month", "quarter", "year"):
            raise ConfigError(f"'tracardi.{kind}_partitioning' must be \"month\", "
                              f"\"quarter\" or \"year\" (the partitions the daemon reads and "
                              f"writes), got {value!r}")
    if settings.tracardi.layout not in LAYOUTS:
        raise ConfigError(f"'tracardi.layout' must be one of {', '.join(map(repr, LAYOUTS))}, "
                          f"got {settings.tracardi.layout!r}")
    if settings.mapping.live_start not in ("now", "earliest"):
        raise ConfigError("'mapping.live_start' must be \"now\" or \"earliest\", "
                          f"got {settings.mapping.live_start!r}")
    if settings.log.format not in ("text", "json"):
        raise ConfigError(f"'log.format' must be \"text\" or \"json\", got {settings.log.format!r}")
    if settings.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"'log.level' is not a logging level: {settings.log.level!r}")
    _validate_elastic_hosts(settings.elastic.hosts)
    _validate_outbound(settings)
    if not settings.tracardi.tenant or not settings.tracardi.tenant.replace("-", "").isalnum():
        raise ConfigError(
            f"'tracardi.tenant' must be letters, digits and '-', got {settings.tracardi.tenant!r}"
        )


def _validate_outbound(settings: Settings) -> None:
    """The outbound lists parse, and import directories are absolute paths."""
    from tracardi_daemon.infra.outbound import OutboundPolicy

    try:
        OutboundPolicy(settings.outbound)
    except InvalidInput as exc:
        raise ConfigError(str(exc)) from None
    for directory in settings.upgrade.import_dirs:
        if not directory.startswith("/"):
            raise ConfigError(f"'upgrade.import_dirs' entry {directory!r} must be an "
                              "absolute path")


def _setting(settings: Settings, dotted: str) -> float:
    section, key = dotted.split(".")
    value: float = getattr(getattr(settings, section), key)
    return value


def _validate_elastic_hosts(hosts: tuple[str, ...]) -> None:
    if not hosts:
        raise ConfigError("'elastic.hosts' must name at least one host")
    for host in hosts:
        shown = mask_url(host)
        try:
            parts = urlsplit(host)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:  # a bad port, an unclosed IPv6 bracket
            raise ConfigError(f"'elastic.hosts' entry {shown!r} is not a valid URL "
                              f"({mask_text(str(exc))})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"'elastic.hosts' entry {shown!r} must be a URL with scheme, "
                "like http://127.0.0.1:9200"
            )

