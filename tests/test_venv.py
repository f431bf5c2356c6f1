"""scripts/venv: the checkout's own .venv, made with PYTHON, kept while it works, and
Debian's python3-venv installed when the interpreter cannot make one.

Each test runs the real script in a copy of it (a checkout of one file), with real
interpreters; only apt-get is replaced, by a recorder on PATH, so that no test installs
system packages."""

from __future__ import annotations

import functools
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEBIAN_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "venv", tmp_path / "scripts" / "venv")
    return tmp_path


def run_venv(checkout: Path, python: str | Path | None, *, path_prefix: Path | None = None,
             user: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "PYTHONPATH")}
    if python is not None:
        env["PYTHON"] = str(python)
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env.get('PATH', '')}"
    command = [str(checkout / "scripts" / "venv")]
    if user is not None:
        gid = pwd.getpwuid(user).pw_gid
        command = ["setpriv", f"--reuid={user}", f"--regid={gid}", "--clear-groups", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180,
                          check=False)


def describe(python: str | Path) -> tuple[str, str, tuple[int, int]]:
    """(base prefix, version, (major, minor)) of an interpreter or environment."""
    code = "import sys; print(sys.base_prefix); print(*sys.version_info[:3])"
    base, version = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                                   timeout=30, check=True).stdout.splitlines()
    major, minor, _ = (int(n) for n in version.split())
    return base, version, (major, minor)


def base_of(python: str | Path) -> tuple[str, str]:
    """The interpreter an environment runs on: (base prefix, version)."""
    base, version, _ = describe(python)
    return base, version


@functools.cache
def interpreters() -> dict[tuple[str, str], tuple[Path, tuple[int, int]]]:
    """Real interpreters found on this machine, one per distinct base, with their version."""
    candidates = [DEBIAN_PYTHON, Path(sys.executable)]
    candidates += [Path(p) for p in sorted(glob.glob(os.path.expanduser(
        "~/.pyenv/versions/*/bin/python3")))]
    found: dict[tuple[str, str], tuple[Path, tuple[int, int]]] = {}
    for path in candidates:
        try:
            base, version, short = describe(path)
        except (OSError, ValueError, subprocess.SubprocessError):
            continue
        found.setdefault((base, version), (path, short))
    return found


def debian_python() -> Path:
    """Debian's own python3, the externally managed one of the README's first command."""
    owned = DEBIAN_PYTHON.exists() and shutil.which("dpkg") and subprocess.run(
        ["dpkg", "-S", os.path.realpath(DEBIAN_PYTHON)], capture_output=True,
        check=False).returncode == 0
    if not owned:
        pytest.skip("no Debian python3 here")
    return DEBIAN_PYTHON


def test_makes_the_venv_with_python_and_keeps_it(checkout: Path) -> None:
    made = run_venv(checkout, sys.executable)
    assert made.returncode == 0, made.stderr
    assert "making" in made.stdout
    venv_python = checkout / ".venv" / "bin" / "python"
    assert base_of(venv_python) == base_of(sys.executable)
    prefix = subprocess.run([str(venv_python), "-c", "import sys; print(sys.prefix)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert Path(prefix).resolve() == (checkout / ".venv").resolve()
    # the second run keeps it as it is: same configuration file, what was installed stays
    marker = checkout / ".venv" / "installed-by-bootstrap"
    marker.write_text("x")
    before = (checkout / ".venv" / "pyvenv.cfg").stat()
    again = run_venv(checkout, sys.executable)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    after = (checkout / ".venv" / "pyvenv.cfg").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert marker.exists()
    # without PYTHON the working environment is kept too, whatever python3 is
    assert run_venv(checkout, None).stdout == ""


def test_a_broken_venv_is_made_again(checkout: Path) -> None:
    assert run_venv(checkout, sys.executable).returncode == 0
    # its interpreter gone, as when the Python it was made with is uninstalled
    (checkout / ".venv" / "bin" / "python").unlink()
    again = run_venv(checkout, sys.executable)
    assert again.returncode == 0, again.stderr
    assert "does not work" in again.stdout and "making" in again.stdout
    assert base_of(checkout / ".venv" / "bin" / "python") == base_of(sys.executable)


def test_another_python_makes_it_again(checkout: Path) -> None:
    usable = [path for path, version in interpreters().values() if version >= (3, 11)]
    if len(usable) < 2:
        pytest.skip("one Python 3.11+ here; another is needed to change to")
    first, second = usable[:2]
    assert run_venv(checkout, first).returncode == 0
    changed = run_venv(checkout, second)
    assert changed.returncode == 0, changed.stderr
    assert f"PYTHON={second} asks for another" in changed.stdout
    assert base_of(checkout / ".venv" / "bin" / "python") == base_of(second)


def test_a_python_older_than_3_11_is_refused(checkout: Path) -> None:
    old = [path for path, version in interpreters().values() if version < (3, 11)]
    if not old:
        pytest.skip("no Python older than 3.11 here")
    refused = run_venv(checkout, old[0])
    assert refused.returncode == 1
    assert "is too old; Python 3.11 or newer is needed" in refused.stderr
    assert not (checkout / ".venv").exists()


def test_a_missing_python_is_named(checkout: Path) -> None:
    refused = run_venv(checkout, checkout / "no-such-python")
    assert refused.returncode == 1
    assert f"{checkout / 'no-such-python'} not found" in refused.stderr


def test_a_directory_that_is_not_a_venv_is_left_alone(checkout: Path) -> None:
    (checkout / ".venv").mkdir()
    (checkout / ".venv" / "notes.txt").write_text("mine")
    refused = run_venv(checkout, sys.executable)
    assert refused.returncode == 1
    assert "is not a virtual environment; move it away" in refused.stderr
    assert (checkout / ".venv" / "notes.txt").read_text() == "mine"


@pytest.fixture
def without_ensurepip() -> Iterator[tuple[Path, Path]]:
    """Debian's python3 as it is without python3-venv: the same interpreter, but
    ``import ensurepip`` fails. Yields (the interpreter to give as PYTHON, the directory
    whose removal "installs" the package). Made under a directory every user can read,
    for the test that runs as another user."""
    python = debian_python()
    top = Path(tempfile.mkdtemp(prefix="venv-test-"))
    try:
        top.chmod(0o755)
        shadow = top / "shadow"
        (shadow / "ensurepip").mkdir(parents=True)
        (shadow / "ensurepip" / "__init__.py").write_text(
            "raise ModuleNotFoundError(\"No module named 'ensurepip'\")\n")
        wrapper = top / "python3"
        wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={shadow} exec {python} "$@"\n')
        wrapper.chmod(0o755)
        yield wrapper, shadow
    finally:
        shutil.rmtree(top)


def recording_apt_get(directory: Path, shadow: Path, *, fail: bool) -> Path:
    """An apt-get on PATH that logs its arguments and, on install, provides ensurepip
    the way the real package does (or fails, as for a package the lists do not have);
    update always works."""
    directory.mkdir()
    log = directory / "apt-get.log"
    action = "exit 100" if fail else f"rm -rf {shadow}/ensurepip"
    script = directory / "apt-get"
    script.write_text(f'#!/bin/sh\necho "$*" >>{log}\ncase "$1" in install) {action} ;; esac\n')
    script.chmod(0o755)
    return log


def test_debian_python_without_venv_gets_python3_venv(
        checkout: Path, tmp_path: Path, without_ensurepip: tuple[Path, Path]) -> None:
    if os.geteuid() != 0:
        pytest.skip("apt-get is used only as root")
    wrapper, shadow = without_ensurepip
    log = recording_apt_get(tmp_path / "bin", shadow, fail=False)
    made = run_venv(checkout, wrapper, path_prefix=tmp_path / "bin")
    assert made.returncode == 0, made.stderr
    assert "installing Debian's python3-venv with apt-get" in made.stdout
    assert log.read_text().splitlines() == ["install -y -qq --no-install-recommends python3-venv"]
    assert base_of(checkout / ".venv" / "bin" / "python") == base_of(DEBIAN_PYTHON)
    assert (checkout / ".venv" / "bin" / "pip").exists()


def test_a_failed_apt_get_is_retried_after_an_update_then_reported(
        checkout: Path, tmp_path: Path, without_ensurepip: tuple[Path, Path]) -> None:
    if os.geteuid() != 0:
        pytest.skip("apt-get is used only as root")
    wrapper, shadow = without_ensurepip
    log = recording_apt_get(tmp_path / "bin", shadow, fail=True)
    refused = run_venv(checkout, wrapper, path_prefix=tmp_path / "bin")
    assert refused.returncode == 1
    assert "apt-get install python3-venv failed" in refused.stderr
    assert log.read_text().splitlines() == [
        "install -y -qq --no-install-recommends python3-venv",
        "update -qq",
        "install -y -qq --no-install-recommends python3-venv",
    ]
    assert not (checkout / ".venv").exists()


def test_without_root_the_package_to_install_is_named(
        without_ensurepip: tuple[Path, Path]) -> None:
    wrapper, shadow = without_ensurepip
    user = None
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv is needed to run the script as another user")
        user = pwd.getpwnam("nobody").pw_uid
    checkout = shadow.parent / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "venv", checkout / "scripts" / "venv")
    refused = run_venv(checkout, wrapper, user=user)
    assert refused.returncode == 1
    assert "cannot make a virtual environment: install Debian's python3-venv" \
        " (sudo apt-get install python3-venv)" in refused.stderr
    assert (shadow / "ensurepip").exists()
    assert not (checkout / ".venv").exists()
