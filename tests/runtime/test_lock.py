"""The dependency locks match pyproject.toml, and what they pin satisfies its ranges."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]


def _lockinfo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lockinfo", REPO / "scripts" / "lockinfo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lockinfo"] = module
    spec.loader.exec_module(module)
    return module


def _pins(lock: Path) -> dict[str, Version]:
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
        if match:
            pins[match[1].lower().replace("_", "-")] = Version(match[2])
    return pins


def test_locks_were_made_from_the_current_pyproject() -> None:
    stale = _lockinfo().stale_locks(REPO)
    assert not stale, f"{stale} out of date with pyproject.toml: run scripts/lock and commit"


def test_a_changed_dependency_makes_the_lock_stale(tmp_path: Path) -> None:
    lockinfo = _lockinfo()
    (tmp_path / "requirements").mkdir()
    for name in lockinfo.LOCKS:
        (tmp_path / name).write_text((REPO / name).read_text())
    pyproject = (REPO / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(pyproject)
    assert lockinfo.stale_locks(tmp_path) == []
    (tmp_path / "pyproject.toml").write_text(
        pyproject.replace('"lark>=1.1,<2"', '"lark>=1.1,<3"'))
    assert lockinfo.stale_locks(tmp_path) == list(lockinfo.LOCKS)


def test_pinned_versions_satisfy_the_declared_ranges() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(r) for r in project["dependencies"]]
    dev = runtime + [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    for lock, requirements in (("runtime.txt", runtime), ("dev.txt", dev)):
        pins = _pins(REPO / "requirements" / lock)
        for requirement in requirements:
            if requirement.marker and not requirement.marker.evaluate():
                continue
            name = requirement.name.lower().replace("_", "-")
            assert name in pins, f"{name} missing from requirements/{lock}"
            assert requirement.specifier.contains(pins[name]), \
                f"requirements/{lock} pins {name}=={pins[name]}, outside {requirement}"


def test_runtime_dependencies_have_an_upper_bound() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        requirement = Requirement(text)
        assert any(spec.operator == "<" for spec in requirement.specifier), \
            f"{requirement.name} has no upper bound"
