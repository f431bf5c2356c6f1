"""Which roles exist, whether they need a licence, and what each starts with it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tracardi_daemon.config.settings import ROLE_NAMES, Settings
from tracardi_daemon.errors import RoleError
from tracardi_daemon.license import FREE_ROLES
from tracardi_daemon.roles.base import RoleFactory
from tracardi_daemon.roles.dispatch.role import dispatch_factory
from tracardi_daemon.roles.mapping.role import mapping_factory
from tracardi_daemon.roles.scheduler.role import scheduler_factory
from tracardi_daemon.roles.segmentation.role import segmentation_factory
from tracardi_daemon.roles.trigger.role import trigger_factory
from tracardi_daemon.roles.upgrade.role import upgrade_factory


@dataclass(frozen=True)
class RoleSpec:
    name: str
    licensed: bool
    factory: RoleFactory
    # roles started with this one (the senders of what it produces)
    companions: tuple[str, ...] = ()
    # internal: started only as a companion, never named in daemon.roles
    internal: bool = False
    # its thread count, when a setting other than [role.<name>] threads decides it
    threads_setting: Callable[[Settings], int] | None = None

    def threads(self, settings: Settings) -> int:
        if self.threads_setting is not None:
            return self.threads_setting(settings)
        return settings.role_threads(self.name)


Registry = Mapping[str, RoleSpec]


def default_registry() -> dict[str, RoleSpec]:
    """The five roles and the internal ``dispatch`` senders."""
    factories: dict[str, RoleFactory] = {"scheduler": scheduler_factory,
                                         "mapping": mapping_factory,
                                         "segmentation": segmentation_factory,
                                         "trigger": trigger_factory,
                                         "upgrade": upgrade_factory}
    # the dispatch senders deliver what these hand off (workflow live segments too)
    companions = {"scheduler": ("dispatch",), "trigger": ("dispatch",),
                  "segmentation": ("dispatch",)}
    registry = {
        name: RoleSpec(name, name not in FREE_ROLES, factories[name],
                       companions=companions.get(name, ()))
        for name in ROLE_NAMES
    }
    # not licensed itself: it only delivers what a licensed role handed off
    registry["dispatch"] = RoleSpec("dispatch", False, dispatch_factory, internal=True,
                                    threads_setting=lambda s: s.dispatch.senders)
    return registry


def resolve_roles(
    requested: tuple[str, ...], registry: Registry, licensed: Callable[[str], bool]
) -> tuple[str, ...]:
    """Turn the configured role list into role names to run.

    ``all`` means every role the licence allows. A role named explicitly but not
    licensed is kept: the daemon reports it as unlicensed.
    """
    names: list[str] = []
    for name in requested:
        if name == "all":
            names.extend(n for n, s in registry.items()
                         if not s.internal and licensed(n))
            continue
        spec = registry.get(name)
        if spec is None or spec.internal:
            raise RoleError(f"unknown role '{name}'")
        names.append(name)
    names += [companion for name in names for companion in registry[name].companions]
    resolved = tuple(n for n in registry if n in set(names))
    if not resolved:
        available = _available(registry)
        raise RoleError(
            f"no role to run: daemon.roles is {', '.join(requested) or 'empty'}; "
            f"the roles: {available}; a commercial role also needs a "
            "licence that grants it"
        )
    return resolved


def _available(registry: Registry) -> str:
    return ", ".join(n for n, s in registry.items() if not s.internal) or "none"
