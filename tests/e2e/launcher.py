"""Runs the real ``tracardi-daemon`` command line with test roles registered.

The roles of the daemon need a licence and work to do; the end-to-end tests of the
foundation need roles whose effects they can observe. ``TEST_ROLES`` picks one per
role name: ``upgrade=counting,scheduler=slow:5`` (kinds: counting, slow:<seconds>,
failing). Everything else (configuration, signals, health, sd_notify) is the product's.
"""

from __future__ import annotations

import os
import sys

from tests.roles_for_tests import counting, failing_factory, slow
from tracardi_daemon.cli import main
from tracardi_daemon.roles.base import RoleFactory
from tracardi_daemon.roles.registry import RoleSpec, default_registry


def factory_for(kind: str) -> RoleFactory:
    if kind == "counting":
        return counting
    if kind.startswith("slow:"):
        return slow(float(kind.removeprefix("slow:")))
    if kind == "failing":
        return failing_factory(10**9)
    raise SystemExit(f"unknown test role kind {kind!r}")


def registry_from_env() -> dict[str, RoleSpec]:
    registry = default_registry()
    for item in filter(None, os.environ.get("TEST_ROLES", "").split(",")):
        name, kind = item.split("=", 1)
        registry[name] = RoleSpec(name, registry[name].licensed, factory_for(kind))
    return registry


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], registry=registry_from_env()))
