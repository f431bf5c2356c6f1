"""The package's layers, read from its source with ast: each module's imports (those
inside functions and under TYPE_CHECKING included) may reach only its own layer and the
layers below it, so no package imports one above it and no two packages import each
other. docs/ARCHITECTURE.md explains the layers."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import tracardi_daemon

PACKAGE = Path(tracardi_daemon.__file__).parent
# bottom first: a module may import its own layer and those listed before it
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("tracardi_daemon", "tracardi_daemon.errors", "tracardi_daemon.redact",
              "tracardi_daemon.config", "tracardi_daemon.license")),
    # the two languages: leaves that use only the base (painless not even that but errors)
    ("painless", ("tracardi_daemon.painless",)),
    ("tql", ("tracardi_daemon.tql",)),
    ("infra", ("tracardi_daemon.infra",)),
    ("model", ("tracardi_daemon.model",)),
    ("roles", ("tracardi_daemon.roles", "tracardi_daemon.scheduler_client",
               "tracardi_daemon.segmentation_client")),
    ("health", ("tracardi_daemon.health",)),
    ("runtime", ("tracardi_daemon.runtime",)),
    # loading checks the settings against Tracardi's layouts and the outbound policy
    ("config loading", ("tracardi_daemon.config.load",)),
    ("cli", ("tracardi_daemon.cli",)),
)
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}


def layer_of(module: str) -> str:
    """The layer of a dotted module name: the longest prefix listed wins."""
    best, length = "", -1
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = name, len(prefix)
    if not best:
        raise AssertionError(f"{module}: in no layer; add it to LAYERS")
    return best


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imports(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import of the package's own modules."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tracardi_daemon":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if base.split(".")[0] == "tracardi_daemon":
                yield node.lineno, base


def test_every_import_reaches_only_its_layer_or_those_below() -> None:
    upward = [f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({layer_of(module)}) "
              f"imports {target} ({layer_of(target)})"
              for module, path in modules() for line, target in imports(module, path)
              if RANK[layer_of(target)] > RANK[layer_of(module)]]
    assert upward == []


def test_no_two_packages_import_each_other() -> None:
    edges: set[tuple[str, str]] = set()
    for module, path in modules():
        for _, target in imports(module, path):
            ours, theirs = _package(module), _package(target)
            if ours != theirs:
                edges.add((ours, theirs))
    cycles = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert cycles == []


def _package(module: str) -> str:
    """The package a module belongs to: the first level below tracardi_daemon (infra,
    cli...); below roles the second (roles.mapping, roles.base, ...); and config's two
    layers apart (the settings every package reads, the loader above model and infra)."""
    parts = module.split(".")
    if parts[1:2] == ["roles"] or module.startswith("tracardi_daemon.config.load"):
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def test_the_layers_cover_the_package_and_a_forbidden_import_is_seen() -> None:
    assert {layer_of(module) for module, _ in modules()} == set(RANK)
    assert RANK[layer_of("tracardi_daemon.infra.queue")] < RANK[layer_of(
        "tracardi_daemon.model.profiles")]  # so model -> infra passes, infra -> model fails
