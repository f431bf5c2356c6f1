"""Plan files: the daemon's TOML/JSON form or Tracardi's JSON list, and the plans that
ship with the daemon."""

from __future__ import annotations

import json
import re
import tomllib
from importlib.resources import files
from pathlib import Path

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.migration.plan import Plan
from tracardi_daemon.roles.upgrade.migration.tracardi_plan import read_tracardi_plan

_TRACARDI_FILE = re.compile(r"^(?P<source>[0-9a-z]+)_to_(?P<target>[0-9a-z]+)$")


def _parse_file(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the plan: {exc}") from exc
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from exc
    raise InvalidInput(f"{path}: a plan must be a .toml or .json file")


def load_plan(path: Path | str, *, from_version: str | None = None,
              to_version: str | None = None, from_tenant: str | None = None,
              to_tenant: str | None = None) -> Plan:
    """A plan file: the daemon's form (.toml, or a .json object) or Tracardi's (a .json
    list). The versions and tenants apply to Tracardi's form only; its versions default to
    the file's name, ``<from>_to_<to>.json``."""
    path = Path(path)
    data = _parse_file(path)
    try:
        if not isinstance(data, list):
            return Plan.from_dict(data)
        named = _TRACARDI_FILE.match(path.stem)
        from_version = from_version or (named["source"] if named else None)
        to_version = to_version or (named["target"] if named else None)
        if from_version is None or to_version is None:
            raise InvalidInput("a Tracardi plan needs from and to versions: name the file "
                               "<from>_to_<to>.json or give them")
        return read_tracardi_plan(data, from_version, to_version,
                                  from_tenant=from_tenant, to_tenant=to_tenant)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc}") from exc


def shipped_plans() -> list[str]:
    """The names of the plans that come with the daemon."""
    return sorted(entry.name.removesuffix(".toml")
                  for entry in files("tracardi_daemon.plans").iterdir()
                  if entry.name.endswith(".toml"))


def shipped_plan(name: str) -> Path:
    """The file of a shipped plan, by name (``08x_to_0820``)."""
    stem = name.removesuffix(".toml")
    known = shipped_plans()
    if stem not in known:
        raise InvalidInput(f"no shipped plan {name!r}; shipped: {', '.join(known)}")
    return Path(str(files("tracardi_daemon.plans").joinpath(f"{stem}.toml")))
