"""An ``import`` definition read into what a job needs: the source kind and its options,
and where the rows go — ``events``, ``profiles`` or Tracardi's collector (``tracker``).

The definition's ``config`` table holds both; source options (path, delimiter, hosts,
credentials, ...) are read by the source adapters, the keys below by the targets.
Credentials stay in the definition, or in the Tracardi resource it names (``resource``,
Tracardi's ``source``): a job names the definition, never copies them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tracardi_daemon.errors import InvalidInput

SOURCES = ("csv", "jsonl", "elasticsearch", "mysql-table", "mysql-query")
TARGETS = ("events", "profiles", "tracker")
# the profile fields an import may write (as a mapping may)
PROFILE_ROOTS = ("data", "traits", "ids", "stats", "segments", "interests", "consents",
                 "aux", "misc", "trash")
DEFAULT_BATCH = 1000
MAX_BATCH = 10_000
# (config key, problem) -> the error naming the definition and the key
_Fail = Callable[[str, str], InvalidInput]


@dataclass(frozen=True)
class ImportSpec:
    """What to import and where, checked; ``config`` is the whole table (source options
    and credentials included), for the source adapter."""

    id: str
    name: str
    source: str
    config: Mapping[str, Any]
    target: str
    batch: int = DEFAULT_BATCH
    key: str | None = None  # the column whose value identifies a row (else the source's)
    max_failed_rows: int | None = None
    # events and tracker
    event_type: str = ""
    event_source: str = ""
    profile_id: str | None = None  # the column holding the event's profile id
    # profiles: column -> profile path, and the profile path the key matches
    fields: Mapping[str, str] = field(default_factory=dict)
    match: str = "id"
    # tracker
    api_url: str = ""
    concurrency: int = 8
    timeout_s: float = 10.0
    # the Tracardi resource whose credentials the source connects with
    resource_id: str | None = None
    resource_name: str = ""

    @property
    def resource_label(self) -> str:
        """How errors name the resource: id and name, never a credential."""
        return f"resource {self.resource_id!r} ({self.resource_name or 'no name'})"


def read_spec(definition_id: str, name: str, source: str,
              config: Mapping[str, Any]) -> ImportSpec:
    """The checked spec; InvalidInput naming the field otherwise."""
    where = f"import {definition_id!r}"

    def fail(key: str, problem: str) -> InvalidInput:
        return InvalidInput(f"{where}: config.{key} {problem}")

    if source not in SOURCES:
        raise InvalidInput(f"{where}: field 'source' must be one of {', '.join(SOURCES)}, "
                           f"not {source!r}")
    target = config.get("target", "events")
    if target not in TARGETS:
        raise fail("target", f"must be one of {', '.join(TARGETS)}, not {target!r}")
    spec = ImportSpec(
        id=definition_id, name=name, source=source, config=config, target=target,
        batch=_integer(config, "batch", DEFAULT_BATCH, low=1, high=MAX_BATCH, fail=fail),
        key=_optional_text(config, "key", fail),
        max_failed_rows=_optional_integer(config, "max_failed_rows", fail),
        event_type=_optional_text(config, "event_type", fail) or "",
        event_source=_ref_id(config, "event_source", fail),
        profile_id=_optional_text(config, "profile_id", fail),
        fields=_fields(config, fail),
        match=_optional_text(config, "match", fail) or "id",
        api_url=(_optional_text(config, "api_url", fail) or "").rstrip("/"),
        concurrency=_integer(config, "concurrency", 8, low=1, high=256, fail=fail),
        timeout_s=float(_integer(config, "timeout_s", 10, low=1, high=600, fail=fail)),
        resource_id=_ref_id(config, "resource", fail) or None,
        resource_name=_ref_name(config, "resource"),
    )
    _check_target(spec, fail)
    return spec


def _check_target(spec: ImportSpec, fail: _Fail) -> None:
    if spec.target in ("events", "tracker"):
        if not spec.event_type:
            raise fail("event_type", f"is required for the {spec.target} target")
        if not spec.event_source:
            raise fail("event_source", f"is required for the {spec.target} target")
    if spec.target == "tracker" and not spec.api_url.startswith(("http://", "https://")):
        raise fail("api_url", "must be Tracardi's API address (http:// or https://) for "
                              "the tracker target")
    if spec.target == "profiles":
        if not spec.key:
            raise fail("key", "is required for the profiles target: the column that "
                              "identifies the profile")
        if not spec.fields:
            raise fail("fields", "is required for the profiles target: a table of "
                                 "column = \"profile path\"")
        for path in (*spec.fields.values(), spec.match):
            if path != "id" and path.split(".", 1)[0] not in PROFILE_ROOTS:
                raise fail("fields" if path != spec.match else "match",
                           f"path {path!r} must start with one of {', '.join(PROFILE_ROOTS)}")


def _optional_text(config: Mapping[str, Any], key: str, fail: _Fail) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise fail(key, "must be a non-empty string")
    return value


def _ref_id(config: Mapping[str, Any], key: str, fail: _Fail) -> str:
    """A string id, or Tracardi's ``{id, name}``."""
    value = config.get(key)
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise fail(key, "must be an id (a string, or a table with an id)")
    return value


def _ref_name(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    name = value.get("name") if isinstance(value, Mapping) else None
    return name if isinstance(name, str) else ""


def _integer(config: Mapping[str, Any], key: str, default: int, *, low: int, high: int,
             fail: _Fail) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(key, f"must be a whole number from {low} to {high}, not {value!r}")
    return value


def _optional_integer(config: Mapping[str, Any], key: str, fail: _Fail) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise fail(key, f"must be a whole number, 0 or more, not {value!r}")
    return value


def _fields(config: Mapping[str, Any], fail: _Fail) -> dict[str, str]:
    value = config.get("fields", {})
    if not isinstance(value, Mapping):
        raise fail("fields", "must be a table of column = \"profile path\"")
    for column, path in value.items():
        if not isinstance(path, str) or not path.strip():
            raise fail(f"fields.{column}", "must be a profile path")
    return dict(value)


# Tracardi's importers, by the words of their module or type name
_TRACARDI_SOURCES = (("query", "mysql-query"), ("mysql", "mysql-table"),
                     ("elastic", "elasticsearch"))


def tracardi_source(module: str) -> str | None:
    """The source kind of a Tracardi import ``module``/type (e.g.
    ``mysql-table-importer``), None if it names none the daemon knows."""
    lowered = module.lower()
    return next((kind for word, kind in _TRACARDI_SOURCES if word in lowered), None)


def from_tracardi(data: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(source, config) of an import stored in Tracardi's shape: ``module``, ``config``
    with ``source`` (the resource to connect with), ``index``/``database_name``/
    ``table_name``/``query``/``batch``, and ``event_type``, ``event_source``, ``api_url``
    beside it. Tracardi's importers post every row to its collector: the target is
    ``tracker``."""
    module = str(data.get("module") or data.get("type") or "")
    source = tracardi_source(module)
    if source is None:
        raise InvalidInput(f"import {data.get('id')!r}: field 'module' names no importer the "
                           f"daemon knows ({module!r})")
    raw = data.get("config")
    config: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
    if "source" in config:  # a {id, name} of Tracardi's resources
        config.setdefault("resource", config.pop("source"))
    for key, named in (("index", "index"), ("database_name", "database"),
                       ("table_name", "table")):
        value = config.pop(key, None)
        if isinstance(value, Mapping):  # Tracardi's {id, name}
            value = value.get("id")
        if value is not None:
            config.setdefault(named, value)
    config.setdefault("target", "tracker")
    for key in ("event_type", "event_source", "api_url"):
        if data.get(key) is not None:
            config.setdefault(key, data[key])
    return source, config
